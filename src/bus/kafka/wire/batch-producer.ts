// Producing readings. Each record is encoded straight into its partition's open record batch
// (message format v2) when it is produced: no message object, no Buffer per key or value. A full
// or lingering batch is compressed once and sent with Kafka's Produce request. The producer is
// idempotent (KIP-98): a producer id and epoch from the broker and a sequence number per
// partition, so a batch sent again after a lost response is stored once. One request is in flight
// at a time, so every partition's batches reach the log in order.
// (The client library's producer built a message object, a headers Map, two Buffers and a
// writer per record and re-encoded every batch; it cost more CPU than generating the readings.)
import {
  type Broker, type Connection, type ConnectionPool, type Producer, type Reader, Writer, createAPI
} from '@platformatic/kafka'
import { type Logger } from 'pino'
import { IotError } from '../../../domain/index.ts'
import { errorName, pickVersion, type ApiLister } from './protocol.ts'
import { OpenBatch, encodeBatch, type Sealed } from './record-batch.ts'

const PRODUCE = 0
const MIN_VERSION = 9
const MAX_VERSION = 11
const ACKS_ALL = -1
const SEQUENCE_SPAN = 2 ** 31

// Broker answers that mean: the batch was stored before (a retry of a request whose response was lost).
const DUPLICATE_SEQUENCE_NUMBER = 46
// Answers that mean: the broker no longer knows this producer's state; start again with a new id
// (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID, PRODUCER_FENCED).
const PRODUCER_STATE_LOST = new Set([45, 47, 59, 90])

export interface BatchProducerOptions {
  topic: string
  partitions: number
  log: Logger
  /** Records per batch before it is sent. */
  batchRecords: number
  /** Uncompressed bytes per batch before it is sent (well below the broker's 1 MiB message limit). */
  batchBytes: number
  /** Longest a record waits for its batch to fill. */
  lingerMs: number
  /** Records held (open, waiting and in flight) before `tryPush` says wait. */
  capacity: number
  compression: 'lz4' | 'none'
  /** How long the broker may take to replicate a batch (acks=all). */
  timeoutMs: number
}

export interface PartitionResult { partition: number, errorCode: number, message: string | null }

/** Produce responses v9-v11 (v10 and v11 only add tagged fields), without throwing on partition errors. */
function parseProduce (_correlationId: number, _apiKey: number, _apiVersion: number, reader: Reader): PartitionResult[] {
  const out: PartitionResult[] = []
  reader.readArray(r => {
    r.readString()
    r.readArray(r => {
      const partition = r.readInt32()
      const errorCode = r.readInt16()
      r.readInt64() // base offset
      r.readInt64() // log append time
      r.readInt64() // log start offset
      const recordErrors = r.readArray(r => `record ${r.readInt32()}: ${r.readNullableString() ?? ''}`)
      const message = r.readNullableString()
      out.push({ partition, errorCode, message: [message, ...recordErrors].filter(Boolean).join('; ') || null })
    })
  })
  reader.readInt32() // throttle time
  return out
}

/** A Produce request (v9-v11) carrying finished batches; `encoded` holds each partition's batch bytes. */
function produceRequest (topic: string, timeoutMs: number, encoded: [number, Buffer][]): Writer {
  // Built with the library's writer, which its connection sends.
  return Writer.create()
    .appendString(null) // transactional id
    .appendInt16(ACKS_ALL)
    .appendInt32(timeoutMs)
    .appendArray([topic], (w, name) => {
      w.appendString(name).appendArray(encoded, (w, [partition, bytes]) => {
        w.appendInt32(partition).appendUnsignedVarInt(bytes.length + 1).append(bytes)
      })
    })
    .appendTaggedFields()
}

const produceApis = new Map(Array.from({ length: MAX_VERSION - MIN_VERSION + 1 }, (_, i) => MIN_VERSION + i)
  .map(v => [v, createAPI<[string, number, [number, Buffer][]], PartitionResult[]>(PRODUCE, v, produceRequest, parseProduce)]))

/** The Produce API version to use with this cluster. */
export async function produceVersion (client: ApiLister): Promise<number> {
  return await pickVersion(client, { key: PRODUCE, name: 'Produce', min: MIN_VERSION, max: MAX_VERSION, kafka: '2.8' })
}

/** Sends encoded batches (one per partition, see `encodeBatch`) to their leader with acks=all; one result per partition. */
export async function produce (connection: Connection, version: number, topic: string, timeoutMs: number, encoded: [number, Buffer][]): Promise<PartitionResult[]> {
  return await produceApis.get(version)!.async(connection, topic, timeoutMs, encoded)
}

/**
 * The readings topic's producer. `tryPush` encodes a record into its partition's batch; batches go
 * out as they fill or linger, and `flush` resolves once the broker has every record pushed so far.
 * A failed request is sent again as it was until the broker takes it: nothing pushed is dropped.
 */
export class BatchProducer {
  readonly #client: Producer<string, string, string, string>
  readonly #pool: ConnectionPool
  readonly #o: BatchProducerOptions
  readonly #open: (OpenBatch | null)[]
  readonly #ready: Sealed[][]
  readonly #sequence: number[]
  #producer: { id: bigint, epoch: number } | null = null
  /** The Produce version agreed with the cluster, once asked. */
  #version: number | null = null
  #held = 0
  #sending: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null
  #closed = false
  #idleWaiters: (() => void)[] = []
  #roomWaiters: (() => void)[] = []
  readonly #headerKey: Buffer | null

  constructor (client: Producer<string, string, string, string>, pool: ConnectionPool, options: BatchProducerOptions, header?: string) {
    this.#client = client
    this.#pool = pool
    this.#o = options
    this.#open = Array.from({ length: options.partitions }, () => null)
    this.#ready = Array.from({ length: options.partitions }, () => [])
    this.#sequence = Array.from({ length: options.partitions }, () => 0)
    this.#headerKey = header === undefined ? null : Buffer.from(header)
  }

  /** Records pushed and not yet stored by the broker. */
  get held (): number {
    return this.#held
  }

  /**
   * Encodes a record into its partition's batch (with the constructor's header set to
   * `headerValue` when given); false when the producer holds `capacity` records (wait for `room`).
   */
  tryPush (partition: number, key: string, value: string, headerValue?: string): boolean {
    if (this.#closed) throw new IotError('IOT_ERR_BUS_CLOSED', 'the Kafka producer is closed')
    if (this.#held >= this.#o.capacity) return false
    if (!(partition >= 0 && partition < this.#open.length)) throw new IotError('IOT_ERR_BUS', `partition ${partition} is not in 0..${this.#open.length - 1}`)
    const now = Date.now()
    let b = this.#open[partition] ?? null
    if (b === null || !b.append(now, key, value, headerValue)) {
      this.#seal(partition)
      b = new OpenBatch(this.#o.batchBytes, now, this.#headerKey)
      // A record larger than a batch gets a batch of its own.
      if (!b.append(now, key, value, headerValue)) {
        b = new OpenBatch(b.needed, now, this.#headerKey)
        b.append(now, key, value, headerValue)
      }
      this.#open[partition] = b
    }
    this.#held++
    if (b.count >= this.#o.batchRecords) {
      this.#seal(partition)
      this.#pump()
    } else {
      this.#timer ??= setTimeout(() => { this.#timer = null; this.#sealAll(); this.#pump() }, this.#o.lingerMs)
    }
    return true
  }

  async room (): Promise<void> {
    if (this.#held < this.#o.capacity || this.#closed) return
    await new Promise<void>(resolve => this.#roomWaiters.push(resolve))
  }

  async flush (): Promise<void> {
    this.#sealAll()
    this.#pump()
    while (this.#held > 0) await new Promise<void>(resolve => this.#idleWaiters.push(resolve))
  }

  async close (): Promise<void> {
    await this.flush()
    this.#closed = true
    for (const w of this.#roomWaiters.splice(0)) w()
  }

  /** Closes the open batch of a partition: it waits to be sent, and the next record opens a new one. */
  #seal (partition: number): void {
    const b = this.#open[partition]
    if (b === null || b === undefined) return
    if (b.count > 0) this.#ready[partition]!.push(b.seal(partition, this.#o.compression))
    this.#open[partition] = null
  }

  #sealAll (): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
    }
    for (let p = 0; p < this.#open.length; p++) this.#seal(p)
  }

  /** Sends the first waiting batch of every partition, one request at a time, until none waits. */
  #pump (): void {
    if (this.#sending !== null) return
    if (!this.#ready.some(q => q.length > 0)) return
    this.#sending = this.#sendReady().finally(() => {
      this.#sending = null
      if (this.#held < this.#o.capacity) for (const w of this.#roomWaiters.splice(0)) w()
      if (this.#held === 0) for (const w of this.#idleWaiters.splice(0)) w()
      this.#pump()
    })
  }

  async #sendReady (): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const failed = await this.#sendOnce()
        if (failed.length === 0) return
        throw new IotError('IOT_ERR_BUS', `Kafka produce to ${this.#o.topic}: ${failed.join(', ')}`)
      } catch (err) {
        if (this.#closed) return
        this.#o.log.warn({ err, attempt }, 'Kafka produce failed; sending again.')
        await new Promise(resolve => setTimeout(resolve, Math.min(5000, 100 * 2 ** Math.min(attempt, 6))))
      }
    }
  }

  /** One request per partition leader with the head batch of each partition; returns what failed. */
  async #sendOnce (): Promise<string[]> {
    const { topic, timeoutMs } = this.#o
    const producer = this.#producer ??= await this.#initProducer()
    const version = this.#version ??= await produceVersion(this.#client)
    const meta = await this.#client.metadata({ topics: [topic] })
    const t = meta.topics.get(topic)
    const byLeader = new Map<number, [number, Buffer][]>()
    for (const queue of this.#ready) {
      const s = queue[0]
      if (s === undefined) continue
      const leader = t?.partitions[s.partition]?.leader ?? -1
      const list = byLeader.get(leader) ?? []
      list.push([s.partition, encodeBatch(s, producer.id, producer.epoch, this.#sequence[s.partition]!)])
      byLeader.set(leader, list)
    }
    const failed: string[] = []
    let stale = false
    // Settled, not raced: a batch stays queued until its own request has answered.
    const settled = await Promise.allSettled([...byLeader].map(async ([leader, encoded]) => {
      const broker: Broker | undefined = meta.brokers.get(leader)
      if (broker === undefined) {
        stale = true
        failed.push(`partitions ${encoded.map(e => e[0]).join(',')} have no leader`)
        return
      }
      const connection = await this.#pool.get(broker)
      const results = await produce(connection, version, topic, timeoutMs, encoded)
      for (const r of results) {
        const queue = this.#ready[r.partition]
        const s = queue?.[0]
        if (s === undefined) continue
        if (r.errorCode === 0 || r.errorCode === DUPLICATE_SEQUENCE_NUMBER) {
          queue!.shift()
          this.#sequence[r.partition] = (this.#sequence[r.partition]! + s.count) % SEQUENCE_SPAN
          this.#held -= s.count
          continue
        }
        if (PRODUCER_STATE_LOST.has(r.errorCode)) this.#producer = null
        else stale = true
        failed.push(`${topic}/${r.partition}: ${errorName(r.errorCode)}${r.message === null ? '' : ` (${r.message})`}`)
      }
    }))
    if (this.#producer === null) this.#sequence.fill(0)
    if (stale) this.#client.clearMetadata()
    for (const r of settled) if (r.status === 'rejected') throw r.reason
    return failed
  }

  async #initProducer (): Promise<{ id: bigint, epoch: number }> {
    const info = await this.#client.initIdempotentProducer({})
    return { id: info.producerId, epoch: info.producerEpoch }
  }
}
