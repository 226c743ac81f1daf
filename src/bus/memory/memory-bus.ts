import { IotError } from '../../domain/index.ts'
import { KeyPartitioner } from '../partitioner.ts'
import {
  type AssignmentHandler, type Bus, type BusConsumer, type BusProducer, type BusRecord, type BusValue, type StartOffsets
} from '../port.ts'

export interface MemoryBusOptions {
  topic?: string
  partitions?: number
  /** Records held (produced and not yet committed) before producers must wait. */
  capacity?: number
}

/**
 * The embedded bus: one process, one consumer group, partitions keyed like Kafka (murmur2).
 * Records stay until the consumer commits them, so a failed batch is delivered again (`seek`);
 * memory is bounded by `capacity`: a fast producer waits (back-pressure) instead of growing it.
 */
export class MemoryBus implements Bus {
  readonly topic: string
  readonly partitions: number
  readonly capacity: number
  #queue: BusRecord[] = []
  /** Index in #queue of the first record not yet committed. */
  #head = 0
  /** Index in #queue of the next record to deliver. */
  #position = 0
  readonly #nextOffset: number[]
  readonly #partitioner: KeyPartitioner
  #closed = false
  #hasConsumer = false
  #dataWaiters: (() => void)[] = []
  #roomWaiters: (() => void)[] = []

  constructor (opts: MemoryBusOptions = {}) {
    this.topic = opts.topic ?? 'iot_sensors'
    this.partitions = opts.partitions ?? 4
    this.capacity = opts.capacity ?? 100_000
    this.#nextOffset = new Array<number>(this.partitions).fill(0)
    this.#partitioner = new KeyPartitioner(this.partitions)
  }

  /** Records produced and not yet committed. */
  get held (): number {
    return this.#queue.length - this.#head
  }

  /** Records produced and not yet delivered (consumer lag). */
  get lag (): number {
    return this.#queue.length - this.#position
  }

  producer (): BusProducer {
    return {
      tryProduce: (key, value) => this.#produce(key, value),
      writable: async () => { await this.#room() },
      flush: async () => {},
      unacknowledged: 0,
      close: async () => {}
    }
  }

  consumer (): BusConsumer {
    if (this.#hasConsumer) throw new IotError('IOT_ERR_CONFIG', 'the memory bus has one consumer')
    this.#hasConsumer = true
    return {
      subscribe: async (handler: AssignmentHandler) => {
        const all = Array.from({ length: this.partitions }, (_, i) => i)
        this.#start(await handler.onAssigned(all))
      },
      poll: async (max, waitMs) => await this.#poll(max, waitMs),
      commit: async (offsets) => { this.#commit(offsets) },
      seek: () => { this.#position = this.#head },
      close: async () => { this.#wakeData() }
    }
  }

  /** Nothing outlives the process: no earlier run's readings. */
  async newestEventTime (): Promise<number | null> {
    return null
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#wakeData()
    for (const w of this.#roomWaiters.splice(0)) w()
  }

  #produce (key: string, value: BusValue): boolean {
    if (this.#closed) throw new IotError('IOT_ERR_BUS_CLOSED', 'the bus is closed')
    if (this.held >= this.capacity) return false
    const partition = this.#partitioner.partitionOf(key)
    const offset = this.#nextOffset[partition]!
    this.#nextOffset[partition] = offset + 1
    this.#queue.push({ partition, offset, key, value, producedAt: Date.now() })
    if (this.#dataWaiters.length > 0) this.#wakeData()
    return true
  }

  /** Offsets continue from those stored by the previous run. */
  #start (offsets: StartOffsets): void {
    for (const [p, start] of offsets) {
      if (start <= 0) continue
      // Records produced before the subscription are numbered on from the stored offset.
      let next = start
      for (let i = this.#head; i < this.#queue.length; i++) {
        const r = this.#queue[i]!
        if (r.partition === p) r.offset = next++
      }
      this.#nextOffset[p] = next
    }
  }

  async #poll (max: number, waitMs: number): Promise<BusRecord[]> {
    if (this.#position >= this.#queue.length && !this.#closed && waitMs > 0) {
      await new Promise<void>(resolve => {
        const done = (): void => {
          clearTimeout(timer)
          const i = this.#dataWaiters.indexOf(done)
          if (i >= 0) this.#dataWaiters.splice(i, 1) // a timed-out poll leaves nothing behind
          resolve()
        }
        const timer = setTimeout(done, waitMs)
        this.#dataWaiters.push(done)
      })
      // Woken by the first record: take what the rest of this turn of the event loop brings too
      // (the other sockets' messages read in the same turn). Taken at once, the first would make a
      // batch of its own: one transaction per message from many devices at a moderate rate.
      if (this.#position < this.#queue.length) await new Promise(resolve => setImmediate(resolve))
    }
    const end = Math.min(this.#queue.length, this.#position + max)
    const out = this.#queue.slice(this.#position, end)
    this.#position = end
    return out
  }

  #commit (offsets: Map<number, number>): void {
    // Delivery is in queue order and batches are committed in order: release the committed prefix.
    while (this.#head < this.#position) {
      const r = this.#queue[this.#head]!
      const next = offsets.get(r.partition)
      if (next === undefined || r.offset >= next) break
      this.#head++
    }
    if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#position -= this.#head
      this.#head = 0
    }
    if (this.held < this.capacity) for (const w of this.#roomWaiters.splice(0)) w()
  }

  async #room (): Promise<void> {
    if (this.held < this.capacity || this.#closed) return
    await new Promise<void>(resolve => this.#roomWaiters.push(resolve))
  }

  #wakeData (): void {
    for (const w of this.#dataWaiters.splice(0)) w()
  }
}
