// Reading the end of a topic's partitions: the newest record of each that means something to the
// caller (a reading with an event time), looking back a bounded number of offsets past records
// that do not (foreign text, an unreadable batch, transaction markers).
import { type ConnectionPool } from '@platformatic/kafka'
import { type BusRecord } from '../../port.ts'
import { type ClusterInfo, FetchBuffer, type PartitionFetch, partitionFetch } from './fetcher.ts'

export interface TailSettings {
  topic: string
  /** How many of a partition's last offsets may be looked at (at least 1). */
  lookBack: number
  /** Bytes per fetch (the batch holding the offset asked for comes whole, however large). */
  maxBytes: number
  /** A header whose decimal value is the record's ingest time (else the record timestamp). */
  ingestHeader: string
}

/** A partition's records: from `start` (the log start offset) to before `end` (the last stable offset). */
export interface PartitionRange {
  partition: number
  start: number
  end: number
}

/** Fetches for the window's rest beyond the last batch; each one reads at least one more batch. */
const MAX_WINDOW_FETCHES = 4

/**
 * For each partition, `pick` of its newest record (by offset) within the last `lookBack` offsets
 * for which `pick` returns a value (not null). First one fetch of the partition's last batch; only
 * when none of its records (within the window) gives a value, the window from its first offset, in
 * at most `MAX_WINDOW_FETCHES` more fetches: a few fetches per partition, all partitions at once.
 * Records of aborted transactions and transaction markers are not seen (read committed); an
 * unreadable batch comes to `pick` as one record with `undecodable` set. Partitions without a
 * value are absent from the result.
 */
export async function newestPicked<T> (cluster: ClusterInfo, pool: ConnectionPool, s: TailSettings, ranges: readonly PartitionRange[],
  pick: (r: BusRecord) => T | null): Promise<Map<number, T>> {
  const out = new Map<number, T>()
  const wanted = ranges.filter(r => r.end > r.start)
  if (wanted.length === 0) return out
  const fetch = await partitionFetch(cluster, pool, s.topic)
  await Promise.all(wanted.map(async (r) => {
    const from = Math.max(r.start, r.end - Math.max(1, s.lookBack))
    const last = newest(await read(fetch, s, r, from, r.end - 1, 1), pick)
    if (last !== null) {
      out.set(r.partition, last)
      return
    }
    const any = newest(await read(fetch, s, r, from, from, MAX_WINDOW_FETCHES), pick)
    if (any !== null) out.set(r.partition, any)
  }))
  return out
}

/** The value of the newest record that gives one. */
function newest<T> (records: readonly BusRecord[], pick: (r: BusRecord) => T | null): T | null {
  for (let i = records.length - 1; i >= 0; i--) {
    const v = pick(records[i]!)
    if (v !== null) return v
  }
  return null
}

/**
 * The records of a partition from offset `at` (and the rest of the batch holding it) to the end of
 * its range, leaving out those before `from`, in up to `fetches` fetches.
 */
async function read (fetch: PartitionFetch, s: TailSettings, r: PartitionRange, from: number, at: number, fetches: number): Promise<BusRecord[]> {
  const buffer = new FetchBuffer(s.topic, new Map([[r.partition, from]]), s.ingestHeader)
  const records: BusRecord[] = []
  let next = at
  for (let i = 0; i < fetches && next < r.end; i++) {
    const d = await fetch(r.partition, next, s.maxBytes)
    if (d.records === null) break
    const after = buffer.add(r.partition, next, d.records, d.aborted, d.highWatermark)
    buffer.take(Number.MAX_SAFE_INTEGER, records)
    if (after <= next) break
    next = after
  }
  return records.filter(x => x.offset < r.end)
}
