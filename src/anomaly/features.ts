import { restoreFrom, snapshotOf, type SnapshotReader, type SnapshotWriter, type StateInstaller } from './snapshot.ts'

/**
 * The original design's seven ML features of a reading, computed per sensor from its own recent
 * readings, the same way for training and for scoring.
 */

export const featureNames = ['value', 'hour_sin', 'hour_cos', 'rate_of_change', 'rolling_mean', 'rolling_std', 'rolling_range'] as const
export type FeatureName = (typeof featureNames)[number]
export const FEATURES = featureNames.length
/** Readings (the current one included) behind the rolling mean, std and range. */
export const ROLLING_READINGS = 10

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
const TWO_PI = 2 * Math.PI

class History {
  readonly ring = new Float64Array(ROLLING_READINGS)
  head = 0
  count = 0
  prevValue = NaN
  prevTs = NaN
}

/**
 * Raw features, in `featureNames` order:
 * - `value`;
 * - `hour_sin`, `hour_cos`: the hour of day (0-23, UTC) of the event time as an angle (24 h = 2π).
 *   Whole hours, as the original design's `timestamp.hour`: a model trained on the last minutes
 *   of data then sees one constant hour (which Isolation Forest never splits on) rather than a
 *   continuous clock that puts every new reading beyond the edge of its training range;
 * - `rate_of_change`: (value − previous value) / seconds since the previous reading (0 for a
 *   sensor's first reading or a reading not after the previous one);
 * - `rolling_mean`, `rolling_std` (population), `rolling_range` (max − min) of the sensor's last
 *   `ROLLING_READINGS` readings including this one.
 *
 * State is per key (a sensor id), updated by every call in arrival order. Pure; nothing is
 * allocated per reading once a key is known.
 */
export class FeatureExtractor {
  readonly #keys = new Map<string, History>()

  get size (): number {
    return this.#keys.size
  }

  /** Writes the raw features of this reading into `out` from `offset`, then adds it to the key's history. */
  extract (key: string, value: number, ts: number, out: Float32Array | Float64Array, offset = 0): void {
    let h = this.#keys.get(key)
    if (h === undefined) {
      h = new History()
      this.#keys.set(key, h)
    }
    const ring = h.ring
    ring[h.head] = value
    h.head = (h.head + 1) % ROLLING_READINGS
    if (h.count < ROLLING_READINGS) h.count++
    let sum = 0
    let min = Infinity
    let max = -Infinity
    for (let i = 0; i < h.count; i++) {
      const v = ring[i] as number
      sum += v
      if (v < min) min = v
      if (v > max) max = v
    }
    const mean = sum / h.count
    let ss = 0
    for (let i = 0; i < h.count; i++) {
      const d = (ring[i] as number) - mean
      ss += d * d
    }
    const dt = ts - h.prevTs
    const angle = TWO_PI * Math.floor((ts - Math.floor(ts / DAY_MS) * DAY_MS) / HOUR_MS) / 24
    out[offset] = value
    out[offset + 1] = Math.sin(angle)
    out[offset + 2] = Math.cos(angle)
    out[offset + 3] = dt > 0 ? (value - h.prevValue) * 1000 / dt : 0
    out[offset + 4] = mean
    out[offset + 5] = Math.sqrt(ss / h.count)
    out[offset + 6] = max - min
    if (!(ts < h.prevTs)) {
      h.prevValue = value
      h.prevTs = ts
    }
  }

  /** Event time of the key's newest reading (the latest `ts` not older than the one before it), or undefined if it is not tracked. */
  lastTs (key: string): number | undefined {
    return this.#keys.get(key)?.prevTs
  }

  /** The key's history as a standalone snapshot (`snapshot.ts`), or null when it has none. */
  snapshot (key: string): Uint8Array | null {
    return snapshotOf('features', this, key)
  }

  /** Replaces the key's history with a snapshot's; damaged bytes throw `AnomalyStateError` and leave it with none. */
  restore (key: string, bytes: Uint8Array): void {
    restoreFrom('features', this, key, bytes)
  }

  /**
   * Appends the key's history: the rolling values in place (their order is the order of the sums),
   * the previous value and time. About 100 bytes. False, writing nothing, when the key has none.
   */
  writeSnapshot (key: string, out: SnapshotWriter): boolean {
    const h = this.#keys.get(key)
    if (h === undefined) return false
    out.uint(ROLLING_READINGS)
    out.uint(h.count)
    out.uint(h.head)
    out.f64s(h.ring, 0, h.count)
    out.f64(h.prevValue)
    out.f64(h.prevTs)
    return true
  }

  /** Decodes what `writeSnapshot` wrote; the installer replaces a key's history with it. */
  readSnapshot (input: SnapshotReader): StateInstaller {
    const size = input.uint('rolling')
    if (size !== ROLLING_READINGS) input.fail('rolling', `a history of ${size} readings, this build keeps ${ROLLING_READINGS}`)
    const h = new History()
    h.count = input.uint('count', size)
    h.head = input.uint('head', size - 1)
    if (h.count < size && h.head !== h.count) input.fail('head', `a history of ${h.count} readings is written up to ${h.count}, not ${h.head}`)
    input.f64s('values', h.ring, 0, h.count)
    h.prevValue = input.f64('prevValue')
    h.prevTs = input.f64('prevTs')
    return (key) => { this.#keys.set(key, h) }
  }

  forget (key: string): boolean {
    return this.#keys.delete(key)
  }

  clear (): void {
    this.#keys.clear()
  }
}

/**
 * Puts raw features on the sensor's own scale, so one model serves every sensor of a type: the
 * value and rolling mean become deviations from the sensor's baseline mean in baseline standard
 * deviations, the rate, rolling std and range are divided by that deviation; the hour features
 * stay as they are. A flat baseline's deviation is floored at 1e-4 of its mean's magnitude (at
 * least 1e-4), so a stuck sensor still gives finite features.
 */
export function standardize (raw: ArrayLike<number>, mean: number, std: number, out: Float32Array | Float64Array, offset = 0): void {
  const floor = 1e-4 * Math.max(1, Math.abs(mean))
  const s = std > floor ? std : floor
  out[offset] = ((raw[0] as number) - mean) / s
  out[offset + 1] = raw[1] as number
  out[offset + 2] = raw[2] as number
  out[offset + 3] = (raw[3] as number) / s
  out[offset + 4] = ((raw[4] as number) - mean) / s
  out[offset + 5] = (raw[5] as number) / s
  out[offset + 6] = (raw[6] as number) / s
}
