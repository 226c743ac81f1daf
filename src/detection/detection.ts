import {
  CadenceTracker, Detector, ForestScorer, IsolationForest, decodeModel, encodeModel, type ForestOptions, type ForestTrainer, type RuleConfig, type TrainedModel
} from '../anomaly/index.ts'
import { type Reading, type Verdict } from '../domain/index.ts'
import type { StoredModel } from '../storage/index.ts'

/** The detection seam of the worker: one verdict per reading, in arrival order, per-sensor state inside. */
export interface ReadingDetector {
  /** Verdicts of readings in arrival order (state moves on as if `detect` ran on each in turn). */
  detectMany(readings: readonly Reading[]): Verdict[]
  /** Forget all state (after a failed batch or a rebalance); rebuilt from the database. */
  clear?(): void
  /** Models trained since the last call: stored in the transaction of the batch that trained them. */
  drainModels?(): StoredModel[]
  /** Installs stored models (after `clear`, before the warm-up replay); returns the versions it could not read (skipped). */
  restoreModels?(models: readonly StoredModel[]): string[]
  /** The learnt cadence of a sensor (median interval, ms), null until known. */
  cadenceOf?(sensorId: string): number | null
}

export interface DetectionOptions {
  rules?: RuleConfig | undefined
  /** Isolation Forest options; `false` turns the ML detector off. */
  ml?: Partial<ForestOptions> | false | undefined
  /** Fits models in the background (the live worker); without one, training is inline and deterministic. */
  trainer?: ForestTrainer | undefined
  /**
   * Keep each trained model for `drainModels` (the worker stores them). False for replays and
   * evaluations that never store models: only each key's current model is held (memory flat in
   * the length of the series) and `drainModels` returns nothing. Default true.
   */
  storeModels?: boolean | undefined
}

function toStored (m: TrainedModel): StoredModel {
  const f = m.forest
  return {
    version: m.version,
    key: m.key,
    sequence: m.sequence,
    trainedAt: m.trainedAt,
    samples: m.samples,
    nEstimators: f.nEstimators,
    maxSamples: f.maxSamples,
    offset: f.offset,
    model: m.encoded ?? encodeModel(f.toParts())
  }
}

function fromStored (m: StoredModel): TrainedModel {
  // Numbered on after every stored version of the key (a newer one may be listed without its trees).
  const sequence = Math.max(m.sequence, m.lastSequence ?? m.sequence)
  return { key: m.key, sequence, version: m.version, trainedAt: m.trainedAt, samples: m.samples, forest: IsolationForest.fromJSON(decodeModel(m.model)) }
}

/** Rules, z-score and the Isolation Forest, with the forest's models persisted through the worker. */
export class PipelineDetector implements ReadingDetector {
  readonly detector: Detector
  readonly forest: ForestScorer | null
  /** The learnt cadence of every sensor seen (`cadence.median(sensorId)`, ms). */
  readonly cadence = new CadenceTracker()

  constructor (options: DetectionOptions = {}) {
    this.forest = options.ml === false
      ? null
      : new ForestScorer(options.ml ?? {}, options.trainer ?? null, { retainTrained: options.storeModels ?? true })
    this.detector = new Detector({ rules: options.rules, ml: this.forest })
  }

  detectMany (readings: readonly Reading[]): Verdict[] {
    const cadence = this.cadence
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i] as Reading
      cadence.observe(r.sensorId, r.ts)
    }
    return this.detector.detectMany(readings)
  }

  cadenceOf (sensorId: string): number | null {
    return this.cadence.median(sensorId)
  }

  /** Isolation Forest models trained so far (0 without the forest). */
  get modelsTrained (): number {
    return this.forest?.modelsTrained ?? 0
  }

  clear (): void {
    this.detector.clear()
    this.cadence.clear()
  }

  drainModels (): StoredModel[] {
    return this.forest?.drainTrained().map(toStored) ?? []
  }

  restoreModels (models: readonly StoredModel[]): string[] {
    const forest = this.forest
    if (forest === null) return []
    const skipped: string[] = []
    const restored: TrainedModel[] = []
    for (const m of models) {
      try {
        restored.push(fromStored(m))
      } catch (err) {
        // A damaged row must not stop the worker: that key trains a new model from the stream.
        if ((err as { code?: string }).code !== 'IOT_ERR_ANOMALY_STATE') throw err
        skipped.push(m.version)
      }
    }
    forest.restore(restored)
    return skipped
  }
}
