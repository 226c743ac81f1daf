import { AnomalyConfigError } from './errors.ts'
import { restoreFrom, snapshotOf, type SnapshotReader, type SnapshotWriter, type StateInstaller } from './snapshot.ts'

/** Options of `CadenceTracker`. */
export interface CadenceOptions {
  /** Inter-arrival intervals kept per sensor (a ring: the newest ones). Default 64. */
  window: number
  /** Intervals a sensor needs before it has a cadence. Default 3. */
  minIntervals: number
}

export const defaultCadenceOptions: Readonly<CadenceOptions> = Object.freeze({ window: 64, minIntervals: 3 })

class SensorCadence {
  /** Newest event time seen. */
  last: number
  readonly ring: Float64Array
  /** Next interval to write; ring[0 .. count) are filled. */
  head = 0
  count = 0
  /** The median of the ring, computed on demand; undefined after a new interval. */
  median: number | undefined = undefined

  constructor (ts: number, window: number) {
    this.last = ts
    this.ring = new Float64Array(window)
  }
}

/**
 * Learns how often each sensor reports: the median of its newest inter-arrival intervals in event
 * time (milliseconds). The median is robust to gaps: a dropout, a restart or a sensor switched off
 * for a week is one long interval among the last `window`, and moves the median only once gaps
 * are half of them. A reading no newer than the sensor's newest (a duplicate, or out of order)
 * adds no interval. Memory per sensor is the ring (64 intervals: 512 bytes), whatever the length
 * of the stream. Pure: event time comes from the readings.
 */
export class CadenceTracker {
  readonly options: Readonly<CadenceOptions>
  readonly #sensors = new Map<string, SensorCadence>()
  #scratch: Float64Array

  constructor (options: Partial<CadenceOptions> = {}) {
    const o = { ...defaultCadenceOptions, ...options }
    if (!Number.isSafeInteger(o.window) || o.window < 1) throw new AnomalyConfigError('cadence.window', `must be an integer >= 1, got ${String(o.window)}`)
    if (!Number.isSafeInteger(o.minIntervals) || o.minIntervals < 1 || o.minIntervals > o.window) {
      throw new AnomalyConfigError('cadence.minIntervals', `must be an integer in [1, window = ${o.window}], got ${String(o.minIntervals)}`)
    }
    this.options = Object.freeze(o)
    this.#scratch = new Float64Array(o.window)
  }

  /** A reading of `sensorId` at event time `ts` (ms). */
  observe (sensorId: string, ts: number): void {
    if (!Number.isFinite(ts)) return
    const s = this.#sensors.get(sensorId)
    if (s === undefined) {
      this.#sensors.set(sensorId, new SensorCadence(ts, this.options.window))
      return
    }
    if (!(ts > s.last)) return
    s.ring[s.head] = ts - s.last
    s.last = ts
    s.head = s.head + 1 === s.ring.length ? 0 : s.head + 1
    if (s.count < s.ring.length) s.count++
    s.median = undefined
  }

  /**
   * The sensor's cadence: the median of its newest intervals in ms (the mean of the two middle
   * ones for an even count); null until it has `minIntervals`.
   */
  median (sensorId: string): number | null {
    const s = this.#sensors.get(sensorId)
    if (s === undefined || s.count < this.options.minIntervals) return null
    if (s.median === undefined) {
      const xs = this.#scratch.subarray(0, s.count)
      xs.set(s.ring.subarray(0, s.count))
      xs.sort()
      const m = s.count >> 1
      s.median = s.count % 2 === 1 ? xs[m] as number : ((xs[m - 1] as number) + (xs[m] as number)) / 2
    }
    return s.median
  }

  /** Intervals held for the sensor (at most `window`). */
  intervals (sensorId: string): number {
    return this.#sensors.get(sensorId)?.count ?? 0
  }

  /** The cadence of every sensor that has one, by sensor id. */
  all (): Map<string, number> {
    const out = new Map<string, number>()
    for (const id of this.#sensors.keys()) {
      const m = this.median(id)
      if (m !== null) out.set(id, m)
    }
    return out
  }

  /** Sensors tracked. */
  get size (): number {
    return this.#sensors.size
  }

  /**
   * The sensor's cadence state as a standalone snapshot (`snapshot.ts`; kept apart from the
   * detector's: the tracker lives beside it), or null when it has none. With whole-ms intervals
   * about 3 bytes an interval (200 bytes for 64 intervals of 1 min), else 8.
   */
  snapshot (sensorId: string): Uint8Array | null {
    return snapshotOf('cadence', this, sensorId)
  }

  /** Replaces the sensor's state with a snapshot's; damaged bytes throw `AnomalyStateError` and leave it with none. */
  restore (sensorId: string, bytes: Uint8Array): void {
    restoreFrom('cadence', this, sensorId, bytes)
  }

  /** Appends the sensor's state (newest event time, the intervals in place); false, writing nothing, when it has none. */
  writeSnapshot (sensorId: string, out: SnapshotWriter): boolean {
    const s = this.#sensors.get(sensorId)
    if (s === undefined) return false
    out.uint(s.ring.length)
    out.f64(s.last)
    out.uint(s.count)
    out.uint(s.head)
    out.wholeOrF64s(s.ring, 0, s.count)
    return true
  }

  /** Decodes what `writeSnapshot` wrote (for a tracker of the same `window`); the installer replaces a sensor's state with it. */
  readSnapshot (input: SnapshotReader): StateInstaller {
    const window = input.uint('window')
    if (window !== this.options.window) input.fail('window', `a ring of ${window} intervals, this tracker keeps ${this.options.window}`)
    const s = new SensorCadence(input.f64('last'), window)
    if (!Number.isFinite(s.last)) input.fail('last', `not finite: ${s.last}`)
    s.count = input.uint('count', window)
    s.head = input.uint('head', window - 1)
    if (s.count < window && s.head !== s.count) input.fail('head', `a ring of ${s.count} intervals is written up to ${s.count}, not ${s.head}`)
    input.wholeOrF64s('intervals', s.ring, 0, s.count)
    for (let i = 0; i < s.count; i++) if (!((s.ring[i] as number) > 0)) input.fail('intervals', `interval ${i} is not > 0`)
    return (sensorId) => { this.#sensors.set(sensorId, s) }
  }

  forget (sensorId: string): boolean {
    return this.#sensors.delete(sensorId)
  }

  clear (): void {
    this.#sensors.clear()
  }
}

/** A cadence for people: `1 s`, `250 ms`, `1 min`, `5 min`, `1.5 h`, `2 d`. */
export function formatCadence (ms: number): string {
  const units: Array<[number, string]> = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']]
  for (const [size, unit] of units) {
    if (ms >= size) return `${Number((ms / size).toPrecision(3))} ${unit}`
  }
  return `${Number(ms.toPrecision(3))} ms`
}
