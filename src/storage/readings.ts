// Readings as the worker writes and restores them: binary COPY of a batch into the compact rows of
// `readings` (migration 0006), the keys that tell duplicates, the newest readings that warm the
// detectors up; and the SQL that turns compact rows back into columns.
import { type Reading, type ScoredReading, type Severity, type Verdict } from '../domain/index.ts'
import { msToTimestamp, numberArray, timestampToMs } from './arrays.ts'
import { BinaryCopy } from './copy-binary.ts'
import { type Queryable } from './db.ts'
import { nameKeys, seriesOf, upsertSensors } from './sensors.ts'

/** Bits of readings.flags (migrations 0006 and 0010; the SQL function reading_flags makes the same from verdict columns). */
export const FLAG = {
  rule: 1,
  z: 2,
  ml: 4,
  mlScored: 8,
  combined: 16,
  /** Two bits from here: 1 minor, 2 major, 3 critical. */
  severityShift: 5,
  labelled: 128,
  labelAnomaly: 256,
  stuck: 512,
  drift: 1024,
  /** The anomaly_kinds key of the label from here. */
  kindShift: 16
} as const
/** Any detector fired (rule, z-score, forest, stuck, drift: 1 | 2 | 4 | 512 | 1024): the predicate of the partial indexes on flagged readings (0010). */
export const FLAGGED = 'flags & 1543 <> 0'
const severityCode: Record<Severity, number> = { minor: 1, major: 2, critical: 3 }

/** A reading's flags: its verdicts, its label and the key of the label's kind. */
export function readingFlags (r: Reading, v: Verdict, kindKey: number): number {
  return (v.ruleAnomaly ? FLAG.rule : 0) | (v.zAnomaly ? FLAG.z : 0) | (v.mlAnomaly === true ? FLAG.ml : 0) |
    (v.mlAnomaly === null ? 0 : FLAG.mlScored) | (v.anomaly ? FLAG.combined : 0) |
    (v.stuck ? FLAG.stuck : 0) | (v.drift ? FLAG.drift : 0) |
    (v.severity === null ? 0 : severityCode[v.severity] << FLAG.severityShift) |
    (r.anomaly === null ? 0 : FLAG.labelled) | (r.anomaly === true ? FLAG.labelAnomaly : 0) | (kindKey << FLAG.kindShift)
}

/** The columns of `readings` in COPY order. */
export const readingColumns = ['ts', 'value', 'sensor_key', 'flags', 'z_score', 'ml_score', 'model_key', 'explanation'] as const

/** Keys of the dimensions a batch's rows refer to. */
export interface ReadingKeys {
  sensors: ReadonlyMap<string, number>
  kinds: ReadonlyMap<string, number>
  models: ReadonlyMap<string, number>
}

/**
 * The model version and explanation are kept where they say something: on readings a detector
 * flagged (the rest carry their scores and flags only).
 */
const flagged = (v: Verdict): boolean => v.ruleAnomaly || v.zAnomaly || v.mlAnomaly === true || v.stuck || v.drift || v.severity !== null

/** Upserts the batch's sensors (with their event-time span) and the names its rows refer to; returns their keys. */
export async function resolveKeys (tx: Queryable, rows: readonly ScoredReading[], cadence?: ReadonlyMap<string, number>): Promise<ReadingKeys> {
  const kinds = new Set<string>()
  const models = new Set<string>()
  for (const { reading: r, verdict: v } of rows) {
    if (r.anomalyKind !== null) kinds.add(r.anomalyKind)
    if (v.modelVersion !== null && flagged(v)) models.add(v.modelVersion)
  }
  return {
    sensors: await upsertSensors(tx, rows, cadence),
    kinds: await nameKeys(tx, 'anomaly_kinds', kinds),
    models: await nameKeys(tx, 'model_versions', models)
  }
}

/** Appends readings with their verdicts as binary COPY rows (`readingColumns` order and types). */
export function copyReadingRows (c: BinaryCopy, rows: readonly ScoredReading[], keys: ReadingKeys): void {
  for (const { reading: r, verdict: v } of rows) {
    const kind = r.anomalyKind === null ? 0 : keys.kinds.get(r.anomalyKind) ?? 0
    const keep = flagged(v)
    c.row(readingColumns.length)
    c.timestamptz(r.ts); c.float8(r.value); c.int4(keys.sensors.get(seriesOf(r)) ?? missingKey(r)); c.int4(readingFlags(r, v, kind))
    c.float4(v.zScore); c.float4(v.mlScore)
    c.int4(keep && v.modelVersion !== null ? keys.models.get(v.modelVersion) ?? null : null)
    c.text(keep ? v.explanation : null)
  }
}

function missingKey (r: Reading): never {
  throw new Error(`no sensor key for ${r.sensorId} (${r.sensorType}, ${r.location}, ${r.unit}): resolveKeys must see every row`)
}

/**
 * Bulk-loads readings with their verdicts (COPY into the day partitions of `readings`), after
 * recording their sensors. The caller has removed duplicates (see commitBatch).
 */
export async function insertReadings (tx: Queryable, rows: readonly ScoredReading[], cadence?: ReadonlyMap<string, number>): Promise<void> {
  if (rows.length === 0) return
  const keys = await resolveKeys(tx, rows, cadence)
  const c = new BinaryCopy(rows.length * 64).begin()
  copyReadingRows(c, rows, keys)
  await tx.copyFrom('readings', readingColumns, c.end())
}

/** FROM clause of readings with their sensor (alias r and s), for the column expressions below. */
export const readingsWithSensor = 'readings r JOIN sensors s ON s.sensor_key = r.sensor_key'
/** The ground-truth label of a compact row (alias r): true, false, or null when unknown. */
export const labelSql = `CASE WHEN r.flags & ${FLAG.labelled} <> 0 THEN r.flags & ${FLAG.labelAnomaly} <> 0 END`
/** The reading's own columns (a Reading's fields) from `readingsWithSensor`; the kind needs `kindJoin`. */
const readingFields = `s.sensor_id AS "sensorId", s.sensor_type AS "sensorType", s.location, r.value, ${timestampToMs('r.ts')} AS ts, s.unit,
  ${labelSql} AS anomaly, k.name AS "anomalyKind"`
export const kindJoin = `LEFT JOIN anomaly_kinds k ON k.kind_key = r.flags >> ${FLAG.kindShift}`

/**
 * Which of these (sensor, time) keys are already stored as readings. Returns `${sensorId}|${ts}`.
 * There is no index on (sensor, time): the keys are looked up by time range (BRIN), an hour of
 * event time at most per query, so scattered late readings never scan much.
 */
export async function findStoredKeys (tx: Queryable, keys: readonly { sensorId: string, ts: number }[]): Promise<Set<string>> {
  const found = new Set<string>()
  if (keys.length === 0) return found
  const wanted = new Set(keys.map(k => `${k.sensorId}|${k.ts}`))
  const times = [...new Set(keys.map(k => k.ts))].sort((a, b) => a - b)
  const clusters: number[][] = []
  for (const t of times) {
    const last = clusters.at(-1)
    if (last !== undefined && t - last[0]! <= 3_600_000) last.push(t)
    else clusters.push([t])
  }
  for (const ts of clusters) {
    const rows = await tx.query<{ s: string, ts: number }>(`
      SELECT s.sensor_id AS s, ${timestampToMs('r.ts')} AS ts FROM ${readingsWithSensor}
      WHERE r.ts >= ${msToTimestamp('$1::float8')} AND r.ts <= ${msToTimestamp('$2::float8')}
        AND r.ts = ANY(ARRAY(SELECT ${msToTimestamp('x')} FROM unnest($3::float8[]) AS x))`,
    [ts[0], ts[ts.length - 1], numberArray(ts)])
    for (const r of rows) {
      const key = `${r.s}|${r.ts}`
      if (wanted.has(key)) found.add(key)
    }
  }
  return found
}

/** (sensor, time) of every stored reading at or after `sinceMs`: rebuilds the de-duplication state. */
export async function loadReadingKeysSince (db: Queryable, sinceMs: number): Promise<{ sensorId: string, ts: number }[]> {
  const select = `SELECT s.sensor_id AS "sensorId", ${timestampToMs('r.ts')} AS ts FROM ${readingsWithSensor}`
  if (!Number.isFinite(sinceMs)) return await db.query(select)
  return await db.query(`${select} WHERE r.ts >= ${msToTimestamp('$1::float8')}`, [sinceMs])
}

/**
 * The readings a worker replays through the detectors when it takes over partitions, in event-time
 * order (each sensor's in its own order, the sensors interleaved as they were measured, so a
 * device's measurements align into rows again). A sensor with a stored detector snapshot
 * (detector_state, key `sensor:<id>`) replays its readings newer than the snapshot, at most
 * `afterSnapshot` of them and none before `snapshotSinceMs`; any other sensor its newest
 * `perSensor` readings since `sinceMs`.
 */
export async function loadWarmupReadings (db: Queryable, o: { sinceMs: number, perSensor: number, snapshotSinceMs: number, afterSnapshot: number }): Promise<Reading[]> {
  return await db.query<Reading>(`
    SELECT "sensorId", "sensorType", location, value, ts, unit, anomaly, "anomalyKind", NULL::float8 AS seq FROM (
      SELECT ${readingFields}, row_number() OVER (PARTITION BY s.sensor_id ORDER BY r.ts DESC) AS n, st.last_ts IS NOT NULL AS snapshot
      FROM ${readingsWithSensor} ${kindJoin}
      LEFT JOIN detector_state st ON st.state_key = 'sensor:' || s.sensor_id
      WHERE r.ts >= ${msToTimestamp('least($1::float8, $3::float8)')}
        AND CASE WHEN st.last_ts IS NULL THEN r.ts >= ${msToTimestamp('$1::float8')} ELSE r.ts > st.last_ts AND r.ts >= ${msToTimestamp('$3::float8')} END) x
    WHERE n <= CASE WHEN snapshot THEN $4::int ELSE $2::int END ORDER BY ts, "sensorId"`, [o.sinceMs, o.perSensor, o.snapshotSinceMs, o.afterSnapshot])
}
