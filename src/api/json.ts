// Stored rows and live outcomes as the JSON of src/api/contract.ts.
import { storedScore } from '../anomaly/index.ts'
import { type ScoredReading, type WindowAggregate, formatTimestamp } from '../domain/index.ts'
import { type ModelInfo, type StoredReading } from '../storage/index.ts'
import { type ModelJson, type ReadingJson, type WindowJson } from './contract.ts'

/** ISO 8601 UTC; six fraction digits when the time has microseconds (domain/wire.ts formatTimestamp). */
export const iso = (ms: number): string => formatTimestamp(ms)
export const isoOrNull = (ms: number | null | undefined): string | null => ms === null || ms === undefined || !Number.isFinite(ms) ? null : iso(ms)
/** JSON has no Infinity: a z-score of ±Infinity (a change after a flat baseline) is sent as a string. */
const num = (x: number | null): number | string | null => x === null || Number.isFinite(x) ? x : String(x)

export function readingJson (r: StoredReading): ReadingJson {
  return {
    sensor_id: r.sensorId,
    sensor_type: r.sensorType,
    location: r.location,
    value: r.value,
    unit: r.unit,
    timestamp: iso(r.timestamp),
    anomaly: r.anomaly,
    anomaly_type: r.anomalyType,
    rule_anomaly: r.ruleAnomaly,
    z_score: num(r.zScore),
    z_anomaly: r.zAnomaly,
    ml_score: r.mlScore,
    ml_anomaly: r.mlAnomaly,
    model_version: r.modelVersion,
    stuck_anomaly: r.stuckAnomaly,
    drift_anomaly: r.driftAnomaly,
    combined_anomaly: r.combinedAnomaly,
    severity: r.severity as ReadingJson['severity'],
    explanation: r.explanation
  }
}

/** A reading the worker just stored, in the shape it has in the database. */
export function storedOf ({ reading: r, verdict: v }: ScoredReading): StoredReading {
  return {
    sensorId: r.sensorId,
    sensorType: r.sensorType,
    location: r.location,
    value: r.value,
    timestamp: r.ts,
    unit: r.unit,
    anomaly: r.anomaly,
    anomalyType: r.anomalyKind,
    ruleAnomaly: v.ruleAnomaly,
    zScore: v.zScore,
    zAnomaly: v.zAnomaly,
    mlScore: v.mlScore,
    mlAnomaly: v.mlAnomaly,
    modelVersion: v.modelVersion,
    stuckAnomaly: v.stuck,
    driftAnomaly: v.drift,
    combinedAnomaly: v.anomaly,
    severity: v.severity,
    explanation: v.explanation
  }
}

/** A stored reading as the worker held it (the live feed of a process without a worker). */
export function scoredOf (r: StoredReading): ScoredReading {
  return {
    reading: {
      sensorId: r.sensorId,
      sensorType: r.sensorType,
      location: r.location,
      value: r.value,
      ts: r.timestamp,
      unit: r.unit,
      anomaly: r.anomaly,
      anomalyKind: r.anomalyType,
      seq: null
    },
    verdict: {
      ruleAnomaly: r.ruleAnomaly,
      zScore: r.zScore,
      zAnomaly: r.zAnomaly,
      mlScore: r.mlScore,
      mlAnomaly: r.mlAnomaly,
      modelVersion: r.modelVersion,
      stuck: r.stuckAnomaly,
      drift: r.driftAnomaly,
      // The detectors' evidence is not stored: the score from what is (src/anomaly/score.ts storedScore).
      anomalyScore: storedScore({ ruleAnomaly: r.ruleAnomaly, zScore: r.zScore, mlAnomaly: r.mlAnomaly, stuck: r.stuckAnomaly, drift: r.driftAnomaly }),
      anomaly: r.combinedAnomaly,
      severity: r.severity as ScoredReading['verdict']['severity'],
      explanation: r.explanation
    }
  }
}

export function windowJson (a: WindowAggregate): WindowJson {
  return {
    window_start: iso(a.windowStart),
    window_end: iso(a.windowEnd),
    location: a.location,
    sensor_type: a.sensorType,
    avg_value: a.avg,
    min_value: a.min,
    max_value: a.max,
    stddev_value: a.stddev,
    count_readings: a.count,
    anomaly_count: a.anomalyCount,
    label_anomaly_count: a.labelAnomalyCount,
    z_score_anomalies: a.zScoreAnomalies,
    ml_anomaly_count: a.mlAnomalyCount,
    combined_anomaly_count: a.combinedAnomalyCount,
    revision: a.revision,
    is_final: a.isFinal
  }
}

export const modelJson = (m: ModelInfo): ModelJson =>
  ({ version: m.version, key: m.key, sequence: m.sequence, trained_at: iso(m.trainedAt), samples: m.samples, created_at: iso(m.createdAt) })
