// The Kafka bus: the same port as the memory bus, on Apache Kafka through @platformatic/kafka
// (group membership, metadata, connections) and our own wire code (wire/: Fetch and Produce).
// Offsets live in the database (written with each batch); Kafka's group only assigns partitions.
import { Admin, ConnectionPool, Consumer, Producer, ProduceAcks, stringDeserializers, stringSerializers } from '@platformatic/kafka'
import { type Logger } from 'pino'
import { IotError, toWire, validateMessage } from '../../domain/index.ts'
import { KeyPartitioner } from '../partitioner.ts'
import {
  type AssignmentHandler, type Bus, type BusConsumer, type BusProducer, type BusRecord, type BusValue, type StartOffsets
} from '../port.ts'
import { BatchProducer, FetchSession, newestPicked } from './wire/index.ts'

export interface KafkaBusOptions {
  /** host:port of one or more brokers. */
  brokers: string[]
  topic: string
  /** Partitions of the readings topic when this creates it (an existing topic keeps its own). */
  partitions: number
  clientId?: string
  log: Logger
  /** A member silent this long is dropped from the group and its partitions move (default 10 s). */
  sessionTimeoutMs?: number
  /** Records per batch: per partition for readings, per request for events (default 5000). */
  batchSize?: number
  /** Longest wait for a batch to fill (default 5 ms). */
  lingerMs?: number
  /** Records a producer holds (queued and in flight) before `tryProduce` says wait (default 100,000). */
  capacity?: number
  /** Records a consumer buffers ahead of `poll` (default 20,000). */
  bufferRecords?: number
  /** A simulated ingest clock (the simulator's virtual clock) sent in a header; absent: wall time (the record timestamp). */
  ingestClock?: () => number
}

type StringProducer = Producer<string, string, string, string>
type StringConsumer = Consumer<string, string, string, string>

/** Header carrying a simulated ingest clock (epoch ms), set by our producer when the clock is not wall time. */
export const INGEST_HEADER = 'iot-ingest-ms'

const clientDefaults = { retries: 30, retryDelay: 500, timeout: 10_000 }

/** Offsets of a partition's end `newestEventTime` looks at, at most. */
export const NEWEST_LOOK_BACK = 100

/** Any size and time: only whether the text is a reading, and its event time. */
const decodeOnly = { maxBytes: Number.MAX_SAFE_INTEGER, maxPastMs: null, maxFutureMs: null }

/** The event time of a record that holds a wire reading, else null. */
function eventTimeOf (r: BusRecord): number | null {
  if (r.undecodable !== undefined) return null
  if (typeof r.value !== 'string') return r.value.ts
  const v = validateMessage(r.value, 0, decodeOnly)
  return v.ok ? v.reading.ts : null
}

function alreadyExists (err: unknown): boolean {
  const e = err as { findBy?: (key: string, value: string) => unknown }
  return typeof e.findBy === 'function' && e.findBy('apiId', 'TOPIC_ALREADY_EXISTS') !== undefined
}

/** Creates the topics that do not exist yet; returns the partition count of each. */
export async function ensureTopics (brokers: string[], topics: readonly { name: string, partitions: number }[], clientId = 'iot-monitor-admin'): Promise<Map<string, number>> {
  const admin = new Admin({ clientId, bootstrapBrokers: brokers, ...clientDefaults })
  try {
    const names = topics.map(t => t.name)
    const known = new Set(await admin.listTopics())
    for (const t of topics) {
      if (known.has(t.name)) continue
      try {
        await admin.createTopics({ topics: [t.name], partitions: t.partitions, replicas: 1 })
      } catch (err) {
        // Another process created it meanwhile: fine (its metadata may not be visible yet).
        if (!alreadyExists(err)) throw err
      }
    }
    // A topic another process just created may take a moment to show in the metadata.
    for (let attempt = 1; ; attempt++) {
      try {
        const meta = await admin.metadata({ topics: names, forceUpdate: true })
        const counts = new Map(names.map(n => [n, meta.topics.get(n)?.partitionsCount ?? 0]))
        if ([...counts.values()].every(n => n > 0) || attempt >= 20) return counts
      } catch (err) {
        if (attempt >= 20) throw err
      }
      await new Promise(resolve => setTimeout(resolve, 250))
    }
  } catch (err) {
    throw new IotError('IOT_ERR_BUS', `Kafka at ${brokers.join(',')}: cannot create or read topics ${topics.map(t => t.name).join(', ')}: ${(err as Error).message}`, { cause: err })
  } finally {
    await admin.close()
  }
}

export class KafkaBus implements Bus {
  readonly topic: string
  readonly partitions: number
  readonly #opts: KafkaBusOptions
  readonly #open = new Set<{ close(): Promise<void> }>()

  private constructor (opts: KafkaBusOptions, partitions: number) {
    this.#opts = opts
    this.topic = opts.topic
    this.partitions = partitions
  }

  /** Connects, creating the readings topic (with `partitions`) if it does not exist. */
  static async connect (opts: KafkaBusOptions): Promise<KafkaBus> {
    const counts = await ensureTopics(opts.brokers, [{ name: opts.topic, partitions: opts.partitions }], opts.clientId)
    const n = counts.get(opts.topic) ?? 0
    if (n < 1) throw new IotError('IOT_ERR_BUS', `Kafka topic ${opts.topic} has no partitions`)
    return new KafkaBus(opts, n)
  }

  producer (): BusProducer {
    const p = new KafkaBusProducer(this.#opts, this.partitions)
    this.#open.add(p)
    return p
  }

  consumer (group: string): BusConsumer {
    const c = new KafkaBusConsumer(this.#opts, group)
    this.#open.add(c)
    return c
  }

  /**
   * The newest event time on the readings topic, for a source that continues after an earlier run:
   * per partition, the event time of its newest record (by offset) that decodes as a wire reading,
   * looking back at most `NEWEST_LOOK_BACK` offsets from the end (records that do not decode, an
   * unreadable batch, aborted transactions are passed over); the largest over the partitions. Null
   * when no partition has such a record in that window (an empty topic). No bounds on the time: a
   * far-future reading someone produced is what the result is. One fetch per partition (a few more
   * for one whose last batch holds no reading), all at once; committed records only.
   */
  async newestEventTime (): Promise<number | null> {
    const topic = this.topic
    const clientId = `${this.#opts.clientId ?? 'iot-monitor'}-tail`
    const client: StringConsumer = new Consumer({
      clientId, bootstrapBrokers: this.#opts.brokers, groupId: clientId, deserializers: stringDeserializers, ...clientDefaults
    })
    const pool = new ConnectionPool(clientId, { requestTimeout: clientDefaults.timeout })
    try {
      // Latest (the last stable offset: read committed) and earliest (the log start) of each partition.
      const offsets = async (timestamp: bigint): Promise<bigint[]> => (await client.listOffsets({ topics: [topic], timestamp })).get(topic) ?? []
      const [ends, starts] = await Promise.all([offsets(-1n), offsets(-2n)])
      const ranges = ends.map((end, partition) => ({ partition, start: Number(starts[partition] ?? 0n), end: Number(end) }))
      const times = await newestPicked(client, pool, { topic, lookBack: NEWEST_LOOK_BACK, maxBytes: 1024 * 1024, ingestHeader: INGEST_HEADER }, ranges, eventTimeOf)
      return times.size === 0 ? null : Math.max(...times.values())
    } catch (err) {
      throw new IotError('IOT_ERR_BUS', `Kafka at ${this.#opts.brokers.join(',')}: cannot read the newest records of ${topic}: ${(err as Error).message}`, { cause: err })
    } finally {
      await pool.close().catch(() => {})
      await client.close().catch(() => {})
    }
  }

  /** A producer of JSON events to other topics (dead letters, window results, anomalies). */
  publisher (): JsonPublisher {
    const p = new JsonPublisher(this.#opts)
    this.#open.add(p)
    return p
  }

  async close (): Promise<void> {
    await Promise.all([...this.#open].map(async c => { await c.close() }))
    this.#open.clear()
  }
}

function newProducer (opts: KafkaBusOptions, role: string): StringProducer {
  return new Producer({
    clientId: `${opts.clientId ?? 'iot-monitor'}-${role}`,
    bootstrapBrokers: opts.brokers,
    serializers: stringSerializers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression: 'lz4',
    ...clientDefaults
  })
}

interface Outgoing { topic: string, key: string, value: string }

/**
 * Batches events into the library producer's requests, one request in flight at a time so the
 * idempotent producer keeps each partition's order. A request that fails after the client's own
 * retries is tried again (the broker restarting): nothing pushed is dropped.
 */
class Batcher {
  readonly #producer: StringProducer
  readonly #log: Logger
  readonly #batchSize: number
  readonly #lingerMs: number
  #queue: Outgoing[] = []
  #inFlight = 0
  #sending: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null
  #closed = false
  #idleWaiters: (() => void)[] = []

  constructor (producer: StringProducer, log: Logger, batchSize: number, lingerMs: number) {
    this.#producer = producer
    this.#log = log
    this.#batchSize = batchSize
    this.#lingerMs = lingerMs
  }

  get held (): number {
    return this.#queue.length + this.#inFlight
  }

  push (m: Outgoing): void {
    if (this.#closed) throw new IotError('IOT_ERR_BUS_CLOSED', 'the Kafka producer is closed')
    this.#queue.push(m)
    if (this.#queue.length >= this.#batchSize) this.#pump()
    else this.#timer ??= setTimeout(() => { this.#timer = null; this.#pump() }, this.#lingerMs)
  }

  async flush (): Promise<void> {
    this.#pump()
    while (this.held > 0) await new Promise<void>(resolve => this.#idleWaiters.push(resolve))
  }

  async close (): Promise<void> {
    await this.flush()
    this.#closed = true
    await this.#producer.close()
  }

  #pump (): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
    }
    if (this.#sending !== null || this.#queue.length === 0) return
    const batch = this.#queue.splice(0, this.#batchSize)
    this.#inFlight = batch.length
    this.#sending = this.#send(batch).finally(() => {
      this.#inFlight = 0
      this.#sending = null
      if (this.#queue.length >= this.#batchSize) this.#pump()
      else if (this.#queue.length > 0) this.#timer ??= setTimeout(() => { this.#timer = null; this.#pump() }, this.#lingerMs)
      if (this.held === 0) for (const w of this.#idleWaiters.splice(0)) w()
    })
  }

  async #send (batch: Outgoing[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#producer.send({ messages: batch })
        return
      } catch (err) {
        this.#log.warn({ err, attempt, records: batch.length }, 'Kafka produce failed; retrying.')
        await new Promise(resolve => setTimeout(resolve, Math.min(5000, 250 * attempt)))
      }
    }
  }
}

/** The readings topic's producer: records encoded into batches as they come (wire/batch-producer.ts). */
class KafkaBusProducer implements BusProducer {
  readonly #client: StringProducer
  readonly #pool: ConnectionPool
  readonly #batches: BatchProducer
  readonly #partitioner: KeyPartitioner
  readonly #clock: (() => number) | null
  readonly #log: Logger

  constructor (opts: KafkaBusOptions, partitions: number) {
    this.#client = newProducer(opts, 'ingest')
    this.#pool = new ConnectionPool(`${opts.clientId ?? 'iot-monitor'}-ingest`, { requestTimeout: clientDefaults.timeout })
    this.#batches = new BatchProducer(this.#client, this.#pool, {
      topic: opts.topic,
      partitions,
      log: opts.log,
      batchRecords: opts.batchSize ?? 5000,
      batchBytes: 512 * 1024,
      lingerMs: opts.lingerMs ?? 5,
      capacity: opts.capacity ?? 100_000,
      compression: 'lz4',
      timeoutMs: clientDefaults.timeout
    }, INGEST_HEADER)
    this.#partitioner = new KeyPartitioner(partitions)
    this.#clock = opts.ingestClock ?? null
    this.#log = opts.log
  }

  tryProduce (key: string, value: BusValue): boolean {
    // Kafka's murmur2 partitioner (the Java client's choice, and what the worker assumes), with
    // the partitions of recent keys remembered. The record timestamp stays the producer's wall
    // time (retention is by record time: a simulated clock in the past would have the broker
    // delete the records); a simulated ingest clock travels in a header instead.
    return this.#batches.tryPush(this.#partitioner.partitionOf(key), key, typeof value === 'string' ? value : toWire(value),
      this.#clock === null ? undefined : String(Math.round(this.#clock())))
  }

  get unacknowledged (): number { return this.#batches.held }
  async writable (): Promise<void> { await this.#batches.room() }
  async flush (): Promise<void> { await this.#batches.flush() }
  async close (): Promise<void> {
    await this.#batches.close()
    await this.#pool.close().catch((err: unknown) => { this.#log.warn({ err }, 'Closing the Kafka produce connections failed.') })
    await this.#client.close()
  }
}

/** JSON events to any topic; keyed, batched, retried like readings. */
export class JsonPublisher {
  readonly #batcher: Batcher

  constructor (opts: KafkaBusOptions) {
    this.#batcher = new Batcher(newProducer(opts, 'events'), opts.log, opts.batchSize ?? 5000, opts.lingerMs ?? 5)
  }

  publish (topic: string, key: string, value: unknown): void {
    this.#batcher.push({ topic, key, value: JSON.stringify(value) })
  }

  /** Resolves once everything published so far is accepted by the brokers. */
  async flush (): Promise<void> { await this.#batcher.flush() }
  async close (): Promise<void> { await this.#batcher.close() }
}

/**
 * A consumer group member. Kafka assigns the partitions; where to read them from comes from the
 * handler (the offsets stored in the database). Every assignment change, seek and fetch failure
 * starts a fresh fetch session at exactly the offsets wanted, and records fetched by the old one
 * are dropped, so `poll` never returns a record twice or skips one. A record batch that cannot be
 * decoded comes out as one record with `undecodable` set (a warning is logged once per batch) and
 * the partition moves on past it.
 */
class KafkaBusConsumer implements BusConsumer {
  readonly #opts: KafkaBusOptions
  readonly #consumer: StringConsumer
  /** Connections for fetching, apart from the group's (a long fetch never delays a heartbeat). */
  readonly #pool: ConnectionPool
  readonly #log: Logger
  #handler: AssignmentHandler | null = null
  /** Partitions Kafka assigned that the handler has not heard of yet (null: nothing new). */
  #pending: number[] | null = null
  #assigned: number[] = []
  /** Next offset to hand out per assigned partition. */
  readonly #position = new Map<number, number>()
  /** Per partition, the last offset of the latest undecodable batch warned about. */
  readonly #undecodableWarned = new Map<number, number>()
  #session: FetchSession | null = null
  #sessionFailed = false
  #wake: (() => void) | null = null
  #closed = false
  /** Log end offsets of the topic's partitions, refreshed every second (for `hasBacklog`). */
  #ends: bigint[] = []
  #endsTimer: NodeJS.Timeout | null = null

  constructor (opts: KafkaBusOptions, group: string) {
    this.#opts = opts
    this.#log = opts.log
    const clientId = `${opts.clientId ?? 'iot-monitor'}-worker`
    this.#consumer = new Consumer({
      clientId,
      bootstrapBrokers: opts.brokers,
      groupId: group,
      deserializers: stringDeserializers,
      autocommit: false,
      sessionTimeout: opts.sessionTimeoutMs ?? 10_000,
      rebalanceTimeout: Math.max(opts.sessionTimeoutMs ?? 10_000, 30_000),
      heartbeatInterval: Math.min(1000, Math.floor((opts.sessionTimeoutMs ?? 10_000) / 3)),
      ...clientDefaults
    })
    this.#pool = new ConnectionPool(clientId, { requestTimeout: clientDefaults.timeout })
    this.#consumer.on('consumer:group:join', (payload) => {
      const mine = payload.assignments?.find(a => a.topic === opts.topic)?.partitions ?? []
      this.#pending = [...mine].sort((a, b) => a - b)
      // Whatever the old session fetched is for the old assignment.
      this.#dropSession()
      this.#wake?.()
    })
  }

  async subscribe (handler: AssignmentHandler): Promise<void> {
    this.#handler = handler
    // The group tracks the topic; fetching is ours (wire/fetcher.ts).
    this.#consumer.topics.track(this.#opts.topic)
    try {
      await this.#consumer.joinGroup({})
    } catch (err) {
      throw new IotError('IOT_ERR_BUS', `cannot join consumer group ${this.#consumer.groupId} at ${this.#opts.brokers.join(',')}: ${(err as Error).message}`, { cause: err })
    }
    await this.#applyAssignment()
    const refresh = (): void => {
      this.#consumer.listOffsets({ topics: [this.#opts.topic], timestamp: -1n })
        .then(o => { this.#ends = o.get(this.#opts.topic) ?? [] }, () => {})
    }
    refresh()
    this.#endsTimer = setInterval(refresh, 1000)
    this.#endsTimer.unref()
  }

  hasBacklog (partition: number): boolean {
    const end = this.#ends[partition]
    return end !== undefined && Number(end) > (this.#position.get(partition) ?? Number.MAX_SAFE_INTEGER)
  }

  lag (): number | null {
    if (this.#ends.length === 0) return null
    let sum = 0
    for (const p of this.#assigned) sum += Math.max(0, Number(this.#ends[p] ?? 0n) - (this.#position.get(p) ?? 0))
    return sum
  }

  async poll (max: number, waitMs: number): Promise<BusRecord[]> {
    if (this.#closed) return []
    if (this.#pending !== null) {
      await this.#applyAssignment()
      return []
    }
    if (this.#session === null && this.#assigned.length > 0) {
      if (this.#sessionFailed) await new Promise(resolve => setTimeout(resolve, 500))
      await this.#openSession()
    }
    if ((this.#session?.buffered ?? 0) === 0 && waitMs > 0) {
      await new Promise<void>(resolve => {
        const timer = setTimeout(done, waitMs)
        const self = this
        function done (): void {
          clearTimeout(timer)
          if (self.#wake === done) self.#wake = null
          resolve()
        }
        this.#wake = done
      })
    }
    const out: BusRecord[] = []
    if (this.#pending !== null || this.#session === null) return out
    this.#session.take(max, out)
    for (const r of out) {
      this.#position.set(r.partition, r.offset + 1)
      if (r.undecodable !== undefined && r.offset > (this.#undecodableWarned.get(r.partition) ?? -1)) {
        // Once per batch, also when a failed worker batch has it delivered again.
        this.#undecodableWarned.set(r.partition, r.offset)
        this.#log.warn({ partition: r.partition, offset: r.offset, detail: r.undecodable }, 'Kafka record batch cannot be decoded; handed out as one undecodable record (a dead letter), the partition moves past it.')
      }
    }
    return out
  }

  async caughtUp (): Promise<boolean> {
    if (this.#pending !== null) return false
    if (this.#assigned.length === 0) return true
    const topic = this.#opts.topic
    const end = (await this.#consumer.listOffsets({ topics: [topic], timestamp: -1n })).get(topic) ?? []
    return this.#assigned.every(p => (this.#position.get(p) ?? 0) >= Number(end[p] ?? 0n))
  }

  /** Offsets live in the database; Kafka's group offsets are not used. */
  async commit (): Promise<void> {}

  seek (offsets: StartOffsets): void {
    for (const [p, o] of offsets) if (this.#assigned.includes(p)) this.#position.set(p, o)
    this.#dropSession()
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#endsTimer !== null) clearInterval(this.#endsTimer)
    this.#dropSession()
    this.#wake?.()
    await this.#pool.close().catch((err: unknown) => { this.#log.warn({ err }, 'Closing the Kafka fetch connections failed.') })
    await new Promise<void>(resolve => {
      this.#consumer.close(true, (err) => {
        if (err !== null && err !== undefined) this.#log.warn({ err }, 'Closing the Kafka consumer failed.')
        resolve()
      })
    })
  }

  /** Tells the handler: everything revoked, the new set assigned (state is rebuilt for all of it). */
  async #applyAssignment (): Promise<void> {
    const handler = this.#handler
    if (handler === null) return
    while (this.#pending !== null && !this.#closed) {
      const next = this.#pending
      this.#pending = null
      this.#dropSession()
      if (this.#assigned.length > 0) await handler.onRevoked(this.#assigned)
      this.#assigned = next
      this.#position.clear()
      if (next.length === 0) continue
      const offsets = await handler.onAssigned(next)
      for (const p of next) this.#position.set(p, offsets.get(p) ?? 0)
      this.#log.info({ partitions: next, generation: this.#consumer.generationId }, 'Kafka assignment applied.')
    }
  }

  async #openSession (): Promise<void> {
    const topic = this.#opts.topic
    // Stored offsets may point before the log start (retention): start at the earliest record kept.
    const earliest = await this.#consumer.listOffsets({ topics: [topic], timestamp: -2n })
      .then(o => o.get(topic) ?? [], () => [] as bigint[])
    if (this.#pending !== null || this.#closed || this.#session !== null) return
    const from = new Map(this.#assigned.map(p => [p, Math.max(this.#position.get(p) ?? 0, Number(earliest[p] ?? 0n))]))
    this.#sessionFailed = false
    const session: FetchSession = new FetchSession(this.#consumer, this.#pool, {
      topic,
      maxWaitMs: 200,
      partitionMaxBytes: 256 * 1024,
      bufferRecords: this.#opts.bufferRecords ?? 20_000,
      ingestHeader: INGEST_HEADER
    }, from, () => { if (this.#session === session) this.#wake?.() }, (err) => {
      if (this.#session !== session) return
      this.#log.warn({ err }, 'Kafka fetch failed; fetching again from the next record.')
      this.#sessionFailed = true
      this.#dropSession()
      this.#wake?.()
    })
    this.#session = session
  }

  /** Stops fetching and forgets what was fetched but not handed out. */
  #dropSession (): void {
    const s = this.#session
    this.#session = null
    s?.close()
  }
}
