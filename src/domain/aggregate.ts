/** One stored window of `sensor_aggregates`, as the API and live events carry it. Times in epoch ms. */
export interface WindowAggregate {
  windowStart: number
  windowEnd: number
  location: string
  sensorType: string
  avg: number
  min: number
  max: number
  stddev: number
  count: number
  /** Rule-based anomalies (the original `anomaly_count`). */
  anomalyCount: number
  labelAnomalyCount: number
  zScoreAnomalies: number
  mlAnomalyCount: number
  combinedAnomalyCount: number
  revision: number
  isFinal: boolean
}

/** One cell of `detection_counts`: stored readings of a sensor type with this label and these verdicts. */
export interface DetectionCount {
  sensorType: string
  /** `normal`, `unlabelled`, or the anomaly kind (`anomaly` for a labelled anomaly without a kind). */
  label: string
  ruleAnomaly: boolean
  zAnomaly: boolean
  /** -1 no model yet, 0 normal, 1 anomaly. */
  mlState: -1 | 0 | 1
  stuckAnomaly: boolean
  driftAnomaly: boolean
  combinedAnomaly: boolean
  readings: number
}

/** The ground-truth label of a reading as `detection_counts` counts it. */
export function labelOf (r: { anomaly: boolean | null, anomalyKind: string | null }): string {
  return r.anomaly === true ? r.anomalyKind ?? 'anomaly' : r.anomaly === false ? 'normal' : 'unlabelled'
}

/** Accumulates detection counts of scored readings (one cell per sensor type, label and verdicts). */
export class DetectionCounter {
  readonly #cells = new Map<string, DetectionCount>()

  /** `stuck` and `drift` absent: not flagged (a detector set without them, e.g. the original design's). */
  add (r: { sensorType: string, anomaly: boolean | null, anomalyKind: string | null },
    v: { ruleAnomaly: boolean, zAnomaly: boolean, mlAnomaly: boolean | null, stuck?: boolean, drift?: boolean, anomaly: boolean }): void {
    const label = labelOf(r)
    const mlState = v.mlAnomaly === null ? -1 : v.mlAnomaly ? 1 : 0
    const stuck = v.stuck === true
    const drift = v.drift === true
    const key = `${r.sensorType}\u0000${label}\u0000${+v.ruleAnomaly}${+v.zAnomaly}${mlState}${+stuck}${+drift}${+v.anomaly}`
    const c = this.#cells.get(key)
    if (c !== undefined) c.readings++
    else {
      this.#cells.set(key, {
        sensorType: r.sensorType, label, ruleAnomaly: v.ruleAnomaly, zAnomaly: v.zAnomaly, mlState, stuckAnomaly: stuck, driftAnomaly: drift, combinedAnomaly: v.anomaly, readings: 1
      })
    }
  }

  cells (): DetectionCount[] {
    return [...this.#cells.values()]
  }
}
