import { AnomalyConfigError, AnomalyStateError } from './errors.ts'

export interface ZScoreOptions {
  /** Accepted values kept per sensor (the rolling baseline). Default 100. */
  windowSize?: number | undefined
  /** Baseline size below which no z is computed (warm-up). Default 30. */
  minSamples?: number | undefined
  /** |z| above this is an anomaly. Default 3. */
  threshold?: number | undefined
  /**
   * Anomalous values are kept out of the baseline, unless more than this many arrive in a row:
   * then the level has shifted, and the held-back run plus the current value are accepted.
   * 0 accepts every value. Default 10.
   */
  maxConsecutiveRejections?: number | undefined
}

export interface ZScoreResult {
  /** z of the value against the baseline before it; null during warm-up or for a flat baseline hit exactly. */
  z: number | null
  anomaly: boolean
}

/** Statistics of a sensor's current baseline (population std). */
export interface BaselineStats {
  count: number
  mean: number
  std: number
  /** Consecutive anomalous values currently held back. */
  pending: number
}

/**
 * Plain-JSON state of one sensor. `values` and `rejected` are oldest first. `shift`, `sum`,
 * `sumSq` and `sinceRecompute` are the running sums (of `value - shift`) and their schedule; they
 * are restored as they are, so a restored detector scores bit-for-bit like the original.
 */
export interface ZScoreSensorState {
  sensorId: string
  values: number[]
  rejected: number[]
  shift: number
  sum: number
  sumSq: number
  sinceRecompute: number
}

export interface ZScoreSnapshot {
  version: 1
  windowSize: number
  sensors: ZScoreSensorState[]
}

/**
 * One sensor's baseline: a ring of the last `windowSize` accepted values with running sums of
 * `value - shift` and `(value - shift)^2`. `shift` is one of the values (the newest at the last
 * recomputation), so the sums stay small next to the data (no catastrophic cancellation around
 * 1013 hPa) and a constant run gives exact zeros. Every `windowSize` accepted values the sums are
 * recomputed from the ring (amortized O(1)), which re-centres `shift` after a level change and
 * bounds rounding drift. The run of identical newest values is tracked so a stuck sensor has a
 * standard deviation of exactly 0.
 */
class Baseline {
  readonly ring: Float64Array
  /** Next write position. The `count` values are at head-count .. head-1 (mod capacity). */
  head = 0
  count = 0
  shift = 0
  sum = 0
  sumSq = 0
  sinceRecompute = 0
  runValue = 0
  runLength = 0
  pending: Float64Array | null = null
  pendingCount = 0

  constructor (capacity: number) {
    this.ring = new Float64Array(capacity)
  }

  add (v: number): void {
    const ring = this.ring
    const cap = ring.length
    if (this.count === 0) {
      this.shift = v
      this.sum = 0
      this.sumSq = 0
    }
    const d = v - this.shift
    if (this.count === cap) {
      const old = ring[this.head]! - this.shift
      this.sum += d - old
      this.sumSq += d * d - old * old
    } else {
      this.count++
      this.sum += d
      this.sumSq += d * d
    }
    ring[this.head] = v
    if (++this.head === cap) this.head = 0
    if (this.runLength > 0 && v === this.runValue) {
      if (this.runLength < cap) this.runLength++
    } else {
      this.runValue = v
      this.runLength = 1
    }
    if (++this.sinceRecompute >= cap) this.recompute()
  }

  /** Exact (two-pass style) sums around the newest value. */
  recompute (): void {
    const ring = this.ring
    const cap = ring.length
    this.sinceRecompute = 0
    if (this.count === 0) {
      this.sum = 0
      this.sumSq = 0
      return
    }
    const shift = ring[(this.head - 1 + cap) % cap]!
    let sum = 0
    let sumSq = 0
    let i = (this.head - this.count + cap) % cap
    for (let k = 0; k < this.count; k++) {
      const d = ring[i]! - shift
      sum += d
      sumSq += d * d
      if (++i === cap) i = 0
    }
    this.shift = shift
    this.sum = sum
    this.sumSq = sumSq
  }

  mean (): number {
    if (this.runLength >= this.count) return this.runValue
    return this.shift + this.sum / this.count
  }

  variance (): number {
    if (this.runLength >= this.count) return 0
    const n = this.count
    const v = (this.sumSq - this.sum * (this.sum / n)) / n
    return v > 0 ? v : 0
  }

  values (): number[] {
    const cap = this.ring.length
    const out = new Array<number>(this.count)
    let i = (this.head - this.count + cap) % cap
    for (let k = 0; k < this.count; k++) {
      out[k] = this.ring[i]!
      if (++i === cap) i = 0
    }
    return out
  }
}

function intOption (name: string, v: number | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < min) throw new AnomalyConfigError(name, `must be an integer >= ${min}, got ${String(v)}`)
  return v
}

/**
 * Per-sensor rolling z-score. Pure and deterministic: state changes only through `score`/`update`,
 * `restore`, `forget` and `clear`.
 *
 * Semantics of one `update(sensorId, value)`:
 * - the baseline holds fewer than `minSamples` values: z is null, the value is accepted;
 * - otherwise z = (value - mean) / std of the baseline before the value (population std);
 * - flat baseline (std exactly 0, e.g. a stuck sensor): z is null when the value equals the
 *   constant, else +Infinity / -Infinity (an anomaly: any change from a perfectly flat signal is
 *   infinitely many deviations away). Never NaN. Note for serializers: JSON turns ±Infinity into null;
 * - |z| > threshold: anomaly, and the value is held back from the baseline. When a run of more
 *   than `maxConsecutiveRejections` anomalies arrives, the run and the current value are accepted
 *   (level shift), so the baseline recovers. The verdict of the value itself is unchanged;
 * - a non-finite value is ignored (z null, no state change).
 */
export class ZScoreDetector {
  readonly windowSize: number
  readonly minSamples: number
  readonly threshold: number
  readonly maxConsecutiveRejections: number
  readonly #sensors = new Map<string, Baseline>()
  /** Mean and population std of the baseline the last `update` scored against (NaN while warming up). */
  lastMean = NaN
  lastStd = NaN

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
    this.maxConsecutiveRejections = intOption('maxConsecutiveRejections', options.maxConsecutiveRejections, 10, 0)
  }

  /** Number of sensors tracked. */
  get size (): number {
    return this.#sensors.size
  }

  /** Scores `value` against the sensor's baseline and updates the baseline. */
  score (sensorId: string, value: number): ZScoreResult {
    const z = this.update(sensorId, value)
    return { z, anomaly: this.isAnomaly(z) }
  }

  /** Like `score` without allocating a result: returns z (null while warming up). */
  update (sensorId: string, value: number): number | null {
    if (!Number.isFinite(value)) {
      this.lastMean = this.lastStd = NaN
      return null
    }
    let b = this.#sensors.get(sensorId)
    if (b === undefined) {
      b = new Baseline(this.windowSize)
      this.#sensors.set(sensorId, b)
    }
    if (b.count < this.minSamples) {
      b.pendingCount = 0
      b.add(value)
      this.lastMean = this.lastStd = NaN
      return null
    }
    const mean = b.mean()
    const variance = b.variance()
    this.lastMean = mean
    this.lastStd = Math.sqrt(variance)
    let z: number | null
    if (variance > 0) z = (value - mean) / Math.sqrt(variance)
    else if (value === mean) z = null
    else z = value > mean ? Infinity : -Infinity
    if (z !== null && (z > this.threshold || z < -this.threshold)) this.#reject(b, value)
    else {
      b.pendingCount = 0
      b.add(value)
    }
    return z
  }

  /** Whether a z returned by `update` is an anomaly. */
  isAnomaly (z: number | null): boolean {
    return z !== null && (z > this.threshold || z < -this.threshold)
  }

  /** Baseline statistics of a sensor, or null if it is not tracked. */
  stats (sensorId: string): BaselineStats | null {
    const b = this.#sensors.get(sensorId)
    if (b === undefined) return null
    return {
      count: b.count,
      mean: b.count === 0 ? NaN : b.mean(),
      std: b.count === 0 ? NaN : Math.sqrt(b.variance()),
      pending: b.pendingCount
    }
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

  /** Ids of tracked sensors, in insertion order. */
  sensorIds (): IterableIterator<string> {
    return this.#sensors.keys()
  }

  /** One sensor's plain-JSON state, or null if it is not tracked. */
  snapshotSensor (sensorId: string): ZScoreSensorState | null {
    const b = this.#sensors.get(sensorId)
    if (b === undefined) return null
    return {
      sensorId,
      values: b.values(),
      rejected: b.pending === null ? [] : Array.from(b.pending.subarray(0, b.pendingCount)),
      shift: b.shift,
      sum: b.sum,
      sumSq: b.sumSq,
      sinceRecompute: b.sinceRecompute
    }
  }

  /** Plain-JSON state of every sensor (`JSON.stringify`-safe: all numbers are finite). */
  snapshot (): ZScoreSnapshot {
    const sensors: ZScoreSensorState[] = []
    for (const id of this.#sensors.keys()) sensors.push(this.snapshotSensor(id)!)
    return { version: 1, windowSize: this.windowSize, sensors }
  }

  /**
   * Loads sensors from a snapshot, replacing the state of the sensors it lists and keeping the
   * others (so a worker can restore the sensors of newly assigned partitions). The whole
   * snapshot is validated before anything changes; a malformed one throws `AnomalyStateError`.
   * A snapshot taken with another window size keeps the newest values that fit and recomputes
   * the sums; likewise if the stored sums disagree with the values.
   */
  restore (snapshot: ZScoreSnapshot): void {
    if (typeof snapshot !== 'object' || snapshot === null) throw new AnomalyStateError('', 'snapshot must be an object')
    if (snapshot.version !== 1) throw new AnomalyStateError('version', `unsupported snapshot version ${String(snapshot.version)}`)
    if (!Array.isArray(snapshot.sensors)) throw new AnomalyStateError('sensors', 'must be an array')
    const built: Array<[string, Baseline]> = []
    snapshot.sensors.forEach((s, i) => built.push([s.sensorId, this.#build(s, `sensors[${i}]`)]))
    for (const [id, b] of built) this.#sensors.set(id, b)
  }

  /** Restores one sensor (see `restore`). */
  restoreSensor (state: ZScoreSensorState): void {
    this.#sensors.set(state.sensorId, this.#build(state, ''))
  }

  #reject (b: Baseline, value: number): void {
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

  #build (s: ZScoreSensorState, path: string): Baseline {
    const at = (field: string): string => (path === '' ? field : `${path}.${field}`)
    if (typeof s !== 'object' || s === null) throw new AnomalyStateError(path, 'must be an object')
    if (typeof s.sensorId !== 'string') throw new AnomalyStateError(at('sensorId'), 'must be a string')
    const values = finiteArray(s.values, at('values'))
    const rejected = finiteArray(s.rejected, at('rejected'))
    for (const f of ['shift', 'sum', 'sumSq', 'sinceRecompute'] as const) {
      if (typeof s[f] !== 'number' || !Number.isFinite(s[f])) throw new AnomalyStateError(at(f), 'must be a finite number')
    }
    const cap = this.windowSize
    const b = new Baseline(cap)
    const kept = values.length > cap ? values.slice(values.length - cap) : values
    for (const v of kept) {
      b.ring[b.head] = v
      if (++b.head === cap) b.head = 0
      if (b.runLength > 0 && v === b.runValue) b.runLength++
      else {
        b.runValue = v
        b.runLength = 1
      }
    }
    b.count = kept.length
    b.recompute()
    const exactSum = b.sum
    const exactSumSq = b.sumSq
    const exactShift = b.shift
    // Use the stored running sums when they describe these values (bit-identical continuation).
    if (kept === values && Number.isInteger(s.sinceRecompute) && s.sinceRecompute >= 0 && s.sinceRecompute < cap &&
      consistent(kept, s.shift, s.sum, s.sumSq)) {
      b.shift = s.shift
      b.sum = s.sum
      b.sumSq = s.sumSq
      b.sinceRecompute = s.sinceRecompute
    } else {
      b.shift = exactShift
      b.sum = exactSum
      b.sumSq = exactSumSq
    }
    const max = this.maxConsecutiveRejections
    const held = rejected.length > max ? rejected.slice(rejected.length - max) : rejected
    if (held.length > 0) {
      b.pending = new Float64Array(max)
      b.pending.set(held)
      b.pendingCount = held.length
    }
    return b
  }
}

function finiteArray (x: unknown, path: string): number[] {
  if (!Array.isArray(x)) throw new AnomalyStateError(path, 'must be an array of finite numbers')
  for (let i = 0; i < x.length; i++) {
    const v: unknown = x[i]
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new AnomalyStateError(`${path}[${i}]`, 'must be a finite number')
  }
  return x as number[]
}

/** Whether running sums around `shift` match the values, within rounding drift. */
function consistent (values: number[], shift: number, sum: number, sumSq: number): boolean {
  if (values.length === 0) return true
  let s = 0
  let q = 0
  let a = 0
  for (const v of values) {
    const d = v - shift
    s += d
    q += d * d
    a += Math.abs(d)
  }
  const tol = 1e-9
  return Math.abs(s - sum) <= tol * (a + Number.MIN_VALUE) && Math.abs(q - sumSq) <= tol * (q + Number.MIN_VALUE)
}
