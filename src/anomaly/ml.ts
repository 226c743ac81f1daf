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
  /** Event time between trainings of a key. */
  retrainMs: number
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

class Slot {
  readonly buffer: Float32Array
  /** Next row to write; rows 0 .. count-1 are filled. */
  head = 0
  count = 0
  model: TrainedModel | null = null
  sequence = 0
  lastTrainedAt = -Infinity
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
  if (!(o.contamination > 0 && o.contamination <= 0.5)) throw new AnomalyConfigError('ml.contamination', `must be in (0, 0.5], got ${o.contamination}`)
  if (!Number.isFinite(o.seed)) throw new AnomalyConfigError('ml.seed', `must be finite, got ${o.seed}`)
  if (typeof o.instance !== 'string' || /[\s#@]/.test(o.instance)) throw new AnomalyConfigError('ml.instance', `must be a string without spaces, # or @, got ${String(o.instance)}`)
  return o
}

/**
 * Isolation Forest per sensor type (or per sensor), trained online on event time: the first model
 * once a key has `minSamples` feature vectors, then a new one every `retrainMs` of event time on
 * the newest `trainingSize`. A reading is scored by the model current before it arrived, then
 * joins the training rows.
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
  readonly #trainer: ForestTrainer | null
  #trained: TrainedModel[] = []
  /** Bumped by `clear`: a background result for an older generation is dropped. */
  #generation = 0
  readonly #pending = new Set<Promise<void>>()
  /** Background trainings that failed (the key trains again at its next due time). */
  trainingFailures = 0

  constructor (options: Partial<ForestOptions> = {}, trainer: ForestTrainer | null = null) {
    this.options = Object.freeze(checkOptions({ ...defaultForestOptions, ...options }))
    this.#trainer = trainer
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
    const o = this.options
    if (slot.count >= o.minSamples && !slot.training && (slot.model === null || reading.ts >= slot.lastTrainedAt + o.retrainMs)) {
      this.#train(key, slot, reading.ts)
    }
    slot.buffer.set(features, slot.head * FEATURES)
    slot.head = (slot.head + 1) % o.trainingSize
    if (slot.count < o.trainingSize) slot.count++
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
    if (this.#trainer === null) {
      const random: Random = createRandom(seed)
      const forest = IsolationForest.fit(rows, FEATURES, { nEstimators: o.nEstimators, maxSamples: o.maxSamples, contamination: o.contamination, random })
      this.#add(slot, made({ forest }))
      return
    }
    slot.training = true
    // The schedule moves on now: the next training is due retrainMs after this one was asked for,
    // also after a failure (a broken trainer is not asked again on every reading).
    slot.lastTrainedAt = ts
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
    this.#install(slot, scoring)
    this.#trained.push(model)
  }

  /** Resolves when every background training asked for so far has finished (for tests and shutdown). */
  async settled (): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending)
  }

  #install (slot: Slot, model: TrainedModel): void {
    slot.model = model
    slot.sequence = model.sequence
    slot.lastTrainedAt = model.trainedAt
  }

  /** Models trained since the last call, oldest first (to persist them). */
  drainTrained (): TrainedModel[] {
    const out = this.#trained
    this.#trained = []
    return out
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
      if (m.sequence > slot.sequence) this.#install(slot, m)
    }
  }

  /** Drops every model and training row (the worker restores them from the database). */
  clear (): void {
    this.#slots.clear()
    this.#trained = []
    this.#generation++
  }
}
