import { type Reading, type Verdict } from '../domain/index.ts'
import { DriftDetector, type DriftOptions } from './drift.ts'
import { FEATURES, FeatureExtractor, featureNames, standardize } from './features.ts'
import { mlScoreOf, type MlScore, type MlScorer, type TrainedModel } from './ml.ts'
import { ResolutionEstimator } from './resolution.ts'
import { RuleEngine, type PreviousValue, type RuleConfig, type RuleResult } from './rules.ts'
import { MAJOR_Z, scoreOf, severityOf } from './score.ts'
import { DailyProfile, type DailyProfileOptions } from './seasonal.ts'
import { SnapshotReader, SnapshotWriter, type StateInstaller } from './snapshot.ts'
import { StuckDetector, type StuckOptions } from './stuck.ts'
import { ZScoreDetector, type ZScoreOptions } from './zscore.ts'

/** Rows of one model in a batch from which batch scoring pays for loading the model into the scoring arena. */
const BATCH_MIN = 32

/** The sections of a sensor's snapshot: one per part of the detector with state for it. */
const sections = Object.freeze({ previous: 1, resolution: 2, seasonal: 3, zscore: 4, stuck: 5, drift: 6, features: 7 })
const sectionNames = new Map<number, string>(Object.entries(sections).map(([name, tag]) => [tag, name]))

/**
 * The event time of the newest reading behind a sensor's snapshot (`Detector.snapshotSensor`):
 * after `restoreSensor`, replay the sensor's stored readings newer than this. -Infinity for a
 * sensor that never had a reading's features. Throws `AnomalyStateError` on damaged bytes.
 */
export function snapshotLastTs (bytes: Uint8Array): number {
  return new SnapshotReader(bytes, 'detector').f64('lastTs')
}

export interface DetectorOptions {
  /** Rule thresholds, or a ready engine. Default `defaultRuleConfig`. */
  rules?: RuleConfig | RuleEngine | undefined
  /** z-score options, or a ready detector. Defaults of `ZScoreDetector`. */
  zscore?: ZScoreOptions | ZScoreDetector | undefined
  /** Flat-line options, or a ready detector; `false` turns it off. Defaults of `StuckDetector`. */
  stuck?: StuckOptions | StuckDetector | false | undefined
  /** Drift options, or a ready detector; `false` turns it off. Defaults of `DriftDetector`. */
  drift?: DriftOptions | DriftDetector | false | undefined
  /** Daily profile options; `false` turns the seasonal baseline off. Defaults of `DailyProfile`. */
  seasonal?: DailyProfileOptions | false | undefined
  /** Declared resolution per sensor type (the smallest step its sensors show), beside the learnt one. */
  resolution?: Readonly<Record<string, number>> | undefined
  ml?: MlScorer | null | undefined
}

/**
 * Runs every per-reading detector and returns one `Verdict`. Feed it each sensor's readings in
 * arrival order, once each (de-duplicate redelivered readings before `detect`: the baselines are
 * stateful). Pure: no I/O, no clock; all time comes from `reading.ts`. Memory per sensor is
 * bounded (about 4 KB: the z-score window, the flat-run histogram, the daily profile, the drift rings).
 *
 * Per reading, in order:
 * - rules (range, and the rate against the sensor's last reading that no rule and no z-score
 *   flagged: a spike is one jump, not two);
 * - the sensor's resolution (`resolution.ts`) and its daily profile (`seasonal.ts`: 0 unless the
 *   sensor has a daily cycle), which the baselines work on the value minus;
 * - the robust z-score (`zscore.ts`), the flat-line test (`stuck.ts`) on the raw value, the drift
 *   test (`drift.ts`);
 * - what the baselines learn: stuck or drifting values stay out of the z-score window (a stuck
 *   run must not become a flat baseline, a drift not the normal it is judged against); rule and
 *   stuck values and spikes (|z| >= 6) stay out of the drift test; the daily profile learns only
 *   from readings no detector flagged, and when it switches on or off the z-score window and the
 *   drift state of the sensor start over (values with and without the profile do not mix);
 * - the Isolation Forest on the seven features of `features.ts`, put on the sensor's own scale by
 *   the z-score baseline (so it scores nothing while that baseline warms up).
 * The combined verdict is the calibrated score of `score.ts`: anomaly iff it is >= 0.5.
 *
 * A sensor's state (every part's, not the forest's: `ForestScorer.snapshotKey`) can be saved with
 * `snapshotSensor` and put back with `restoreSensor`: a detector restored so goes on exactly as
 * the one that saved it (the same verdicts, bit for bit, with the same options).
 */
export class Detector {
  readonly rules: RuleEngine
  readonly zscore: ZScoreDetector
  readonly stuck: StuckDetector | null
  readonly drift: DriftDetector | null
  readonly seasonal: DailyProfile | null
  readonly resolution: ResolutionEstimator
  readonly ml: MlScorer | null
  readonly #previous = new Map<string, PreviousValue>()
  readonly features = new FeatureExtractor()
  readonly #raw = new Float64Array(FEATURES)
  readonly #shares = new Float64Array(FEATURES)
  // What the first pass of a batch noted per reading, for scoring and the verdicts.
  #capacity = 0
  #rows = new Float32Array(0)
  #centers = new Float64Array(0)
  #scales = new Float64Array(0)
  #profile = new Float64Array(0)
  #rates = new Float64Array(0)
  #scores = new Float64Array(0)
  #stuckRun = new Float64Array(0)
  #stuckMs = new Float64Array(0)
  #stuckNeed = new Float64Array(0)
  #stuckValue = new Float64Array(0)
  #driftStat = new Float64Array(0)
  #driftResidual = new Float64Array(0)
  #driftReference = new Float64Array(0)
  #flags = new Uint8Array(0)
  #zs: Array<number | null> = []
  #ruleResults: RuleResult[] = []
  #models: Array<TrainedModel | null> = []
  #scratch = new Float32Array(0)

  constructor (options: DetectorOptions = {}) {
    const { rules, zscore, stuck, drift, seasonal, ml } = options
    this.rules = rules instanceof RuleEngine ? rules : new RuleEngine(rules)
    this.zscore = zscore instanceof ZScoreDetector ? zscore : new ZScoreDetector(zscore)
    this.stuck = stuck === false ? null : stuck instanceof StuckDetector ? stuck : new StuckDetector(stuck)
    this.drift = drift === false ? null : drift instanceof DriftDetector ? drift : new DriftDetector(drift)
    this.seasonal = seasonal === false ? null : new DailyProfile(seasonal)
    this.resolution = new ResolutionEstimator(options.resolution)
    this.ml = ml ?? null
  }

  /** Number of sensors with state. */
  get size (): number {
    return this.resolution.size
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
    this.#centers = new Float64Array(c)
    this.#scales = new Float64Array(c)
    this.#profile = new Float64Array(c)
    this.#rates = new Float64Array(c)
    this.#scores = new Float64Array(c)
    this.#stuckRun = new Float64Array(c)
    this.#stuckMs = new Float64Array(c)
    this.#stuckNeed = new Float64Array(c)
    this.#stuckValue = new Float64Array(c)
    this.#driftStat = new Float64Array(c)
    this.#driftResidual = new Float64Array(c)
    this.#driftReference = new Float64Array(c)
    this.#flags = new Uint8Array(c)
  }

  /** Every detector's state step for reading i, in order (the state moves on); notes the model that will score it. */
  #observe (reading: Reading, i: number): void {
    const id = reading.sensorId
    const value = reading.value
    const ts = reading.ts
    const prev = this.#previous.get(id)
    const rule = this.rules.evaluate(reading, prev ?? null)
    this.#ruleResults[i] = rule
    this.#rates[i] = rule.reason === 'rate' && prev !== undefined ? (value - prev.value) * 1000 / (ts - prev.ts) : NaN
    const resolution = this.resolution.observe(id, reading.sensorType, value)
    const seasonal = this.seasonal
    const profile = seasonal === null ? 0 : seasonal.offset(id, ts)
    this.#profile[i] = profile
    const y = value - profile
    const zscore = this.zscore
    const uncertainty = seasonal === null ? 0 : seasonal.uncertainty(id, ts)
    const z = zscore.measure(id, y, resolution, uncertainty)
    this.#zs[i] = z
    const center = this.#centers[i] = zscore.lastCenter + profile
    const scale = this.#scales[i] = zscore.lastScale
    const zAnomaly = zscore.isAnomaly(z)
    let stuck = false
    if (this.stuck !== null) {
      const s = this.stuck
      stuck = s.update(id, reading.sensorType, value, ts, resolution)
      this.#stuckRun[i] = s.lastReadings
      this.#stuckMs[i] = s.lastMs
      this.#stuckNeed[i] = s.lastNeed
      this.#stuckValue[i] = s.lastValue
    }
    let drift = false
    if (this.drift !== null) {
      const d = this.drift
      // A rule or a stuck value says nothing about a drift, nor does a spike (beyond the z-score's
      // own decision); a value moderately off the z baseline may be the drift itself.
      drift = d.update(id, y, ts, rule.anomaly || stuck, z !== null && Math.abs(z) >= MAJOR_Z,
        seasonal === null || seasonal.pattern(id) !== 'learning', resolution, uncertainty)
      this.#driftStat[i] = d.lastStatistic
      this.#driftResidual[i] = d.lastResidual
      this.#driftReference[i] = d.lastReference + profile
    }
    this.#flags[i] = (stuck ? 1 : 0) | (drift ? 2 : 0)
    // Stuck or drifting values must not become the baseline they are judged against.
    zscore.commit(id, y, z, stuck || drift)
    const normal = !rule.anomaly && !zAnomaly
    if (normal && !stuck && !drift && seasonal?.learn(id, value, ts) === true) {
      // The daily profile was switched on or off: the baselines of the value without it start over.
      zscore.forget(id)
      this.drift?.forget(id)
    }
    // The rate rule compares with the sensor's last reading that no rule and no z-score flagged.
    if (normal && Number.isFinite(value) && Number.isFinite(ts)) {
      if (prev === undefined) this.#previous.set(id, { value, ts })
      else if (ts >= prev.ts) {
        prev.value = value
        prev.ts = ts
      }
    }
    this.features.extract(id, value, ts, this.#raw)
    let model: TrainedModel | null = null
    if (this.ml !== null && Number.isFinite(center) && Number.isFinite(value)) {
      const row = this.#rows.subarray(i * FEATURES, (i + 1) * FEATURES)
      standardize(this.#raw, center, scale, row)
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
    const flags = this.#flags[i] as number
    const stuck = (flags & 1) !== 0
    const drift = (flags & 2) !== 0
    const need = this.#stuckNeed[i] as number
    const score = scoreOf({
      rule: rule.anomaly,
      z,
      mlAnomaly: ml?.anomaly ?? null,
      // The forest's score over its threshold (score_samples below offset_ is an anomaly; both negative).
      mlRatio: ml === null ? 0 : ml.score / -ml.model.forest.offset,
      stuck,
      // Repeats of the run's first value over the repeats it needs: 1 at the reading it is stuck.
      stuckRatio: need > 1 ? ((this.#stuckRun[i] as number) - 1) / (need - 1) : 0,
      drift,
      driftRatio: this.drift === null ? 0 : Math.abs(this.#driftStat[i] as number) / this.drift.h
    })
    const severity = severityOf(rule.anomaly, score, zAnomaly || ml?.anomaly === true)
    return {
      ruleAnomaly: rule.anomaly,
      zScore: z,
      zAnomaly,
      mlScore: ml === null ? null : ml.score,
      mlAnomaly: ml === null ? null : ml.anomaly,
      modelVersion: ml === null ? null : ml.modelVersion,
      stuck,
      drift,
      anomalyScore: score,
      anomaly: score >= 0.5,
      severity,
      explanation: severity === null ? null : this.#explain(reading, i, rule, z, zAnomaly, stuck, drift, ml)
    }
  }

  /**
   * One clause per detector that fired, e.g. `rule: above max 35 °C; z +8.1 (baseline 22 ± 0.5 °C);
   * stuck: 22.3 °C for 12 readings (11 s; needs 5); drift: +3.2σ from 21.9 °C (CUSUM 9.1 ≥ 8);
   * ml 0.71 (temperature#3): value +7.9σ 64%, rolling_range +3.1σ 18%`.
   */
  #explain (r: Reading, i: number, rule: RuleResult, z: number | null, zAnomaly: boolean, stuck: boolean, drift: boolean, ml: MlScore | null): string {
    const unit = r.unit === '' ? '' : ` ${r.unit}`
    const parts: string[] = []
    if (rule.anomaly) {
      const t = this.rules.thresholdFor(r.sensorType, r.location)
      if (rule.reason === 'above_max') parts.push(`rule: above max ${fmt(t?.max)}${unit}`)
      else if (rule.reason === 'below_min') parts.push(`rule: below min ${fmt(t?.min)}${unit}`)
      else parts.push(`rule: rate ${fmt(this.#rates[i])}${unit}/s beyond ±${fmt(t?.maxRatePerSec)}${unit}/s`)
    }
    if (zAnomaly && z !== null) {
      const profile = this.#profile[i] as number
      const daily = profile === 0 ? '' : `, daily profile ${signed(profile)}`
      parts.push(`z ${signed(z)} (baseline ${fmt(this.#centers[i])} ± ${fmt(this.#scales[i])}${unit}${daily})`)
    }
    if (stuck) {
      parts.push(`stuck: ${fmt(this.#stuckValue[i])}${unit} for ${this.#stuckRun[i] as number} readings (${duration(this.#stuckMs[i] as number)}; needs ${this.#stuckNeed[i] as number})`)
    }
    if (drift && this.drift !== null) {
      const stat = this.#driftStat[i] as number
      parts.push(`drift: ${signed(this.#driftResidual[i] as number)}σ from ${fmt(this.#driftReference[i])}${unit} (CUSUM ${fmt(Math.abs(stat))} ≥ ${fmt(this.drift.h)})`)
    }
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

  /**
   * Everything this detector holds for a sensor, as one snapshot (`snapshot.ts`), or null when it
   * has no state: the newest reading's event time (`snapshotLastTs`), then a section per part with
   * state (the rate rule's previous value, the resolution, the daily profile, the z-score window,
   * the flat run, the drift test, the features' history). About 3 KB once every part is warm.
   * Not the Isolation Forest's training rows (per key: `ForestScorer.snapshotKey`).
   */
  snapshotSensor (sensorId: string): Uint8Array | null {
    const out = new SnapshotWriter('detector', 4096)
    out.f64(this.features.lastTs(sensorId) ?? -Infinity)
    const previous = this.#previous.get(sensorId)
    let any = out.section(sections.previous, () => {
      if (previous === undefined) return false
      out.f64(previous.value)
      out.f64(previous.ts)
      return true
    })
    if (out.section(sections.resolution, () => this.resolution.writeSnapshot(sensorId, out))) any = true
    if (out.section(sections.seasonal, () => this.seasonal?.writeSnapshot(sensorId, out) ?? false)) any = true
    if (out.section(sections.zscore, () => this.zscore.writeSnapshot(sensorId, out))) any = true
    if (out.section(sections.stuck, () => this.stuck?.writeSnapshot(sensorId, out) ?? false)) any = true
    if (out.section(sections.drift, () => this.drift?.writeSnapshot(sensorId, out) ?? false)) any = true
    if (out.section(sections.features, () => this.features.writeSnapshot(sensorId, out))) any = true
    return any ? out.finish() : null
  }

  /**
   * Replaces a sensor's state with a snapshot's (of a detector with the same window sizes; the
   * sections of parts this detector runs without are skipped). Damaged bytes, an unknown format
   * version or another kind of snapshot throw `AnomalyStateError` (`IOT_ERR_ANOMALY_STATE`) and
   * leave the sensor with no state: the whole snapshot is checked before any part is installed.
   */
  restoreSensor (sensorId: string, bytes: Uint8Array): void {
    this.forget(sensorId)
    // Typed, so that `fail` (never returns) narrows.
    const input: SnapshotReader = new SnapshotReader(bytes, 'detector')
    input.f64('lastTs')
    const installers: StateInstaller[] = []
    const seen = new Set<number>()
    while (!input.atEnd) {
      const { tag, end } = input.section('section')
      const name = sectionNames.get(tag)
      if (name === undefined) input.fail('section', `unknown section ${tag}`)
      if (seen.has(tag)) input.fail(name, 'twice')
      seen.add(tag)
      input.scope(name)
      if (tag === sections.previous) {
        const value = input.f64('value')
        const ts = input.f64('ts')
        if (!Number.isFinite(value) || !Number.isFinite(ts)) input.fail('', 'not finite')
        installers.push((id) => { this.#previous.set(id, { value, ts }) })
      } else {
        const part = this.#part(tag)
        if (part === null) input.skipTo(end) // a part this detector runs without
        else installers.push(part.readSnapshot(input))
      }
      input.endSection('', end)
      input.scope('')
    }
    input.end()
    for (const install of installers) install(sensorId)
  }

  /** The part whose state a snapshot section holds (null: this detector runs without it). */
  #part (tag: number): { readSnapshot(input: SnapshotReader): StateInstaller } | null {
    switch (tag) {
      case sections.resolution: return this.resolution
      case sections.seasonal: return this.seasonal
      case sections.zscore: return this.zscore
      case sections.stuck: return this.stuck
      case sections.drift: return this.drift
      default: return this.features
    }
  }

  /** Drops all state of a sensor. */
  forget (sensorId: string): boolean {
    const known = this.resolution.forget(sensorId)
    this.#previous.delete(sensorId)
    this.zscore.forget(sensorId)
    this.stuck?.forget(sensorId)
    this.drift?.forget(sensorId)
    this.seasonal?.forget(sensorId)
    this.features.forget(sensorId)
    return known
  }

  clear (): void {
    this.#previous.clear()
    this.resolution.clear()
    this.zscore.clear()
    this.stuck?.clear()
    this.drift?.clear()
    this.seasonal?.clear()
    this.features.clear()
    this.ml?.clear?.()
  }
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

/** 45 s, 12 min, 3.5 h, 2 d. */
function duration (ms: number): string {
  const s = ms / 1000
  if (s < 120) return `${fmt(s)} s`
  if (s < 7200) return `${fmt(s / 60)} min`
  if (s < 172_800) return `${fmt(s / 3600)} h`
  return `${fmt(s / 86_400)} d`
}
