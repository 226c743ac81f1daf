// Read queries behind the JSON API. All times are epoch ms; every query is bounded by `limit`.
import { type DetectionCount, type WindowAggregate } from '../domain/index.ts'
import { timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'
import { keyConds, tsParam } from './filter-sql.ts'
import { aggregateColumns } from './write.ts'

export interface QueryFilter {
  location?: string | undefined
  sensorType?: string | undefined
  /** Inclusive lower bound on event time (epoch ms). */
  from?: number | undefined
  /** Exclusive upper bound on event time (epoch ms). */
  to?: number | undefined
  limit: number
}

export interface StoredReading {
  sensorId: string
  sensorType: string
  location: string
  value: number
  timestamp: number
  unit: string
  anomaly: boolean | null
  anomalyType: string | null
  ruleAnomaly: boolean
  zScore: number | null
  zAnomaly: boolean
  mlScore: number | null
  mlAnomaly: boolean | null
  modelVersion: string | null
  combinedAnomaly: boolean
  severity: string | null
  explanation: string | null
}

function where (f: QueryFilter, timeColumn: string, extra: string[] = []): { sql: string, params: unknown[] } {
  const params: unknown[] = []
  const conds = [...extra, ...keyConds(f, params)]
  if (f.from !== undefined) conds.push(`${timeColumn} >= ${tsParam(params, f.from)}`)
  if (f.to !== undefined) conds.push(`${timeColumn} < ${tsParam(params, f.to)}`)
  params.push(f.limit)
  return { sql: conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : '', params }
}

// The output column "timestamp" (epoch ms) shadows the table's in ORDER BY: order by sensor_readings.timestamp.
const readingColumns = `sensor_id AS "sensorId", sensor_type AS "sensorType", location, value,
  ${timestampToMs('timestamp')} AS timestamp, unit, anomaly, anomaly_type AS "anomalyType",
  rule_anomaly AS "ruleAnomaly", z_score AS "zScore", z_anomaly AS "zAnomaly", ml_score AS "mlScore",
  ml_anomaly AS "mlAnomaly", model_version AS "modelVersion", combined_anomaly AS "combinedAnomaly", severity, explanation`

/**
 * Newest event time seen (from the offsets table, without touching the raw readings), over all
 * consumers or for one consumer group and topic.
 */
export async function newestEventTime (db: Queryable, of?: { group: string, topic: string }): Promise<number | null> {
  const rows = of === undefined
    ? await db.query<{ m: number | null }>('SELECT max(max_event_ms)::float8 AS m FROM stream_offsets')
    : await db.query<{ m: number | null }>(
      'SELECT max(max_event_ms)::float8 AS m FROM stream_offsets WHERE consumer_group = $1 AND topic = $2', [of.group, of.topic])
  return rows[0]?.m ?? null
}

const MAX_LOOK_BACK_MS = 366 * 86_400_000

/**
 * "The newest N raw rows" (of sensor_readings, with the filter and `extra` conditions) without
 * sorting the whole range: look back from the newest event time (or `to`) over growing spans (the
 * BRIN index on time keeps each look cheap), never before `from`. The first span is a minute (for
 * N above 100 sized from a count of the last minute, so that no rows travel twice); each next one
 * from the rows the last one held, so a dense stream needs one or two looks and a sparse one a few
 * more; only when six looks (or a year) do not hold N rows is the whole range read.
 */
async function newestFirst<T extends object> (db: Queryable, f: QueryFilter, select: string, extra: string[] = []): Promise<T[]> {
  const rowsOf = async (g: QueryFilter): Promise<T[]> => {
    const w = where(g, 'timestamp', extra)
    return await db.query<T>(`SELECT ${select} FROM sensor_readings ${w.sql} ORDER BY sensor_readings.timestamp DESC LIMIT $${w.params.length}`, w.params)
  }
  const newest = await newestEventTime(db)
  if (newest === null) return await rowsOf(f)
  const upper = Math.min(f.to ?? Infinity, newest + 1)
  const reaches = (span: number): boolean => f.from !== undefined && upper - span <= f.from
  let span = 60_000
  if (f.limit > 100 && !reaches(span)) {
    const w = where({ ...f, from: upper - span }, 'timestamp', extra)
    // The limit is the last parameter; the count does not use it.
    const [c] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM sensor_readings ${w.sql}`, w.params.slice(0, -1))
    const n = c?.n ?? 0
    if (n < f.limit) span *= n === 0 ? 60 : Math.min(Math.ceil(1.5 * f.limit / n), 1000)
  }
  for (let look = 0; look < 6 && span <= MAX_LOOK_BACK_MS && !reaches(span); look++) {
    const rows = await rowsOf({ ...f, from: upper - span })
    if (rows.length >= f.limit) return rows
    // Enough span for 1.5 times the rows still missing at the density just seen (at least double).
    const grow = rows.length === 0 ? 60 : Math.ceil(1.5 * f.limit / rows.length)
    span *= Math.max(2, Math.min(grow, 1000))
  }
  return await rowsOf(f)
}

export async function recentReadings (db: Queryable, f: QueryFilter): Promise<StoredReading[]> {
  return await newestFirst<StoredReading>(db, f, readingColumns)
}

/** Which verdict makes a reading an anomaly in recentAnomalies: any detector, or one of them. */
export type AnomalyDetector = 'any' | 'rule' | 'zscore' | 'ml' | 'combined'
const anomalyCondition: Record<AnomalyDetector, string> = {
  // Each condition implies the predicate of the partial indexes on flagged readings (0005), so the planner can use them.
  any: '(rule_anomaly OR z_anomaly OR ml_anomaly)',
  rule: 'rule_anomaly',
  zscore: 'z_anomaly',
  ml: 'ml_anomaly',
  combined: 'combined_anomaly'
}

/** Readings flagged by any detector (rule, z-score, ML) or by the one given, newest first. */
export async function recentAnomalies (db: Queryable, f: QueryFilter, detector: AnomalyDetector = 'any'): Promise<StoredReading[]> {
  return await newestFirst<StoredReading>(db, f, readingColumns, [anomalyCondition[detector]])
}

/** The Isolation Forest scores and combined verdicts of the newest scored readings. */
export async function recentScores (db: Queryable, f: QueryFilter): Promise<{ mlScore: number, combinedAnomaly: boolean }[]> {
  return await newestFirst(db, f, 'ml_score AS "mlScore", combined_anomaly AS "combinedAnomaly"', ['ml_score IS NOT NULL'])
}

export async function recentAggregates (db: Queryable, f: QueryFilter): Promise<WindowAggregate[]> {
  const w = where(f, 'window_start')
  return await db.query<WindowAggregate>(
    `SELECT ${aggregateColumns} FROM sensor_aggregates ${w.sql} ORDER BY window_start DESC, location, sensor_type LIMIT $${w.params.length}`, w.params)
}

export interface LateReadingRow {
  sensorId: string
  location: string
  sensorType: string
  value: number
  timestamp: number
  windowStart: number
  latenessMs: number
}

export async function recentLateReadings (db: Queryable, f: QueryFilter): Promise<LateReadingRow[]> {
  const w = where(f, 'timestamp')
  return await db.query<LateReadingRow>(`SELECT sensor_id AS "sensorId", location, sensor_type AS "sensorType", value,
    ${timestampToMs('timestamp')} AS timestamp, ${timestampToMs('window_start')} AS "windowStart", lateness_ms AS "latenessMs"
    FROM late_readings ${w.sql} ORDER BY received_at DESC, late_readings.timestamp DESC LIMIT $${w.params.length}`, w.params)
}

export interface DeadLetterRow {
  id: number
  receivedAt: number
  source: string
  reason: string
  detail: string
  raw: string
}

export async function recentDeadLetters (db: Queryable, limit: number): Promise<DeadLetterRow[]> {
  return await db.query<DeadLetterRow>(`SELECT id, ${timestampToMs('received_at')} AS "receivedAt", source, reason, detail,
    left(raw, 2000) AS raw FROM dead_letters ORDER BY id DESC LIMIT $1`, [limit])
}

/** The detection counts (small: sensor types × labels × verdict combinations), optionally of one sensor type. */
export async function loadDetectionCounts (db: Queryable, sensorType?: string): Promise<DetectionCount[]> {
  const cols = `sensor_type AS "sensorType", label, rule_anomaly AS "ruleAnomaly", z_anomaly AS "zAnomaly", ml_state AS "mlState",
    combined_anomaly AS "combinedAnomaly", readings`
  return sensorType === undefined
    ? await db.query<DetectionCount>(`SELECT ${cols} FROM detection_counts`)
    : await db.query<DetectionCount>(`SELECT ${cols} FROM detection_counts WHERE sensor_type = $1`, [sensorType])
}

export interface ModelInfo {
  version: string
  key: string
  sequence: number
  trainedAt: number
  samples: number
  createdAt: number
}

/** The stored models, newest first (without their trees). */
export async function recentModels (db: Queryable, limit: number): Promise<ModelInfo[]> {
  return await db.query<ModelInfo>(`SELECT version, model_key AS key, sequence, ${timestampToMs('trained_at')} AS "trainedAt", samples,
    ${timestampToMs('created_at')} AS "createdAt" FROM anomaly_models ORDER BY created_at DESC, trained_at DESC LIMIT $1`, [limit])
}

/** The newest model of each key (sensor type, or sensor with per-sensor models). */
export async function newestModels (db: Queryable): Promise<ModelInfo[]> {
  return await db.query<ModelInfo>(`SELECT DISTINCT ON (model_key) version, model_key AS key, sequence, ${timestampToMs('trained_at')} AS "trainedAt",
    samples, ${timestampToMs('created_at')} AS "createdAt" FROM anomaly_models ORDER BY model_key, trained_at DESC, sequence DESC`)
}
