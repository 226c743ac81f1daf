// detector_state (migration 0016): the detectors' state snapshots, written in the transaction of
// the batch whose readings they include, restored by a worker taking over partitions.
import { msToTimestamp, textArray, timestampToMs } from './arrays.ts'
import { BinaryCopy } from './copy-binary.ts'
import { type Queryable } from './db.ts'

/** One snapshot: `sensor:<sensor id>` or `forest:<model key>`, the newest event time it has seen, its bytes. */
export interface DetectorSnapshot {
  key: string
  lastTs: number
  state: Uint8Array
}

const columns = ['state_key', 'last_ts', 'state'] as const

/** Replaces the stored snapshots of these keys (a key given twice: the last one wins). */
export async function saveDetectorState (tx: Queryable, snapshots: readonly DetectorSnapshot[]): Promise<void> {
  if (snapshots.length === 0) return
  const latest = new Map<string, DetectorSnapshot>()
  for (const s of snapshots) latest.set(s.key, s)
  // In a fixed order: concurrent workers lock rows in the same order.
  const rows = [...latest.values()].sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  await tx.query('DELETE FROM detector_state WHERE state_key = ANY($1::text[])', [textArray(rows.map(r => r.key))])
  const c = new BinaryCopy(rows.reduce((n, r) => n + r.state.length + r.key.length + 32, 64)).begin()
  for (const r of rows) {
    c.row(columns.length)
    c.text(r.key)
    c.timestamptz(r.lastTs)
    c.bytea(r.state)
  }
  await tx.copyFrom('detector_state', columns, c.end())
}

/** Every stored snapshot whose key passes `keep`. */
export async function loadDetectorState (db: Queryable, keep: (key: string) => boolean = () => true): Promise<DetectorSnapshot[]> {
  const rows = await db.query<DetectorSnapshot>(`SELECT state_key AS key, ${timestampToMs('last_ts')} AS "lastTs", state FROM detector_state ORDER BY state_key`)
  return rows.filter(r => keep(r.key)).map(r => ({ key: r.key, lastTs: r.lastTs, state: new Uint8Array(r.state) }))
}

/** Deletes snapshots not updated since `cutoffMs` of wall time (sensors gone for longer than retention). */
export async function deleteDetectorStateBefore (db: Queryable, cutoffMs: number): Promise<number> {
  const [n] = await db.query<{ n: number }>(`WITH d AS (DELETE FROM detector_state WHERE updated_at < ${msToTimestamp('$1::float8')} RETURNING 1)
    SELECT count(*)::int AS n FROM d`, [cutoffMs])
  return n?.n ?? 0
}
