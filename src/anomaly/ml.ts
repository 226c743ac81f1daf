import { createRandom, type Random, type Reading } from '../domain/index.ts'
import { AnomalyConfigError } from './errors.ts'
import { FEATURES } from './features.ts'
import { IsolationForest } from './isolation-forest/index.ts'

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

/** What a background trainer fits: a copy of the training rows and everything the fit depends on. */
export interface TrainingJob {
  key: string
  sequence: number
  trainedAt: number
  /** Row-major, `samples` × `FEATURES` (a copy the trainer may keep or transfer). */
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

/** Fits forests away from the hot path (a worker thread); the scorer installs each model when it arrives. */
export interface ForestTrainer {
  train(job: TrainingJob): Promise<FittedForest>
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
  /** A background training of this slot is running. */
  training = false

  constructor (rows: number) {
    this.buffer = new Float32Array(rows * FEATURES)
  }
}

function hash32 (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

function checkOptions (o: ForestOptions): ForestOptions {
  if (o.scope !== 'type' && o.scope !== 'sensor') throw new AnomalyConfigError('ml.scope', `must be "type" or "sensor", got ${String(o.scope)}`)
  const ints: Array<[keyof ForestOptions, number]> = [['minSamples', 2], ['trainingSize', 2], ['nEstimators', 1], ['maxSamples', 2]]
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
 * `trainingSize`. A reading is scored by the model current before it arrived, then joins the
 * training rows. One live model per key: a new one replaces the old, which nothing here keeps
 * (memory is flat in the length of the stream; `drainTrained` hands the stored ones on).
 *
 * Without a trainer, training runs inside `assign` (a few milliseconds, see `npm run bench --
 * detect`): results depend only on the readings and the seed, as replays and evaluations need.
 * With a `ForestTrainer` (the live worker), the rows are copied and fitted in the background; the
 * current model keeps scoring until the new one is installed, so training never stalls the stream,
 * and every verdict names the model that gave it.
 */
export class ForestScorer implements MlScorer {
  readonly options: Readonly<ForestOptions>
  readonly #slots = new Map<string, Slot>()
  readonly policy: RetrainPolicy
  readonly #trainer: ForestTrainer | null
  readonly #retain: boolean
  #trained: TrainedModel[] = []
  /** Models trained and installed since construction (also those `drainTrained` took, and with `retainTrained` off). */
  modelsTrained = 0
  /** Bumped by `clear`: a background result for an older generation is dropped. */
  #generation = 0
  readonly #pending = new Set<Promise<void>>()
  /** Background trainings that failed (the key trains again at its next due time). */
  trainingFailures = 0

  constructor (options: Partial<ForestOptions> = {}, trainer: ForestTrainer | null = null, scorer: ForestScorerOptions = {}) {
    this.options = Object.freeze(checkOptions({ ...defaultForestOptions, ...options }))
    this.policy = new RetrainPolicy(this.options)
    this.#trainer = trainer
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
    if (!slot.training && this.policy.due(slot, reading.ts)) this.#train(key, slot, reading.ts)
    const size = this.options.trainingSize
    slot.buffer.set(features, slot.head * FEATURES)
    slot.head = slot.head + 1 === size ? 0 : slot.head + 1
    slot.fresh++
    if (slot.count < size) slot.count++
    return slot.model
  }

  #train (key: string, slot: Slot, ts: number): void {
    const o = this.options
    const sequence = slot.sequence + 1
    const seed = (o.seed ^ hash32(key) ^ Math.imul(sequence, 0x9e3779b9)) >>> 0
    const samples = slot.count
    const rows = slot.buffer.subarray(0, samples * FEATURES)
    const version = o.instance === '' ? `${key}#${sequence}` : `${key}#${sequence}@${o.instance}`
    const made = (f: FittedForest): TrainedModel => ({ key, sequence, version, trainedAt: ts, samples, ...f })
    // The schedule moves on now, for a background training too (the next is due after this one was
    // asked for, also after a failure: a broken trainer is not asked again on every reading).
    slot.lastTrainedAt = ts
    slot.lastSamples = samples
    slot.fresh = 0
    if (this.#trainer === null) {
      const random: Random = createRandom(seed)
      const forest = IsolationForest.fit(rows, FEATURES, { nEstimators: o.nEstimators, maxSamples: o.maxSamples, contamination: o.contamination, random })
      this.#add(slot, made({ forest }))
      return
    }
    slot.training = true
    const generation = this.#generation
    const job: TrainingJob = { key, sequence, trainedAt: ts, rows: rows.slice(), samples, nEstimators: o.nEstimators, maxSamples: o.maxSamples, contamination: o.contamination, seed }
    const done = this.#trainer.train(job).then(fitted => {
      if (generation !== this.#generation) return
      slot.training = false
      if (sequence > slot.sequence) this.#add(slot, made(fitted))
    }, () => {
      if (generation !== this.#generation) return
      slot.training = false
      this.trainingFailures++
    })
    this.#pending.add(done)
    done.finally(() => this.#pending.delete(done)).catch(() => {}) // done never rejects
  }

  #add (slot: Slot, model: TrainedModel): void {
    // The stored form goes to storage once (drainTrained); the model that scores does not keep it.
    const { encoded: _stored, ...scoring } = model
    slot.model = scoring
    slot.sequence = model.sequence
    this.modelsTrained++
    if (this.#retain) this.#trained.push(model)
  }

  /** Resolves when every background training asked for so far has finished (for tests and shutdown). */
  async settled (): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending)
  }

  /** A stored model becomes the key's current one, and the schedule goes on from its training. */
  #restore (slot: Slot, model: TrainedModel): void {
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

  /** Installs stored models (the newest per key wins); training rows start empty. */
  restore (models: Iterable<TrainedModel>): void {
    for (const m of models) {
      let slot = this.#slots.get(m.key)
      if (slot === undefined) {
        slot = new Slot(this.options.trainingSize)
        this.#slots.set(m.key, slot)
      }
      if (m.sequence > slot.sequence) this.#restore(slot, m)
    }
  }

  /** Drops every model and training row (the worker restores them from the database). */
  clear (): void {
    this.#slots.clear()
    this.#trained = []
    this.#generation++
  }
}
