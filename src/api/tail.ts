// The live feed of an API process without a worker (`iot-monitor api` beside workers elsewhere):
// what the workers stored, read back from the database once a second while dashboards are
// connected, and handed to the live hub like a batch stored in this process.
import { type WindowAggregate } from '../domain/index.ts'
import { type Queryable, newestReadingTime, recentAggregates, recentReadings } from '../storage/index.ts'
import { scoredOf } from './json.ts'
import { type LiveHub } from './live.ts'

export interface DbTailOptions {
  intervalMs: number
  /** Readings per poll at most (the newest). */
  maxReadings: number
  /** Event time before the newest reading in which windows may still change (window + lateness + out-of-orderness). */
  openSpanMs: number
}

export class DbTail {
  readonly #db: Queryable
  readonly #hub: LiveHub
  readonly #o: DbTailOptions
  #timer: NodeJS.Timeout | null = null
  #polling = false
  /** Newest event time sent; null until the first poll (which sends nothing of the past). */
  #last: number | null = null
  /** Revision and finality of the recent windows last sent. */
  #windows = new Map<string, string>()

  constructor (db: Queryable, hub: LiveHub, options: Partial<DbTailOptions> = {}) {
    this.#db = db
    this.#hub = hub
    this.#o = { intervalMs: 1000, maxReadings: 200, openSpanMs: 3 * 60_000, ...options }
  }

  /** Polls while the hub has clients; idles (no queries) otherwise. */
  start (): void {
    this.#timer ??= setInterval(() => {
      if (this.#hub.clients === 0 || this.#polling) return
      this.#polling = true
      this.poll().catch(() => {}).finally(() => { this.#polling = false })
    }, this.#o.intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** One look at the database: readings newer than the last sent, windows changed since the last look. */
  async poll (): Promise<void> {
    const newest = await newestReadingTime(this.#db)
    if (newest === null) return
    const first = this.#last === null
    const stored = first || newest <= this.#last! ? [] : await recentReadings(this.#db, { from: this.#last! + 1, to: newest + 1, limit: this.#o.maxReadings })
    const recent = await recentAggregates(this.#db, { from: newest - this.#o.openSpanMs, limit: 1000 })
    const changed: WindowAggregate[] = []
    const seen = new Map<string, string>()
    for (const w of recent) {
      const key = `${w.location}\u0000${w.sensorType}\u0000${w.windowStart}`
      const state = `${w.revision}/${w.isFinal}`
      seen.set(key, state)
      if (!first && this.#windows.get(key) !== state) changed.push(w)
    }
    this.#windows = seen
    this.#last = newest
    if (stored.length === 0 && changed.length === 0) return
    // recentReadings is newest first; the hub expects arrival order.
    this.#hub.publish({ stored: stored.reverse().map(scoredOf), revised: changed.reverse(), finalized: [] })
  }
}
