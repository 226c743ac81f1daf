import { AnomalyConfigError } from './errors.ts'
import { restoreFrom, snapshotOf, type SnapshotReader, type SnapshotWriter, type StateInstaller } from './snapshot.ts'

export interface ZScoreOptions {
  /** Accepted values kept per sensor (the rolling baseline). Default 100. */
  windowSize?: number | undefined
  /** Baseline size below which no z is computed (warm-up). Default 30. */
  minSamples?: number | undefined
  /** |z| above this is an anomaly (the detector's own flag). Default 3. */
  threshold?: number | undefined
  /**
   * Values beyond this |z| are kept out of the baseline (outliers that would bias it); values
   * between `threshold` and this join it: the median and MAD hardly move for a few of them, and a
   * sensor whose normal readings are lumpy (mostly 77.0, now and then 76.0) keeps its lower level
   * in the baseline rather than seeing it grow ever more surprising. Default 6.
   */
  rejectThreshold?: number | undefined
  /**
   * Rejected values are kept out of the baseline, unless more than this many arrive in a row:
   * then the level has shifted, and the held-back run plus the current value are accepted.
   * 0 accepts every value. Default 10.
   */
  maxConsecutiveRejections?: number | undefined
}

export interface ZScoreResult {
  /** z of the value against the baseline before it; null during warm-up. */
  z: number | null
  anomaly: boolean
}

/** Statistics of a sensor's current baseline. */
export interface BaselineStats {
  count: number
  /** Median of the baseline. */
  center: number
  /** 1.4826 × MAD (the standard deviation for normal data), before the floor. */
  mad: number
  /** The scale z uses (see `robustScale`), with an unknown resolution. */
  scale: number
  /** Consecutive anomalous values currently held back. */
  pending: number
}

/** MAD × this estimates the standard deviation of normal data. */
export const MAD_TO_SIGMA = 1.482602218505602
/** The mean absolute deviation × this does too (sqrt(π/2)). */
export const MEAN_ABS_TO_SIGMA = 1.2533141373155003
/**
 * Floor of the scale when the sensor's resolution is unknown (it never changed): this fraction of
 * the median's magnitude, at least `ABSOLUTE_FLOOR`.
 */
export const RELATIVE_FLOOR = 1e-3
export const ABSOLUTE_FLOOR = 1e-6

/** The scale floor for a sensor of this resolution (Infinity = unknown) around `center`: one resolution step. */
export function scaleFloor (resolution: number, center: number): number {
  if (resolution !== Infinity && resolution > 0) return resolution
  const r = RELATIVE_FLOOR * Math.abs(center)
  return r > ABSOLUTE_FLOOR ? r : ABSOLUTE_FLOOR
}

/**
 * The scale of a window around its median m: 1.4826 × MAD, or 1.2533 × the mean absolute
 * deviation from m when that is larger (MAD is 0 as soon as more than half of the window holds one
 * value: a quantised or lumpy sensor that mostly reads 122.0 and sometimes 122.3), never below
 * `scaleFloor`. Both estimate the standard deviation of normal data; outliers never enter the window.
 */
function robustScale (b: Window, m: number, resolution: number): number {
  const mad = MAD_TO_SIGMA * b.mad(m)
  const mean = MEAN_ABS_TO_SIGMA * b.meanAbs(m)
  const floor = scaleFloor(resolution, m)
  return mad > mean ? (mad > floor ? mad : floor) : (mean > floor ? mean : floor)
}

/**
 * One sensor's baseline: a ring of the last `windowSize` accepted values (arrival order) and the
 * same values sorted, kept sorted by binary search and one shift per insertion and eviction.
 */
class Window {
  readonly ring: Float64Array
  readonly sorted: Float64Array
  /** Next write position of the ring; the `count` values are at head-count .. head-1 (mod capacity). */
  head = 0
  count = 0
  /** Sum of the values (kept as they come and go, recomputed every `capacity` additions). */
  total = 0
  sinceSum = 0
  pending: Float64Array | null = null
  pendingCount = 0

  constructor (capacity: number) {
    this.ring = new Float64Array(capacity)
    this.sorted = new Float64Array(capacity)
  }

  add (v: number): void {
    const cap = this.ring.length
    const sorted = this.sorted
    let n = this.count
    if (n === cap) {
      const old = this.ring[this.head] as number
      const at = lowerBound(sorted, n, old)
      sorted.copyWithin(at, at + 1, n)
      n--
      this.total -= old
    }
    const at = lowerBound(sorted, n, v)
    sorted.copyWithin(at + 1, at, n)
    sorted[at] = v
    this.count = n + 1
    this.total += v
    if (++this.sinceSum >= cap) {
      this.sinceSum = 0
      let t = 0
      for (let i = 0; i <= n; i++) t += sorted[i] as number
      this.total = t
    }
    this.ring[this.head] = v
    if (++this.head === cap) this.head = 0
  }

  median (): number {
    const n = this.count
    const s = this.sorted
    const h = n >> 1
    return (n & 1) === 1 ? s[h] as number : ((s[h - 1] as number) + (s[h] as number)) / 2
  }

  /**
   * Median absolute deviation from `m`: the distances below m (m − s[r−1−i], growing with i) and
   * above it (s[r+j] − m, growing with j) are two sorted sequences; the middle one(s) of both
   * together are found by binary search, in O(log n).
   */
  mad (m: number): number {
    const n = this.count
    const r = lowerBound(this.sorted, n, m)
    const k = (n - 1) >> 1
    const a = this.#kthDistance(n, r, m, k)
    return (n & 1) === 1 ? a : (a + this.#kthDistance(n, r, m, k + 1)) / 2
  }

  /** The k-th smallest (from 0) of the distances to m of the values below index r and from it on. */
  #kthDistance (n: number, r: number, m: number, k: number): number {
    const s = this.sorted
    const below = r
    const above = n - r
    // i distances from below and k + 1 − i from above: the largest i with below[i−1] <= above[k−i] ...
    let lo = Math.max(0, k + 1 - above)
    let hi = Math.min(k + 1, below)
    while (lo < hi) {
      const i = (lo + hi + 1) >> 1
      // Taking i from below is too many when its i-th (m − s[r−i]) exceeds the (k+1−i+1)-th from above.
      const j = k + 1 - i
      if (j < above && m - (s[r - i] as number) > (s[r + j] as number) - m) hi = i - 1
      else lo = i
    }
    const i = lo
    const j = k + 1 - i
    const fromBelow = i > 0 ? m - (s[r - i] as number) : -Infinity
    const fromAbove = j > 0 ? (s[r + j - 1] as number) - m : -Infinity
    return fromBelow > fromAbove ? fromBelow : fromAbove
  }

  /**
   * Mean absolute deviation from the median `m`: with h = floor(n/2) values below it in the sorted
   * window, Σ|x − m| = total − 2·(sum of the lowest h) + m·(2h − n), one pass over half the window.
   */
  meanAbs (m: number): number {
    const n = this.count
    const s = this.sorted
    const h = n >> 1
    let low = 0
    for (let i = 0; i < h; i++) low += s[i] as number
    const sum = this.total - 2 * low + m * (2 * h - n)
    return sum > 0 ? sum / n : 0
  }

  values (): number[] {
    const cap = this.ring.length
    const out = new Array<number>(this.count)
    let i = (this.head - this.count + cap) % cap
    for (let k = 0; k < this.count; k++) {
      out[k] = this.ring[i] as number
      if (++i === cap) i = 0
    }
    return out
  }
}

/** First index in s[0..n) whose value is >= v. */
function lowerBound (s: Float64Array, n: number, v: number): number {
  let lo = 0
  let hi = n
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((s[mid] as number) < v) lo = mid + 1
    else hi = mid
  }
  return lo
}

function intOption (name: string, v: number | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < min) throw new AnomalyConfigError(name, `must be an integer >= ${min}, got ${String(v)}`)
  return v
}

/**
 * Per-sensor robust rolling z-score: z = (value − median) / scale over the last `windowSize`
 * accepted values, where scale = 1.4826 × MAD (the standard deviation for normal data, but a few
 * outliers in the window do not inflate it; see `robustScale` for lumpy data), never below one
 * resolution step of the sensor (`scaleFloor`): a constant series has z = 0, a change after it a
 * finite z, never a division by zero. Pure and deterministic; memory per sensor is two arrays of `windowSize` doubles.
 *
 * Semantics of one reading (`measure`, then `commit`; `update` does both, `score` too with the verdict):
 * - the baseline holds fewer than `minSamples` values: z is null, the value is accepted;
 * - otherwise z against the baseline before the value;
 * - |z| > threshold: anomaly; |z| > rejectThreshold: the value is also held back from the
 *   baseline. When a run of more than `maxConsecutiveRejections` held-back values arrives, the run
 *   and the current value are accepted (level shift), so the baseline recovers. The verdict of the
 *   value itself is unchanged;
 * - a value another detector flagged (stuck, drift) can be kept out of the baseline altogether
 *   (`commit` with `exclude`): it neither enters it nor counts towards a level shift;
 * - a non-finite value is ignored (z null, no state change).
 */
export class ZScoreDetector {
  readonly windowSize: number
  readonly minSamples: number
  readonly threshold: number
  readonly rejectThreshold: number
  readonly maxConsecutiveRejections: number
  readonly #sensors = new Map<string, Window>()
  /** Median and scale (floored) of the baseline the last `measure` used (NaN while warming up). */
  lastCenter = NaN
  lastScale = NaN

  constructor (options: ZScoreOptions = {}) {
    this.windowSize = intOption('windowSize', options.windowSize, 100, 2)
    this.minSamples = intOption('minSamples', options.minSamples, 30, 2)
    if (this.minSamples > this.windowSize) {
      throw new AnomalyConfigError('minSamples', `must be <= windowSize (${this.windowSize}), got ${this.minSamples}`)
    }
    const threshold = options.threshold ?? 3
    if (!Number.isFinite(threshold) || !(threshold > 0)) {
      throw new AnomalyConfigError('threshold', `must be a finite number > 0, got ${String(threshold)}`)
    }
    this.threshold = threshold
    const reject = options.rejectThreshold ?? Math.max(6, threshold)
    if (!Number.isFinite(reject) || !(reject >= threshold)) {
      throw new AnomalyConfigError('rejectThreshold', `must be a finite number >= threshold (${threshold}), got ${String(reject)}`)
    }
    this.rejectThreshold = reject
    this.maxConsecutiveRejections = intOption('maxConsecutiveRejections', options.maxConsecutiveRejections, 10, 0)
  }

  /** Number of sensors tracked. */
  get size (): number {
    return this.#sensors.size
  }

  /**
   * z of `value` against the sensor's baseline (null while it warms up); changes no state.
   * `resolution`: see `scaleFloor`; `minScale`: a further floor on the scale (the uncertainty of
   * what was subtracted from the value, e.g. a daily profile).
   */
  measure (sensorId: string, value: number, resolution = Infinity, minScale = 0): number | null {
    const b = this.#sensors.get(sensorId)
    if (b === undefined || b.count < this.minSamples || !Number.isFinite(value)) {
      this.lastCenter = this.lastScale = NaN
      return null
    }
    const m = b.median()
    const robust = robustScale(b, m, resolution)
    const scale = robust > minScale ? robust : minScale
    this.lastCenter = m
    this.lastScale = scale
    return (value - m) / scale
  }

  /** Applies a scored value to the baseline (see the class comment); `exclude` keeps it out without counting it. */
  commit (sensorId: string, value: number, z: number | null, exclude = false): void {
    if (!Number.isFinite(value)) return
    let b = this.#sensors.get(sensorId)
    if (b === undefined) {
      b = new Window(this.windowSize)
      this.#sensors.set(sensorId, b)
    }
    if (exclude) return
    if (z !== null && (z > this.rejectThreshold || z < -this.rejectThreshold)) this.#reject(b, value)
    else {
      b.pendingCount = 0
      b.add(value)
    }
  }

  /** `measure` then `commit`: returns z (null while warming up). */
  update (sensorId: string, value: number, resolution = Infinity): number | null {
    const z = this.measure(sensorId, value, resolution)
    this.commit(sensorId, value, z)
    return z
  }

  /** Whether a z is an anomaly for this detector (|z| > threshold). */
  isAnomaly (z: number | null): boolean {
    return z !== null && (z > this.threshold || z < -this.threshold)
  }

  /** `update` with the verdict. */
  score (sensorId: string, value: number, resolution = Infinity): ZScoreResult {
    const z = this.update(sensorId, value, resolution)
    return { z, anomaly: this.isAnomaly(z) }
  }

  /** Baseline statistics of a sensor, or null if it is not tracked. */
  stats (sensorId: string): BaselineStats | null {
    const b = this.#sensors.get(sensorId)
    if (b === undefined) return null
    const center = b.count === 0 ? NaN : b.median()
    const empty = b.count === 0
    return { count: b.count, center, mad: empty ? NaN : MAD_TO_SIGMA * b.mad(center), scale: empty ? NaN : robustScale(b, center, Infinity), pending: b.pendingCount }
  }

  /** The accepted values of a sensor's baseline, oldest first (empty if not tracked). */
  values (sensorId: string): number[] {
    return this.#sensors.get(sensorId)?.values() ?? []
  }

  has (sensorId: string): boolean {
    return this.#sensors.has(sensorId)
  }

  /** Drops a sensor's state (memory bound: call it for sensors that went away). */
  forget (sensorId: string): boolean {
    return this.#sensors.delete(sensorId)
  }

  clear (): void {
    this.#sensors.clear()
  }

  /** The sensor's baseline as a standalone snapshot (`snapshot.ts`), or null when it has none. */
  snapshot (sensorId: string): Uint8Array | null {
    return snapshotOf('zscore', this, sensorId)
  }

  /** Replaces the sensor's baseline with a snapshot's; damaged bytes throw `AnomalyStateError` and leave it with none. */
  restore (sensorId: string, bytes: Uint8Array): void {
    restoreFrom('zscore', this, sensorId, bytes)
  }

  /**
   * Appends the sensor's baseline: the ring's values in place (Float64: 8 bytes a value), its
   * position, the running sum and the held-back run. The sorted copy is not written: it is the
   * ring's values sorted, but for the signs of zeros (a -0 may have replaced a +0 there, or the
   * other way round: `Window.add` evicts the first equal value), which are written as bits.
   * False, writing nothing, when the sensor has no baseline.
   */
  writeSnapshot (sensorId: string, out: SnapshotWriter): boolean {
    const b = this.#sensors.get(sensorId)
    if (b === undefined) return false
    const n = b.count
    out.uint(b.ring.length)
    out.uint(n)
    out.uint(b.head)
    out.f64(b.total)
    out.uint(b.sinceSum)
    out.f64s(b.ring, 0, n)
    const sorted = b.sorted
    const firstZero = lowerBound(sorted, n, 0)
    let zeros = 0
    while (firstZero + zeros < n && sorted[firstZero + zeros] === 0) zeros++
    out.uint(zeros)
    out.bits(zeros, i => Object.is(sorted[firstZero + i], -0))
    out.uint(b.pendingCount)
    if (b.pendingCount > 0) out.f64s(b.pending as Float64Array, 0, b.pendingCount)
    return true
  }

  /** Decodes what `writeSnapshot` wrote (for a detector of the same `windowSize`); the installer replaces a sensor's baseline with it. */
  readSnapshot (input: SnapshotReader): StateInstaller {
    const capacity = input.uint('windowSize')
    if (capacity !== this.windowSize) input.fail('windowSize', `a window of ${capacity} values, this detector keeps ${this.windowSize}`)
    const b = new Window(capacity)
    const n = b.count = input.uint('count', capacity)
    b.head = input.uint('head', capacity - 1)
    if (n < capacity && b.head !== n) input.fail('head', `a window of ${n} values is written up to ${n}, not ${b.head}`)
    b.total = input.f64('total')
    b.sinceSum = input.uint('sinceSum', capacity - 1)
    input.f64s('values', b.ring, 0, n)
    for (let i = 0; i < n; i++) if (!Number.isFinite(b.ring[i])) input.fail('values', `value ${i} is not finite`)
    const sorted = b.sorted
    sorted.set(b.ring.subarray(0, n))
    sorted.subarray(0, n).sort()
    const firstZero = lowerBound(sorted, n, 0)
    let zeros = 0
    while (firstZero + zeros < n && sorted[firstZero + zeros] === 0) zeros++
    const written = input.uint('zeros', n)
    if (written !== zeros) input.fail('zeros', `${written} zeros, the values hold ${zeros}`)
    input.bits('zeros', zeros, (i, negative) => { sorted[firstZero + i] = negative ? -0 : 0 })
    b.pendingCount = input.uint('pending', this.maxConsecutiveRejections)
    if (b.pendingCount > 0) {
      b.pending = new Float64Array(this.maxConsecutiveRejections)
      input.f64s('pending', b.pending, 0, b.pendingCount)
    }
    return (sensorId) => { this.#sensors.set(sensorId, b) }
  }

  /** Ids of tracked sensors, in insertion order. */
  sensorIds (): IterableIterator<string> {
    return this.#sensors.keys()
  }

  #reject (b: Window, value: number): void {
    const max = this.maxConsecutiveRejections
    if (b.pendingCount < max) {
      b.pending ??= new Float64Array(max)
      b.pending[b.pendingCount++] = value
      return
    }
    // More than `max` in a row: the level shifted. Accept the run, then this value.
    const pending = b.pending
    for (let i = 0; i < b.pendingCount; i++) b.add(pending![i]!)
    b.pendingCount = 0
    b.add(value)
  }
}
