import { type Severity, type Verdict } from '../domain/index.ts'

/**
 * The calibrated anomaly score: one [0, 1] scale for every detector, 0.5 its decision threshold.
 *
 * Each detector's evidence is put over the evidence at which it alone decides "anomaly", giving a
 * ratio r (1 = exactly at its threshold), and mapped with s = r² / (1 + r²): 0 for no evidence,
 * 0.2 at half the threshold, 0.5 at it, 0.8 at twice it, 1 beyond doubt. The score of a reading
 * is the highest over its detectors, and the combined verdict is `anomaly_score >= 0.5`:
 *
 * | detector | r |
 * |---|---|
 * | rule | fired: score 1 (the user's own limit) |
 * | z-score | abs(z) / 6, or abs(z) / 4 when the Isolation Forest flags the reading too |
 * | stuck | repeats in the flat run / repeats it needs (below 1 until it is called stuck) |
 * | drift | CUSUM statistic / h (below 1 until it is called a drift) |
 * | Isolation Forest alone | half of s(its score / its threshold): below 0.5 always, since by construction it flags its contamination (5 %) of normal rows |
 *
 * The thresholds are where normal data rarely goes: abs(z) > 6 is about 2 in 10^9 for normal noise
 * (robust z: a few in 10^6 for the heavier tails of real sensors); a flat run needs twice the
 * sensor's usual longest one; CUSUM with k = 1 and h = 8 alarms about once in 10^7 readings of
 * independent noise. Measured on anomaly-free series (a constant, a daily cycle with and without
 * noise, a random walk, SKAB's anomaly-free recording): README "Anomaly detection".
 */
export const THRESHOLD = 0.5
/** abs(z) at which the z-score alone reaches the threshold. */
export const MAJOR_Z = 6
/** abs(z) at which the z-score reaches it when the Isolation Forest agrees. */
export const CORROBORATED_Z = 5
/** Ratios of a detector that did not decide "anomaly" stay below this (its score below the threshold). */
const BELOW = 0.99

/** s = r² / (1 + r²) of a ratio to a decision threshold: 0.5 at r = 1. */
export function ratioScore (r: number): number {
  if (!(r > 0)) return 0
  if (r === Infinity) return 1
  const q = r * r
  return q / (1 + q)
}

/** What each detector said about a reading, as the score needs it. */
export interface ScoreInputs {
  rule: boolean
  /** z against the baseline (null while it warms up). */
  z: number | null
  /** The forest flagged the reading (null: no model yet). */
  mlAnomaly: boolean | null
  /** The forest's score over its decision threshold (0 when no model). */
  mlRatio: number
  stuck: boolean
  /** Repeats of the flat run's first value over the repeats it needs to be stuck. */
  stuckRatio: number
  drift: boolean
  /** abs(CUSUM statistic) over h. */
  driftRatio: number
}

/** The detector's ratio, at least 1 when it decided "anomaly" and below 1 when not. */
function decided (flag: boolean, r: number): number {
  return flag ? (r > 1 ? r : 1) : (r < BELOW ? r : BELOW)
}

/** The calibrated score of a reading (see `THRESHOLD`). */
export function scoreOf (x: ScoreInputs): number {
  if (x.rule) return 1
  let s = 0
  if (x.z !== null) {
    const a = Math.abs(x.z)
    s = ratioScore(a / (x.mlAnomaly === true ? CORROBORATED_Z : MAJOR_Z))
  }
  const stuck = ratioScore(decided(x.stuck, x.stuckRatio))
  if (stuck > s) s = stuck
  const drift = ratioScore(decided(x.drift, x.driftRatio))
  if (drift > s) s = drift
  const ml = 0.5 * ratioScore(x.mlRatio)
  return ml > s ? ml : s
}

/**
 * The combined verdict's severity: `critical` when a rule fired, `major` when the score passed the
 * threshold otherwise, `minor` when a detector was surprised by its own standard (abs(z) beyond
 * its threshold, the forest flagged it) without the score passing; null when nothing fired.
 */
export function severityOf (ruleAnomaly: boolean, score: number, surprised: boolean): Severity | null {
  if (ruleAnomaly) return 'critical'
  if (score >= THRESHOLD) return 'major'
  return surprised ? 'minor' : null
}

/** The calibrated score a verdict carries (higher = more anomalous; the verdict is an anomaly iff >= 0.5). */
export function anomalyScore (v: Verdict): number {
  return v.anomalyScore
}

/**
 * The score of a stored verdict, whose detectors' evidence was not all kept: the rule, z and the
 * stuck/drift flags decide it (a flagged stuck run or drift at its threshold, 0.5).
 */
export function storedScore (v: Pick<Verdict, 'ruleAnomaly' | 'zScore' | 'mlAnomaly' | 'stuck' | 'drift'>): number {
  return scoreOf({ rule: v.ruleAnomaly, z: v.zScore, mlAnomaly: v.mlAnomaly, mlRatio: 0, stuck: v.stuck, stuckRatio: 1, drift: v.drift, driftRatio: 1 })
}
