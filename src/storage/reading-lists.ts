// The newest readings (all, flagged, or scored) behind the JSON API, newest first, bounded by `limit`.
import { timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'
import { type QueryFilter, whereFilter } from './filter-sql.ts'

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
    const w = whereFilter(g, 'timestamp', extra)
    return await db.query<T>(`SELECT ${select} FROM sensor_readings ${w.sql} ORDER BY sensor_readings.timestamp DESC LIMIT $${w.params.length}`, w.params)
  }
  const newest = await newestEventTime(db)
  if (newest === null) return await rowsOf(f)
  const upper = Math.min(f.to ?? Infinity, newest + 1)
  const reaches = (span: number): boolean => f.from !== undefined && upper - span <= f.from
  let span = 60_000
  if (f.limit > 100 && !reaches(span)) {
    const w = whereFilter({ ...f, from: upper - span }, 'timestamp', extra)
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
