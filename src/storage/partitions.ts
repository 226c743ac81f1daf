// readings is partitioned by UTC day: partitions are created on demand, dropped whole for
// retention, and their BRIN indexes on time summarized now and then.
import { type Db, type Queryable } from './db.ts'

const DAY_MS = 86_400_000

const createdPartitions = new WeakMap<Db, Set<number>>()

function partitionName (day: number): string {
  return 'readings_' + new Date(day * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')
}

/** Creates the daily partitions of readings that hold these event times (idempotent, race-safe). */
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
      await db.query(`CREATE TABLE IF NOT EXISTS ${partitionName(day)} PARTITION OF readings FOR VALUES FROM ('${from}') TO ('${to}')`)
    } catch (err) {
      // Another worker created it between our IF NOT EXISTS check and the create.
      const code = (err as { code?: string }).code
      if (code !== '42P07' && code !== '23505') throw err
    }
    known.add(day)
  }
}

/**
 * Summarizes new block ranges of the BRIN indexes on time (every daily partition of readings, and
 * device_scores), so time-range queries (the newest readings) skip everything older. Cheap when there is nothing new.
 */
export async function summarizeTimeIndex (db: Queryable): Promise<number> {
  const rows = await db.query<{ n: number }>(`
    SELECT coalesce(sum(brin_summarize_new_values(i.indexrelid)), 0)::int AS n
    FROM pg_inherits h
    JOIN pg_class parent ON parent.oid = h.inhparent AND parent.relname = 'readings'
    JOIN pg_index i ON i.indrelid = h.inhrelid
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'brin'
    UNION ALL SELECT brin_summarize_new_values('device_scores_time_brin'::regclass)`)
  return rows.reduce((n, r) => n + r.n, 0)
}

/** Drops daily partitions that end at or before `beforeMs` (retention). Returns the dropped names. */
export async function dropPartitionsBefore (db: Db, beforeMs: number): Promise<string[]> {
  const rows = await db.query<{ name: string }>(`
    SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'readings'`)
  const dropped: string[] = []
  for (const { name } of rows) {
    const m = /^readings_(\d{4})(\d{2})(\d{2})$/.exec(name)
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
