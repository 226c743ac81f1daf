// The newest readings (all, flagged, or scored) behind the JSON API, newest first, bounded by `limit`.
import { timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'
import { type QueryFilter, whereFilter } from './filter-sql.ts'
import { FLAG, FLAGGED, kindJoin, labelSql, readingsWithSensor } from './readings.ts'
import { sensorKeys } from './sensors.ts'

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
  stuckAnomaly: boolean
  driftAnomaly: boolean
  combinedAnomaly: boolean
  severity: string | null
  explanation: string | null
}

// Every column of a stored reading, decoded from the compact row (readings.ts, FLAG).
const readingColumns = `s.sensor_id AS "sensorId", s.sensor_type AS "sensorType", s.location, r.value,
  ${timestampToMs('r.ts')} AS timestamp, s.unit, ${labelSql} AS anomaly,
  k.name AS "anomalyType", r.flags & ${FLAG.rule} <> 0 AS "ruleAnomaly", r.z_score AS "zScore", r.flags & ${FLAG.z} <> 0 AS "zAnomaly",
  r.ml_score AS "mlScore", CASE WHEN r.flags & ${FLAG.mlScored} <> 0 THEN r.flags & ${FLAG.ml} <> 0 END AS "mlAnomaly",
  m.version AS "modelVersion", r.flags & ${FLAG.stuck} <> 0 AS "stuckAnomaly", r.flags & ${FLAG.drift} <> 0 AS "driftAnomaly",
  r.flags & ${FLAG.combined} <> 0 AS "combinedAnomaly",
  (ARRAY['minor', 'major', 'critical'])[(r.flags >> ${FLAG.severityShift}) & 3] AS severity, r.explanation`
const readingJoins = `${kindJoin} LEFT JOIN model_versions m ON m.model_key = r.model_key`

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
 * "The newest N raw rows" (of readings with their sensor, the filter and `extra` conditions) without
 * sorting the whole range: look back from the newest event time (or `to`) over growing spans (the
 * BRIN index on time keeps each look cheap), never before `from`. The first span is a minute (for
 * N above 100 sized from a count of the last minute, so that no rows travel twice); each next one
 * from the rows the last one held, so a dense stream needs one or two looks and a sparse one a few
 * more; only when six looks (or a year) do not hold N rows is the whole range read.
 */
async function newestFirst<T extends object> (db: Queryable, query: QueryFilter, select: string, filters: string[] = [], joins = ''): Promise<T[]> {
  // A location or type filter is the sensors it names: with their keys in the condition the
  // planner reads the per-sensor index, rather than the newest rows of every sensor.
  let f = query
  let extra = filters
  if (query.location !== undefined || query.sensorType !== undefined) {
    const keys = await sensorKeys(db, query)
    if (keys.length === 0) return []
    f = { ...query, location: undefined, sensorType: undefined }
    extra = [...filters, `r.sensor_key = ANY('{${keys.join(',')}}'::int4[])`]
  }
  const rowsOf = async (g: QueryFilter): Promise<T[]> => {
    const w = whereFilter(g, 'r.ts', extra)
    return await db.query<T>(`SELECT ${select} FROM ${readingsWithSensor} ${joins} ${w.sql} ORDER BY r.ts DESC LIMIT $${w.params.length}`, w.params)
  }
  const newest = await newestEventTime(db)
  if (newest === null) return await rowsOf(f)
  const upper = Math.min(f.to ?? Infinity, newest + 1)
  const reaches = (span: number): boolean => f.from !== undefined && upper - span <= f.from
  let span = 60_000
  if (f.limit > 100 && !reaches(span)) {
    const w = whereFilter({ ...f, from: upper - span }, 'r.ts', extra)
    // The limit is the last parameter; the count does not use it.
    const [c] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${readingsWithSensor} ${w.sql}`, w.params.slice(0, -1))
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
  return await newestFirst<StoredReading>(db, f, readingColumns, [], readingJoins)
}

/** Which verdict makes a reading an anomaly in recentAnomalies: any detector, or one of them. */
export type AnomalyDetector = 'any' | 'rule' | 'zscore' | 'ml' | 'stuck' | 'drift' | 'combined'
// Each starts with the predicate of the partial indexes on flagged readings (0006), word for word,
// so the planner can use them (it does not reason about bits). Every detector's flag implies it.
const anomalyCondition: Record<AnomalyDetector, string[]> = {
  any: [FLAGGED],
  rule: [FLAGGED, `r.flags & ${FLAG.rule} <> 0`],
  zscore: [FLAGGED, `r.flags & ${FLAG.z} <> 0`],
  ml: [FLAGGED, `r.flags & ${FLAG.ml} <> 0`],
  stuck: [FLAGGED, `r.flags & ${FLAG.stuck} <> 0`],
  drift: [FLAGGED, `r.flags & ${FLAG.drift} <> 0`],
  combined: [FLAGGED, `r.flags & ${FLAG.combined} <> 0`]
}

/** Readings flagged by any detector (rule, z-score, ML, stuck, drift) or by the one given, newest first. */
export async function recentAnomalies (db: Queryable, f: QueryFilter, detector: AnomalyDetector = 'any'): Promise<StoredReading[]> {
  return await newestFirst<StoredReading>(db, f, readingColumns, anomalyCondition[detector], readingJoins)
}

/** The Isolation Forest scores and combined verdicts of the newest scored readings. */
export async function recentScores (db: Queryable, f: QueryFilter): Promise<{ mlScore: number, combinedAnomaly: boolean }[]> {
  return await newestFirst(db, f, `r.ml_score AS "mlScore", r.flags & ${FLAG.combined} <> 0 AS "combinedAnomaly"`, ['r.ml_score IS NOT NULL'])
}
