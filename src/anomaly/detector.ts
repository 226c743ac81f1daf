import { type Reading, type Severity, type Verdict } from '../domain/index.ts'
import { AnomalyStateError } from './errors.ts'
import { FEATURES, FeatureExtractor, featureNames, standardize } from './features.ts'
import { mlScoreOf, type MlScore, type MlScorer, type TrainedModel } from './ml.ts'
import { RuleEngine, type PreviousValue, type RuleConfig, type RuleResult } from './rules.ts'
import { ZScoreDetector, type ZScoreOptions, type ZScoreSnapshot } from './zscore.ts'

/** |z| from which the z-score alone makes a reading a `major` anomaly. */
export const MAJOR_Z = 6
/** Rows of one model in a batch from which batch scoring pays for loading the model into the scoring arena. */
const BATCH_MIN = 32

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
 * The previous reading for the rate rule is the latest by event time that broke no rule: a
 * reading older than it is still scored (range and z-score; the rate rule is skipped) but does
 * not become the previous reading, and neither does a reading a rule flagged.
 *
 * The ML scorer sees the seven features of `features.ts`, standardized by the sensor's z-score
 * baseline (so it scores nothing while that baseline warms up). The combined verdict:
 * - `critical`: a rule fired;
 * - `major`: |z| >= MAJOR_Z, or the z-score and the Isolation Forest both flag the reading;
 * - `minor`: the z-score or the Isolation Forest alone (the reading is not called anomalous).
 */
export class Detector {
  readonly rules: RuleEngine
  readonly zscore: ZScoreDetector
  readonly ml: MlScorer | null
  readonly #previous = new Map<string, PreviousValue>()
  readonly features = new FeatureExtractor()
  readonly #raw = new Float64Array(FEATURES)
  readonly #shares = new Float64Array(FEATURES)
  // What the first pass of a batch noted per reading, for scoring and the verdicts.
  #capacity = 0
  #rows = new Float32Array(0)
  #means = new Float64Array(0)
  #stds = new Float64Array(0)
  #rates = new Float64Array(0)
  #scores = new Float64Array(0)
  #zs: Array<number | null> = []
  #ruleResults: RuleResult[] = []
  #models: Array<TrainedModel | null> = []
  #scratch = new Float32Array(0)

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
    return this.detectMany([reading])[0] as Verdict
  }

  /**
   * The verdicts of readings in arrival order: exactly what `detect` on each in turn gives, with the
   * Isolation Forest scoring the batch's rows of each model together (several times faster than row
   * by row).
   */
  detectMany (readings: readonly Reading[]): Verdict[] {
    const n = readings.length
    this.#reserve(n)
    for (let i = 0; i < n; i++) this.#observe(readings[i] as Reading, i)
    this.#scoreRows(n)
    const out = new Array<Verdict>(n)
    for (let i = 0; i < n; i++) out[i] = this.#verdict(readings[i] as Reading, i)
    return out
  }

  #reserve (n: number): void {
    if (n <= this.#capacity) return
    const c = Math.max(n, 2 * this.#capacity, 16)
    this.#capacity = c
    this.#rows = new Float32Array(c * FEATURES)
    this.#means = new Float64Array(c)
    this.#stds = new Float64Array(c)
    this.#rates = new Float64Array(c)
    this.#scores = new Float64Array(c)
  }

  /** Rules, z-score and features of reading i, in order (the state moves on); notes the model that will score it. */
  #observe (reading: Reading, i: number): void {
    const id = reading.sensorId
    const prev = this.#previous.get(id)
    const rule = this.rules.evaluate(reading, prev ?? null)
    this.#ruleResults[i] = rule
    this.#rates[i] = rule.reason === 'rate' && prev !== undefined ? (reading.value - prev.value) * 1000 / (reading.ts - prev.ts) : NaN
    // The rate rule compares with the sensor's last reading that broke no rule: a spike is one
    // jump, not two (its fall back to normal is not another anomaly).
    if (!Number.isFinite(reading.value) || !Number.isFinite(reading.ts) || rule.anomaly) {
      // Not a valid reading (validation upstream rejects these), or one that broke a rule: no new previous value.
    } else if (prev === undefined) this.#previous.set(id, { value: reading.value, ts: reading.ts })
    else if (reading.ts >= prev.ts) {
      prev.value = reading.value
      prev.ts = reading.ts
    }
    this.#zs[i] = this.zscore.update(id, reading.value)
    const mean = this.#means[i] = this.zscore.lastMean
    this.#stds[i] = this.zscore.lastStd
    this.features.extract(id, reading.value, reading.ts, this.#raw)
    let model: TrainedModel | null = null
    if (this.ml !== null && Number.isFinite(mean) && Number.isFinite(reading.value)) {
      const row = this.#rows.subarray(i * FEATURES, (i + 1) * FEATURES)
      standardize(this.#raw, mean, this.#stds[i] as number, row)
      model = this.ml.assign(reading, row)
    }
    this.#models[i] = model
  }

  /** score_samples of every row with a model: the rows of each model in one batch, a lone row by itself. */
  #scoreRows (n: number): void {
    const byModel = new Map<TrainedModel, number[]>()
    for (let i = 0; i < n; i++) {
      const m = this.#models[i]
      if (m === null || m === undefined) continue
      const rows = byModel.get(m)
      if (rows === undefined) byModel.set(m, [i])
      else rows.push(i)
    }
    for (const [model, rows] of byModel) {
      const forest = model.forest
      if (rows.length < BATCH_MIN) {
        for (const i of rows) this.#scores[i] = forest.scoreSample(this.#rows, i * FEATURES)
        continue
      }
      if (this.#scratch.length < rows.length * FEATURES) this.#scratch = new Float32Array(rows.length * FEATURES * 2)
      const scratch = this.#scratch.subarray(0, rows.length * FEATURES)
      rows.forEach((i, k) => { scratch.set(this.#rows.subarray(i * FEATURES, (i + 1) * FEATURES), k * FEATURES) })
      const scores = forest.scoreSamples(scratch)
      rows.forEach((i, k) => { this.#scores[i] = scores[k] as number })
    }
  }

  #verdict (reading: Reading, i: number): Verdict {
    const rule = this.#ruleResults[i] as RuleResult
    const z = this.#zs[i] as number | null
    const model = this.#models[i] ?? null
    const ml = model === null ? null : mlScoreOf(model, this.#scores[i] as number)
    const zAnomaly = this.zscore.isAnomaly(z)
    const severity = severityOf(rule.anomaly, z, zAnomaly, ml?.anomaly ?? false)
    return {
      ruleAnomaly: rule.anomaly,
      zScore: z,
      zAnomaly,
      mlScore: ml === null ? null : ml.score,
      mlAnomaly: ml === null ? null : ml.anomaly,
      modelVersion: ml === null ? null : ml.modelVersion,
      anomaly: severity === 'critical' || severity === 'major',
      severity,
      explanation: severity === null ? null : this.#explain(reading, i, rule, z, zAnomaly, ml)
    }
  }

  /** One clause per detector that fired, e.g. `rule: above max 35 °C; z +8.1 (baseline 22 ± 0.5 °C); ml 0.71 (temperature#3): value +7.9σ 64%, rolling_range +3.1σ 18%`. */
  #explain (r: Reading, i: number, rule: RuleResult, z: number | null, zAnomaly: boolean, ml: MlScore | null): string {
    const unit = r.unit === '' ? '' : ` ${r.unit}`
    const parts: string[] = []
    if (rule.anomaly) {
      const t = this.rules.thresholdFor(r.sensorType, r.location)
      if (rule.reason === 'above_max') parts.push(`rule: above max ${fmt(t?.max)}${unit}`)
      else if (rule.reason === 'below_min') parts.push(`rule: below min ${fmt(t?.min)}${unit}`)
      else parts.push(`rule: rate ${fmt(this.#rates[i])}${unit}/s beyond ±${fmt(t?.maxRatePerSec)}${unit}/s`)
    }
    if (zAnomaly && z !== null) parts.push(`z ${signed(z)} (baseline ${fmt(this.#means[i])} ± ${fmt(this.#stds[i])}${unit})`)
    if (ml?.anomaly === true) {
      const base = i * FEATURES
      const shares = ml.model.forest.explain(this.#rows, this.#shares, base)
      const order = [...shares.keys()].sort((a, b) => (shares[b] as number) - (shares[a] as number)).slice(0, 2)
      const top = order.filter(f => (shares[f] as number) > 0)
        .map(f => `${featureNames[f] as string} ${signed(this.#rows[base + f] as number)}${f === 1 || f === 2 ? '' : 'σ'} ${Math.round((shares[f] as number) * 100)}%`)
      parts.push(`ml ${ml.score.toFixed(2)} (${ml.modelVersion})${top.length > 0 ? ': ' + top.join(', ') : ''}`)
    }
    return parts.join('; ')
  }

  /** Drops all state of a sensor. */
  forget (sensorId: string): boolean {
    const a = this.#previous.delete(sensorId)
    const b = this.zscore.forget(sensorId)
    this.features.forget(sensorId)
    return a || b
  }

  clear (): void {
    this.#previous.clear()
    this.zscore.clear()
    this.features.clear()
    this.ml?.clear?.()
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

/**
 * The combined verdict: `critical` when a rule fired; `major` when the z-score fired with |z| >=
 * MAJOR_Z or together with the Isolation Forest; `minor` when the z-score or the forest fired alone;
 * null when nothing fired.
 */
export function severityOf (ruleAnomaly: boolean, z: number | null, zAnomaly: boolean, mlAnomaly: boolean): Severity | null {
  if (ruleAnomaly) return 'critical'
  if (zAnomaly && (mlAnomaly || (z !== null && Math.abs(z) >= MAJOR_Z))) return 'major'
  return zAnomaly || mlAnomaly ? 'minor' : null
}

/**
 * One number in [0, 1] for ranking readings (higher = more anomalous): the strongest detector on a
 * common scale. A fired rule is 1; a z-score maps to |z| / (|z| + 3), 0.5 at the 3σ threshold;
 * the Isolation Forest gives its own score (about 0.5 and below for ordinary readings).
 */
export function anomalyScore (v: Verdict): number {
  if (v.ruleAnomaly) return 1
  let s = 0
  if (v.zScore !== null) {
    const a = Math.abs(v.zScore)
    s = a === Infinity ? 1 : a / (a + 3)
  }
  return v.mlScore !== null && v.mlScore > s ? v.mlScore : s
}

/** Compact: no trailing zeros (35, 21.3, 0.9), at most one decimal from 1, two significant digits below. */
function fmt (x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return String(x)
  const a = Math.abs(x)
  return String(Number(a >= 100 ? x.toFixed(0) : a >= 1 ? x.toFixed(1) : x.toPrecision(2)))
}

function signed (x: number): string {
  return x >= 0 ? `+${fmt(x)}` : fmt(x)
}
