// A device-level model (what `DeviceForest` scores rows with): fitted from a training job by a pure
// function, so any thread fits the same model, and the trainers that run the fits. Seeded, no I/O.
import { createRandom } from '../domain/index.ts'
import { IsolationForest, linearPercentile, type ParsedModel } from './isolation-forest/index.ts'

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
  /** Its measurements, in the order of the model's inputs (`center[i]` is measurement i's). */
  measurements: readonly string[]
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
  /** Variance of the training rows along each rotated axis (floored): the scale of the distance below. */
  axisVariance: Float64Array
  /**
   * The squared distance (Σ rotated_k² / axisVariance_k: Mahalanobis in the robust correlation) at
   * which a row passes: twice the distance of the farthest training row. The forests cannot tell a
   * row just beyond the training rows from one far beyond them (their splits lie within the
   * training range, so both end in the same leaf), so a row far off the measurements' usual
   * relation (a pump's current falling while its flow holds, each within its own range) is caught
   * by its distance.
   */
  distanceThreshold: number
}

/**
 * A row passes on distance at this many times the farthest training row's squared distance (twice
 * its distance). On SKAB (seed 42): the farthest row itself, 1.45 % of the anomaly-free rows
 * alarmed; ×2, 0.79 %; ×4, 0.73 % as without the distance (0.40-0.86 % over seeds 1-6), F1 0.706.
 */
const DISTANCE_MARGIN = 4

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

/** Fewer training rows than this make no model. */
export const MIN_TRAINING_ROWS = 8

/** What a device model's fit depends on: the training rows and everything else, so any thread fits the same model. */
export interface DeviceTrainingJob {
  /** The device. */
  key: string
  measurements: readonly string[]
  /** The model's number among the device's models. */
  sequence: number
  /** Event time of the row that asked for the model. */
  trainedAt: number
  /**
   * The window's rows the device did not alarm on, oldest first: n × m row-major. Valid only during
   * `DeviceTrainer.start` (a trainer that keeps them copies them); `fitDeviceModel` does not change them.
   */
  rows: Float64Array
  /** Measurements per row (`measurements.length`). */
  m: number
  nEstimators: number
  maxSamples: number
  falseAlarmRate: number
  /** The seed of this model (derived from the options' seed, the device and the sequence). */
  seed: number
}

/** A device model's fit under way. */
export interface PendingDeviceFit {
  /** The fitted model, waiting for it if need be; throws when the fit failed. */
  take(): DeviceModel
  /** Its result is not wanted any more (the detector was cleared). */
  cancel(): void
}

/**
 * Fits device models. `DeviceForest` starts a fit when its device is due and takes the result
 * `installAfterRows` rows later, so where a model starts scoring never depends on how long the fit took.
 */
export interface DeviceTrainer {
  start(job: DeviceTrainingJob): PendingDeviceFit
}

/** Fits at once, on the caller's thread (replay, evaluation); a failed fit throws when taken. */
export const inlineDeviceTrainer: DeviceTrainer = {
  start (job: DeviceTrainingJob): PendingDeviceFit {
    let model: DeviceModel
    try {
      model = fitDeviceModel(job)
    } catch (err) {
      return { take: () => { throw err }, cancel: () => {} }
    }
    return { take: () => model, cancel: () => {} }
  }
}

/**
 * The model a job asks for (pure: the same on any thread). Each measurement standardised by the
 * median and 1.4826 × MAD of the rows, the rows rotated onto the eigenvectors of their (clipped)
 * correlation, one forest of half the trees on each half of the rows, and the threshold from the
 * out-of-fold scores (see `DeviceForest`).
 */
export function fitDeviceModel (job: DeviceTrainingJob): DeviceModel {
  const m = job.m
  if (!Number.isSafeInteger(m) || m < 2 || m !== job.measurements.length) throw new RangeError(`device ${job.key}: m = ${m} for ${job.measurements.length} measurements`)
  const n = job.rows.length / m
  if (!Number.isSafeInteger(n) || n < MIN_TRAINING_ROWS) throw new RangeError(`device ${job.key}: ${job.rows.length} values are not ${MIN_TRAINING_ROWS} or more rows of ${m}`)
  const x = job.rows.slice()
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
  const random = createRandom(job.seed)
  const half = n >> 1
  const older = data.subarray(0, half * m)
  const newer = data.subarray(half * m)
  const trees = Math.max(1, job.nEstimators >> 1)
  const options = { nEstimators: trees, maxSamples: job.maxSamples, random }
  const olderForest = IsolationForest.fit(older, m, options)
  const newerForest = IsolationForest.fit(newer, m, options)
  // Out-of-fold scores: each half's rows (at most CALIBRATION_ROWS of them, evenly spaced) by the other half's forest.
  const oof = Float64Array.from([...newerForest.scoreSamples(spaced(older, m)), ...olderForest.scoreSamples(spaced(newer, m))], s => -s)
  oof.sort()
  const threshold = linearPercentile(oof, 100 * (1 - job.falseAlarmRate))
  const axisVariance = new Float64Array(m)
  for (let k = 0; k < n; k++) for (let c = 0; c < m; c++) axisVariance[c] = (axisVariance[c] as number) + (data[k * m + c] as number) ** 2
  for (let c = 0; c < m; c++) axisVariance[c] = Math.max((axisVariance[c] as number) / n, floor)
  let farthest = 0
  for (let k = 0; k < n; k++) farthest = Math.max(farthest, squaredDistance(data.subarray(k * m, k * m + m), axisVariance))
  const distanceThreshold = Math.max(DISTANCE_MARGIN * farthest, Number.MIN_VALUE)
  return {
    key: job.key,
    measurements: Object.freeze([...job.measurements]),
    sequence: job.sequence,
    version: `${job.key}#${job.sequence}`,
    trainedAt: job.trainedAt,
    samples: n,
    center,
    scale,
    rotation,
    precision,
    older: olderForest,
    newer: newerForest,
    threshold,
    axisVariance,
    distanceThreshold
  }
}

/** Σ rotated_k² / axisVariance_k of a rotated row. */
export function squaredDistance (rotated: ArrayLike<number>, axisVariance: Float64Array): number {
  let d = 0
  for (let k = 0; k < axisVariance.length; k++) d += (rotated[k] as number) ** 2 / (axisVariance[k] as number)
  return d
}

/** A device model with its forests as typed arrays (`IsolationForest.toParts`): what a thread hands over by structured clone. */
export interface DeviceModelParts extends Omit<DeviceModel, 'older' | 'newer' | 'measurements'> {
  measurements: string[]
  older: ParsedModel
  newer: ParsedModel
}

export function deviceModelToParts (model: DeviceModel): DeviceModelParts {
  const { older, newer, measurements, ...rest } = model
  return { ...rest, measurements: [...measurements], older: older.toParts(), newer: newer.toParts() }
}

/** Rebuilds a model from `deviceModelToParts` (trusted, not validated: for data from outside, see `decodeDeviceModel`). */
export function deviceModelFromParts (parts: DeviceModelParts): DeviceModel {
  return { ...parts, measurements: Object.freeze([...parts.measurements]), older: IsolationForest.fromParts(parts.older), newer: IsolationForest.fromParts(parts.newer) }
}
