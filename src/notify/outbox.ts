// The notifier's statements on alarm_outbox (migration 0011). Rows are claimed with a lease rather
// than a transaction held over HTTP: one short UPDATE … FOR UPDATE SKIP LOCKED moves the claimed
// rows' next attempt a lease ahead, so another process (or this one's next round) skips them; the
// outcome then marks them done or schedules the next attempt. A process killed between the claim and
// the outcome leaves its rows to be tried again when the lease ends: at least once.
import { ALARM_COLUMNS, type AlarmRow, type Queryable, alarmOf } from '../storage/index.ts'
import { type NotificationItem } from './payload.ts'
import { type RepeatCandidate } from './planner.ts'

const nowMsSql = '(extract(epoch from now()) * 1000)::float8'
const tsMs = (expr: string): string => `(extract(epoch from ${expr}) * 1000)::float8`
const idArray = (ids: readonly number[]): string => `{${ids.join(',')}}`

type DueRow = AlarmRow & { db_now: number, outbox_id: number, idempotency_key: string, status: 'firing' | 'resolved', at_ms: number, created_ms: number, attempts: number }

/** Rows not done whose next attempt has come (oldest first, at most `limit`), with their alarms, and the database's clock. */
export async function loadDue (db: Queryable, limit: number): Promise<{ nowMs: number, items: NotificationItem[] }> {
  const rows = await db.query<DueRow>(`
    SELECT ${nowMsSql} AS db_now, o.outbox_id, o.idempotency_key, o.status, o.at_ms, ${tsMs('o.created_at')} AS created_ms, o.attempts, ${ALARM_COLUMNS}
    FROM alarm_outbox o JOIN alarms a ON a.alarm_id = o.alarm_id
    WHERE o.delivered_at IS NULL AND o.next_attempt_at <= now()
    ORDER BY o.outbox_id
    LIMIT $1`, [limit])
  const nowMs = rows[0]?.db_now ?? Date.now()
  return {
    nowMs,
    items: rows.map(r => ({
      outboxId: r.outbox_id, idempotencyKey: r.idempotency_key, status: r.status, atMs: r.at_ms, createdAt: r.created_ms, attempts: r.attempts, alarm: alarmOf(r)
    }))
  }
}

/**
 * Claims the rows that are still due and not locked by another process: their attempt is counted and
 * their next attempt set `leaseMs` ahead. Returns the ids claimed (a subset of `ids`).
 */
export async function claim (db: Queryable, ids: readonly number[], leaseMs: number): Promise<Set<number>> {
  if (ids.length === 0) return new Set()
  const rows = await db.query<{ outbox_id: number }>(`
    UPDATE alarm_outbox SET attempts = attempts + 1, next_attempt_at = now() + $2::float8 * interval '1 millisecond'
    WHERE outbox_id IN (
      SELECT outbox_id FROM alarm_outbox
      WHERE outbox_id = ANY($1::int8[]) AND delivered_at IS NULL AND next_attempt_at <= now()
      FOR UPDATE SKIP LOCKED
    )
    RETURNING outbox_id`, [idArray(ids), leaseMs])
  return new Set(rows.map(r => r.outbox_id))
}

/**
 * Marks rows done: delivered (`reason` null) or not to be sent (`silenced: …`, `obsolete: …`,
 * `expired: …`, `rejected: …`). `claimed`: rows this process claimed (done whatever their lease);
 * otherwise only rows still due and unclaimed are marked (another process may be sending them).
 * Returns the ids marked.
 */
export async function markDone (db: Queryable, ids: readonly number[], reason: string | null, claimed: boolean): Promise<number[]> {
  if (ids.length === 0) return []
  const rows = await db.query<{ outbox_id: number }>(`
    UPDATE alarm_outbox SET delivered_at = now(), last_error = $2
    WHERE outbox_id = ANY($1::int8[]) AND delivered_at IS NULL ${claimed ? '' : 'AND next_attempt_at <= now()'}
    RETURNING outbox_id`, [idArray(ids), reason])
  return rows.map(r => r.outbox_id)
}

/** Schedules the next attempt of claimed rows that failed: each its own wait (its attempts differ), and why. */
export async function markFailed (db: Queryable, waits: ReadonlyMap<number, number>, error: string): Promise<void> {
  if (waits.size === 0) return
  const ids = [...waits.keys()]
  await db.query(`
    UPDATE alarm_outbox o SET next_attempt_at = now() + x.wait * interval '1 millisecond', last_error = $3
    FROM unnest($1::int8[], $2::float8[]) AS x(id, wait)
    WHERE o.outbox_id = x.id AND o.delivered_at IS NULL`, [idArray(ids), `{${ids.map(i => waits.get(i)!).join(',')}}`, error.slice(0, 1000)])
}

type CandidateRow = AlarmRow & { db_now: number, firing_rows: number, last_notified_ms: number | null, pending: boolean | null }

/** Active, unacknowledged alarms with their notifications' summary (the repeat check), and the database's clock. */
export async function loadRepeatCandidates (db: Queryable): Promise<{ nowMs: number, candidates: RepeatCandidate[] }> {
  const rows = await db.query<CandidateRow>(`
    SELECT ${nowMsSql} AS db_now, ${ALARM_COLUMNS}, s.firing_rows, s.last_notified_ms, s.pending
    FROM alarms a CROSS JOIN LATERAL (
      SELECT count(*) FILTER (WHERE o.status = 'firing') AS firing_rows,
        max(${tsMs('o.delivered_at')}) FILTER (WHERE o.status = 'firing' AND (o.last_error IS NULL OR o.last_error NOT LIKE 'silenced%')) AS last_notified_ms,
        bool_or(o.delivered_at IS NULL) AS pending
      FROM alarm_outbox o WHERE o.alarm_id = a.alarm_id
    ) s
    WHERE a.active AND NOT a.acknowledged`)
  return {
    nowMs: rows[0]?.db_now ?? Date.now(),
    candidates: rows.map(r => ({ alarm: alarmOf(r), firingRows: r.firing_rows, lastNotifiedMs: r.last_notified_ms, pending: r.pending === true }))
  }
}

/** Writes repeat rows (firing, at the database's clock); a key written already (by another process) is skipped. Returns how many were written. */
export async function insertRepeats (db: Queryable, repeats: readonly { alarmId: string, idempotencyKey: string }[]): Promise<number> {
  if (repeats.length === 0) return 0
  const text = (xs: readonly string[]): string => `{${xs.map(x => `"${x.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`
  const rows = await db.query(`
    INSERT INTO alarm_outbox (idempotency_key, alarm_id, status, at_ms)
    SELECT x.k, x.id, 'firing', ${nowMsSql} FROM unnest($1::text[], $2::text[]) AS x(k, id)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING 1`, [text(repeats.map(r => r.idempotencyKey)), text(repeats.map(r => r.alarmId))])
  return rows.length
}
