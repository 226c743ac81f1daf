// The live stream behind GET /api/live: what each stored batch changed, pushed to every connected
// dashboard as Server-Sent Events, filtered per client and coalesced so that a fast pipeline never
// floods a browser (at most one message of each kind per flush interval, each bounded in size).
import { type ScoredReading, type WindowAggregate } from '../domain/index.ts'
import { type ReadingJson, type WindowJson } from './contract.ts'
import { readingJson, storedOf, windowJson } from './json.ts'

/** What the hub needs of a stored batch (the worker's BatchOutcome has this shape). */
export interface LiveBatch {
  stored: readonly ScoredReading[]
  revised: readonly WindowAggregate[]
  finalized: readonly WindowAggregate[]
}

export interface LiveFilter {
  location?: string | undefined
  sensorType?: string | undefined
}

/** Writes one chunk to the client; false when its socket is backed up (the chunk was not written). */
export type LiveWrite = (chunk: string) => boolean

export interface LiveHubOptions {
  flushMs: number
  /** Readings, anomalies and windows kept per client between flushes (the newest). */
  maxItems: number
}

interface Client {
  filter: LiveFilter
  write: LiveWrite
  readings: ScoredReading[]
  anomalies: ScoredReading[]
  windows: Map<string, WindowAggregate>
  dropped: number
}

const matches = (f: LiveFilter, location: string, sensorType: string): boolean =>
  (f.location === undefined || f.location === location) && (f.sensorType === undefined || f.sensorType === sensorType)

const flagged = ({ verdict: v }: ScoredReading): boolean => v.ruleAnomaly || v.zAnomaly || v.mlAnomaly === true

/** Keeps the newest `max` items of `buf` after appending `item`. */
function pushBounded<T> (buf: T[], item: T, max: number): void {
  buf.push(item)
  if (buf.length > 2 * max) buf.splice(0, buf.length - max)
}

export function sseMessage (event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/** Percentile by nearest rank of sorted values. */
export class LiveHub {
  readonly options: LiveHubOptions
  readonly #clients = new Set<Client>()
  #timer: NodeJS.Timeout | null = null

  constructor (options: Partial<LiveHubOptions> = {}) {
    this.options = { flushMs: 250, maxItems: 200, ...options }
  }

  get clients (): number {
    return this.#clients.size
  }

  /** Takes a stored batch: queued for each client whose filter it matches, sent at the next flush. */
  publish (batch: LiveBatch): void {
    const max = this.options.maxItems
    for (const c of this.#clients) {
      const f = c.filter
      const all = f.location === undefined && f.sensorType === undefined
      for (const s of batch.stored) {
        if (!all && !matches(f, s.reading.location, s.reading.sensorType)) continue
        pushBounded(c.readings, s, max)
        if (flagged(s)) pushBounded(c.anomalies, s, max)
      }
      for (const w of [...batch.revised, ...batch.finalized]) {
        if (!matches(f, w.location, w.sensorType)) continue
        const key = `${w.location}\u0000${w.sensorType}\u0000${w.windowStart}`
        c.windows.delete(key)
        c.windows.set(key, w)
        if (c.windows.size > max) c.windows.delete(c.windows.keys().next().value!)
      }
    }
  }

  /** Sends an event to every client now (the pipeline tick). */
  broadcast (event: string, data: unknown): void {
    const msg = sseMessage(event, data)
    for (const c of this.#clients) this.#write(c, msg)
  }

  subscribe (filter: LiveFilter, write: LiveWrite): () => void {
    const c: Client = { filter, write, readings: [], anomalies: [], windows: new Map(), dropped: 0 }
    this.#clients.add(c)
    this.#timer ??= setInterval(() => { this.flush() }, this.options.flushMs)
    this.#timer.unref()
    return () => {
      this.#clients.delete(c)
      if (this.#clients.size === 0 && this.#timer !== null) {
        clearInterval(this.#timer)
        this.#timer = null
      }
    }
  }

  /** Sends what is queued for each client (called every flushMs while clients are connected). */
  flush (): void {
    const max = this.options.maxItems
    for (const c of this.#clients) {
      if (c.readings.length > 0) {
        const json: ReadingJson[] = c.readings.slice(-max).map(s => readingJson(storedOf(s)))
        c.readings = []
        this.#write(c, sseMessage('readings', json))
      }
      if (c.anomalies.length > 0) {
        const json: ReadingJson[] = c.anomalies.slice(-max).map(s => readingJson(storedOf(s)))
        c.anomalies = []
        this.#write(c, sseMessage('anomalies', json))
      }
      if (c.windows.size > 0) {
        const json: WindowJson[] = [...c.windows.values()].map(windowJson)
        c.windows.clear()
        this.#write(c, sseMessage('windows', json))
      }
    }
  }

  #write (c: Client, msg: string): void {
    // A client that does not keep up misses messages rather than holding memory here.
    if (!c.write(msg)) c.dropped++
  }

  close (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#clients.clear()
  }
}
