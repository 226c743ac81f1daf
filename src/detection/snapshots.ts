// When the detectors' state is snapshotted for storage: often enough that a restart replays only a
// short tail of stored readings, seldom enough that the snapshots cost little beside the readings.

export interface SnapshotScheduleOptions {
  /** A key's state is due after this many new readings of it ... */
  every: number
  /** ... or, with at least one new reading, after this much event time since its last snapshot (slow sensors). */
  everyMs: number
  /** Snapshots taken at most per drain (a batch): when a whole fleet is due at once, the oldest go first and the rest follow. */
  maxPerDrain: number
}

export const defaultSnapshotScheduleOptions: Readonly<SnapshotScheduleOptions> = Object.freeze({
  every: 100,
  everyMs: 3_600_000,
  maxPerDrain: 2000
})

interface Entry {
  /** Readings since the last snapshot. */
  fresh: number
  /** The newest event time seen. */
  lastTs: number
  /** `lastTs` at the last snapshot (before the first: the first reading's event time). */
  snapshotTs: number
}

/**
 * Which keys' state to snapshot now (one schedule for sensors, one for forest keys). A key is due once it has `every`
 * new readings since its last snapshot, or at least one and `everyMs` of event time. A restart
 * then replays at most about `every` readings per sensor (the warm-up it did anyway), whatever its
 * cadence. Memory: one small entry per key. Pure: no clock.
 */
export class SnapshotSchedule {
  readonly options: Readonly<SnapshotScheduleOptions>
  readonly #keys = new Map<string, Entry>()

  constructor (options: Partial<SnapshotScheduleOptions> = {}) {
    this.options = Object.freeze({ ...defaultSnapshotScheduleOptions, ...options })
  }

  /** A reading of `key` at event time `ts`. */
  touch (key: string, ts: number): void {
    const e = this.#keys.get(key)
    if (e === undefined) {
      this.#keys.set(key, { fresh: 1, lastTs: ts, snapshotTs: ts })
      return
    }
    e.fresh++
    if (ts > e.lastTs) e.lastTs = ts
  }

  /** A key restored from a snapshot that has seen up to `lastTs`. */
  restored (key: string, lastTs: number): void {
    this.#keys.set(key, { fresh: 0, lastTs, snapshotTs: lastTs })
  }

  /** The keys due now, least recently snapshotted first (at most `maxPerDrain`); they count as snapshotted. */
  due (): Array<{ key: string, lastTs: number }> {
    const { every, everyMs, maxPerDrain } = this.options
    const due: Array<[string, Entry]> = []
    for (const entry of this.#keys) {
      const e = entry[1]
      if (e.fresh > 0 && (e.fresh >= every || e.lastTs - e.snapshotTs >= everyMs)) due.push(entry)
    }
    if (due.length > maxPerDrain) {
      due.sort((a, b) => a[1].snapshotTs - b[1].snapshotTs || (a[0] < b[0] ? -1 : 1))
      due.length = maxPerDrain
    }
    return due.map(([key, e]) => {
      e.fresh = 0
      e.snapshotTs = e.lastTs
      return { key, lastTs: e.lastTs }
    })
  }

  clear (): void {
    this.#keys.clear()
  }
}
