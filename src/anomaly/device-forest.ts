// Device-level (multivariate) anomaly detection: one Isolation Forest over all the measurements a
// device reports at once, learnt online from the device's own rows. Pure: no I/O, no clock, seeded.
// The model and its fit are in device-model.ts, its stored form in device-model-codec.ts.
import { AnomalyConfigError, AnomalyStateError } from './errors.ts'
import {
  MIN_TRAINING_ROWS, inlineDeviceTrainer, squaredDistance, type DeviceModel, type DeviceTrainer, type DeviceTrainingJob, type PendingDeviceFit
} from './device-model.ts'
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
  /**
   * Rows of the device between the row that asks for a model (the trigger) and the first row that
   * model scores: the trigger and the next `installAfterRows - 1` rows are scored by the model
   * before. A background trainer (the live worker's thread) fits meanwhile and the stream waits
   * only if the fit takes longer; inline training gives the same model at the same row, so a
   * replay's verdicts equal the live ones, row for row. 16 by default: a fit takes about 25 ms
   * (more when the thread is busy with other keys' fits, one at a time), and a device at 1 row/s
   * gives the thread 16 s, one at 10 rows/s 1.6 s; yet it is small beside the 100 or more rows
   * between two models (the per-sensor forest's 256 would be longer than a device model's life,
   * and would delay the first verdicts after `firstRows` by as much). 0: the trigger row itself is
   * scored by the new model (what inline training did before there was a trainer). SKAB's
   * device-level F1 hardly moves with it: 0.702, 0.704, 0.704, 0.706 at 0, 8, 16, 32.
   */
  installAfterRows: number
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
  installAfterRows: 16,
  nEstimators: 200,
  maxSamples: 256,
  falseAlarmRate: 0.01,
  alarmWindow: 9,
  alarmRows: 5,
  seed: 42
})

export function checkDeviceForestOptions (o: DeviceForestOptions): DeviceForestOptions {
  const ints: Array<[keyof DeviceForestOptions, number]> = [
    ['firstRows', 8], ['trainingSize', 8], ['retrainRows', 1], ['installAfterRows', 0], ['nEstimators', 2], ['maxSamples', 2], ['alarmWindow', 1], ['alarmRows', 1]
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

/** Share of the excess a measurement needs to be named a contributor. */
const MIN_SHARE = 0.1
const MAX_CONTRIBUTORS = 3

/** A stored row of a device, to refill its training window after a restart (`DeviceForest#restore`). */
export interface StoredDeviceRow {
  /** Event time. */
  ts: number
  /** One value per measurement, in the model's order. */
  values: ArrayLike<number>
  /** The device alarmed on the row (it stays out of training). */
  anomaly: boolean
}

/**
 * The online multivariate model of one device with a fixed list of measurements (`m >= 2`). Each
 * row (one value per measurement, aligned by event time) is first scored by the current model,
 * then joins the training window.
 *
 * A model (`fitDeviceModel`): each measurement standardised robustly (median, 1.4826 × MAD over
 * the training rows), the standardised rows rotated onto the eigenvectors of their (clipped)
 * correlation, so that a measurement leaving its usual relation to the others is an outlier on
 * some axis, not only one leaving its usual range; then two Isolation Forests, one on the older
 * and one on the newer half of the training rows. A row's anomaly score is 2^(−E[h]/c) over both
 * forests' trees (the geometric mean of their scores). The threshold is the (1 − falseAlarmRate)
 * quantile of the training rows' out-of-fold scores (each half scored by the other half's forest),
 * so it holds for rows the model has not seen, drift across half a window included; in-sample
 * scores would set it too low.
 *
 * Rows the device alarmed on stay out of training (a fault must not become the normal), unless
 * they outnumber the other rows of the window: then the device has changed for good and the next
 * model learns the window as it is. Training follows `RetrainPolicy` (the per-sensor forest's
 * rule), checked before a row is scored, on the rows before it: the first model once `firstRows`
 * rows are in, then one when `retrainMs` of event time and max(retrainRows, retrainFraction × the
 * last training's rows) new rows have come. The fit asked for at a row (the trigger) scores from
 * the `installAfterRows`-th row after it; the trainer (inline by default, the live worker's thread)
 * fits meanwhile, and where a model starts never depends on how long that took. The schedule moves
 * on when the fit starts; a failed fit counts in `trainingFailures` and the device keeps its model.
 */
export class DeviceForest {
  readonly key: string
  readonly measurements: readonly string[]
  readonly options: Readonly<DeviceForestOptions>
  readonly policy: RetrainPolicy
  model: DeviceModel | null = null
  /** Models trained and installed since construction. */
  modelsTrained = 0
  /** Fits that failed (the device keeps its model and trains again at its next due time). */
  trainingFailures = 0
  readonly #trainer: DeviceTrainer
  readonly #onInstalled: ((model: DeviceModel) => void) | null
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
  /** Most of the window alarmed: the next model is due at once, whatever the schedule. */
  #force = false
  /** The fit asked for and not installed yet, and the rows of the device still to go before it scores. */
  #pending: { fit: PendingDeviceFit, rowsLeft: number } | null = null
  readonly #recent: Float64Array
  #recentHead = 0
  readonly #sorted: Float64Array
  readonly #z: Float64Array
  readonly #row: Float32Array

  /**
   * `trainer` fits the models (inline by default); `onInstalled` hears of each model as it starts
   * scoring, with its stored form when the trainer made it (the scoring model does not keep that).
   */
  constructor (key: string, measurements: readonly string[], options: Partial<DeviceForestOptions> = {}, trainer: DeviceTrainer = inlineDeviceTrainer, onInstalled: ((model: DeviceModel) => void) | null = null) {
    if (measurements.length < 2) throw new AnomalyConfigError('device.measurements', `a device-level model needs at least 2 measurements, got ${measurements.length}`)
    this.key = key
    this.measurements = Object.freeze([...measurements])
    this.options = Object.freeze(checkDeviceForestOptions({ ...defaultDeviceForestOptions, ...options }))
    this.#trainer = trainer
    this.#onInstalled = onInstalled
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
   * model (after starting a fit when one is due, and installing the pending one when its row has
   * come), then learns from it.
   */
  score (values: ArrayLike<number>, ts: number): DeviceScore {
    const m = this.#m
    if (values.length !== m) throw new RangeError(`device ${this.key}: ${values.length} values for ${m} measurements`)
    for (let i = 0; i < m; i++) {
      if (!Number.isFinite(values[i])) throw new RangeError(`device ${this.key}: ${this.measurements[i] as string} is not a finite number: ${String(values[i])}`)
    }
    if (this.#pending === null && this.#due(ts)) this.#start(ts)
    if (this.#pending !== null && this.#pending.rowsLeft-- === 0) this.#install()
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
    this.#learn(values, anomaly)
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
    const forest = ratioScore(Math.log(model.threshold) / Math.log(a))
    const distance = ratioScore(Math.sqrt(squaredDistance(row, model.axisVariance) / model.distanceThreshold))
    return forest >= distance ? forest : distance
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

  /** Adds a row to the window (the oldest leaves it once it is full). */
  #append (values: ArrayLike<number>, alarmed: boolean): void {
    const size = this.options.trainingSize
    const m = this.#m
    if (this.#count === size && this.#alarmed[this.#head] === 1) this.#alarmedCount--
    for (let i = 0; i < m; i++) this.#values[this.#head * m + i] = values[i] as number
    this.#alarmed[this.#head] = alarmed ? 1 : 0
    if (alarmed) this.#alarmedCount++
    this.#head = (this.#head + 1) % size
    if (this.#count < size) this.#count++
  }

  #learn (values: ArrayLike<number>, alarmed: boolean): void {
    this.#append(values, alarmed)
    if (!alarmed) this.#fresh++
    if (this.model !== null && 2 * this.#alarmedCount > this.#count) {
      // Most of the window alarmed: the device has changed for good; learn it as it is now.
      this.#alarmed.fill(0)
      this.#alarmedCount = 0
      this.#recent.fill(0) // the old model's scores do not carry over
      this.#force = true
    }
  }

  /** Whether a fit starts now, before a row at event time `ts` is scored (on the rows before it). */
  #due (ts: number): boolean {
    const normal = this.#count - this.#alarmedCount
    if (this.#lastTrainedAt === -Infinity) return normal >= this.options.firstRows
    return this.#force || this.policy.due({ count: normal, fresh: this.#fresh, lastTrainedAt: this.#lastTrainedAt, lastSamples: this.#lastSamples }, ts)
  }

  #start (ts: number): void {
    const o = this.options
    const m = this.#m
    const size = o.trainingSize
    const n = this.#count - this.#alarmedCount
    if (n < MIN_TRAINING_ROWS) return
    // The window's rows not in an alarm, oldest first.
    const rows = new Float64Array(n * m)
    let r = 0
    for (let k = 0, slot = (this.#head - this.#count + size) % size; k < this.#count; k++, slot = (slot + 1) % size) {
      if (this.#alarmed[slot] === 1) continue
      rows.set(this.#values.subarray(slot * m, slot * m + m), r * m)
      r++
    }
    const sequence = this.#sequence + 1
    const seed = (o.seed ^ hash32(this.key) ^ Math.imul(sequence, 0x9e3779b9)) >>> 0
    const job: DeviceTrainingJob = {
      key: this.key, measurements: this.measurements, sequence, trainedAt: ts, rows, m, nEstimators: o.nEstimators, maxSamples: o.maxSamples, falseAlarmRate: o.falseAlarmRate, seed
    }
    // The schedule moves on now (also after a failure: a broken trainer is not asked again on every row).
    this.#lastTrainedAt = ts
    this.#lastSamples = n
    this.#fresh = 0
    this.#force = false
    let fit: PendingDeviceFit
    try {
      fit = this.#trainer.start(job)
    } catch {
      this.trainingFailures++
      return
    }
    this.#pending = { fit, rowsLeft: o.installAfterRows }
  }

  #install (): void {
    const fit = this.#pending!.fit
    this.#pending = null
    let fitted: DeviceModel
    try {
      fitted = fit.take()
    } catch {
      this.trainingFailures++
      return
    }
    this.model = fitted
    this.#sequence = fitted.sequence
    this.modelsTrained++
    this.#onInstalled?.(fitted)
  }

  /** A fit has been started and not installed yet. */
  get fitPending (): boolean {
    return this.#pending !== null
  }

  /** Drops the fit under way, if any (the detector is cleared or replaces this device's model). */
  cancelFit (): void {
    this.#pending?.fit.cancel()
    this.#pending = null
  }

  /**
   * After a restart: the window refilled from stored rows (oldest first, values in this device's
   * measurement order; rows missing a value are skipped, as they are when they arrive) WITHOUT
   * scoring them, the stored model installed (or none), and the schedule set as if the stream had
   * gone on: the last training at `model.trainedAt` on `model.samples` rows, the new rows those the
   * device did not alarm on at or after `model.trainedAt` (the row that asked for the model joined
   * the window after its fit started). What differs from the forest that stored them: the ring of
   * the last `alarmWindow` row scores starts empty (zeros: the device cannot alarm before
   * `alarmRows` rows have passed the threshold again, and its score is exact again after
   * `alarmWindow` rows); a fit that was under way is not (the next row asks again, on the window as
   * it is then); rows whose alarm flags the device had dropped (most of its window alarmed, then a
   * new model) come back flagged, and are dropped here too when they are most of the window.
   * Returns the rows that joined the window.
   */
  restore (model: DeviceModel | null, rows: Iterable<StoredDeviceRow>): number {
    if (model !== null) {
      if (model.key !== this.key) throw new AnomalyStateError('device.key', `a model of ${JSON.stringify(model.key)} restored for ${JSON.stringify(this.key)}`)
      if (model.measurements.length !== this.#m || model.measurements.some((name, i) => name !== this.measurements[i])) {
        throw new AnomalyStateError('device.measurements', `a model of ${model.measurements.join(', ')} restored for ${this.measurements.join(', ')}`)
      }
    }
    this.cancelFit()
    this.#head = 0
    this.#count = 0
    this.#alarmedCount = 0
    this.#alarmed.fill(0)
    this.#recent.fill(0)
    this.#recentHead = 0
    this.#force = false
    if (model === null) {
      this.model = null
      this.#sequence = 0
      this.#lastTrainedAt = -Infinity
      this.#lastSamples = 0
    } else {
      this.model = model
      this.#sequence = model.sequence
      this.#lastTrainedAt = model.trainedAt
      this.#lastSamples = model.samples
    }
    let fresh = 0
    let learnt = 0
    for (const row of rows) {
      if (row.values.length !== this.#m) throw new AnomalyStateError('device.rows', `${row.values.length} values for ${this.#m} measurements (${this.measurements.join(', ')})`)
      let complete = Number.isFinite(row.ts)
      for (let i = 0; i < this.#m && complete; i++) if (!Number.isFinite(row.values[i])) complete = false
      if (!complete) continue
      this.#append(row.values, row.anomaly)
      learnt++
      if (!row.anomaly && (model === null || row.ts >= model.trainedAt)) fresh++
    }
    this.#fresh = fresh
    if (model !== null && 2 * this.#alarmedCount > this.#count) {
      this.#alarmed.fill(0)
      this.#alarmedCount = 0
    }
    return learnt
  }
}
