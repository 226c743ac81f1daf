// Alarms as the worker writes and restores them (migrations 0011, 0015): the alarm rows a batch (or
// an offline check) raised or changed, their history, the outbox rows of their transitions (unique
// idempotency keys: written once, whatever is recomputed) and the changed condition states (one log
// row per partition), all in the caller's transaction; the log folded into alarm_conditions; and
// what a worker loads when it claims partitions.
import { type Alarm, type AlarmBatch, type ConditionChange, type KnownSensor, type OperatorState, type OriginatorKind, type StoredCondition } from '../alarms/index.ts'
import { type ScoredReading } from '../domain/index.ts'
import { ALARM_COLUMNS, type AlarmRow, alarmOf } from './alarm-actions.ts'
import { msToTimestamp, numberArray, textArray, timestampToMs } from './arrays.ts'
import { type Db, type Queryable } from './db.ts'
import { fencePartitions } from './progress.ts'
import { FLAG } from './readings.ts'

/** Severity order in SQL: a rise takes the acknowledgement back (the alarm fires again). */
const RANK = "ARRAY['indeterminate', 'warning', 'minor', 'major', 'critical']"

/**
 * Writes what the alarm core changed, inside the caller's transaction: alarm rows (system fields
 * only: an operator's acknowledgement or clear is kept; a cleared alarm is never made active
 * again), history, outbox rows (ON CONFLICT (idempotency_key) DO NOTHING) and condition states.
 */
export async function writeAlarmBatch (tx: Queryable, b: AlarmBatch): Promise<void> {
  if (b.alarms.length === 0 && b.events.length === 0 && b.transitions.length === 0 && b.conditions.length === 0) return
  // Clears before raises: a key cleared and raised again in one batch never has two active rows.
  const rows = [...b.alarms].sort((x, y) => Number(x.active) - Number(y.active))
  const e = b.events
  const t = b.transitions
  // Condition states: one log row per partition, {"<type>|<sensor id>": state or null}.
  const logs = new Map<number, Record<string, unknown>>()
  for (const c of b.conditions) {
    let m = logs.get(c.partition)
    if (m === undefined) logs.set(c.partition, m = {})
    m[`${c.type}|${c.originator.id}`] = c.state
  }
  // One statement, one round trip: the parts are independent, and the history's and outbox's
  // references to new alarms are checked at its end.
  await tx.query(`
    WITH alarm_rows AS (
      INSERT INTO alarms AS a (alarm_id, originator_kind, originator_id, alarm_type, severity, sensor_type, location, active, acknowledged,
        start_ms, last_ms, clear_ms, details, labels, updated_at)
      SELECT id, ok, oi, t, sev, st, loc, act, false, s, l, c, d::jsonb, lb::jsonb, now()
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[], $9::float8[], $10::float8[],
        $11::float8[], $12::text[], $13::text[]) WITH ORDINALITY AS x(id, ok, oi, t, sev, st, loc, act, s, l, c, d, lb, n)
      ORDER BY n
      ON CONFLICT (alarm_id) DO UPDATE SET
        severity = excluded.severity,
        last_ms = excluded.last_ms,
        details = excluded.details,
        labels = excluded.labels,
        acknowledged = a.acknowledged AND array_position(${RANK}, excluded.severity) <= array_position(${RANK}, a.severity),
        clear_ms = CASE WHEN a.active THEN excluded.clear_ms ELSE a.clear_ms END,
        active = a.active AND excluded.active,
        updated_at = now()
      RETURNING 1
    ), event_rows AS (
      INSERT INTO alarm_events (alarm_id, kind, at_ms, by_whom, comment, details)
      SELECT id, k, at, who, c, d::jsonb FROM unnest($14::text[], $15::text[], $16::float8[], $17::text[], $18::text[], $19::text[]) WITH ORDINALITY AS x(id, k, at, who, c, d, n)
      ORDER BY n
      RETURNING 1
    ), outbox_rows AS (
      INSERT INTO alarm_outbox (idempotency_key, alarm_id, status, at_ms)
      SELECT k, id, s, at FROM unnest($20::text[], $21::text[], $22::text[], $23::float8[]) WITH ORDINALITY AS x(k, id, s, at, n) ORDER BY n
      ON CONFLICT (idempotency_key) DO NOTHING
      RETURNING 1
    ), log_rows AS (
      INSERT INTO alarm_condition_log (partition, states)
      SELECT p, st::jsonb FROM unnest($24::int4[], $25::text[]) WITH ORDINALITY AS x(p, st, n) ORDER BY n
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM alarm_rows) + (SELECT count(*) FROM event_rows) + (SELECT count(*) FROM outbox_rows) + (SELECT count(*) FROM log_rows) AS n`,
  [textArray(rows.map(a => a.id)), textArray(rows.map(a => a.originator.kind)), textArray(rows.map(a => a.originator.id)),
    textArray(rows.map(a => a.type)), textArray(rows.map(a => a.severity)), textArray(rows.map(a => a.sensorType)),
    textArray(rows.map(a => a.location)), `{${rows.map(a => a.active ? 't' : 'f').join(',')}}`, numberArray(rows.map(a => a.startMs)),
    numberArray(rows.map(a => a.lastMs)), numberArray(rows.map(a => a.clearMs)), textArray(rows.map(a => JSON.stringify(a.details))),
    textArray(rows.map(a => JSON.stringify(a.labels))),
    textArray(e.map(x => x.alarmId)), textArray(e.map(x => x.kind)), numberArray(e.map(x => x.atMs)), textArray(e.map(x => x.by)),
    textArray(e.map(x => x.comment)), textArray(e.map(x => JSON.stringify(x.details))),
    textArray(t.map(x => x.idempotencyKey)), textArray(t.map(x => x.alarmId)), textArray(t.map(x => x.status)), numberArray(t.map(x => x.atMs)),
    numberArray([...logs.keys()]), textArray([...logs.values()].map(m => JSON.stringify(m)))])
}

const cmp = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

/** What a worker restores for the originators it owns: active alarms and pending condition states. */
export interface StoredAlarmState {
  alarms: Alarm[]
  conditions: StoredCondition[]
}

/**
 * Active alarms and condition states of the originators `owns` accepts (all when absent): the
 * folded states, then the log of the `partitions` given (all when absent) in order.
 */
export async function loadAlarmState (db: Queryable, owns?: (kind: OriginatorKind, id: string) => boolean, partitions?: readonly number[]): Promise<StoredAlarmState> {
  const rows = await db.query<AlarmRow>(`SELECT ${ALARM_COLUMNS} FROM alarms a WHERE a.active`)
  const keep = (kind: OriginatorKind, id: string): boolean => owns === undefined || owns(kind, id)
  const states = new Map<string, StoredCondition>()
  for (const c of await db.query<{ k: OriginatorKind, i: string, t: string, s: Record<string, unknown> }>(
    'SELECT originator_kind AS k, originator_id AS i, alarm_type AS t, state AS s FROM alarm_conditions')) {
    if (keep(c.k, c.i)) states.set(`${c.t}|${c.i}`, { originator: { kind: c.k, id: c.i }, type: c.t, state: c.s })
  }
  const log = partitions === undefined
    ? await db.query<{ s: Record<string, Record<string, unknown> | null> }>('SELECT states AS s FROM alarm_condition_log ORDER BY seq')
    : await db.query<{ s: Record<string, Record<string, unknown> | null> }>('SELECT states AS s FROM alarm_condition_log WHERE partition = ANY($1::int4[]) ORDER BY seq', [numberArray(partitions)])
  for (const { s: changes } of log) {
    for (const [key, state] of Object.entries(changes)) {
      const i = key.indexOf('|')
      const type = key.slice(0, i)
      const id = key.slice(i + 1)
      if (!keep('sensor', id)) continue
      if (state === null) states.delete(key)
      else states.set(key, { originator: { kind: 'sensor', id }, type, state })
    }
  }
  return { alarms: rows.filter(r => keep(r.originator_kind, r.originator_id)).map(alarmOf), conditions: [...states.values()] }
}

/**
 * Every sensor with its newest type and location; `watch` when its newest reading is at most
 * `watchWithinMs` of event time older than the newest of all (long-gone sensors raise no offline alarm after a restart).
 */
export async function loadKnownSensors (db: Queryable, watchWithinMs: number): Promise<KnownSensor[]> {
  const rows = await db.query<{ sensorId: string, sensorType: string, location: string, last: number, newest: number, cadence: number | null }>(`
    SELECT DISTINCT ON (sensor_id) sensor_id AS "sensorId", sensor_type AS "sensorType", location, ${timestampToMs('last_seen')} AS last,
      ${timestampToMs('max(last_seen) OVER ()')} AS newest, cadence_ms AS cadence
    FROM sensors ORDER BY sensor_id, last_seen DESC`)
  return rows.map(r => ({
    sensorId: r.sensorId, sensorType: r.sensorType, location: r.location, watch: r.newest - r.last <= watchWithinMs, intervalMs: r.cadence ?? 0
  }))
}

/** Whether these alarms are still active and acknowledged: what operators did meanwhile. */
export async function loadOperatorState (db: Queryable, alarmIds: readonly string[]): Promise<OperatorState[]> {
  if (alarmIds.length === 0) return []
  return await db.query<OperatorState>(
    'SELECT alarm_id AS "alarmId", active, acknowledged FROM alarms WHERE alarm_id = ANY($1::text[])', [textArray(alarmIds)])
}

/** Every alarm (active and cleared), by id: for recomputation checks. */
export async function listAllAlarms (db: Queryable): Promise<Alarm[]> {
  return (await db.query<AlarmRow>(`SELECT ${ALARM_COLUMNS} FROM alarms a ORDER BY a.alarm_id`)).map(alarmOf)
}

/**
 * Stored readings with what the alarm core reads of their verdicts (value, combined, stuck, drift),
 * in order per sensor (event time): the input of recomputeAlarms. `sinceMs` bounds it.
 */
export async function loadReadingsForAlarms (db: Queryable, sinceMs = -Infinity): Promise<ScoredReading[]> {
  const where = Number.isFinite(sinceMs) ? `WHERE r.ts >= ${msToTimestamp('$1::float8')}` : ''
  const rows = await db.query<{ id: string, t: string, l: string, u: string, v: number, ts: number, f: number }>(`
    SELECT s.sensor_id AS id, s.sensor_type AS t, s.location AS l, s.unit AS u, r.value AS v, ${timestampToMs('r.ts')} AS ts, r.flags AS f
    FROM readings r JOIN sensors s ON s.sensor_key = r.sensor_key ${where} ORDER BY s.sensor_id, r.ts`, Number.isFinite(sinceMs) ? [sinceMs] : [])
  return rows.map(r => ({
    reading: { sensorId: r.id, sensorType: r.t, location: r.l, value: r.v, ts: r.ts, unit: r.u, anomaly: null, anomalyKind: null, seq: null },
    verdict: {
      ruleAnomaly: (r.f & FLAG.rule) !== 0,
      zScore: null,
      zAnomaly: (r.f & FLAG.z) !== 0,
      mlScore: null,
      mlAnomaly: (r.f & FLAG.mlScored) !== 0 ? (r.f & FLAG.ml) !== 0 : null,
      modelVersion: null,
      stuck: (r.f & FLAG.stuck) !== 0,
      drift: (r.f & FLAG.drift) !== 0,
      anomalyScore: (r.f & FLAG.combined) !== 0 ? 1 : 0,
      anomaly: (r.f & FLAG.combined) !== 0,
      severity: null,
      explanation: null
    }
  }))
}

/**
 * Folds the condition log of `partitions` into alarm_conditions: replaces their rows with
 * `snapshot` (every non-empty state, as the worker holds them with no batch in flight) and deletes
 * their log. In the caller's (fenced) transaction.
 */
export async function foldAlarmConditions (tx: Queryable, partitions: readonly number[], snapshot: readonly ConditionChange[]): Promise<void> {
  const parts = numberArray(partitions)
  await tx.query('DELETE FROM alarm_condition_log WHERE partition = ANY($1::int4[])', [parts])
  await tx.query('DELETE FROM alarm_conditions WHERE partition = ANY($1::int4[]) OR partition IS NULL', [parts])
  const rows = snapshot.filter(c => c.state !== null)
    .sort((x, y) => cmp(`${x.originator.kind}|${x.originator.id}|${x.type}`, `${y.originator.kind}|${y.originator.id}|${y.type}`))
  if (rows.length === 0) return
  await tx.query(`
    INSERT INTO alarm_conditions AS c (originator_kind, originator_id, alarm_type, state, partition)
    SELECT k, i, t, s::jsonb, p FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[]) AS x(k, i, t, s, p)
    ON CONFLICT (originator_kind, originator_id, alarm_type) DO UPDATE SET state = excluded.state, partition = excluded.partition`,
  [textArray(rows.map(c => c.originator.kind)), textArray(rows.map(c => c.originator.id)), textArray(rows.map(c => c.type)),
    textArray(rows.map(c => JSON.stringify(c.state))), numberArray(rows.map(c => c.partition))])
}

/**
 * Writes the alarm changes of a wall-clock check (offline, operators' clears taken in) in a
 * transaction of its own, fenced like a batch: a worker that lost one of these partitions
 * (IOT_ERR_FENCED) writes nothing. With `snapshot`, the condition log of the owned partitions is
 * folded too (foldAlarmConditions).
 */
export async function commitAlarmCheck (db: Db, group: string, topic: string, owned: readonly { partition: number, expectedOffset: number }[],
  b: AlarmBatch | null, snapshot: readonly ConditionChange[] | null = null): Promise<void> {
  await db.transaction(async tx => {
    await fencePartitions(tx, group, topic, owned.map(p => ({ ...p, nextOffset: p.expectedOffset, maxEventMs: null })))
    if (b !== null) await writeAlarmBatch(tx, b)
    if (snapshot !== null) await foldAlarmConditions(tx, owned.map(p => p.partition), snapshot)
  })
}
