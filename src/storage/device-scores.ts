// device_series and device_scores (migration 0016): what the device-level detector said about each
// scored row of a device, written with COPY in the batch's transaction, and read back for the API.
import { msToTimestamp, numberArray, textArray, timestampToMs } from './arrays.ts'
import { BinaryCopy } from './copy-binary.ts'
import { type Queryable } from './db.ts'
import { nameKeys } from './sensors.ts'

/** One scored row of a device, as stored. */
export interface DeviceScoreRow {
  device: string
  /** The measurements the device's rows hold (its model's inputs), in the model's order. */
  measurements: readonly string[]
  /** Event time of the row. */
  ts: number
  /** The device score after this row (0.5 = the decision threshold). */
  score: number
  /** The row's own score. */
  rowScore: number
  anomaly: boolean
  /** Kept on anomalies only (as readings keep theirs on flagged rows). */
  modelVersion: string | null
  explanation: string | null
}

const SEPARATOR = '\u001f'
const seriesOf = (device: string, measurements: readonly string[]): string => `${device}${SEPARATOR}${measurements.join(SEPARATOR)}`

/** The columns of device_scores in COPY order. */
const columns = ['ts', 'series_key', 'score', 'row_score', 'anomaly', 'model_key', 'explanation'] as const

/** Upserts the rows' series (with their event-time span) and COPYs the rows. */
export async function insertDeviceScores (tx: Queryable, rows: readonly DeviceScoreRow[]): Promise<void> {
  if (rows.length === 0) return
  const spans = new Map<string, { device: string, measurements: readonly string[], first: number, last: number }>()
  const versions = new Set<string>()
  for (const r of rows) {
    const key = seriesOf(r.device, r.measurements)
    const s = spans.get(key)
    if (s === undefined) spans.set(key, { device: r.device, measurements: r.measurements, first: r.ts, last: r.ts })
    else {
      if (r.ts < s.first) s.first = r.ts
      if (r.ts > s.last) s.last = r.ts
    }
    if (r.anomaly && r.modelVersion !== null) versions.add(r.modelVersion)
  }
  // In a fixed order: concurrent workers lock rows in the same order.
  const series = [...spans].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([, s]) => s)
  const stored = await tx.query<{ k: number, d: string, m: string[] }>(`
    INSERT INTO device_series AS s (device, measurements, first_seen, last_seen)
    SELECT d, string_to_array(m, E'\\x1f'), ${msToTimestamp('f')}, ${msToTimestamp('l')}
    FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) AS x(d, m, f, l)
    ON CONFLICT (device, measurements) DO UPDATE SET
      first_seen = least(s.first_seen, excluded.first_seen), last_seen = greatest(s.last_seen, excluded.last_seen)
    RETURNING series_key AS k, device AS d, measurements AS m`,
  [textArray(series.map(s => s.device)), textArray(series.map(s => s.measurements.join(SEPARATOR))),
    numberArray(series.map(s => s.first)), numberArray(series.map(s => s.last))])
  const keys = new Map(stored.map(s => [seriesOf(s.d, s.m), s.k]))
  const models = await nameKeys(tx, 'model_versions', versions)
  const c = new BinaryCopy(rows.length * 48).begin()
  for (const r of rows) {
    const keep = r.anomaly
    c.row(columns.length)
    c.timestamptz(r.ts)
    c.int4(keys.get(seriesOf(r.device, r.measurements)) ?? null)
    c.float4(r.score)
    c.float4(r.rowScore)
    c.bool(r.anomaly)
    c.int4(keep && r.modelVersion !== null ? models.get(r.modelVersion) ?? null : null)
    c.text(keep ? r.explanation : null)
  }
  await tx.copyFrom('device_scores', columns, c.end())
}

/** A device as the scores know it: its latest series and how it is doing. */
export interface DeviceScoreSummary {
  device: string
  measurements: string[]
  firstSeen: number
  lastSeen: number
  /** The newest stored score and whether it was an anomaly. */
  lastScore: number | null
  lastAnomaly: boolean
  /** Anomalous rows in the `windowMs` of event time before its newest (see listDeviceScoreSummaries). */
  anomalies: number
}

/** Every device with stored scores (its newest series), with its newest score and its anomalous rows in the `windowMs` before its newest. */
export async function listDeviceScoreSummaries (db: Queryable, windowMs: number): Promise<DeviceScoreSummary[]> {
  return await db.query<DeviceScoreSummary>(`
    SELECT DISTINCT ON (s.device) s.device, s.measurements, ${timestampToMs('s.first_seen')} AS "firstSeen", ${timestampToMs('s.last_seen')} AS "lastSeen",
      last.score::float8 AS "lastScore", coalesce(last.anomaly, false) AS "lastAnomaly",
      (SELECT count(*)::int FROM device_scores a JOIN device_series x ON x.series_key = a.series_key
        WHERE x.device = s.device AND a.anomaly AND a.ts >= s.last_seen - make_interval(secs => $1::float8 / 1000)) AS anomalies
    FROM device_series s
    LEFT JOIN LATERAL (SELECT score, anomaly FROM device_scores d WHERE d.series_key = s.series_key AND d.ts = s.last_seen LIMIT 1) last ON true
    ORDER BY s.device, s.last_seen DESC`, [windowMs])
}

/** One stored score of a device. */
export interface DeviceScorePoint {
  ts: number
  measurements: string[]
  score: number
  rowScore: number
  anomaly: boolean
  modelVersion: string | null
  explanation: string | null
}

/**
 * A device's scores in [fromMs, toMs), oldest first; at most `limit` of them (the newest when there
 * are more).
 */
export async function deviceScores (db: Queryable, device: string, fromMs: number, toMs: number, limit: number): Promise<DeviceScorePoint[]> {
  return await db.query<DeviceScorePoint>(`
    SELECT * FROM (
      SELECT ${timestampToMs('d.ts')} AS ts, s.measurements, d.score::float8 AS score, d.row_score::float8 AS "rowScore", d.anomaly,
        v.version AS "modelVersion", d.explanation
      FROM device_scores d JOIN device_series s ON s.series_key = d.series_key
      LEFT JOIN model_versions v ON v.model_key = d.model_key
      WHERE s.device = $1 AND d.ts >= ${msToTimestamp('$2::float8')} AND d.ts < ${msToTimestamp('$3::float8')}
      ORDER BY d.ts DESC LIMIT $4) x
    ORDER BY ts`, [device, fromMs, toMs, limit])
}

/** Deletes the scores older than `cutoffMs` (retention); returns how many. */
export async function deleteDeviceScoresBefore (db: Queryable, cutoffMs: number): Promise<number> {
  const [n] = await db.query<{ n: number }>(`WITH d AS (DELETE FROM device_scores WHERE ts < ${msToTimestamp('$1::float8')} RETURNING 1)
    SELECT count(*)::int AS n FROM d`, [cutoffMs])
  return n?.n ?? 0
}
