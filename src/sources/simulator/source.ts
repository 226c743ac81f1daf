import { type BusProducer } from '../../bus/index.ts'
import { type Source } from '../source.ts'
import { type Simulator } from './simulator.ts'

export interface SimulatorSourceOptions {
  /** Event time runs this many times faster than wall time; Infinity: as fast as the bus takes it. */
  speedup: number
  /** Stop before this event time (exclusive); null runs until stopped. */
  endTs: number | null
  /** Wall clock (ms), injected for tests. */
  wallClock?: () => number
}

/**
 * Paces a Simulator against a virtual clock (start + wall elapsed × speedup) and produces its
 * readings onto the bus, keyed by sensor id. While the bus is full the virtual clock stands still,
 * so a simulator faster than the pipeline slows down instead of piling up readings.
 */
export class SimulatorSource implements Source {
  readonly name = 'simulator'
  readonly #sim: Simulator
  readonly #producer: BusProducer
  readonly #opts: SimulatorSourceOptions
  readonly #wall: () => number
  #wallStart = 0
  #virtualStart = 0
  #pausedMs = 0
  #blockedSince: number | null = null
  #stopped = false
  #produced = 0
  #done: Promise<void> | null = null

  constructor (sim: Simulator, producer: BusProducer, opts: SimulatorSourceOptions) {
    this.#sim = sim
    this.#producer = producer
    this.#opts = opts
    this.#wall = opts.wallClock ?? Date.now
  }

  /** The ingest clock of simulated data: the virtual time the simulator has reached. */
  now (): number {
    if (this.#opts.speedup === Infinity) return this.#sim.nextTs
    // While blocked on a full bus the clock stands still at the moment the block began.
    const wall = this.#blockedSince ?? this.#wall()
    return this.#virtualStart + (wall - this.#wallStart - this.#pausedMs) * this.#opts.speedup
  }

  get produced (): number {
    return this.#produced
  }

  /** True once the simulator reached its end time (a bounded run). */
  get finished (): boolean {
    return this.#opts.endTs !== null && this.#sim.nextTs >= this.#opts.endTs
  }

  start (): void {
    this.#wallStart = this.#wall()
    this.#virtualStart = this.#sim.nextTs
    this.#done = this.#run()
  }

  /** Resolves when the run ends (end time reached or stopped). */
  async done (): Promise<void> {
    await this.#done
  }

  async stop (): Promise<void> {
    this.#stopped = true
    await this.#done
    await this.#producer.flush()
  }

  async #run (): Promise<void> {
    const { endTs, speedup } = this.#opts
    while (!this.#stopped && !this.finished) {
      // As fast as possible: everything up to the end time, paced only by the bus.
      const horizon = speedup === Infinity ? Infinity : this.now()
      let burst = 0
      while (!this.#stopped && this.#sim.nextTs <= horizon && !this.finished) {
        const r = this.#sim.next()
        let accepted = this.#producer.tryProduce(r.sensorId, r)
        if (!accepted) {
          const t0 = this.#blockedSince = this.#wall()
          while (!accepted && !this.#stopped) {
            await this.#producer.writable()
            if (!this.#stopped) accepted = this.#producer.tryProduce(r.sensorId, r)
          }
          this.#blockedSince = null
          this.#pausedMs += this.#wall() - t0
        }
        if (!accepted) break
        this.#produced++
        // Yield now and then so the worker and the API get the event loop during catch-up bursts.
        if (++burst % 10000 === 0) await new Promise(resolve => setImmediate(resolve))
      }
      if (this.#stopped || this.finished) break
      const waitMs = speedup === Infinity ? 0 : Math.min(100, Math.max(1, (this.#sim.nextTs - this.now()) / speedup))
      await new Promise(resolve => setTimeout(resolve, waitMs))
    }
    if (endTs !== null) await this.#producer.flush()
  }
}
