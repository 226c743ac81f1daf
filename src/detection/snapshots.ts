// When the detectors' state is snapshotted for storage: often enough that a restart replays only a
// short tail of stored readings, seldom enough that the snapshots cost little beside the readings.

export interface SnapshotScheduleOptions {
  /** A sensor's state is due after this many new readings of it ... */
  sensorReadings: number
  /** ... or, with at least one new reading, after this much event time since its last snapshot (slow sensors). */
  everyMs: number
  /** Snapshots taken at most per drain (a batch): when a whole fleet is due at once, the oldest go first and the rest follow. */
  maxPerDrain: number
}

export const defaultSnapshotScheduleOptions: Readonly<SnapshotScheduleOptions> = Object.freeze({
  sensorReadings: 100,
  everyMs: 3_600_000,
  maxPerDrain: 2000
})

interface Entry {
  /** Readings since the last snapshot. */
  fresh: number
  /** Readings that make it due. */
  every: number
  /** The newest event time seen. */
  lastTs: number
  /** `lastTs` at the last snapshot (before the first: the first reading's event time). */
  snapshotTs: number
}

/**
 * Which keys' state to snapshot now. A key (a sensor, a forest key) is due once it has `every`
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

  /** A reading of `key` at event time `ts`; the key is due after `every` of them. */
  touch (key: string, ts: number, every: number): void {
    const e = this.#keys.get(key)
    if (e === undefined) {
      this.#keys.set(key, { fresh: 1, every, lastTs: ts, snapshotTs: ts })
      return
    }
    e.fresh++
    e.every = every
    if (ts > e.lastTs) e.lastTs = ts
  }

  /** A key restored from a snapshot that has seen up to `lastTs`. */
  restored (key: string, lastTs: number): void {
    this.#keys.set(key, { fresh: 0, every: this.options.sensorReadings, lastTs, snapshotTs: lastTs })
  }

  /** The keys due now, least recently snapshotted first (at most `maxPerDrain`); they count as snapshotted. */
  due (): Array<{ key: string, lastTs: number }> {
    const { everyMs, maxPerDrain } = this.options
    const due: Array<[string, Entry]> = []
    for (const entry of this.#keys) {
      const e = entry[1]
      if (e.fresh > 0 && (e.fresh >= e.every || e.lastTs - e.snapshotTs >= everyMs)) due.push(entry)
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
