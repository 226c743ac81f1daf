// Device-level (multivariate) anomaly detection: one Isolation Forest over all the measurements a
// device reports at once, learnt online from the device's own rows. Pure: no I/O, no clock, seeded.
import { createRandom } from '../domain/index.ts'
import { AnomalyConfigError } from './errors.ts'
import { IsolationForest, linearPercentile } from './isolation-forest/index.ts'
import { RetrainPolicy } from './ml.ts'
import { ratioScore, THRESHOLD } from './score.ts'

/** Options of the device-level detector. The defaults are discussed in docs/ARCHITECTURE.md ("Detection"). */
export interface DeviceForestOptions {
  /** Rows (not in an alarm) a device needs before its first model (two halves of 200 for the out-of-fold threshold). */
  firstRows: number
  /** The newest rows a device keeps (its training window, alarmed ones included): memory per device. */
  trainingSize: number
  /** At least this many new rows (not in an alarm) between two models (`RetrainPolicy.minSamples`). */
  retrainRows: number
  /** ... and at least this share of the last training's rows (`RetrainPolicy.retrainFraction`). */
  retrainFraction: number
  /** ... and at least this much event time (`RetrainPolicy.retrainMs`). */
  retrainMs: number
  /** Trees of a model, split between its two halves. */
  nEstimators: number
  maxSamples: number
  /** Share of rows (out of fold, on the training window) a row must be beyond to pass the threshold. */
  falseAlarmRate: number
  /** The device score is the `alarmRows`-th highest row score of the last `alarmWindow` rows ... */
  alarmWindow: number
  /** ... so a device alarms when at least this many of its last `alarmWindow` rows passed the threshold. */
  alarmRows: number
  /** Seed of model n of a device: derived from this, the device and n. */
  seed: number
}

export const defaultDeviceForestOptions: Readonly<DeviceForestOptions> = Object.freeze({
  firstRows: 400,
  trainingSize: 4000,
  retrainRows: 100,
  retrainFraction: 0.1,
  retrainMs: 60_000,
  nEstimators: 200,
  maxSamples: 256,
  falseAlarmRate: 0.01,
  alarmWindow: 9,
  alarmRows: 5,
  seed: 42
})

export function checkDeviceForestOptions (o: DeviceForestOptions): DeviceForestOptions {
  const ints: Array<[keyof DeviceForestOptions, number]> = [
    ['firstRows', 8], ['trainingSize', 8], ['retrainRows', 1], ['nEstimators', 2], ['maxSamples', 2], ['alarmWindow', 1], ['alarmRows', 1]
  ]
  for (const [name, min] of ints) {
    const v = o[name]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new AnomalyConfigError(`device.${name}`, `must be an integer >= ${min}, got ${String(v)}`)
  }
  if (o.firstRows > o.trainingSize) throw new AnomalyConfigError('device.firstRows', `must be <= trainingSize (${o.trainingSize}), got ${o.firstRows}`)
  if (o.alarmRows > o.alarmWindow) throw new AnomalyConfigError('device.alarmRows', `must be <= alarmWindow (${o.alarmWindow}), got ${o.alarmRows}`)
  if (!(o.retrainFraction >= 0 && o.retrainFraction <= 1)) throw new AnomalyConfigError('device.retrainFraction', `must be in [0, 1], got ${o.retrainFraction}`)
  if (!(o.retrainMs >= 0) || !Number.isFinite(o.retrainMs)) throw new AnomalyConfigError('device.retrainMs', `must be a finite number >= 0, got ${o.retrainMs}`)
  if (!(o.falseAlarmRate > 0 && o.falseAlarmRate < 0.5)) throw new AnomalyConfigError('device.falseAlarmRate', `must be in (0, 0.5), got ${o.falseAlarmRate}`)
  if (!Number.isFinite(o.seed)) throw new AnomalyConfigError('device.seed', `must be finite, got ${o.seed}`)
  return o
}

/**
 * Eigen-decomposition of a symmetric n×n matrix (row-major) by cyclic Jacobi rotations: exact to
 * rounding for the small matrices here (one row and column per measurement). Returns the
 * eigenvalues and the eigenvectors as the columns of `vectors` (row-major: vectors[i * n + k] is
 * component i of eigenvector k), in no particular order.
 */
export function symmetricEigen (matrix: ArrayLike<number>, n: number): { values: Float64Array, vectors: Float64Array } {
  const a = Float64Array.from(matrix)
  if (a.length !== n * n) throw new RangeError(`symmetricEigen: ${a.length} values for a ${n}×${n} matrix`)
  const v = new Float64Array(n * n)
  for (let i = 0; i < n; i++) v[i * n + i] = 1
  let scale = 0
  for (let i = 0; i < a.length; i++) scale += (a[i] as number) ** 2
  for (let sweep = 0; sweep < 64; sweep++) {
    let off = 0
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += (a[p * n + q] as number) ** 2
    if (off <= 1e-30 * scale || off === 0) break
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q] as number
        if (apq === 0) continue
        const theta = ((a[q * n + q] as number) - (a[p * n + p] as number)) / (2 * apq)
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1))
        const c = 1 / Math.sqrt(t * t + 1)
        const s = t * c
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p] as number
          const akq = a[k * n + q] as number
          a[k * n + p] = c * akp - s * akq
          a[k * n + q] = s * akp + c * akq
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k] as number
          const aqk = a[q * n + k] as number
          a[p * n + k] = c * apk - s * aqk
          a[q * n + k] = s * apk + c * aqk
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p] as number
          const vkq = v[k * n + q] as number
          v[k * n + p] = c * vkp - s * vkq
          v[k * n + q] = s * vkp + c * vkq
        }
      }
    }
  }
  const values = new Float64Array(n)
  for (let i = 0; i < n; i++) values[i] = a[i * n + i] as number
  return { values, vectors: v }
}

/** Robust z beyond which a training value is clipped when the covariance is estimated (a few outliers must not set the axes). */
const COVARIANCE_CLIP = 5
/** 1.4826 × MAD estimates the standard deviation of normal data. */
const MAD_TO_SD = 1.4826

/** One trained device model: how to standardise and rotate a row, the two half forests, the threshold. */
export interface DeviceModel {
  /** The device. */
  key: string
  /** Counts the device's models from 1. */
  sequence: number
  /** `<device>#<sequence>`. */
  version: string
  /** Event time of the training (the row that triggered it). */
  trainedAt: number
  /** Training rows. */
  samples: number
  /** Per measurement: median and robust scale (1.4826 × MAD, floored) over the training rows. */
  center: Float64Array
  scale: Float64Array
  /** Eigenvectors of the robust correlation of the standardised measurements (row-major, one per column). */
  rotation: Float64Array
  /** Inverse of that correlation (eigenvalues floored): what the other measurements imply for one. */
  precision: Float64Array
  /** Fitted on the older and the newer half of the training rows. */
  older: IsolationForest
  newer: IsolationForest
  /** The anomaly score (2^(−E[h]/c), both halves' trees) at which a row passes: `falseAlarmRate` out of fold. */
  threshold: number
}

/** What a measurement did to a row's score. */
export interface DeviceContribution {
  /** Index among the device's measurements. */
  index: number
  measurement: string
  /** Its robust z against the training rows. */
  z: number
  /** The z the other measurements imply for it (their correlation in the training rows). */
  expected: number
  /** Its share of the score's excess: how much of it goes away when it is put where the others imply. */
  share: number
}

/** What the device-level detector says about one row. */
export interface DeviceScore {
  /** This row's own calibrated score (0.5 = the threshold), null while the device has no model. */
  rowScore: number | null
  /**
   * The device's calibrated score after this row: the `alarmRows`-th highest row score of its last
   * `alarmWindow` rows (by default the median of the last nine: at least five of them passed the
   * threshold when it is >= 0.5). Null while the device has no model.
   */
  score: number | null
  /** score >= 0.5. */
  anomaly: boolean
  /** The model that scored the row. */
  model: DeviceModel | null
  /** Where the device alarms: the measurements that account for at least 10 % of the row's excess score, largest first. */
  contributions: DeviceContribution[]
}

function hash32 (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** Rows of each half scored out of fold for the threshold (a 99th percentile needs a few hundred; more only costs). */
const CALIBRATION_ROWS = 1024

/** At most CALIBRATION_ROWS rows of a row-major block of `m` columns, evenly spaced (all of them when fewer). */
function spaced (rows: Float32Array, m: number): Float32Array {
  const n = rows.length / m
  if (n <= CALIBRATION_ROWS) return rows
  const out = new Float32Array(CALIBRATION_ROWS * m)
  for (let k = 0; k < CALIBRATION_ROWS; k++) {
    const r = Math.floor(k * n / CALIBRATION_ROWS)
    out.set(rows.subarray(r * m, r * m + m), k * m)
  }
  return out
}

/** Share of the excess a measurement needs to be named a contributor. */
const MIN_SHARE = 0.1
const MAX_CONTRIBUTORS = 3

/**
 * The online multivariate model of one device with a fixed list of measurements (`m >= 2`). Each
 * row (one value per measurement, aligned by event time) is first scored by the current model,
 * then joins the training window.
 *
 * A model: each measurement standardised robustly (median, 1.4826 × MAD over the training rows),
 * the standardised rows rotated onto the eigenvectors of their (clipped) correlation, so that a
 * measurement leaving its usual relation to the others is an outlier on some axis, not only one
 * leaving its usual range; then two Isolation Forests, one on the older and one on the newer half
 * of the training rows. A row's anomaly score is 2^(−E[h]/c) over both forests' trees (the
 * geometric mean of their scores). The threshold is the (1 − falseAlarmRate) quantile of the
 * training rows' out-of-fold scores (each half scored by the other half's forest), so it holds for
 * rows the model has not seen, drift across half a window included; in-sample scores would set it
 * too low.
 *
 * Rows the device alarmed on stay out of training (a fault must not become the normal), unless
 * they outnumber the other rows of the window: then the device has changed for good and the next
 * model learns the window as it is. Training follows `RetrainPolicy` (the per-sensor forest's
 * rule): the first model after `firstRows` rows, then one when `retrainMs` of event time and
 * max(retrainRows, retrainFraction × the last training's rows) new rows have come.
 */
export class DeviceForest {
  readonly key: string
  readonly measurements: readonly string[]
  readonly options: Readonly<DeviceForestOptions>
  readonly policy: RetrainPolicy
  model: DeviceModel | null = null
  /** Models trained since construction. */
  modelsTrained = 0
  readonly #m: number
  readonly #values: Float64Array
  readonly #alarmed: Uint8Array
  #head = 0
  #count = 0
  #alarmedCount = 0
  #fresh = 0
  #lastTrainedAt = -Infinity
  #lastSamples = 0
  #sequence = 0
  readonly #recent: Float64Array
  #recentHead = 0
  readonly #sorted: Float64Array
  readonly #z: Float64Array
  readonly #row: Float32Array

  constructor (key: string, measurements: readonly string[], options: Partial<DeviceForestOptions> = {}) {
    if (measurements.length < 2) throw new AnomalyConfigError('device.measurements', `a device-level model needs at least 2 measurements, got ${measurements.length}`)
    this.key = key
    this.measurements = Object.freeze([...measurements])
    this.options = Object.freeze(checkDeviceForestOptions({ ...defaultDeviceForestOptions, ...options }))
    const o = this.options
    this.policy = new RetrainPolicy({ minSamples: o.retrainRows, retrainMs: o.retrainMs, retrainFraction: o.retrainFraction, trainingSize: o.trainingSize })
    const m = this.#m = measurements.length
    this.#values = new Float64Array(o.trainingSize * m)
    this.#alarmed = new Uint8Array(o.trainingSize)
    this.#recent = new Float64Array(o.alarmWindow)
    this.#sorted = new Float64Array(o.alarmWindow)
    this.#z = new Float64Array(m)
    this.#row = new Float32Array(m)
  }

  /** Rows in the window (at most `trainingSize`), and those of them the device alarmed on. */
  get rows (): number { return this.#count }
  get alarmedRows (): number { return this.#alarmedCount }

  /**
   * Scores a row (`values[i]` is measurement i; all finite) at event time `ts` with the current
   * model, then learns from it (and trains a new model when one is due).
   */
  score (values: ArrayLike<number>, ts: number): DeviceScore {
    const m = this.#m
    if (values.length !== m) throw new RangeError(`device ${this.key}: ${values.length} values for ${m} measurements`)
    for (let i = 0; i < m; i++) {
      if (!Number.isFinite(values[i])) throw new RangeError(`device ${this.key}: ${this.measurements[i] as string} is not a finite number: ${String(values[i])}`)
    }
    const model = this.model
    let rowScore: number | null = null
    let score: number | null = null
    let contributions: DeviceContribution[] = []
    if (model !== null) {
      rowScore = this.#rowScore(model, values)
      this.#recent[this.#recentHead] = rowScore
      this.#recentHead = (this.#recentHead + 1) % this.#recent.length
      const sorted = this.#sorted
      sorted.set(this.#recent)
      sorted.sort()
      score = sorted[sorted.length - this.options.alarmRows] as number
      if (score >= THRESHOLD) contributions = this.#contributions(model, values, rowScore)
    }
    const anomaly = score !== null && score >= THRESHOLD
    this.#learn(values, ts, anomaly)
    return { rowScore, score, anomaly, model, contributions }
  }

  #rowScore (model: DeviceModel, values: ArrayLike<number>): number {
    const z = this.#z
    for (let i = 0; i < this.#m; i++) z[i] = ((values[i] as number) - (model.center[i] as number)) / (model.scale[i] as number)
    return this.#scoreZ(model, z)
  }

  /** Rotates standardised values and scores them: ratioScore of log(threshold) / log(score), 0.5 at the threshold. */
  #scoreZ (model: DeviceModel, z: Float64Array): number {
    const m = this.#m
    const row = this.#row
    const r = model.rotation
    for (let k = 0; k < m; k++) {
      let s = 0
      for (let i = 0; i < m; i++) s += (z[i] as number) * (r[i * m + k] as number)
      row[k] = s
    }
    // score_samples are -2^(-E[h]/c) per forest: their geometric mean is 2^(-E[h]/c) over both
    // forests' trees (exactly when the halves have the same size, so the same c).
    const a = Math.sqrt(model.older.scoreSample(row) * model.newer.scoreSample(row))
    return ratioScore(Math.log(model.threshold) / Math.log(a))
  }

  /**
   * Each measurement's share of the row's excess score: the row is scored again with that
   * measurement put where the others imply (its conditional mean given them in the training
   * correlation); what the score loses is its part.
   */
  #contributions (model: DeviceModel, values: ArrayLike<number>, rowScore: number): DeviceContribution[] {
    const m = this.#m
    const z = Float64Array.from({ length: m }, (_, i) => ((values[i] as number) - (model.center[i] as number)) / (model.scale[i] as number))
    const p = model.precision
    const drops: DeviceContribution[] = []
    let total = 0
    const work = new Float64Array(m)
    for (let j = 0; j < m; j++) {
      let s = 0
      for (let k = 0; k < m; k++) if (k !== j) s += (p[j * m + k] as number) * (z[k] as number)
      const expected = -s / (p[j * m + j] as number)
      work.set(z)
      work[j] = expected
      const drop = Math.max(0, rowScore - this.#scoreZ(model, work))
      total += drop
      drops.push({ index: j, measurement: this.measurements[j] as string, z: z[j] as number, expected, share: drop })
    }
    if (!(total > 0)) return []
    for (const d of drops) d.share /= total
    return drops.filter(d => d.share >= MIN_SHARE).sort((a, b) => b.share - a.share || a.index - b.index).slice(0, MAX_CONTRIBUTORS)
  }

  #learn (values: ArrayLike<number>, ts: number, alarmed: boolean): void {
    const o = this.options
    const size = o.trainingSize
    const m = this.#m
    if (this.#count === size && this.#alarmed[this.#head] === 1) this.#alarmedCount--
    for (let i = 0; i < m; i++) this.#values[this.#head * m + i] = values[i] as number
    this.#alarmed[this.#head] = alarmed ? 1 : 0
    if (alarmed) this.#alarmedCount++
    else this.#fresh++
    this.#head = (this.#head + 1) % size
    if (this.#count < size) this.#count++
    let force = false
    if (this.model !== null && 2 * this.#alarmedCount > this.#count) {
      // Most of the window alarmed: the device has changed for good; learn it as it is now.
      this.#alarmed.fill(0)
      this.#alarmedCount = 0
      this.#recent.fill(0) // the old model's scores do not carry over
      force = true
    }
    const normal = this.#count - this.#alarmedCount
    const due = this.model === null
      ? normal >= o.firstRows
      : force || this.policy.due({ count: normal, fresh: this.#fresh, lastTrainedAt: this.#lastTrainedAt, lastSamples: this.#lastSamples }, ts)
    if (due) this.#train(ts)
  }

  #train (ts: number): void {
    const o = this.options
    const m = this.#m
    const size = o.trainingSize
    const n = this.#count - this.#alarmedCount
    if (n < 8) return
    // The window's rows not in an alarm, oldest first.
    const x = new Float64Array(n * m)
    let r = 0
    for (let k = 0, slot = (this.#head - this.#count + size) % size; k < this.#count; k++, slot = (slot + 1) % size) {
      if (this.#alarmed[slot] === 1) continue
      x.set(this.#values.subarray(slot * m, slot * m + m), r * m)
      r++
    }
    const center = new Float64Array(m)
    const scale = new Float64Array(m)
    const col = new Float64Array(n)
    for (let i = 0; i < m; i++) {
      for (let k = 0; k < n; k++) col[k] = x[k * m + i] as number
      col.sort()
      const med = linearPercentile(col, 50)
      for (let k = 0; k < n; k++) col[k] = Math.abs((x[k * m + i] as number) - med)
      col.sort()
      let s = MAD_TO_SD * linearPercentile(col, 50)
      if (!(s > 0)) {
        // More than half the rows at one value (a quantised or idle measurement): the standard deviation instead.
        let mean = 0
        for (let k = 0; k < n; k++) mean += x[k * m + i] as number
        mean /= n
        let ss = 0
        for (let k = 0; k < n; k++) ss += ((x[k * m + i] as number) - mean) ** 2
        s = Math.sqrt(ss / n)
      }
      // A constant measurement: any change of it is far out (a step of 1e-6 of its level is 1σ).
      if (!(s > 0)) s = Math.max(Math.abs(med) * 1e-6, 1e-12)
      center[i] = med
      scale[i] = s
    }
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < m; i++) x[k * m + i] = ((x[k * m + i] as number) - (center[i] as number)) / (scale[i] as number)
    }
    const cov = new Float64Array(m * m)
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < m; i++) {
        const zi = Math.max(-COVARIANCE_CLIP, Math.min(COVARIANCE_CLIP, x[k * m + i] as number))
        for (let j = i; j < m; j++) {
          const zj = Math.max(-COVARIANCE_CLIP, Math.min(COVARIANCE_CLIP, x[k * m + j] as number))
          cov[i * m + j] = (cov[i * m + j] as number) + zi * zj
        }
      }
    }
    for (let i = 0; i < m; i++) {
      for (let j = i; j < m; j++) {
        const c = (cov[i * m + j] as number) / n
        cov[i * m + j] = c
        cov[j * m + i] = c
      }
    }
    const { values: eig, vectors: rotation } = symmetricEigen(cov, m)
    let top = 0
    for (const e of eig) if (e > top) top = e
    const floor = Math.max(top, 1) * 1e-6
    const precision = new Float64Array(m * m)
    for (let k = 0; k < m; k++) {
      const inv = 1 / Math.max(eig[k] as number, floor)
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < m; j++) precision[i * m + j] = (precision[i * m + j] as number) + (rotation[i * m + k] as number) * inv * (rotation[j * m + k] as number)
      }
    }
    const data = new Float32Array(n * m)
    for (let k = 0; k < n; k++) {
      for (let c = 0; c < m; c++) {
        let s = 0
        for (let i = 0; i < m; i++) s += (x[k * m + i] as number) * (rotation[i * m + c] as number)
        data[k * m + c] = s
      }
    }
    const sequence = this.#sequence + 1
    const random = createRandom((o.seed ^ hash32(this.key) ^ Math.imul(sequence, 0x9e3779b9)) >>> 0)
    const half = n >> 1
    const older = data.subarray(0, half * m)
    const newer = data.subarray(half * m)
    const trees = Math.max(1, o.nEstimators >> 1)
    const options = { nEstimators: trees, maxSamples: o.maxSamples, random }
    const olderForest = IsolationForest.fit(older, m, options)
    const newerForest = IsolationForest.fit(newer, m, options)
    // Out-of-fold scores: each half's rows (at most CALIBRATION_ROWS of them, evenly spaced) by the other half's forest.
    const oof = Float64Array.from([...newerForest.scoreSamples(spaced(older, m)), ...olderForest.scoreSamples(spaced(newer, m))], s => -s)
    oof.sort()
    const threshold = linearPercentile(oof, 100 * (1 - o.falseAlarmRate))
    this.#sequence = sequence
    this.model = {
      key: this.key,
      sequence,
      version: `${this.key}#${sequence}`,
      trainedAt: ts,
      samples: n,
      center,
      scale,
      rotation,
      precision,
      older: olderForest,
      newer: newerForest,
      threshold
    }
    this.modelsTrained++
    this.#fresh = 0
    this.#lastTrainedAt = ts
    this.#lastSamples = n
  }
}
