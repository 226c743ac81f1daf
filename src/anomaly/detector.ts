import { type Reading, type Verdict } from '../domain/index.ts'
import { AnomalyStateError } from './errors.ts'
import { RuleEngine, type PreviousValue, type RuleConfig } from './rules.ts'
import { ZScoreDetector, type ZScoreOptions, type ZScoreSnapshot } from './zscore.ts'

/** What an ML scorer says about one reading. */
export interface MlScore {
  /** Higher = more anomalous. */
  score: number
  anomaly: boolean
  /** Version of the model that scored, carried into the verdict. */
  modelVersion: string
}

/**
 * Seam for the Isolation Forest (a later issue). Called once per reading, in arrival order, after
 * the rule and z-score detectors. Returns null while no model exists (the verdict then carries
 * `mlScore: null, mlAnomaly: null, modelVersion: null`).
 */
export interface MlScorer {
  score (reading: Reading, features?: ArrayLike<number>): MlScore | null
}

export interface DetectorOptions {
  /** Rule thresholds, or a ready engine. Default `defaultRuleConfig`. */
  rules?: RuleConfig | RuleEngine | undefined
  /** z-score options, or a ready detector. Defaults of `ZScoreDetector`. */
  zscore?: ZScoreOptions | ZScoreDetector | undefined
  ml?: MlScorer | null | undefined
}

export interface PreviousReadingState {
  sensorId: string
  value: number
  ts: number
}

/** Plain-JSON state of a `Detector`, for persisting and rebuilding a worker's state. */
export interface DetectorSnapshot {
  version: 1
  previous: PreviousReadingState[]
  zscore: ZScoreSnapshot
}

/**
 * Runs every per-reading detector and returns one `Verdict`. Feed it each sensor's readings in
 * arrival order, once each (de-duplicate redelivered readings before `detect`: the baselines are
 * stateful). Pure: no I/O, no clock; all time comes from `reading.ts`.
 *
 * The previous reading for the rate rule is the latest by event time: a reading older than the
 * sensor's previous one is still scored (range and z-score; the rate rule is skipped) but does
 * not become the previous reading.
 */
export class Detector {
  readonly rules: RuleEngine
  readonly zscore: ZScoreDetector
  readonly ml: MlScorer | null
  readonly #previous = new Map<string, PreviousValue>()

  constructor (options: DetectorOptions = {}) {
    const { rules, zscore, ml } = options
    this.rules = rules instanceof RuleEngine ? rules : new RuleEngine(rules)
    this.zscore = zscore instanceof ZScoreDetector ? zscore : new ZScoreDetector(zscore)
    this.ml = ml ?? null
  }

  /** Number of sensors with state (previous value or baseline). */
  get size (): number {
    let n = this.zscore.size
    for (const id of this.#previous.keys()) if (!this.zscore.has(id)) n++
    return n
  }

  detect (reading: Reading): Verdict {
    const id = reading.sensorId
    const prev = this.#previous.get(id)
    const rule = this.rules.evaluate(reading, prev ?? null)
    if (!Number.isFinite(reading.value) || !Number.isFinite(reading.ts)) {
      // Not a valid reading (validation upstream rejects these): leave the state untouched.
    } else if (prev === undefined) this.#previous.set(id, { value: reading.value, ts: reading.ts })
    else if (reading.ts >= prev.ts) {
      prev.value = reading.value
      prev.ts = reading.ts
    }
    const z = this.zscore.update(id, reading.value)
    const ml = this.ml === null ? null : this.ml.score(reading)
    return {
      ruleAnomaly: rule.anomaly,
      zScore: z,
      zAnomaly: this.zscore.isAnomaly(z),
      mlScore: ml === null ? null : ml.score,
      mlAnomaly: ml === null ? null : ml.anomaly,
      modelVersion: ml === null ? null : ml.modelVersion
    }
  }

  /** Drops all state of a sensor. */
  forget (sensorId: string): boolean {
    const a = this.#previous.delete(sensorId)
    const b = this.zscore.forget(sensorId)
    return a || b
  }

  clear (): void {
    this.#previous.clear()
    this.zscore.clear()
  }

  snapshot (): DetectorSnapshot {
    const previous: PreviousReadingState[] = []
    for (const [sensorId, p] of this.#previous) previous.push({ sensorId, value: p.value, ts: p.ts })
    return { version: 1, previous, zscore: this.zscore.snapshot() }
  }

  /** Loads the sensors listed in a snapshot (others are kept). Throws `AnomalyStateError` if malformed. */
  restore (snapshot: DetectorSnapshot): void {
    if (typeof snapshot !== 'object' || snapshot === null) throw new AnomalyStateError('', 'snapshot must be an object')
    if (snapshot.version !== 1) throw new AnomalyStateError('version', `unsupported snapshot version ${String(snapshot.version)}`)
    if (!Array.isArray(snapshot.previous)) throw new AnomalyStateError('previous', 'must be an array')
    snapshot.previous.forEach((p, i) => {
      if (typeof p !== 'object' || p === null || typeof p.sensorId !== 'string' ||
        !Number.isFinite(p.value) || !Number.isFinite(p.ts)) {
        throw new AnomalyStateError(`previous[${i}]`, 'must be { sensorId: string, value: finite, ts: finite }')
      }
    })
    this.zscore.restore(snapshot.zscore)
    for (const p of snapshot.previous) this.#previous.set(p.sensorId, { value: p.value, ts: p.ts })
  }
}
