// The original design's ML detector, reimplemented as the baseline our detection is measured
// against (`npm run bench -- quality`). Kept faithful on purpose, including its train/serve skew:
// - one Isolation Forest per sensor type (100 trees, contamination 0.05), first model after 50
//   samples, retrained every 5 minutes (of event time here; wall time there) on the last 1000;
// - TRAINING features come from a buffer that mixes every sensor of the type: the rate of change
//   is against the previous reading of ANY sensor of that type, and the rolling mean/std/range run
//   over the last 10 readings of the type;
// - SCORING features come from the sensor's own last readings;
// - raw features, no per-sensor scaling; a reading is anomalous when predict() says -1.
import { FEATURES, FeatureExtractor, IsolationForest } from '../src/anomaly/index.ts'
import { createRandom, type Reading } from '../src/domain/index.ts'

interface TypeState {
  buffer: Float32Array
  head: number
  count: number
  model: IsolationForest | null
  lastTrainedAt: number
  trainings: number
}

export class OriginalDetector {
  readonly #byType = new FeatureExtractor()
  readonly #bySensor = new FeatureExtractor()
  readonly #types = new Map<string, TypeState>()
  readonly #train = new Float32Array(FEATURES)
  readonly #score = new Float32Array(FEATURES)

  /** The original's verdict: null before the type's first model. */
  detect (r: Reading): boolean | null {
    let t = this.#types.get(r.sensorType)
    if (t === undefined) {
      t = { buffer: new Float32Array(1000 * FEATURES), head: 0, count: 0, model: null, lastTrainedAt: -Infinity, trainings: 0 }
      this.#types.set(r.sensorType, t)
    }
    this.#byType.extract(r.sensorType, r.value, r.ts, this.#train)
    this.#bySensor.extract(r.sensorId, r.value, r.ts, this.#score)
    t.buffer.set(this.#train, t.head * FEATURES)
    t.head = (t.head + 1) % 1000
    if (t.count < 1000) t.count++
    if (t.count >= 50 && (t.model === null || r.ts >= t.lastTrainedAt + 300_000)) {
      t.model = IsolationForest.fit(t.buffer.subarray(0, t.count * FEATURES), FEATURES, {
        nEstimators: 100, contamination: 0.05, random: createRandom(42 + t.trainings++)
      })
      t.lastTrainedAt = r.ts
    }
    if (t.model === null) return null
    return t.model.scoreSample(this.#score) - t.model.offset < 0
  }
}
