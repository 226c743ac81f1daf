// What operators do with alarms (issue 17), and what the API and the notifier read of them: the list
// (active first, then by severity and start), one alarm with its history and its notifications,
// acknowledgement with a comment, clearing by an operator, silences, and counts by state and
// severity. The alarms themselves are raised and cleared by src/alarms in the worker's batch
// transaction (migration 0011); each action here is one statement, so it is atomic on its own:
// the alarm row, its history entry and (for a clear) its `resolved` outbox row change together.
import type { Alarm, AlarmEvent, AlarmEventKind, AlarmSeverity, AlarmStatus } from '../alarms/index.ts'
import { IotError } from '../domain/index.ts'
import { msToTimestamp, textArray, timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'

/** SQL columns of an alarm row, named as alarmOf reads them. */
export const ALARM_COLUMNS = `a.alarm_id, a.originator_kind, a.originator_id, a.alarm_type, a.severity, a.sensor_type, a.location,
  a.active, a.acknowledged, a.start_ms, a.last_ms, a.clear_ms, a.ack_ms, a.ack_by, a.ack_comment, a.details, a.labels`

export interface AlarmRow {
  alarm_id: string
  originator_kind: Alarm['originator']['kind']
  originator_id: string
  alarm_type: string
  severity: AlarmSeverity
  sensor_type: string | null
  location: string | null
  active: boolean
  acknowledged: boolean
  start_ms: number
  last_ms: number
  clear_ms: number | null
  ack_ms: number | null
  ack_by: string | null
  ack_comment: string | null
  details: Record<string, unknown> | null
  labels: Record<string, string> | null
}

/** A row of ALARM_COLUMNS as the model's Alarm. */
export function alarmOf (r: AlarmRow): Alarm {
  return {
    id: r.alarm_id,
    originator: { kind: r.originator_kind, id: r.originator_id },
    type: r.alarm_type,
    severity: r.severity,
    sensorType: r.sensor_type,
    location: r.location,
    active: r.active,
    acknowledged: r.acknowledged,
    startMs: r.start_ms,
    lastMs: r.last_ms,
    clearMs: r.clear_ms,
    ackMs: r.ack_ms,
    ackBy: r.ack_by,
    ackComment: r.ack_comment,
    details: r.details ?? {},
    labels: r.labels ?? {}
  }
}

/** ThingsBoard's four statuses from the two flags. */
export const alarmStatusOf = (a: Pick<Alarm, 'active' | 'acknowledged'>): AlarmStatus =>
  a.active ? (a.acknowledged ? 'active_ack' : 'active_unack') : (a.acknowledged ? 'cleared_ack' : 'cleared_unack')

/** critical first: the position in alarmSeverities, as SQL. */
const SEVERITY_RANK = "array_position(ARRAY['critical', 'major', 'minor', 'warning', 'indeterminate']::text[], a.severity)"

export interface AlarmListFilter {
  /** true: active only; false: cleared only; absent: both (active first). */
  active?: boolean | undefined
  severity?: AlarmSeverity | undefined
  location?: string | undefined
  sensorType?: string | undefined
  /** Default 100. */
  limit?: number | undefined
}

/** Alarms, active first, then the most severe, then the newest start. */
export async function listAlarms (db: Queryable, f: AlarmListFilter = {}): Promise<Alarm[]> {
  const where: string[] = []
  const params: unknown[] = []
  const add = (sql: string, v: unknown): void => { params.push(v); where.push(sql.replace('?', `$${params.length}`)) }
  if (f.active !== undefined) add('a.active = ?', f.active)
  if (f.severity !== undefined) add('a.severity = ?', f.severity)
  if (f.location !== undefined) add('a.location = ?', f.location)
  if (f.sensorType !== undefined) add('a.sensor_type = ?', f.sensorType)
  params.push(f.limit ?? 100)
  const rows = await db.query<AlarmRow>(`
    SELECT ${ALARM_COLUMNS} FROM alarms a
    ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
    ORDER BY a.active DESC, ${SEVERITY_RANK}, a.start_ms DESC, a.alarm_id
    LIMIT $${params.length}`, params)
  return rows.map(alarmOf)
}

export async function findAlarm (db: Queryable, id: string): Promise<Alarm | null> {
  const [row] = await db.query<AlarmRow>(`SELECT ${ALARM_COLUMNS} FROM alarms a WHERE a.alarm_id = $1`, [id])
  return row === undefined ? null : alarmOf(row)
}

/** Alarms by id (those that exist), in no particular order. */
export async function findAlarms (db: Queryable, ids: readonly string[]): Promise<Alarm[]> {
  if (ids.length === 0) return []
  const rows = await db.query<AlarmRow>(`SELECT ${ALARM_COLUMNS} FROM alarms a WHERE a.alarm_id = ANY($1::text[])`, [textArray(ids)])
  return rows.map(alarmOf)
}

/** One entry of the history, with its id (the order it was written in). */
export interface StoredAlarmEvent extends AlarmEvent {
  eventId: number
}

/** An alarm's history, oldest first. */
export async function alarmHistory (db: Queryable, id: string): Promise<StoredAlarmEvent[]> {
  const rows = await db.query<{ event_id: number, alarm_id: string, kind: AlarmEventKind, at_ms: number, by_whom: string, comment: string | null, details: Record<string, unknown> | null }>(`
    SELECT event_id, alarm_id, kind, at_ms, by_whom, comment, details FROM alarm_events WHERE alarm_id = $1 ORDER BY event_id`, [id])
  return rows.map(r => ({ eventId: r.event_id, alarmId: r.alarm_id, kind: r.kind, atMs: r.at_ms, by: r.by_whom, comment: r.comment, details: r.details ?? {} }))
}

/** A notification of an alarm, as its outbox row says. */
export interface AlarmNotification {
  outboxId: number
  idempotencyKey: string
  status: 'firing' | 'resolved'
  atMs: number
  createdAt: number
  attempts: number
  nextAttemptAt: number
  /** When it was done with (delivered, silenced, or refused for good); null while it waits. */
  deliveredAt: number | null
  /** null when delivered; `silenced: …`, `obsolete: …`, `rejected: …` when done without delivery; the last failure while it waits. */
  lastError: string | null
}

export async function alarmNotifications (db: Queryable, id: string): Promise<AlarmNotification[]> {
  return await db.query<AlarmNotification>(`
    SELECT outbox_id AS "outboxId", idempotency_key AS "idempotencyKey", status, at_ms AS "atMs", ${timestampToMs('created_at')} AS "createdAt",
      attempts, ${timestampToMs('next_attempt_at')} AS "nextAttemptAt", ${timestampToMs('delivered_at')} AS "deliveredAt", last_error AS "lastError"
    FROM alarm_outbox WHERE alarm_id = $1 ORDER BY outbox_id`, [id])
}

export interface OperatorAction {
  /** Who: a name given by the operator, else the role of the token. */
  by: string
  comment: string | null
  /** Wall time of the action, epoch ms. */
  atMs: number
}

async function refusal (db: Queryable, id: string, what: 'acknowledged' | 'cleared'): Promise<IotError> {
  const a = await findAlarm(db, id)
  if (a === null) return new IotError('IOT_ERR_ALARM_NOT_FOUND', `no alarm "${id}"`)
  if (what === 'acknowledged') {
    return new IotError('IOT_ERR_ALARM_STATE', `alarm "${id}" was acknowledged already${a.ackBy === null ? '' : ` by ${a.ackBy}`}${a.ackMs === null ? '' : ` at ${new Date(a.ackMs).toISOString()}`}`)
  }
  return new IotError('IOT_ERR_ALARM_STATE', `alarm "${id}" is cleared already${a.clearMs === null ? '' : ` (at ${new Date(a.clearMs).toISOString()})`}`)
}

/**
 * Acknowledges an alarm (active or cleared) with a comment: its status becomes active_ack or
 * cleared_ack, an `acknowledged` entry joins its history, and the notifier stops repeating it.
 * IOT_ERR_ALARM_NOT_FOUND, or IOT_ERR_ALARM_STATE when it was acknowledged already.
 */
export async function acknowledgeAlarm (db: Queryable, id: string, act: OperatorAction): Promise<Alarm> {
  const [row] = await db.query<AlarmRow>(`
    WITH a AS (
      UPDATE alarms SET acknowledged = true, ack_ms = $2, ack_by = $3, ack_comment = $4, updated_at = now()
      WHERE alarm_id = $1 AND NOT acknowledged
      RETURNING *
    ), ev AS (
      INSERT INTO alarm_events (alarm_id, kind, at_ms, by_whom, comment) SELECT alarm_id, 'acknowledged', $2, $3, $4 FROM a
    )
    SELECT ${ALARM_COLUMNS} FROM a`, [id, act.atMs, act.by, act.comment])
  if (row === undefined) throw await refusal(db, id, 'acknowledged')
  return alarmOf(row)
}

/**
 * Clears an active alarm by hand: inactive from `atMs`, a `cleared_by_operator` entry in its history,
 * and a `resolved` notification (key `${alarmId}|resolved`) in the outbox. IOT_ERR_ALARM_NOT_FOUND,
 * or IOT_ERR_ALARM_STATE when it is cleared already.
 */
export async function clearAlarmByOperator (db: Queryable, id: string, act: OperatorAction): Promise<Alarm> {
  const [row] = await db.query<AlarmRow>(`
    WITH a AS (
      UPDATE alarms SET active = false, clear_ms = $2, updated_at = now()
      WHERE alarm_id = $1 AND active
      RETURNING *
    ), ev AS (
      INSERT INTO alarm_events (alarm_id, kind, at_ms, by_whom, comment) SELECT alarm_id, 'cleared_by_operator', $2, $3, $4 FROM a
    ), outbox AS (
      INSERT INTO alarm_outbox (idempotency_key, alarm_id, status, at_ms) SELECT alarm_id || '|resolved', alarm_id, 'resolved', $2 FROM a
      ON CONFLICT (idempotency_key) DO NOTHING
    )
    SELECT ${ALARM_COLUMNS} FROM a`, [id, act.atMs, act.by, act.comment])
  if (row === undefined) throw await refusal(db, id, 'cleared')
  return alarmOf(row)
}

/** Alarms by status and severity (every pair present, 0 when none). */
export type AlarmCounts = Record<AlarmStatus, Record<AlarmSeverity, number>>

export function emptyAlarmCounts (): AlarmCounts {
  const bySeverity = (): Record<AlarmSeverity, number> => ({ critical: 0, major: 0, minor: 0, warning: 0, indeterminate: 0 })
  return { active_unack: bySeverity(), active_ack: bySeverity(), cleared_unack: bySeverity(), cleared_ack: bySeverity() }
}

export async function alarmCounts (db: Queryable): Promise<AlarmCounts> {
  const rows = await db.query<{ active: boolean, acknowledged: boolean, severity: AlarmSeverity, n: number }>(
    'SELECT active, acknowledged, severity, count(*) AS n FROM alarms GROUP BY active, acknowledged, severity')
  const counts = emptyAlarmCounts()
  for (const r of rows) counts[alarmStatusOf(r)][r.severity] += r.n
  return counts
}

/**
 * A cheap mark of the alarms' state for the live stream's poll: the newest history entry and the
 * number of active alarms (an index lookup each). It changes with every raise, clear, severity
 * change and operator action.
 */
export async function alarmsVersion (db: Queryable): Promise<{ lastEventId: number, active: number }> {
  const [row] = await db.query<{ last: number | null, active: number }>(
    'SELECT (SELECT max(event_id) FROM alarm_events) AS last, (SELECT count(*) FROM alarms WHERE active) AS active')
  return { lastEventId: row?.last ?? 0, active: row?.active ?? 0 }
}

/** Ids of the alarms with history entries after `afterEventId` (at most `limit`, newest first). */
export async function alarmsChangedSince (db: Queryable, afterEventId: number, limit = 200): Promise<string[]> {
  const rows = await db.query<{ alarm_id: string }>(`
    SELECT alarm_id FROM alarm_events WHERE event_id > $1 GROUP BY alarm_id ORDER BY max(event_id) DESC LIMIT $2`, [afterEventId, limit])
  return rows.map(r => r.alarm_id)
}

// Silences: label matchers and a time range. A silenced alarm still shows; its notifications are
// not sent (src/notify).

/** Alertmanager's matcher: `name=value`, `name!=value`, `name=~regex`, `name!~regex` (regexes anchored). */
export interface SilenceMatcher {
  name: string
  value: string
  isRegex: boolean
  /** false: the matcher is negated (!=, !~). */
  isEqual: boolean
}

export interface StoredSilence {
  id: number
  matchers: SilenceMatcher[]
  startsAt: number
  endsAt: number
  createdBy: string
  comment: string
  createdAt: number
}

export interface NewSilence {
  matchers: SilenceMatcher[]
  startsAt: number
  endsAt: number
  createdBy: string
  comment: string
}

/** Stored matchers: our array of matchers, or the object shorthand `{"location": "lab"}` (equality). */
function matchersOf (v: unknown): SilenceMatcher[] {
  if (Array.isArray(v)) {
    return v.filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null).map(m => ({
      name: String(m.name ?? ''),
      value: String(m.value ?? ''),
      isRegex: m.isRegex === true,
      isEqual: m.isEqual !== false
    }))
  }
  if (typeof v === 'object' && v !== null) return Object.entries(v).map(([name, value]) => ({ name, value: String(value), isRegex: false, isEqual: true }))
  return []
}

const SILENCE_COLUMNS = `silence_id AS id, matchers, ${timestampToMs('starts_at')} AS "startsAt", ${timestampToMs('ends_at')} AS "endsAt",
  created_by AS "createdBy", comment, ${timestampToMs('created_at')} AS "createdAt"`

type SilenceRow = Omit<StoredSilence, 'matchers'> & { matchers: unknown }
const silenceOf = (r: SilenceRow): StoredSilence => ({ ...r, matchers: matchersOf(r.matchers) })

export async function createSilence (db: Queryable, s: NewSilence): Promise<StoredSilence> {
  if (!(s.endsAt > s.startsAt)) throw new IotError('IOT_ERR_VALIDATION', 'a silence ends after it starts')
  const [row] = await db.query<SilenceRow>(`
    INSERT INTO alarm_silences (matchers, starts_at, ends_at, created_by, comment)
    VALUES ($1::text::jsonb, ${msToTimestamp('$2::float8')}, ${msToTimestamp('$3::float8')}, $4, $5)
    RETURNING ${SILENCE_COLUMNS}`, [JSON.stringify(s.matchers), s.startsAt, s.endsAt, s.createdBy, s.comment])
  return silenceOf(row!)
}

/** Silences that have not ended at `nowMs` (current and future), or all with `includeExpired`; by start. */
export async function listSilences (db: Queryable, nowMs: number, includeExpired = false): Promise<StoredSilence[]> {
  const rows = await db.query<SilenceRow>(`
    SELECT ${SILENCE_COLUMNS} FROM alarm_silences
    WHERE $1 OR ends_at > ${msToTimestamp('$2::float8')}
    ORDER BY starts_at, silence_id`, [includeExpired, nowMs])
  return rows.map(silenceOf)
}

/** Silences in force at the database's clock (the notifier's clock: see src/notify). */
export async function silencesInForce (db: Queryable): Promise<StoredSilence[]> {
  const rows = await db.query<SilenceRow>(`SELECT ${SILENCE_COLUMNS} FROM alarm_silences WHERE starts_at <= now() AND ends_at > now() ORDER BY silence_id`)
  return rows.map(silenceOf)
}

/** Deletes a silence (notifications it held back are not sent afterwards); IOT_ERR_SILENCE_NOT_FOUND when there is none. */
export async function deleteSilence (db: Queryable, id: number): Promise<StoredSilence> {
  const [row] = await db.query<SilenceRow>(`DELETE FROM alarm_silences WHERE silence_id = $1 RETURNING ${SILENCE_COLUMNS}`, [id])
  if (row === undefined) throw new IotError('IOT_ERR_SILENCE_NOT_FOUND', `no silence ${id}`)
  return silenceOf(row)
}
