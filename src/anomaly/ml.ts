import { createRandom, type Reading } from '../domain/index.ts'
import { AnomalyConfigError } from './errors.ts'
import { FEATURES } from './features.ts'
import { IsolationForest } from './isolation-forest/index.ts'
import { SnapshotReader, SnapshotWriter } from './snapshot.ts'

/** Options of the Isolation Forest detector (defaults: the original design's). */
export interface ForestOptions {
  /** One model per sensor type (the original design), or one per sensor. */
  scope: 'type' | 'sensor'
  /** Samples of a model's key before its first model. */
  minSamples: number
  /** Event time between trainings of a key: at most one new model per key per this interval. */
  retrainMs: number
  /**
   * New samples a key needs before its next model, as a fraction of the rows of its last training
   * (and at least `minSamples`): 1 = the window renewed (as many new rows as the last model saw,
   * `trainingSize` once the window is full), so the number of models grows with the samples, never
   * with event time alone. See `RetrainPolicy`.
   */
  retrainFraction: number
  /** The newest samples a model is trained on. */
  trainingSize: number
  /**
   * Rows of its key between the reading that asks for a model and the first one that model scores:
   * the trigger and the next `installAfterRows - 1` are scored by the model before. A background
   * trainer fits meanwhile (the stream waits only if the fit takes longer); inline training gives
   * the same model at the same row, so a replay's verdicts equal the live worker's, row for row.
   */
  installAfterRows: number
  nEstimators: number
  maxSamples: number
  contamination: number
  /** Seed of model `n` of a key: derived from this, the key and n. */
  seed: number
  /**
   * Who trains, when several workers each train models of the same key (Kafka consumer group):
   * appended to versions as `@instance`, so every version names one model. Empty: no suffix.
   */
  instance: string
}

export const defaultForestOptions: Readonly<ForestOptions> = Object.freeze({
  scope: 'type',
  minSamples: 50,
  retrainMs: 300_000,
  retrainFraction: 1,
  trainingSize: 1000,
  installAfterRows: 256,
  nEstimators: 100,
  maxSamples: 256,
  contamination: 0.05,
  seed: 42,
  instance: ''
})

/** A trained model of one key (a sensor type, or a sensor id with scope `sensor`). */
export interface TrainedModel {
  key: string
  /** Counts a key's models from 1. */
  sequence: number
  /** `<key>#<sequence>` (or `<key>#<sequence>@<instance>`): carried by every verdict the model gave. */
  version: string
  /** Event time of the training (the reading that triggered it). */
  trainedAt: number
  /** Training rows. */
  samples: number
  forest: IsolationForest
  /** Its stored form (`encodeModel`), when the trainer made it already (off the stream's thread). */
  encoded?: Uint8Array
}

/** What the Isolation Forest says about one reading. */
export interface MlScore {
  /** 2^(−E[h(x)]/c(ψ)) of Liu et al., in (0, 1): higher = more anomalous. */
  score: number
  /** decision_function < 0 (scikit-learn's predict = −1). */
  anomaly: boolean
  modelVersion: string
  model: TrainedModel
}

/** What a trainer fits: the training rows and everything the fit depends on. */
export interface TrainingJob {
  key: string
  sequence: number
  trainedAt: number
  /** Row-major, `samples` × `FEATURES`; valid only during `ForestTrainer.start` (a trainer that keeps them copies them). */
  rows: Float32Array
  samples: number
  nEstimators: number
  maxSamples: number
  contamination: number
  seed: number
}

/** A forest a trainer fitted, with its stored form when the trainer made that too. */
export interface FittedForest {
  forest: IsolationForest
  encoded?: Uint8Array
}

/** A fit under way. */
export interface PendingFit {
  /** The fitted forest, waiting for it if need be; throws when the fit failed. */
  take(): FittedForest
  /** Its result is not wanted any more (the scorer was cleared). */
  cancel(): void
}

/**
 * Fits forests. The scorer starts a fit when a key is due and takes the result `installAfterRows`
 * rows of that key later, so where a model starts scoring never depends on how long the fit took.
 */
export interface ForestTrainer {
  start(job: TrainingJob): PendingFit
}

/** Fits at once, on the caller's thread. */
export const inlineTrainer: ForestTrainer = {
  start (job: TrainingJob): PendingFit {
    const forest = fitJob(job)
    return { take: () => ({ forest }), cancel: () => {} }
  }
}

/** The fit a job asks for (the same on any thread: the seed is in the job). */
export function fitJob (job: TrainingJob): IsolationForest {
  return IsolationForest.fit(job.rows, FEATURES, { nEstimators: job.nEstimators, maxSamples: job.maxSamples, contamination: job.contamination, random: createRandom(job.seed) })
}

/** Scores standardized feature vectors; the detector's seam for ML. */
export interface MlScorer {
  /**
   * The model that scores this reading (the current one of its key; null while none exists), after
   * which the scorer learns from `features` (length `FEATURES`). The caller scores, alone or in a batch.
   */
  assign(reading: Reading, features: Float32Array): TrainedModel | null
  clear?(): void
}

/** The verdict of `model` on a row with score_samples `s`. */
export function mlScoreOf (model: TrainedModel, s: number): MlScore {
  return { score: -s, anomaly: s - model.forest.offset < 0, modelVersion: model.version, model }
}

/** What `RetrainPolicy` looks at for one key. */
export interface RetrainState {
  /** Rows in the key's training window (at most `trainingSize`). */
  count: number
  /** Rows added since the last training was started. */
  fresh: number
  /** Event time of the last training started (or of the restored model); -Infinity before any. */
  lastTrainedAt: number
  /** Rows of the last training started (or of the restored model); 0 before any. */
  lastSamples: number
}

/**
 * When a key gets a new model. The one rule of the live worker (background trainer) and of inline
 * training (replay, evaluation), on event time and samples only, so a replay retrains where the
 * live stream did:
 * - the first model once the key has `minSamples` rows;
 * - then a new one only when BOTH at least `retrainMs` of event time have passed since the last
 *   training started AND at least max(minSamples, ceil(retrainFraction × rows of that training))
 *   new rows have arrived (never more than `trainingSize`).
 * The rows are the hard floor: however slow the sensor, no more than one model per renewed window.
 * With the defaults (5 min, fraction 1, window 1000): a key fed 1000 rows in less than 5 minutes (a
 * sensor type of the simulated fleet) retrains every 5 minutes as before; a sensor at 1 s every 1000 s;
 * one at 5 min every 1000 readings (3.5 days). About one model per 1000 rows whatever the cadence,
 * where the 5-minute rule alone trained one per row at 5 min (100,000 rows: 104 models, not 99,950).
 * While the window fills, the rows needed double (1 min cadence: rows 50, 100, 200, 400, 800, then
 * 1600 on a full window, 2600, ...). A failed background training counts as one (it is not asked
 * again on every reading). Pure: no clock, no state of its own.
 */
export class RetrainPolicy {
  readonly minSamples: number
  readonly retrainMs: number
  readonly retrainFraction: number
  readonly trainingSize: number

  constructor (o: Pick<ForestOptions, 'minSamples' | 'retrainMs' | 'retrainFraction' | 'trainingSize'>) {
    this.minSamples = o.minSamples
    this.retrainMs = o.retrainMs
    this.retrainFraction = o.retrainFraction
    this.trainingSize = o.trainingSize
  }

  /** New rows needed after a training on `samples` rows. */
  freshNeeded (samples: number): number {
    return Math.min(this.trainingSize, Math.max(this.minSamples, Math.ceil(this.retrainFraction * samples)))
  }

  /** Whether the key trains now, before a row at event time `ts` joins its window. */
  due (s: RetrainState, ts: number): boolean {
    if (s.count < this.minSamples) return false
    if (s.lastTrainedAt === -Infinity) return true
    return ts >= s.lastTrainedAt + this.retrainMs && s.fresh >= this.freshNeeded(s.lastSamples)
  }

  /**
   * Trainings of one key fed `rows` rows `cadenceMs` apart (every row a feature vector), as the
   * scorer would start them: for planning and the documentation's figures.
   */
  count (rows: number, cadenceMs: number): number {
    const s: RetrainState = { count: 0, fresh: 0, lastTrainedAt: -Infinity, lastSamples: 0 }
    let n = 0
    for (let i = 0; i < rows; i++) {
      const ts = i * cadenceMs
      if (this.due(s, ts)) {
        n++
        s.lastTrainedAt = ts
        s.lastSamples = s.count
        s.fresh = 0
      }
      s.fresh++
      if (s.count < this.trainingSize) s.count++
    }
    return n
  }
}

/** The fit asked for and not installed yet: the model it makes, and the rows of the key still to go before it scores. */
interface PendingInstall {
  fit: PendingFit
  model: Omit<TrainedModel, 'forest' | 'encoded'>
  rowsLeft: number
  /**
   * The job's rows that the window overwrote while the fit was pending (so a snapshot can restart
   * the same fit): `savedRows` rows, the k-th the job's row (savedFrom + k) mod samples. At most
   * `installAfterRows` rows, and none while the window fills (the new rows go past the job's).
   */
  saved: Float32Array | null
  savedFrom: number
  savedRows: number
}

class Slot implements RetrainState {
  readonly buffer: Float32Array
  /** Next row to write; rows 0 .. count-1 are filled. */
  head = 0
  count = 0
  fresh = 0
  model: TrainedModel | null = null
  sequence = 0
  lastTrainedAt = -Infinity
  lastSamples = 0
  pending: PendingInstall | null = null

  constructor (rows: number) {
    this.buffer = new Float32Array(rows * FEATURES)
  }
}

/** Keeps row `row` of the window, about to be overwritten, which the pending fit's job holds. */
function keepJobRow (pending: PendingInstall, buffer: Float32Array, row: number): void {
  const n = pending.savedRows
  if (n === 0) pending.savedFrom = row
  if (pending.saved === null || pending.saved.length < (n + 1) * FEATURES) {
    // Room for every row the window may still overwrite before the install.
    const rows = Math.max(n + 1, Math.min(pending.model.samples, n + pending.rowsLeft + 1))
    const grown = new Float32Array(rows * FEATURES)
    if (pending.saved !== null) grown.set(pending.saved.subarray(0, n * FEATURES))
    pending.saved = grown
  }
  pending.saved.set(buffer.subarray(row * FEATURES, (row + 1) * FEATURES), n * FEATURES)
  pending.savedRows = n + 1
}

/** The rows of a pending fit's job: the window's first `samples` rows with those overwritten since put back. */
function jobRows (pending: PendingInstall, buffer: Float32Array): Float32Array {
  const samples = pending.model.samples
  const rows = buffer.slice(0, samples * FEATURES)
  const saved = pending.saved
  for (let k = 0; k < pending.savedRows; k++) {
    rows.set((saved as Float32Array).subarray(k * FEATURES, (k + 1) * FEATURES), ((pending.savedFrom + k) % samples) * FEATURES)
  }
  return rows
}

function hash32 (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

function checkOptions (o: ForestOptions): ForestOptions {
  if (o.scope !== 'type' && o.scope !== 'sensor') throw new AnomalyConfigError('ml.scope', `must be "type" or "sensor", got ${String(o.scope)}`)
  const ints: Array<[keyof ForestOptions, number]> = [['minSamples', 2], ['trainingSize', 2], ['installAfterRows', 0], ['nEstimators', 1], ['maxSamples', 2]]
  for (const [name, min] of ints) {
    const v = o[name]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new AnomalyConfigError(`ml.${name}`, `must be an integer >= ${min}, got ${String(v)}`)
  }
  if (o.minSamples > o.trainingSize) throw new AnomalyConfigError('ml.minSamples', `must be <= trainingSize (${o.trainingSize}), got ${o.minSamples}`)
  if (!(o.retrainMs > 0) || !Number.isFinite(o.retrainMs)) throw new AnomalyConfigError('ml.retrainMs', `must be a finite number > 0, got ${o.retrainMs}`)
  if (!(o.retrainFraction > 0 && o.retrainFraction <= 1)) throw new AnomalyConfigError('ml.retrainFraction', `must be in (0, 1], got ${o.retrainFraction}`)
  if (!(o.contamination > 0 && o.contamination <= 0.5)) throw new AnomalyConfigError('ml.contamination', `must be in (0, 0.5], got ${o.contamination}`)
  if (!Number.isFinite(o.seed)) throw new AnomalyConfigError('ml.seed', `must be finite, got ${o.seed}`)
  if (typeof o.instance !== 'string' || /[\s#@]/.test(o.instance)) throw new AnomalyConfigError('ml.instance', `must be a string without spaces, # or @, got ${String(o.instance)}`)
  return o
}

/** How a `ForestScorer` hands its models on. */
export interface ForestScorerOptions {
  /**
   * Keep every trained model until `drainTrained` takes it (the live worker stores each one). False
   * (replay, evaluation): only the current model of each key is held, and `modelsTrained` counts.
   * Default true.
   */
  retainTrained?: boolean | undefined
}

/**
 * Isolation Forest per sensor type (or per sensor), trained online on event time and samples (the
 * rule of `RetrainPolicy`): the first model once a key has `minSamples` feature vectors, then a new
 * one at most every `retrainMs` of event time and only once enough new rows arrived, on the newest
 * `trainingSize`. A reading is scored by the key's current model, then joins the training rows. A
 * model asked for at one reading scores from the `installAfterRows`-th row of its key after it
 * (the old one scores until then): a background trainer (the live worker's thread) fits meanwhile,
 * and the stream waits for it only when the fit takes longer; inline (replay, evaluation) the same
 * model starts at the same row, so verdicts depend only on the readings and the seed. One live
 * model per key: a new one replaces the old, which nothing here keeps (memory is flat in the length
 * of the stream; `drainTrained` hands the stored ones on).
 */
export class ForestScorer implements MlScorer {
  readonly options: Readonly<ForestOptions>
  readonly #slots = new Map<string, Slot>()
  readonly policy: RetrainPolicy
  readonly #trainer: ForestTrainer
  readonly #retain: boolean
  #trained: TrainedModel[] = []
  /** Models trained and installed since construction (also those `drainTrained` took, and with `retainTrained` off). */
  modelsTrained = 0
  /** Fits that failed (the key keeps its model and trains again at its next due time). */
  trainingFailures = 0

  constructor (options: Partial<ForestOptions> = {}, trainer: ForestTrainer | null = null, scorer: ForestScorerOptions = {}) {
    this.options = Object.freeze(checkOptions({ ...defaultForestOptions, ...options }))
    this.policy = new RetrainPolicy(this.options)
    this.#trainer = trainer ?? inlineTrainer
    this.#retain = scorer.retainTrained ?? true
  }

  keyOf (reading: Reading): string {
    return this.options.scope === 'type' ? reading.sensorType : reading.sensorId
  }

  /** `assign`, then the score of the assigned model (one row; batches score with `scoreSamples`). */
  score (reading: Reading, features: Float32Array): MlScore | null {
    const model = this.assign(reading, features)
    return model === null ? null : mlScoreOf(model, model.forest.scoreSample(features))
  }

  assign (reading: Reading, features: Float32Array): TrainedModel | null {
    const key = this.keyOf(reading)
    let slot = this.#slots.get(key)
    if (slot === undefined) {
      slot = new Slot(this.options.trainingSize)
      this.#slots.set(key, slot)
    }
    if (slot.pending === null && this.policy.due(slot, reading.ts)) this.#start(key, slot, reading.ts)
    if (slot.pending !== null && slot.pending.rowsLeft-- === 0) this.#install(slot)
    const pending = slot.pending
    if (pending !== null && slot.head < pending.model.samples && pending.savedRows < pending.model.samples) keepJobRow(pending, slot.buffer, slot.head)
    const size = this.options.trainingSize
    slot.buffer.set(features, slot.head * FEATURES)
    slot.head = slot.head + 1 === size ? 0 : slot.head + 1
    slot.fresh++
    if (slot.count < size) slot.count++
    return slot.model
  }

  #start (key: string, slot: Slot, ts: number): void {
    const o = this.options
    const sequence = slot.sequence + 1
    const samples = slot.count
    const version = o.instance === '' ? `${key}#${sequence}` : `${key}#${sequence}@${o.instance}`
    // The schedule moves on now (also after a failure: a broken trainer is not asked again on every reading).
    slot.lastTrainedAt = ts
    slot.lastSamples = samples
    slot.fresh = 0
    const job = this.#job(key, sequence, ts, slot.buffer.subarray(0, samples * FEATURES), samples)
    slot.pending = { fit: this.#trainer.start(job), model: { key, sequence, version, trainedAt: ts, samples }, rowsLeft: o.installAfterRows, saved: null, savedFrom: 0, savedRows: 0 }
  }

  /** The job of model `sequence` of a key: its seed follows from the options' seed, the key and `sequence`. */
  #job (key: string, sequence: number, trainedAt: number, rows: Float32Array, samples: number): TrainingJob {
    const o = this.options
    const seed = (o.seed ^ hash32(key) ^ Math.imul(sequence, 0x9e3779b9)) >>> 0
    return { key, sequence, trainedAt, rows, samples, nEstimators: o.nEstimators, maxSamples: o.maxSamples, contamination: o.contamination, seed }
  }

  #install (slot: Slot): void {
    const { fit, model } = slot.pending!
    slot.pending = null
    let fitted: FittedForest
    try {
      fitted = fit.take()
    } catch {
      this.trainingFailures++
      return
    }
    // The stored form goes to storage once (drainTrained); the model that scores does not keep it.
    const scoring: TrainedModel = { ...model, forest: fitted.forest }
    slot.model = scoring
    slot.sequence = model.sequence
    this.modelsTrained++
    if (this.#retain) this.#trained.push(fitted.encoded === undefined ? scoring : { ...scoring, encoded: fitted.encoded })
  }

  /** A stored model becomes the key's current one, and the schedule goes on from its training. */
  #restore (slot: Slot, model: TrainedModel): void {
    slot.pending?.fit.cancel()
    slot.pending = null
    slot.model = model
    slot.sequence = model.sequence
    slot.lastTrainedAt = model.trainedAt
    slot.lastSamples = model.samples
    slot.fresh = 0
  }

  /** Models trained since the last call, oldest first (to persist them). */
  drainTrained (): TrainedModel[] {
    const out = this.#trained
    this.#trained = []
    return out
  }

  /** Keys with state (a training window, a model). */
  get size (): number {
    return this.#slots.size
  }

  /** Models held for `drainTrained` (0 with `retainTrained` off). */
  get pendingTrained (): number {
    return this.#trained.length
  }

  /** The current model of every key. */
  models (): TrainedModel[] {
    const out: TrainedModel[] = []
    for (const slot of this.#slots.values()) if (slot.model !== null) out.push(slot.model)
    return out
  }

  /**
   * Installs stored models (the newest per key wins); training rows start empty. A key restored
   * from its snapshot (`restoreKey`, before or after this) keeps the snapshot's schedule and
   * pending fit unless a model is newer than the snapshot's numbering; a model up to it only
   * becomes the key's current one.
   */
  restore (models: Iterable<TrainedModel>): void {
    for (const m of models) {
      let slot = this.#slots.get(m.key)
      if (slot === undefined) {
        slot = new Slot(this.options.trainingSize)
        this.#slots.set(m.key, slot)
      }
      if (m.sequence > slot.sequence) this.#restore(slot, m)
      // Only after `restoreKey` can a key number beyond its model (otherwise its model is numbered `sequence`).
      else if (m.sequence > (slot.model?.sequence ?? 0)) slot.model = m
    }
  }

  /** Keys with state, in the order they were first seen (each has a `snapshotKey`). */
  keys (): string[] {
    return [...this.#slots.keys()]
  }

  /**
   * A key's training state as a snapshot (`snapshot.ts`), or null when it has none: the training
   * window (its rows in place, Float32 as held: 28 bytes a row, 28 KB for a full window of 1000),
   * the schedule of `RetrainPolicy` (count, head, fresh, lastTrainedAt, lastSamples, sequence) and a
   * pending fit (its model's numbering, time and rows, the rows before it installs, and the job's
   * rows the window has overwritten since, so `restoreKey` restarts the same fit). Not the current
   * model: models are stored apart (`drainTrained`) and come back through `restore`.
   */
  snapshotKey (key: string): Uint8Array | null {
    const slot = this.#slots.get(key)
    if (slot === undefined) return null
    const out = new SnapshotWriter('forestKey', 64 + slot.count * FEATURES * 4)
    out.string(key)
    out.uint(FEATURES)
    out.uint(this.options.trainingSize)
    out.uint(slot.count)
    out.uint(slot.head)
    out.uint(slot.fresh)
    out.uint(slot.sequence)
    out.f64(slot.lastTrainedAt)
    out.uint(slot.lastSamples)
    out.f32s(slot.buffer, 0, slot.count * FEATURES)
    const pending = slot.pending
    out.bool(pending !== null)
    if (pending !== null) {
      const m = pending.model
      out.uint(m.sequence)
      out.string(m.version)
      out.f64(m.trainedAt)
      out.uint(m.samples)
      out.uint(pending.rowsLeft)
      out.uint(pending.savedFrom)
      out.uint(pending.savedRows)
      if (pending.saved !== null) out.f32s(pending.saved, 0, pending.savedRows * FEATURES)
    }
    return out.finish()
  }

  /**
   * Replaces a key's training state with its snapshot's (for a scorer of the same `trainingSize`),
   * keeping the key's current model if `restore(models)` installed one already; a pending fit
   * starts again with the trainer (inline: the same model installs at the same row). Either order
   * of `restore(models)` and `restoreKey` gives the same state (see `restore`). Damaged bytes, or a
   * snapshot of another key, throw `AnomalyStateError` and leave the key as `restore(models)`
   * alone would: no training rows, no pending fit, its model (if any) and the schedule from it.
   */
  restoreKey (key: string, bytes: Uint8Array): void {
    const current = this.#slots.get(key)
    const model = current?.model ?? null
    current?.pending?.fit.cancel()
    this.#slots.delete(key)
    let slot: Slot
    try {
      slot = this.#decodeKey(key, bytes)
    } catch (err) {
      if (model !== null) this.restore([model])
      throw err
    }
    this.#slots.set(key, slot)
    const pending = slot.pending
    if (model !== null && model.sequence > slot.sequence) {
      // A model newer than the snapshot: the schedule goes on from it, as `restore` does.
      slot.pending = null
      this.#restore(slot, model)
      return
    }
    slot.model = model
    if (pending !== null) {
      const m = pending.model
      pending.fit = this.#trainer.start(this.#job(key, m.sequence, m.trainedAt, jobRows(pending, slot.buffer), m.samples))
    }
  }

  #decodeKey (key: string, bytes: Uint8Array): Slot {
    const input = new SnapshotReader(bytes, 'forestKey')
    const stored = input.string('key')
    if (stored !== key) input.fail('key', `a snapshot of key ${JSON.stringify(stored)}, not ${JSON.stringify(key)}`)
    const features = input.uint('features')
    if (features !== FEATURES) input.fail('features', `rows of ${features} features, this build has ${FEATURES}`)
    const size = input.uint('trainingSize')
    if (size !== this.options.trainingSize) input.fail('trainingSize', `a window of ${size} rows, this scorer keeps ${this.options.trainingSize}`)
    const slot = new Slot(size)
    slot.count = input.uint('count', size)
    slot.head = input.uint('head', size - 1)
    if (slot.count < size && slot.head !== slot.count) input.fail('head', `a window of ${slot.count} rows is written up to ${slot.count}, not ${slot.head}`)
    slot.fresh = input.uint('fresh')
    slot.sequence = input.uint('sequence')
    slot.lastTrainedAt = input.f64('lastTrainedAt')
    if (Number.isNaN(slot.lastTrainedAt)) input.fail('lastTrainedAt', 'NaN')
    slot.lastSamples = input.uint('lastSamples')
    input.f32s('rows', slot.buffer, 0, slot.count * FEATURES)
    if (input.bool('pending')) {
      const sequence = input.uint('pending.sequence')
      if (sequence <= slot.sequence) input.fail('pending.sequence', `${sequence}, after model ${slot.sequence}`)
      const version = input.string('pending.version')
      const trainedAt = input.f64('pending.trainedAt')
      const samples = input.uint('pending.samples', slot.count)
      if (samples === 0) input.fail('pending.samples', 'a fit of no rows')
      const rowsLeft = input.uint('pending.rowsLeft')
      const savedFrom = input.uint('pending.savedFrom', samples - 1)
      const savedRows = input.uint('pending.savedRows', samples)
      const saved = savedRows === 0 ? null : new Float32Array(savedRows * FEATURES)
      if (saved !== null) input.f32s('pending.saved', saved)
      const fit: PendingFit = { take: () => { throw new Error('a restored fit is started by restoreKey') }, cancel: () => {} }
      slot.pending = { fit, model: { key, sequence, version, trainedAt, samples }, rowsLeft, saved, savedFrom, savedRows }
    }
    input.end()
    return slot
  }

  /** Drops every model and training row (the worker restores them from the database). */
  clear (): void {
    for (const slot of this.#slots.values()) slot.pending?.fit.cancel()
    this.#slots.clear()
    this.#trained = []
  }
}
