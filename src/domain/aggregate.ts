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
  revision: number
  isFinal: boolean
}
