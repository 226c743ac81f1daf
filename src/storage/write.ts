// The worker's write path: everything of one batch goes through these, inside one transaction.
import { type DeadLetter, type DetectionCount, type Reading, type ScoredReading, type WindowAggregate, DetectionCounter } from '../domain/index.ts'
import { type WindowDelta, rollUp, rollUpKey } from '../windowing/index.ts'
import {
  boolArray, msToTimestamp, numberArray, textArray, timestampToMs
} from './arrays.ts'
import { BinaryCopy } from './copy-binary.ts'
import { type Db, type Queryable } from './db.ts'

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000

/** A reading that arrived after its window was final. */
export interface LateReading {
  reading: Reading
  windowStart: number
  watermark: number
  latenessMs: number
}

export const aggregateColumns = `
  ${timestampToMs('window_start')} AS "windowStart", ${timestampToMs('window_end')} AS "windowEnd",
  location, sensor_type AS "sensorType", avg_value AS avg, min_value AS min, max_value AS max,
  stddev_value AS stddev, count_readings AS count, anomaly_count AS "anomalyCount",
  label_anomaly_count AS "labelAnomalyCount", z_score_anomalies AS "zScoreAnomalies",
  ml_anomaly_count AS "mlAnomalyCount", combined_anomaly_count AS "combinedAnomalyCount", revision, is_final AS "isFinal"`

const createdPartitions = new WeakMap<Db, Set<number>>()

function partitionName (day: number): string {
  return 'sensor_readings_' + new Date(day * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')
}

/** Creates the daily partitions of sensor_readings that hold these event times (idempotent, race-safe). */
export async function ensureDayPartitions (db: Db, timestamps: Iterable<number>): Promise<void> {
  let known = createdPartitions.get(db)
  if (known === undefined) {
    known = new Set()
    createdPartitions.set(db, known)
  }
  const days = new Set<number>()
  for (const ts of timestamps) {
    const day = Math.floor(ts / DAY_MS)
    if (!known.has(day)) days.add(day)
  }
  for (const day of days) {
    const from = new Date(day * DAY_MS).toISOString()
    const to = new Date((day + 1) * DAY_MS).toISOString()
    try {
      await db.query(`CREATE TABLE IF NOT EXISTS ${partitionName(day)} PARTITION OF sensor_readings FOR VALUES FROM ('${from}') TO ('${to}')`)
    } catch (err) {
      // Another worker created it between our IF NOT EXISTS check and the create.
      const code = (err as { code?: string }).code
      if (code !== '42P07' && code !== '23505') throw err
    }
    known.add(day)
  }
}

/**
 * Summarizes new block ranges of the BRIN index on time in every daily partition, so time-range
 * queries (the newest readings) skip everything older. Cheap when there is nothing new.
 */
export async function summarizeTimeIndex (db: Queryable): Promise<number> {
  const rows = await db.query<{ n: number }>(`
    SELECT coalesce(sum(brin_summarize_new_values(i.indexrelid)), 0)::int AS n
    FROM pg_inherits h
    JOIN pg_class parent ON parent.oid = h.inhparent AND parent.relname = 'sensor_readings'
    JOIN pg_index i ON i.indrelid = h.inhrelid
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'brin'`)
  return rows[0]?.n ?? 0
}

/** Drops daily partitions that end at or before `beforeMs` (retention). Returns the dropped names. */
export async function dropPartitionsBefore (db: Db, beforeMs: number): Promise<string[]> {
  const rows = await db.query<{ name: string }>(`
    SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'sensor_readings'`)
  const dropped: string[] = []
  for (const { name } of rows) {
    const m = /^sensor_readings_(\d{4})(\d{2})(\d{2})$/.exec(name)
    if (m === null) continue
    const end = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + DAY_MS
    if (end <= beforeMs) {
      await db.query(`DROP TABLE ${name}`)
      createdPartitions.get(db)?.delete(Math.floor((end - DAY_MS) / DAY_MS))
      dropped.push(name)
    }
  }
  return dropped
}

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

/** Counts scored readings by sensor type, label and verdicts. */
export function countDetections (rows: readonly ScoredReading[]): DetectionCount[] {
  const counter = new DetectionCounter()
  for (const { reading, verdict } of rows) counter.add(reading, verdict)
  return counter.cells()
}

/** Adds counts to detection_counts (in the batch transaction, in a fixed order: no deadlocks between workers). */
export async function mergeDetectionCounts (tx: Queryable, counts: readonly DetectionCount[]): Promise<void> {
  if (counts.length === 0) return
  const c = [...counts].sort((a, b) => a.sensorType < b.sensorType ? -1 : a.sensorType > b.sensorType ? 1 : a.label < b.label ? -1 : a.label > b.label ? 1 : 0)
  await tx.query(`
    INSERT INTO detection_counts AS d (sensor_type, label, rule_anomaly, z_anomaly, ml_state, combined_anomaly, readings)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::bool[], $5::int2[], $6::bool[], $7::int8[])
    ON CONFLICT (sensor_type, label, rule_anomaly, z_anomaly, ml_state, combined_anomaly)
    DO UPDATE SET readings = d.readings + excluded.readings`,
  [textArray(c.map(x => x.sensorType)), textArray(c.map(x => x.label)), boolArray(c.map(x => x.ruleAnomaly)),
    boolArray(c.map(x => x.zAnomaly)), numberArray(c.map(x => x.mlState)), boolArray(c.map(x => x.combinedAnomaly)),
    numberArray(c.map(x => x.readings))])
}

/** A stored Isolation Forest model; `model` is its stored form (the anomaly module's `encodeModel`). */
export interface StoredModel {
  version: string
  key: string
  sequence: number
  trainedAt: number
  samples: number
  nEstimators: number
  maxSamples: number
  offset: number
  model: Uint8Array
}

/** Models kept per key (older ones are deleted as new ones arrive). */
export const MODELS_KEPT = 10

/**
 * Stores models (gzip-compressed JSON, level 1: a third of the JSON's size at a fraction of the
 * default level's time, on the worker's thread) and keeps the newest `MODELS_KEPT` per key. A
 * version already stored is kept as it is.
 */
export async function saveModels (tx: Queryable, models: readonly StoredModel[]): Promise<void> {
  if (models.length === 0) return
  for (const m of models) {
    await tx.query(`
      INSERT INTO anomaly_models (version, model_key, sequence, trained_at, samples, n_estimators, max_samples, score_offset, model)
      VALUES ($1, $2, $3, ${msToTimestamp('$4::float8')}, $5, $6, $7, $8, $9) ON CONFLICT (version) DO NOTHING`,
    [m.version, m.key, m.sequence, m.trainedAt, m.samples, m.nEstimators, m.maxSamples, m.offset, m.model])
  }
  await tx.query(`
    DELETE FROM anomaly_models a USING (
      SELECT version, row_number() OVER (PARTITION BY model_key ORDER BY trained_at DESC, sequence DESC) AS n
      FROM anomaly_models WHERE model_key = ANY($1::text[])) old
    WHERE a.version = old.version AND old.n > ${MODELS_KEPT}`, [textArray([...new Set(models.map(m => m.key))])])
}

/** The newest stored model of every key. */
export async function loadLatestModels (db: Queryable): Promise<StoredModel[]> {
  return await db.query<StoredModel>(`
    SELECT DISTINCT ON (model_key) version, model_key AS key, sequence, ${timestampToMs('trained_at')} AS "trainedAt", samples,
      n_estimators AS "nEstimators", max_samples AS "maxSamples", score_offset AS offset, model
    FROM anomaly_models ORDER BY model_key, trained_at DESC, sequence DESC`)
}

/** Keeps late readings (a key already kept is skipped). Returns rows inserted. */
export async function insertLateReadings (tx: Queryable, late: readonly LateReading[]): Promise<number> {
  if (late.length === 0) return 0
  const r = late.map(x => x.reading)
  const res = await tx.query<{ n: number }>(`
    WITH ins AS (
      INSERT INTO late_readings (sensor_id, sensor_type, location, value, timestamp, unit, anomaly, anomaly_type, seq,
        window_start, watermark, lateness_ms)
      SELECT s, t, l, v, ${msToTimestamp('ts')}, u, a, ak, sq, ${msToTimestamp('ws')}, ${msToTimestamp('wm')}, lt
      FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::bool[], $8::text[],
        $9::int8[], $10::float8[], $11::float8[], $12::int8[]) AS x(s, t, l, v, ts, u, a, ak, sq, ws, wm, lt)
      ON CONFLICT DO NOTHING RETURNING 1)
    SELECT count(*)::int AS n FROM ins`,
  [textArray(r.map(x => x.sensorId)), textArray(r.map(x => x.sensorType)), textArray(r.map(x => x.location)),
    numberArray(r.map(x => x.value)), numberArray(r.map(x => x.ts)), textArray(r.map(x => x.unit)),
    boolArray(r.map(x => x.anomaly)), textArray(r.map(x => x.anomalyKind)), numberArray(r.map(x => x.seq)),
    numberArray(late.map(x => x.windowStart)), numberArray(late.map(x => x.watermark)), numberArray(late.map(x => x.latenessMs))])
  return res[0]?.n ?? 0
}

export async function insertDeadLetters (tx: Queryable, letters: readonly DeadLetter[]): Promise<void> {
  if (letters.length === 0) return
  // NUL cannot be stored in PostgreSQL text: keep it visible as \u0000.
  const clean = (s: string): string => s.includes('\u0000') ? s.replaceAll('\u0000', '\\u0000') : s
  await tx.query(`
    INSERT INTO dead_letters (received_at, source, reason, detail, raw)
    SELECT ${msToTimestamp('at')}, src, reason, detail, raw
    FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::text[]) AS x(at, src, reason, detail, raw)`,
  [numberArray(letters.map(d => d.receivedAt)), textArray(letters.map(d => d.source)), textArray(letters.map(d => d.reason)),
    textArray(letters.map(d => clean(d.detail))), textArray(letters.map(d => clean(d.raw)))])
}

/**
 * Merges window deltas into sensor_aggregates (Chan's formula, the same as the in-memory merge)
 * and returns the revised windows.
 */
// Chan's merge of a stored row `a` with the incoming delta `excluded`, in SQL.
const mergedN = 'a.count_readings::float8 + excluded.count_readings'
const meanDiff = '(excluded.avg_value - a.avg_value)'
const mergedM2 = `a.m2 + excluded.m2 + ${meanDiff} * ${meanDiff} * (a.count_readings::float8 * excluded.count_readings / (${mergedN}))`
const mergeSet = `
      count_readings = a.count_readings + excluded.count_readings,
      avg_value = a.avg_value + ${meanDiff} * (excluded.count_readings / (${mergedN})),
      m2 = ${mergedM2},
      stddev_value = sqrt(greatest(0, ${mergedM2}) / (${mergedN})),
      min_value = least(a.min_value, excluded.min_value),
      max_value = greatest(a.max_value, excluded.max_value),
      anomaly_count = a.anomaly_count + excluded.anomaly_count,
      label_anomaly_count = a.label_anomaly_count + excluded.label_anomaly_count,
      z_score_anomalies = a.z_score_anomalies + excluded.z_score_anomalies,
      ml_anomaly_count = a.ml_anomaly_count + excluded.ml_anomaly_count,
      combined_anomaly_count = a.combined_anomaly_count + excluded.combined_anomaly_count`

export async function mergeWindowDeltas (tx: Queryable, deltas: readonly WindowDelta[]): Promise<WindowAggregate[]> {
  if (deltas.length === 0) return []
  return await tx.query<WindowAggregate>(`
    INSERT INTO sensor_aggregates AS a (window_start, window_end, location, sensor_type, avg_value, min_value, max_value,
      stddev_value, count_readings, anomaly_count, label_anomaly_count, z_score_anomalies, ml_anomaly_count, combined_anomaly_count, m2)
    SELECT ${msToTimestamp('ws')}, ${msToTimestamp('we')}, l, t, mean, mn, mx, sqrt(greatest(m2, 0) / cnt), cnt, ra, la, za, ma, ca, m2
    FROM unnest($1::float8[], $2::float8[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[], $8::int4[],
      $9::int4[], $10::int4[], $11::int4[], $12::int4[], $13::float8[], $14::int4[]) AS x(ws, we, l, t, mean, mn, mx, cnt, ra, la, za, ma, m2, ca)
    ON CONFLICT (location, sensor_type, window_start) DO UPDATE SET${mergeSet},
      revision = a.revision + 1,
      updated_at = now()
    RETURNING ${aggregateColumns}`,
  [numberArray(deltas.map(x => x.start)), numberArray(deltas.map(x => x.end)), textArray(deltas.map(x => x.location)),
    textArray(deltas.map(x => x.sensorType)), numberArray(deltas.map(x => x.acc.mean)), numberArray(deltas.map(x => x.acc.min)),
    numberArray(deltas.map(x => x.acc.max)), numberArray(deltas.map(x => x.acc.count)), numberArray(deltas.map(x => x.acc.ruleAnomalies)),
    numberArray(deltas.map(x => x.acc.labelAnomalies)), numberArray(deltas.map(x => x.acc.zAnomalies)),
    numberArray(deltas.map(x => x.acc.mlAnomalies)), numberArray(deltas.map(x => x.acc.m2)),
    numberArray(deltas.map(x => x.acc.combinedAnomalies))])
}

/**
 * Merges a batch's window deltas into the hourly roll-ups (`deltas` as given to mergeWindowDeltas,
 * `merged` what it returned: windows at revision 1 are new and count in their hour's `windows`).
 * A window belongs to the hour its start falls in.
 */
export async function mergeHourlyRollups (tx: Queryable, deltas: readonly WindowDelta[], merged: readonly WindowAggregate[]): Promise<void> {
  if (deltas.length === 0) return
  const hours = rollUp(deltas, HOUR_MS)
  const created = new Map<string, number>()
  for (const w of merged) {
    if (w.revision !== 1) continue
    const key = rollUpKey(w.location, w.sensorType, Math.floor(w.windowStart / HOUR_MS) * HOUR_MS)
    created.set(key, (created.get(key) ?? 0) + 1)
  }
  await tx.query(`
    INSERT INTO sensor_aggregates_hourly AS a (hour_start, location, sensor_type, avg_value, min_value, max_value, stddev_value,
      count_readings, anomaly_count, label_anomaly_count, z_score_anomalies, ml_anomaly_count, combined_anomaly_count, m2, windows)
    SELECT ${msToTimestamp('hs')}, l, t, mean, mn, mx, sqrt(greatest(m2, 0) / cnt), cnt, ra, la, za, ma, ca, m2, w
    FROM unnest($1::float8[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::int8[], $8::int8[], $9::int8[],
      $10::int8[], $11::int8[], $12::int8[], $13::float8[], $14::int4[]) AS x(hs, l, t, mean, mn, mx, cnt, ra, la, za, ma, ca, m2, w)
    ON CONFLICT (location, sensor_type, hour_start) DO UPDATE SET${mergeSet},
      windows = a.windows + excluded.windows`,
  [numberArray(hours.map(x => x.start)), textArray(hours.map(x => x.location)), textArray(hours.map(x => x.sensorType)),
    numberArray(hours.map(x => x.acc.mean)), numberArray(hours.map(x => x.acc.min)), numberArray(hours.map(x => x.acc.max)),
    numberArray(hours.map(x => x.acc.count)), numberArray(hours.map(x => x.acc.ruleAnomalies)), numberArray(hours.map(x => x.acc.labelAnomalies)),
    numberArray(hours.map(x => x.acc.zAnomalies)), numberArray(hours.map(x => x.acc.mlAnomalies)),
    numberArray(hours.map(x => x.acc.combinedAnomalies)), numberArray(hours.map(x => x.acc.m2)),
    numberArray(hours.map(x => created.get(rollUpKey(x.location, x.sensorType, x.start)) ?? 0))])
}

/**
 * Records the sensors of a batch with the event time span it covered (one row per sensor; a
 * repeated delivery changes nothing). Location, type and unit follow the sensor's newest reading.
 */
export async function upsertSensors (tx: Queryable, scored: readonly ScoredReading[]): Promise<void> {
  if (scored.length === 0) return
  const seen = new Map<string, { r: Reading, first: number, last: number }>()
  for (const { reading: r } of scored) {
    const s = seen.get(r.sensorId)
    if (s === undefined) seen.set(r.sensorId, { r, first: r.ts, last: r.ts })
    else {
      if (r.ts < s.first) s.first = r.ts
      if (r.ts >= s.last) { s.last = r.ts; s.r = r }
    }
  }
  // In sensor order: concurrent workers lock rows in the same order.
  const rows = [...seen.values()].sort((a, b) => a.r.sensorId < b.r.sensorId ? -1 : a.r.sensorId > b.r.sensorId ? 1 : 0)
  await tx.query(`
    INSERT INTO sensors AS s (sensor_id, sensor_type, location, unit, first_seen, last_seen)
    SELECT id, t, l, u, ${msToTimestamp('f')}, ${msToTimestamp('la')}
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[]) AS x(id, t, l, u, f, la)
    ON CONFLICT (sensor_id) DO UPDATE SET
      first_seen = least(s.first_seen, excluded.first_seen),
      last_seen = greatest(s.last_seen, excluded.last_seen),
      sensor_type = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.sensor_type ELSE s.sensor_type END,
      location = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.location ELSE s.location END,
      unit = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.unit ELSE s.unit END`,
  [textArray(rows.map(x => x.r.sensorId)), textArray(rows.map(x => x.r.sensorType)), textArray(rows.map(x => x.r.location)),
    textArray(rows.map(x => x.r.unit)), numberArray(rows.map(x => x.first)), numberArray(rows.map(x => x.last))])
}

/** Marks windows final whose end is at or before `endBoundary` (watermark − allowed lateness). */
export async function finalizeWindows (tx: Queryable, endBoundary: number): Promise<WindowAggregate[]> {
  if (!Number.isFinite(endBoundary)) {
    if (endBoundary !== Infinity) return []
    return await tx.query<WindowAggregate>(`UPDATE sensor_aggregates SET is_final = true, finalized_at = now()
      WHERE NOT is_final RETURNING ${aggregateColumns}`)
  }
  return await tx.query<WindowAggregate>(`UPDATE sensor_aggregates SET is_final = true, finalized_at = now()
    WHERE NOT is_final AND window_end <= ${msToTimestamp('$1::float8')} RETURNING ${aggregateColumns}`, [endBoundary])
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
