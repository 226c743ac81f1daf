// Fetching the readings topic. The client library keeps the consumer group (join, heartbeats,
// assignment); records are fetched here with Kafka's Fetch request, one loop per partition leader
// from exactly the offsets wanted, and kept as fetched bytes (record-batch.ts) until `take` hands
// them out. This replaces the library's message stream, which built a message object, a headers
// Map, Buffers, BigInts and a commit closure per record ahead of use: it took more CPU than
// validating the records, and the buffered objects kept the garbage collector busy.
import {
  type Broker, type ConnectionPool, type Consumer, type Reader, createAPI, fetchV12, fetchV13, fetchV14, fetchV15, fetchV16, fetchV17
} from '@platformatic/kafka'
import { IotError } from '../../../domain/index.ts'
import { type BusRecord } from '../../port.ts'
import { errorName, pickVersion } from './protocol.ts'
import { RecordCursor, committedBatches, readBatches, type AbortedTransaction, type RecordBatch } from './record-batch.ts'

const FETCH = 1
const requestCreators = new Map([
  [12, fetchV12.createRequest], [13, fetchV13.createRequest], [14, fetchV14.createRequest],
  [15, fetchV15.createRequest], [16, fetchV16.createRequest], [17, fetchV17.createRequest]
])
const MIN_VERSION = 12
const MAX_VERSION = 17
/** Read committed: the Java consumer's choice for exactly-once pipelines (and the library's default). */
const READ_COMMITTED = 1
/** No incremental fetch session (KIP-227): every request names its partitions and offsets. */
const NO_SESSION_ID = 0
const NO_SESSION_EPOCH = -1

interface PartitionData {
  partition: number
  errorCode: number
  /** The offset after the last record the broker holds: no fetched batch goes beyond it. */
  highWatermark: number
  aborted: AbortedTransaction[] | null
  records: Buffer | null
}

interface FetchResult {
  errorCode: number
  partitions: PartitionData[]
}

/** The Fetch response (v12-v17) with each partition's records left as bytes. */
function parseFetch (_correlationId: number, _apiKey: number, apiVersion: number, reader: Reader): FetchResult {
  reader.readInt32() // throttle time
  const errorCode = reader.readInt16()
  reader.readInt32() // session id
  const partitions: PartitionData[] = []
  reader.readArray(r => {
    if (apiVersion >= 13) r.readUUID()
    else r.readString()
    r.readArray(r => {
      const partition = r.readInt32()
      const code = r.readInt16()
      const highWatermark = Number(r.readInt64())
      r.readInt64() // last stable offset
      r.readInt64() // log start offset
      const aborted = r.readNullableArray(r => ({ producerId: Number(r.readInt64()), firstOffset: Number(r.readInt64()) }))
      r.readInt32() // preferred read replica
      const size = r.readUnsignedVarInt() - 1
      let records: Buffer | null = null
      if (size > 0) {
        records = r.buffer.slice(r.position, r.position + size)
        r.skip(size)
      }
      partitions.push({ partition, errorCode: code, highWatermark, aborted, records })
    })
  })
  return { errorCode, partitions }
}

const fetchApis = new Map([...requestCreators].map(([version, create]) => [version, createAPI<unknown[], FetchResult>(FETCH, version, create, parseFetch)]))

export interface FetchSettings {
  topic: string
  /** Longest a fetch waits on the broker for records. */
  maxWaitMs: number
  /** Bytes per partition per fetch: small slices hand a backlog out interleaved, not one partition after another. */
  partitionMaxBytes: number
  /** Fetched records held ahead of `take`: fetching pauses above this, resumes below half. */
  bufferRecords: number
  /** A header whose decimal value is the record's ingest time (else the record timestamp). */
  ingestHeader: string
}

/** A fetched batch waiting to be handed out; `held` is what it counts for `buffered` (an unreadable one: 1). */
type Chunk = RecordBatch & { partition: number, held: number }

/**
 * Fetched batches waiting for `take`, in fetch order (so each partition's in offset order), kept
 * as bytes: a batch is decoded when `take` reaches it. A batch that cannot be decoded is handed
 * out as one record with `undecodable` set and its last offset, so the partition moves past it.
 */
export class FetchBuffer {
  readonly #topic: string
  /** Offset each partition starts at: earlier records of the first batch are skipped. */
  readonly #from: Map<number, number>
  readonly #cursor: RecordCursor
  #chunks: Chunk[] = []
  #head = 0
  #open: Chunk | null = null
  #buffered = 0

  /** `ingestHeader`: a header whose decimal value is the record's ingest time (else the record timestamp). */
  constructor (topic: string, from: ReadonlyMap<number, number>, ingestHeader: string) {
    this.#topic = topic
    this.#from = new Map(from)
    this.#cursor = new RecordCursor(ingestHeader)
  }

  /** Records fetched and not yet taken. */
  get buffered (): number {
    return this.#buffered
  }

  /**
   * Adds a partition's fetched bytes, fetched from `fetchOffset`, the transactions the broker
   * says were aborted among them, and its high watermark. Returns the offset to fetch next: after
   * the last complete batch, or `fetchOffset` when none is complete.
   */
  add (partition: number, fetchOffset: number, records: Buffer, aborted: AbortedTransaction[] | null, highWatermark: number): number {
    const batches = readBatches(records, fetchOffset, highWatermark)
    if (batches.length === 0) return fetchOffset
    const from = this.#from.get(partition) ?? 0
    for (const b of committedBatches(batches, aborted)) {
      if (b.lastOffset < from) continue
      const held = b.unreadable === null ? b.count : 1
      this.#chunks.push({ ...b, partition, held })
      this.#buffered += held
    }
    return batches[batches.length - 1]!.lastOffset + 1
  }

  /**
   * Appends up to `max - out.length` records to `out`, in fetch order. Throws (what was appended
   * stands) only when a codec of this process stopped working.
   */
  take (max: number, out: BusRecord[]): void {
    const c = this.#cursor
    while (out.length < max) {
      let chunk = this.#open
      if (chunk === null) {
        if (this.#head >= this.#chunks.length) break
        chunk = this.#chunks[this.#head]!
        const problem = c.open(chunk)
        if (problem !== null) {
          const at = chunk.baseOffset === chunk.lastOffset ? `offset ${chunk.lastOffset}` : `offsets ${chunk.baseOffset}-${chunk.lastOffset}`
          out.push({ partition: chunk.partition, offset: chunk.lastOffset, key: '', value: '', undecodable: `record batch at ${at} of ${this.#topic}/${chunk.partition}: ${problem}` })
          this.#done(chunk)
          continue
        }
        this.#open = chunk
      }
      if (!c.next()) {
        this.#done(chunk)
        continue
      }
      if (c.offset < this.#from.get(chunk.partition)!) continue
      const ingest = c.headerNumber()
      out.push({
        partition: chunk.partition,
        offset: c.offset,
        key: c.key(),
        value: c.value(),
        timestamp: Number.isNaN(ingest) ? c.timestamp : ingest,
        // The record timestamp is the producer's wall time (a simulated clock travels in the header).
        producedAt: c.timestamp
      })
    }
  }

  /** Forgets everything fetched. */
  clear (): void {
    this.#chunks = []
    this.#head = 0
    this.#open = null
    this.#buffered = 0
  }

  #done (chunk: Chunk): void {
    this.#buffered -= chunk.held
    this.#open = null
    if (++this.#head === this.#chunks.length) {
      this.#chunks = []
      this.#head = 0
    }
  }
}

/** What a session asks the group's client: the broker's API versions and the cluster metadata. */
export type ClusterInfo = Pick<Consumer<string, string, string, string>, 'listApis' | 'metadata'>

/**
 * Fetches the given partitions from the given offsets until closed. A failure (connection lost,
 * leader moved, offset out of range, an error from the broker) ends the session through
 * `onError`; the owner opens a new one at the offsets it has handed out, so nothing is skipped or
 * delivered twice. A batch that cannot be decoded is not a failure: `take` hands it out as one
 * undecodable record (see `FetchBuffer`) and fetching goes on after it.
 */
export class FetchSession {
  readonly #cluster: ClusterInfo
  readonly #pool: ConnectionPool
  readonly #s: FetchSettings
  /** Next offset to fetch per partition. */
  readonly #next: Map<number, number>
  readonly #onData: () => void
  readonly #onError: (err: Error) => void
  readonly #buffer: FetchBuffer
  #roomWaiters: (() => void)[] = []
  #closed = false

  constructor (cluster: ClusterInfo, pool: ConnectionPool, settings: FetchSettings, from: ReadonlyMap<number, number>, onData: () => void, onError: (err: Error) => void) {
    this.#cluster = cluster
    this.#pool = pool
    this.#s = settings
    this.#next = new Map(from)
    this.#onData = onData
    this.#onError = onError
    this.#buffer = new FetchBuffer(settings.topic, from, settings.ingestHeader)
    this.#run().catch((err: unknown) => { this.#fail(err) })
  }

  /** Records fetched and not yet taken. */
  get buffered (): number {
    return this.#buffer.buffered
  }

  /** Appends up to `max - out.length` records to `out`, in fetch order. */
  take (max: number, out: BusRecord[]): void {
    try {
      this.#buffer.take(max, out)
    } catch (err) {
      // A codec that stopped working: what was taken stands; the owner reopens after the last record it handed out.
      this.#fail(err)
    }
    if (this.#buffer.buffered < this.#s.bufferRecords / 2) for (const w of this.#roomWaiters.splice(0)) w()
  }

  close (): void {
    this.#closed = true
    this.#buffer.clear()
    for (const w of this.#roomWaiters.splice(0)) w()
  }

  #fail (err: unknown): void {
    if (this.#closed) return
    this.close()
    this.#onError(err instanceof Error ? err : new Error(String(err)))
  }

  async #run (): Promise<void> {
    const topic = this.#s.topic
    const [version, meta] = await Promise.all([
      pickVersion(this.#cluster, { key: FETCH, name: 'Fetch', min: MIN_VERSION, max: MAX_VERSION, kafka: '2.7' }),
      this.#cluster.metadata({ topics: [topic], forceUpdate: true })
    ])
    const api = fetchApis.get(version)!
    const t = meta.topics.get(topic)
    if (t === undefined) throw new IotError('IOT_ERR_BUS', `Kafka topic ${topic} is not in the cluster metadata`)
    const byLeader = new Map<number, number[]>()
    for (const p of this.#next.keys()) {
      const leader = t.partitions[p]?.leader ?? -1
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), p])
    }
    await Promise.all([...byLeader].map(async ([leader, partitions]) => {
      const broker = meta.brokers.get(leader)
      if (broker === undefined) throw new IotError('IOT_ERR_BUS', `Kafka topic ${topic} partitions ${partitions.join(',')} have no leader (${leader})`)
      await this.#loop(api, version >= 13 ? t.id : topic, broker, partitions)
    }))
  }

  /** Fetches from one leader until closed; throws on the first failure. */
  async #loop (api: NonNullable<ReturnType<typeof fetchApis.get>>, topicRef: string, broker: Broker, partitions: number[]): Promise<void> {
    const { maxWaitMs, partitionMaxBytes, bufferRecords, topic } = this.#s
    const connection = await this.#pool.get(broker)
    while (!this.#closed) {
      if (this.#buffer.buffered >= bufferRecords) {
        await new Promise<void>(resolve => this.#roomWaiters.push(resolve))
        continue
      }
      const request = [{
        topicId: topicRef,
        partitions: partitions.map(partition => ({
          partition, currentLeaderEpoch: -1, fetchOffset: BigInt(this.#next.get(partition)!), lastFetchedEpoch: -1, partitionMaxBytes
        }))
      }]
      const res = await api.async(connection, maxWaitMs, 1, partitionMaxBytes * partitions.length, READ_COMMITTED, NO_SESSION_ID, NO_SESSION_EPOCH, request, [], '')
      if (this.#closed) return
      if (res.errorCode !== 0) throw new IotError('IOT_ERR_BUS', `Kafka fetch from ${broker.host}:${broker.port}: ${errorName(res.errorCode)}`)
      const before = this.#buffer.buffered
      for (const d of res.partitions) {
        const fetchOffset = this.#next.get(d.partition)!
        if (d.errorCode !== 0) throw new IotError('IOT_ERR_BUS', `Kafka fetch ${topic}/${d.partition} at offset ${fetchOffset}: ${errorName(d.errorCode)}`)
        if (d.records !== null) this.#next.set(d.partition, this.#buffer.add(d.partition, fetchOffset, d.records, d.aborted, d.highWatermark))
      }
      const added = this.#buffer.buffered - before
      if (added > 0) this.#onData()
    }
  }
}

/** One partition's part of a Fetch response. */
export type FetchedPartition = Omit<PartitionData, 'errorCode'>

/** Fetches one partition once, from `offset`, taking up to `maxBytes` of it (a first batch beyond that comes whole). */
export type PartitionFetch = (partition: number, offset: number, maxBytes: number) => Promise<FetchedPartition>

/**
 * One-off fetches of `topic`'s partitions without waiting for records (reading the end of a
 * partition): each call is a Fetch request of its own to the partition's leader, so the broker
 * returns the batch holding the offset whole, however large (KIP-74). Throws on a broker error.
 */
export async function partitionFetch (cluster: ClusterInfo, pool: ConnectionPool, topic: string): Promise<PartitionFetch> {
  const [version, meta] = await Promise.all([
    pickVersion(cluster, { key: FETCH, name: 'Fetch', min: MIN_VERSION, max: MAX_VERSION, kafka: '2.7' }),
    cluster.metadata({ topics: [topic], forceUpdate: true })
  ])
  const api = fetchApis.get(version)!
  const t = meta.topics.get(topic)
  if (t === undefined) throw new IotError('IOT_ERR_BUS', `Kafka topic ${topic} is not in the cluster metadata`)
  const topicRef = version >= 13 ? t.id : topic
  return async (partition, offset, maxBytes) => {
    const leader = t.partitions[partition]?.leader ?? -1
    const broker = meta.brokers.get(leader)
    if (broker === undefined) throw new IotError('IOT_ERR_BUS', `Kafka topic ${topic} partition ${partition} has no leader (${leader})`)
    const connection = await pool.get(broker)
    const request = [{ topicId: topicRef, partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: BigInt(offset), lastFetchedEpoch: -1, partitionMaxBytes: maxBytes }] }]
    const res = await api.async(connection, 0, 1, maxBytes, READ_COMMITTED, NO_SESSION_ID, NO_SESSION_EPOCH, request, [], '')
    if (res.errorCode !== 0) throw new IotError('IOT_ERR_BUS', `Kafka fetch from ${broker.host}:${broker.port}: ${errorName(res.errorCode)}`)
    const d = res.partitions.find(x => x.partition === partition)
    if (d === undefined) return { partition, highWatermark: offset, aborted: null, records: null }
    if (d.errorCode !== 0) throw new IotError('IOT_ERR_BUS', `Kafka fetch ${topic}/${partition} at offset ${offset}: ${errorName(d.errorCode)}`)
    return { partition, highWatermark: d.highWatermark, aborted: d.aborted, records: d.records }
  }
}
