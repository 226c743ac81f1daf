/** Kinds of anomaly the simulator injects (ground truth). Real sensors carry no label. */
export const anomalyKinds = ['spike', 'drift', 'stuck', 'dropout'] as const
export type AnomalyKind = (typeof anomalyKinds)[number]

/**
 * One validated sensor reading. `ts` is event time in epoch milliseconds.
 * Fields are never optional (null instead) so every Reading has one hidden class on the hot path.
 */
export interface Reading {
  sensorId: string
  sensorType: string
  location: string
  value: number
  ts: number
  unit: string
  /** Ground-truth label: true/false from the simulator, null when unknown (real sensors). */
  anomaly: boolean | null
  /** Ground-truth kind of an injected anomaly (simulator only). */
  anomalyKind: string | null
  /** Optional per-sensor sequence number. */
  seq: number | null
}

/**
 * How strongly the detectors agree that a reading is anomalous: `critical` when a configured rule
 * fired, `major` when the calibrated score passed 0.5 otherwise (a very large z, the z-score and
 * the Isolation Forest together, a stuck sensor, a drift), `minor` when a statistical detector is
 * surprised by its own standard but the score stays below 0.5.
 */
export const severities = ['minor', 'major', 'critical'] as const
export type Severity = (typeof severities)[number]

/** What the detectors said about one reading. */
export interface Verdict {
  /** Rule thresholds fired. */
  ruleAnomaly: boolean
  /** z-score against the sensor's rolling baseline; null while the baseline warms up. */
  zScore: number | null
  zAnomaly: boolean
  /** Isolation Forest score in (0, 1), higher = more anomalous; null until a model exists. */
  mlScore: number | null
  mlAnomaly: boolean | null
  modelVersion: string | null
  /** The sensor is stuck: flat (no change of half a resolution step) far longer than it usually is. */
  stuck: boolean
  /** The sensor drifts: a CUSUM on its residuals against a slow reference passed its threshold. */
  drift: boolean
  /**
   * The calibrated score in [0, 1] across detectors (src/anomaly/score.ts): 0.5 is the decision
   * threshold, `anomaly` is `anomalyScore >= 0.5`.
   */
  anomalyScore: number
  /** The combined verdict: severity `major` or `critical` (anomalyScore >= 0.5). */
  anomaly: boolean
  /** null when no detector fired. */
  severity: Severity | null
  /** Which detectors fired and why, for people (null when none did). */
  explanation: string | null
}

/** A reading with its verdict. */
export interface ScoredReading {
  reading: Reading
  verdict: Verdict
}
