// worker_status: each running worker's consumer lag and bus-to-stored latency, for an api process
// that runs no worker itself (migration 0007).
import { numberArray } from './arrays.ts'
import { type Queryable } from './db.ts'

export interface Latency {
  p50: number
  p99: number
}

export interface WorkerReport {
  instance: string
  partitions: readonly number[]
  lag: number | null
  latency: Latency | null
}

export async function reportWorkerStatus (db: Queryable, group: string, topic: string, r: WorkerReport): Promise<void> {
  await db.query(`
    INSERT INTO worker_status (consumer_group, topic, instance, partitions, lag, latency_p50_ms, latency_p99_ms, updated_at)
    VALUES ($1, $2, $3, $4::int4[], $5, $6, $7, now())
    ON CONFLICT (consumer_group, topic, instance) DO UPDATE SET partitions = excluded.partitions, lag = excluded.lag,
      latency_p50_ms = excluded.latency_p50_ms, latency_p99_ms = excluded.latency_p99_ms, updated_at = excluded.updated_at`,
  [group, topic, r.instance, numberArray([...r.partitions]), r.lag, r.latency?.p50 ?? null, r.latency?.p99 ?? null])
}

export async function removeWorkerStatus (db: Queryable, group: string, topic: string, instance: string): Promise<void> {
  await db.query('DELETE FROM worker_status WHERE consumer_group = $1 AND topic = $2 AND instance = $3', [group, topic, instance])
}

export interface GroupStatus {
  /** Workers that reported within the freshness span. */
  workers: number
  /** Their lag summed (null when none knows it). */
  lag: number | null
  /** The slowest worker's latency (percentiles of different workers do not combine exactly). */
  latency: Latency | null
}

/** What the workers of a group reported within the last `freshMs` of wall time. */
export async function loadGroupStatus (db: Queryable, group: string, topic: string, freshMs: number): Promise<GroupStatus> {
  const [r] = await db.query<{ workers: number, lag: number | null, p50: number | null, p99: number | null }>(`
    SELECT count(*)::int AS workers, sum(lag)::float8 AS lag, max(latency_p50_ms) AS p50, max(latency_p99_ms) AS p99
    FROM worker_status WHERE consumer_group = $1 AND topic = $2 AND updated_at >= now() - $3::float8 * interval '1 millisecond'`,
  [group, topic, freshMs])
  return {
    workers: r?.workers ?? 0,
    lag: r?.lag ?? null,
    latency: r?.p50 === null || r?.p50 === undefined || r.p99 === null ? null : { p50: r.p50, p99: r.p99 }
  }
}
