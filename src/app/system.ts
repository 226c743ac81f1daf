import { hostname } from 'node:os'
import { type FastifyInstance } from 'fastify'
import { type Logger } from 'pino'
import { LiveHub, buildApp } from '../api/index.ts'
import { type Bus, type BusConsumer, KafkaBus, MemoryBus, ensureTopics, partitionFor } from '../bus/index.ts'
import { type Config } from '../config/index.ts'
import { IotError } from '../domain/index.ts'
import { EventSink, PipelineDetector, PipelineMetrics, ThreadTrainer, Worker, type EventTopics } from '../pipeline/index.ts'
import { Simulator, SimulatorSource } from '../sources/index.ts'
import {
  type Db, dropPartitionsBefore, loadWatermark, migrate, newestEventTime, openDb, summarizeTimeIndex
} from '../storage/index.ts'

/**
 * What a process runs: `ingest` (sources → bus), `worker` (bus → detection, windows → database),
 * `api` (HTTP over the database). Embedded mode runs all three on the memory bus; with Kafka any
 * subset, in as many processes as wanted.
 */
export type Role = 'ingest' | 'worker' | 'api'
export const allRoles: ReadonlySet<Role> = new Set(['ingest', 'worker', 'api'])

export interface RunningSystem {
  db: Db | null
  bus: Bus | null
  worker: Worker | null
  source: SimulatorSource | null
  metrics: PipelineMetrics
  app: FastifyInstance | null
  /** Resolves when a bounded simulation (--duration) has produced its last reading (never without one). */
  sourceDone: Promise<void>
  /** The newest watermark known here (the worker's, else the stored one). */
  watermark(): number
  /**
   * Stops the source, stores everything accepted, closes the API, the bus and the database.
   * `beforeClose` runs once everything is stored, before the database closes.
   */
  stop(beforeClose?: (db: Db) => Promise<void>): Promise<void>
}

/** Every role in one process: the embedded mode of `npm start` (or all roles through Kafka). */
export async function startEmbedded (config: Config, log: Logger, wallClock: () => number = Date.now): Promise<RunningSystem> {
  return await startSystem(config, log, allRoles, wallClock)
}

export async function startSystem (config: Config, log: Logger, roles: ReadonlySet<Role>, wallClock: () => number = Date.now): Promise<RunningSystem> {
  const brokers = config.kafka.brokers
  if (brokers === null && roles.has('ingest') !== roles.has('worker')) {
    throw new IotError('IOT_ERR_CONFIG', 'the ingest and worker roles on their own need Kafka: give --kafka-brokers (or KAFKA_BROKERS)')
  }
  const sim = config.simulator
  const runsSource = roles.has('ingest') && sim.enabled
  // The ingest role alone reads the database only to continue after the last stored event time.
  const needsDb = roles.has('worker') || roles.has('api') || (runsSource && config.databaseUrl !== null)
  const db = needsDb ? await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir }) : null
  const closers: (() => Promise<void>)[] = []
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c().catch((err: unknown) => { log.error({ err }, 'Shutdown step failed.') })
  }
  try {
    if (db !== null) {
      closers.push(async () => { await db.close() })
      if (roles.has('worker') || brokers === null) {
        const applied = await migrate(db)
        if (applied.length > 0) log.info({ applied }, 'Database migrated.')
      }
    }
    const metrics = new PipelineMetrics()
    let source: SimulatorSource | null = null
    const ingestClock = (): number => source === null ? wallClock() : source.now()

    let bus: Bus | null = null
    if (brokers === null) {
      bus = new MemoryBus({ topic: config.topic, partitions: config.partitions, capacity: config.busCapacity })
    } else if (roles.has('ingest') || roles.has('worker')) {
      bus = await KafkaBus.connect({
        brokers,
        topic: config.topic,
        partitions: config.partitions,
        log,
        sessionTimeoutMs: config.kafka.sessionTimeoutMs,
        // A simulated clock (accelerated or in the past) travels with each record for the far-off check.
        ...(runsSource ? { ingestClock } : {})
      })
      log.info({ brokers, topic: config.topic, partitions: bus.partitions }, 'Connected to Kafka.')
    }
    const theBus = bus
    if (theBus !== null) closers.push(async () => { await theBus.close() })

    if (runsSource && bus !== null) {
      // Continue after where the previous run's event time stopped.
      const last = db === null ? null : await newestEventTime(db, { group: config.group, topic: config.topic })
      const start = Math.max(sim.startMs ?? wallClock(), last === null ? -Infinity : last + 1)
      const simulator = new Simulator({ sensors: sim.sensors, ratePerSensor: sim.rate, seed: sim.seed, startTs: start })
      source = new SimulatorSource(simulator, bus.producer(), {
        speedup: sim.speedup,
        endTs: sim.durationMs === null ? null : start + sim.durationMs,
        wallClock
      })
      log.info({ sensors: sim.sensors, rate: sim.rate, speedup: sim.speedup, seed: sim.seed, start: new Date(start).toISOString() }, 'Simulator configured.')
    }

    let worker: Worker | null = null
    let consumer: BusConsumer | null = null
    if (roles.has('worker') && bus !== null && db !== null) {
      const parts = bus.partitions
      let sink: EventSink | undefined
      if (bus instanceof KafkaBus && config.kafka.events) {
        const topics: EventTopics = { deadLetters: `${config.topic}.dlq`, aggregates: config.kafka.aggregatesTopic, anomalies: config.kafka.anomaliesTopic }
        await ensureTopics(brokers ?? [], Object.values(topics).map(name => ({ name, partitions: parts })))
        sink = new EventSink(bus.publisher(), topics)
      }
      consumer = bus.consumer(config.group)
      const trainer = config.detection.ml
        ? new ThreadTrainer(err => { log.error({ err }, 'The model training thread died: the Isolation Forest keeps its current models.') })
        : null
      if (trainer !== null) {
        closers.push(async () => { await trainer.close() })
        // Models from the first minutes on, also when the stream runs far faster than real time.
        await trainer.ready()
      }
      worker = new Worker({
        db,
        consumer,
        detector: new PipelineDetector({
          rules: config.detection.rules,
          // Several workers of a group train models of the same keys: their versions name the process.
          ml: config.detection.ml && { scope: config.detection.mlScope, instance: brokers === null ? '' : `${hostname().replace(/[\s#@]/g, '-')}-${process.pid}` },
          trainer: trainer ?? undefined
        }),
        ingestClock,
        wallClock,
        log,
        metrics,
        partitionOf: (id) => partitionFor(id, parts),
        ...(sink === undefined ? {} : { sink })
      }, {
        group: config.group,
        topic: config.topic,
        windowing: config.windowing,
        validation: config.validation,
        maxBatch: config.maxBatch
      })
      await worker.start()
    }
    source?.start()

    // Without a worker here, the watermark comes from the database.
    let storedWatermark = -Infinity
    const watermark = (): number => worker === null ? storedWatermark : worker.watermark
    const lag = (): number | null => bus instanceof MemoryBus ? bus.lag : consumer?.lag?.() ?? null

    let app: FastifyInstance | null = null
    if (roles.has('api') && db !== null) {
      // Batches stored in this process reach the dashboards at once.
      let live: LiveHub | undefined
      if (worker !== null) {
        const hub = new LiveHub()
        worker.on('batch', b => { hub.publish(b) })
        live = hub
      }
      app = await buildApp({
        db,
        registry: metrics.registry,
        status: () => ({ watermark: watermark(), lag: lag() }),
        logger: log,
        windowing: config.windowing,
        ...(live === undefined ? {} : { live })
      })
    }

    const timers: NodeJS.Timeout[] = []
    if (worker !== null) {
      timers.push(setInterval(() => {
        const l = lag()
        if (l !== null) metrics.lag.set(l)
      }, 1000))
    }
    if (db !== null && worker === null) {
      const refresh = async (): Promise<void> => { storedWatermark = await loadWatermark(db, config.group, config.topic) }
      await refresh()
      timers.push(setInterval(() => { refresh().catch((err: unknown) => { log.warn({ err }, 'Reading the watermark failed.') }) }, 2000))
    }
    if (db !== null && worker !== null) {
      const w = worker
      timers.push(setInterval(() => { summarizeTimeIndex(db).catch((err: unknown) => { log.warn({ err }, 'BRIN summarization failed.') }) }, 30_000))
      const { retentionMs } = config
      if (retentionMs !== null) {
        const dropOld = async (): Promise<void> => {
          if (!Number.isFinite(w.watermark)) return
          const dropped = await dropPartitionsBefore(db, w.watermark - retentionMs)
          if (dropped.length > 0) log.info({ dropped }, 'Retention: dropped raw readings.')
        }
        timers.push(setInterval(() => { dropOld().catch((err: unknown) => { log.error({ err }, 'Retention failed.') }) }, 60_000))
      }
    }
    for (const t of timers) t.unref()

    let stopping: Promise<void> | null = null
    const stop = async (beforeClose?: (db: Db) => Promise<void>): Promise<void> => {
      stopping ??= (async () => {
        for (const t of timers) clearInterval(t)
        await source?.stop()
        // Embedded, or ingest and worker in one process: store everything the source produced.
        const drain = roles.has('ingest') && roles.has('worker')
        await worker?.stop({ drain, endOfInput: drain && source?.finished === true })
        await app?.close()
        if (db !== null && beforeClose !== undefined) {
          await beforeClose(db).catch((err: unknown) => { log.error({ err }, 'Final report failed.') })
        }
        await closeAll()
      })()
      await stopping
    }
    return {
      db,
      bus,
      worker,
      source,
      metrics,
      app,
      sourceDone: source === null ? new Promise(() => {}) : source.done(),
      watermark,
      stop
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}
