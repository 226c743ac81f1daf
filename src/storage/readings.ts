// Readings as the worker writes and restores them: binary COPY of a batch with its verdicts, the
// keys that tell duplicates, the newest readings that warm the detectors up.
import { type Reading, type ScoredReading } from '../domain/index.ts'
import { msToTimestamp, numberArray, textArray, timestampToMs } from './arrays.ts'
import { BinaryCopy } from './copy-binary.ts'
import { type Queryable } from './db.ts'

/** Which of these (sensor, time) keys are already stored as readings (primary-key probes). Returns `${sensorId}|${ts}`. */
export async function findStoredKeys (tx: Queryable, keys: readonly { sensorId: string, ts: number }[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set()
  const rows = await tx.query<{ s: string, ts: number }>(`
    SELECT x.s, x.ts FROM unnest($1::text[], $2::float8[]) AS x(s, ts)
    WHERE EXISTS (SELECT 1 FROM sensor_readings r WHERE r.sensor_id = x.s AND r.timestamp = ${msToTimestamp('x.ts')})`,
  [textArray(keys.map(k => k.sensorId)), numberArray(keys.map(k => k.ts))])
  return new Set(rows.map(r => `${r.s}|${r.ts}`))
}

/** (sensor, time) of every stored reading at or after `sinceMs`: rebuilds the de-duplication state. */
export async function loadReadingKeysSince (db: Queryable, sinceMs: number): Promise<{ sensorId: string, ts: number }[]> {
  const select = `SELECT sensor_id AS "sensorId", ${timestampToMs('timestamp')} AS ts FROM sensor_readings`
  if (!Number.isFinite(sinceMs)) return await db.query(select)
  return await db.query(`${select} WHERE timestamp >= ${msToTimestamp('$1::float8')}`, [sinceMs])
}

/** The columns of sensor_readings that a reading fills, in COPY order. */
export const readingColumns = ['sensor_id', 'sensor_type', 'location', 'value', 'timestamp', 'unit', 'anomaly', 'anomaly_type', 'seq',
  'rule_anomaly', 'z_score', 'z_anomaly', 'ml_score', 'ml_anomaly', 'model_version', 'combined_anomaly', 'severity', 'explanation'] as const

/** Appends readings with their verdicts as binary COPY rows (`readingColumns` order and types). */
export function copyReadingRows (c: BinaryCopy, rows: readonly ScoredReading[]): void {
  for (const { reading: r, verdict: d } of rows) {
    c.row(readingColumns.length)
    c.text(r.sensorId); c.text(r.sensorType); c.text(r.location); c.float8(r.value); c.timestamptz(r.ts)
    c.text(r.unit); c.bool(r.anomaly); c.text(r.anomalyKind); c.int8(r.seq); c.bool(d.ruleAnomaly)
    c.float8(d.zScore); c.bool(d.zAnomaly); c.float8(d.mlScore); c.bool(d.mlAnomaly); c.text(d.modelVersion)
    c.bool(d.anomaly); c.text(d.severity); c.text(d.explanation)
  }
}

/** Readings with their verdicts as one binary COPY stream. */
export function readingsCopyBinary (rows: readonly ScoredReading[]): Buffer {
  const c = new BinaryCopy(rows.length * 160).begin()
  copyReadingRows(c, rows)
  return c.end()
}

/**
 * Bulk-loads readings with their verdicts (COPY). The caller has removed duplicates; if one slipped
 * through, the primary key fails the whole batch (retried from the stored offsets) instead of
 * counting it twice.
 */
export async function insertReadings (tx: Queryable, rows: readonly ScoredReading[]): Promise<void> {
  if (rows.length === 0) return
  await tx.copyFrom('sensor_readings', readingColumns, readingsCopyBinary(rows))
}

/**
 * The last `perSensor` stored readings of each sensor since `sinceMs`, oldest first per sensor:
 * replayed through the detectors to rebuild their baselines when a worker takes over partitions.
 */
export async function loadRecentReadings (db: Queryable, sinceMs: number, perSensor: number): Promise<Reading[]> {
  return await db.query<Reading>(`
    SELECT "sensorId", "sensorType", location, value, ts, unit, anomaly, "anomalyKind", seq FROM (
      SELECT sensor_id AS "sensorId", sensor_type AS "sensorType", location, value, ${timestampToMs('timestamp')} AS ts, unit,
        anomaly, anomaly_type AS "anomalyKind", seq::float8 AS seq,
        row_number() OVER (PARTITION BY sensor_id ORDER BY timestamp DESC) AS n
      FROM sensor_readings WHERE timestamp >= ${msToTimestamp('$1::float8')}) r
    WHERE n <= $2 ORDER BY "sensorId", ts`, [sinceMs, perSensor])
}
