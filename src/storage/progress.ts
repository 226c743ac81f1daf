// Stream progress: per-partition offsets and event time (stream_offsets) and the combined
// watermark that decides window finality (stream_watermarks). With several workers in one
// consumer group, every batch transaction takes the finality lock in shared mode and only a
// finalization takes it exclusively, so no window can become final while a batch merges into it.
import { IotError } from '../domain/index.ts'
import { boolArray, numberArray } from './arrays.ts'
import { type Queryable } from './db.ts'

/** One partition's stored progress. */
export interface PartitionState {
  partition: number
  nextOffset: number
  /** Highest event time stored from the partition, or null if none yet. */
  maxEventMs: number | null
  /** Its owner saw nothing on it for the idle timeout: it does not hold the watermark back. */
  idle: boolean
}

/** What a batch stores for a partition; `expectedOffset` fences off a worker that lost the partition. */
export interface PartitionProgress {
  partition: number
  /** The next offset this worker believes is stored (where its batch started). */
  expectedOffset: number
  nextOffset: number
  maxEventMs: number | null
}

export const FINALITY_LOCK_CLASS = 727_002

interface StateRow { partition: number, next_offset: number, max_event_ms: number | null, idle: boolean }
const toState = (r: StateRow): PartitionState =>
  ({ partition: r.partition, nextOffset: r.next_offset, maxEventMs: r.max_event_ms, idle: r.idle })
const stateColumns = 'partition, next_offset, max_event_ms, idle'

/** Every stored partition of the topic for this group. */
export async function loadPartitions (db: Queryable, group: string, topic: string): Promise<PartitionState[]> {
  const rows = await db.query<StateRow>(
    `SELECT ${stateColumns} FROM stream_offsets WHERE consumer_group = $1 AND topic = $2 ORDER BY partition`, [group, topic])
  return rows.map(toState)
}

/**
 * A worker took these partitions: makes sure each has a row (offset 0 when new) and is not marked
 * idle (its new owner decides that). Returns every partition of the topic.
 */
export async function claimPartitions (db: Queryable, group: string, topic: string, partitions: readonly number[]): Promise<PartitionState[]> {
  if (partitions.length > 0) {
    await db.query(`
      INSERT INTO stream_offsets (consumer_group, topic, partition, next_offset, idle)
      SELECT $1, $2, p, 0, false FROM unnest($3::int4[]) AS x(p) ORDER BY p
      ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET idle = false`,
    [group, topic, numberArray([...partitions])])
  }
  return await loadPartitions(db, group, topic)
}

/**
 * Stores a batch's progress, fenced: each row changes only if its stored offset is the one this
 * worker expected. Anything else means another worker stored this partition since (this one lost
 * it in a rebalance): throws IOT_ERR_FENCED, so the transaction rolls back and nothing counts twice.
 * Returns every partition of the topic (the other workers' progress, for the watermark).
 */
export async function saveProgress (tx: Queryable, group: string, topic: string, progress: readonly PartitionProgress[]): Promise<PartitionState[]> {
  const rows = await tx.query<StateRow & { updated: boolean }>(`
    WITH upd AS (
      UPDATE stream_offsets o SET next_offset = x.o, max_event_ms = greatest(o.max_event_ms, x.m), idle = false, updated_at = now()
      FROM unnest($3::int4[], $4::int8[], $5::int8[], $6::float8[]) AS x(p, e, o, m)
      WHERE o.consumer_group = $1 AND o.topic = $2 AND o.partition = x.p AND o.next_offset = x.e
      RETURNING o.partition, o.next_offset, o.max_event_ms, o.idle)
    SELECT ${stateColumns}, true AS updated FROM upd
    UNION ALL
    SELECT ${stateColumns}, false FROM stream_offsets
    WHERE consumer_group = $1 AND topic = $2 AND partition NOT IN (SELECT partition FROM upd)
    ORDER BY partition`,
  [group, topic, numberArray(progress.map(p => p.partition)), numberArray(progress.map(p => p.expectedOffset)),
    numberArray(progress.map(p => p.nextOffset)), numberArray(progress.map(p => p.maxEventMs))])
  const updated = rows.filter(r => r.updated).length
  if (updated !== progress.length) {
    const lost = progress.filter(p => !rows.some(r => r.updated && r.partition === p.partition)).map(p => p.partition)
    throw new IotError('IOT_ERR_FENCED', `partitions ${lost.join(', ')} of ${topic} were stored by another worker of group ${group}`)
  }
  return rows.map(toState)
}

/**
 * First statement of a batch: locks this batch's partition rows and checks that their stored
 * offsets are still the ones this worker expects. Another worker stored one since (a rebalance
 * moved it): IOT_ERR_FENCED before anything is written. The lock keeps a second owner out until commit.
 */
export async function fencePartitions (tx: Queryable, group: string, topic: string, progress: readonly PartitionProgress[]): Promise<void> {
  if (progress.length === 0) return
  const rows = await tx.query<{ partition: number, next_offset: number }>(`
    SELECT partition, next_offset FROM stream_offsets
    WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3::int4[]) ORDER BY partition FOR UPDATE`,
  [group, topic, numberArray(progress.map(p => p.partition))])
  const stored = new Map(rows.map(r => [r.partition, r.next_offset]))
  const lost = progress.filter(p => stored.get(p.partition) !== p.expectedOffset).map(p => p.partition)
  if (lost.length > 0) {
    throw new IotError('IOT_ERR_FENCED', `partitions ${lost.join(', ')} of ${topic} were stored by another worker of group ${group}`)
  }
}

/** The owner marks partitions idle or active again (fenced like `saveProgress`). */
export async function markIdle (db: Queryable, group: string, topic: string, parts: readonly { partition: number, expectedOffset: number, idle: boolean }[]): Promise<void> {
  if (parts.length === 0) return
  await db.query(`
    UPDATE stream_offsets o SET idle = x.i, updated_at = now()
    FROM unnest($3::int4[], $4::int8[], $5::bool[]) AS x(p, e, i)
    WHERE o.consumer_group = $1 AND o.topic = $2 AND o.partition = x.p AND o.next_offset = x.e`,
  [group, topic, numberArray(parts.map(p => p.partition)), numberArray(parts.map(p => p.expectedOffset)), boolArray(parts.map(p => p.idle))])
}

/**
 * Takes the finality lock for the rest of the transaction and returns the stored watermark
 * (-Infinity if none). Batches take it `shared`, finalization `exclusive`.
 */
export async function lockFinality (tx: Queryable, group: string, topic: string, mode: 'shared' | 'exclusive'): Promise<number> {
  const fn = mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock'
  await tx.query(`SELECT ${fn}($1, hashtext($2))`, [FINALITY_LOCK_CLASS, `${group}/${topic}`])
  // A statement of its own: under READ COMMITTED it sees every finalization committed before the lock.
  return await loadWatermark(tx, group, topic)
}

export async function loadWatermark (db: Queryable, group: string, topic: string): Promise<number> {
  const rows = await db.query<{ watermark_ms: number }>(
    'SELECT watermark_ms FROM stream_watermarks WHERE consumer_group = $1 AND topic = $2', [group, topic])
  return rows[0]?.watermark_ms ?? -Infinity
}

/** Raises the stored watermark (never lowers it). Call under the exclusive finality lock. */
export async function advanceWatermark (tx: Queryable, group: string, topic: string, watermark: number): Promise<void> {
  if (!Number.isFinite(watermark)) return
  await tx.query(`
    INSERT INTO stream_watermarks (consumer_group, topic, watermark_ms) VALUES ($1, $2, $3)
    ON CONFLICT (consumer_group, topic) DO UPDATE SET watermark_ms = greatest(stream_watermarks.watermark_ms, excluded.watermark_ms),
      updated_at = now()`, [group, topic, watermark])
}
