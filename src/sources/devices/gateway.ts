// The gateway from devices to the bus: what a device sends (ThingsBoard JSON over MQTT or HTTP,
// InfluxDB line protocol over HTTP) becomes wire readings on the bus, and what could not be taken
// (a bad line, a string where a number belongs) becomes rejected envelopes beside them: the worker
// stores those as dead letters with their reason, in the same stream. The worker validates every
// reading as it does Kafka's (timestamps far off, sizes), so every way in ends in the same checks.
import { type BusProducer } from '../../bus/index.ts'
import { IotError, type RejectReason, type Reading, rejectedMessage, toWire } from '../../domain/index.ts'
import {
  type IngestDevice, type IngestLimits, type Precision, decodeTelemetry, defaultIngestLimits, parseLineProtocol, pointsToReadings
} from '../../ingest/index.ts'
import { SourceEnd } from '../source-end.ts'
import { type Source } from '../source.ts'

/** One thing that was not taken in, as a client is told it (the first few of a request). */
export interface IngestRejection {
  /** Line of a line-protocol body (1-based), or position in a JSON array (0-based; -1: the whole payload). */
  at: number
  reason: RejectReason
  detail: string
}

export interface IngestOutcome {
  /** Readings put on the bus. */
  accepted: number
  /** Values, entries or lines sent to the dead letters. */
  rejected: number
  /** The first `maxReported` rejections, for the answer to the client. */
  rejections: IngestRejection[]
}

export interface PutOptions {
  /**
   * Wall-clock milliseconds to wait for room while the bus is full; past it the put fails with
   * IOT_ERR_BUS_FULL (HTTP answers 503 with Retry-After). Absent: wait as long as it takes (MQTT:
   * the PUBACK waits, which is the back-pressure a QoS 1 publisher feels).
   */
  waitMs?: number
}

export interface GatewayDeps {
  producer: BusProducer
  /** Wall clock: the receive time of what devices send (their readings without a time of their own get it). */
  clock: () => number
  limits?: IngestLimits
  /** Hears each device that sent something (last seen). */
  seen?: (deviceId: string, at: number) => void
}

/** Rejections reported back per request; all of them go to the dead letters. */
const MAX_REPORTED = 20

interface Rejected { at: number, reason: RejectReason, detail: string, raw: string }

export class DeviceGateway implements Source {
  readonly name = 'devices'
  readonly #deps: GatewayDeps
  readonly #limits: IngestLimits
  #produced = 0
  #stopped = false
  readonly #pending = new Set<Promise<unknown>>()
  readonly #end = new SourceEnd()

  constructor (deps: GatewayDeps) {
    this.#deps = deps
    this.#limits = deps.limits ?? defaultIngestLimits
  }

  get produced (): number {
    return this.#produced
  }

  /** Devices send for as long as the process runs. */
  get finished (): boolean {
    return false
  }

  now (): number {
    return this.#deps.clock()
  }

  start (): void {}

  async done (): Promise<void> {
    await this.#end.promise
  }

  /** Takes nothing more; waits for the puts under way and flushes the bus. */
  async stop (): Promise<void> {
    this.#stopped = true
    await Promise.allSettled([...this.#pending])
    await this.#deps.producer.flush()
    this.#end.end()
  }

  /** A ThingsBoard telemetry payload (or our own reading JSON) from `device`. */
  async telemetry (device: IngestDevice, payload: string | Buffer, o: PutOptions = {}): Promise<IngestOutcome> {
    const now = this.#deps.clock()
    const r = decodeTelemetry(payload, device, now, this.#limits)
    return await this.#track(this.#put(device, now, r.readings, r.rejected.map(x => ({
      at: x.index, reason: x.reason, raw: x.raw, detail: `device ${device.id}${x.index >= 0 ? `, entry ${x.index}` : ''}: ${x.detail}`
    })), o))
  }

  /** An InfluxDB line-protocol body from `device`, timestamps in `precision`. */
  async lineProtocol (device: IngestDevice, body: string | Buffer, precision: Precision, o: PutOptions = {}): Promise<IngestOutcome> {
    const now = this.#deps.clock()
    const parsed = parseLineProtocol(body, precision, now, this.#limits)
    const mapped = pointsToReadings(parsed.points, device, now, this.#limits)
    const rejected: Rejected[] = [...parsed.errors, ...mapped.rejected]
      .sort((a, b) => a.line - b.line)
      .map(x => ({ at: x.line, reason: x.reason, raw: x.raw, detail: `device ${device.id}, line ${x.line}: ${x.detail}` }))
    return await this.#track(this.#put(device, now, mapped.readings, rejected, o))
  }

  async #track<T> (p: Promise<T>): Promise<T> {
    this.#pending.add(p)
    try {
      return await p
    } finally {
      this.#pending.delete(p)
    }
  }

  async #put (device: IngestDevice, now: number, readings: readonly Reading[], rejected: readonly Rejected[], o: PutOptions): Promise<IngestOutcome> {
    if (this.#stopped) throw new IotError('IOT_ERR_BUS_CLOSED', 'the ingest is stopping')
    const deadline = o.waitMs === undefined ? null : Date.now() + o.waitMs
    this.#deps.seen?.(device.id, now)
    const { producer } = this.#deps
    for (const r of readings) {
      const wire = toWire(r)
      // Keyed by the device (its measurements share a partition). Waits only when the bus is full: most puts go straight in.
      if (!producer.tryProduce(device.id, wire)) await this.#produceWhenRoom(device.id, wire, deadline)
      this.#produced++
    }
    for (const x of rejected) {
      const msg = rejectedMessage(x.reason, x.detail, x.raw)
      if (!producer.tryProduce(device.id, msg)) await this.#produceWhenRoom(device.id, msg, deadline)
    }
    // Accepted means held by the bus (Kafka: acknowledged by the brokers), not only queued here.
    await this.#deps.producer.flush()
    return {
      accepted: readings.length,
      rejected: rejected.length,
      rejections: rejected.slice(0, MAX_REPORTED).map(({ at, reason, detail }) => ({ at, reason, detail }))
    }
  }

  /** Produces once the full bus has room, waiting at most until `deadline` (IOT_ERR_BUS_FULL past it). */
  async #produceWhenRoom (key: string, value: string, deadline: number | null): Promise<void> {
    const { producer } = this.#deps
    while (!producer.tryProduce(key, value)) {
      if (deadline === null) {
        await producer.writable()
        continue
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new IotError('IOT_ERR_BUS_FULL', 'the bus is full: the pipeline is behind; retry later')
      let timer: NodeJS.Timeout | undefined
      await Promise.race([producer.writable(), new Promise(resolve => { timer = setTimeout(resolve, left) })])
      clearTimeout(timer)
    }
  }
}
