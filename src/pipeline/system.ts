import { type FastifyInstance } from 'fastify'
import { type Logger } from 'pino'
import { buildApp } from '../api/index.ts'
import { Detector } from '../anomaly/index.ts'
import { MemoryBus } from '../bus/index.ts'
import { type Config } from '../config/index.ts'
import { Simulator, SimulatorSource } from '../sources/simulator/index.ts'
import { type Db, dropPartitionsBefore, migrate, newestEventTime, openDb, summarizeTimeIndex } from '../storage/index.ts'
import { PipelineMetrics } from './metrics.ts'
import { Worker } from './worker.ts'

/** A running embedded system: simulator → memory bus → worker → database, and the API (not listening). */
export interface EmbeddedSystem {
  db: Db
  bus: MemoryBus
  worker: Worker
  source: SimulatorSource | null
  metrics: PipelineMetrics
  app: FastifyInstance
  /** Resolves when a bounded simulation (--duration) has produced its last reading. */
  sourceDone: Promise<void>
  /** Stops the source, stores everything accepted, closes the API and the database. */
  stop(): Promise<void>
}

export async function startEmbedded (config: Config, log: Logger, wallClock: () => number = Date.now): Promise<EmbeddedSystem> {
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
  const applied = await migrate(db)
  if (applied.length > 0) log.info({ applied }, 'Database migrated.')
  const metrics = new PipelineMetrics()
  const bus = new MemoryBus({ topic: config.topic, partitions: config.partitions, capacity: config.busCapacity })

  let source: SimulatorSource | null = null
  const sim = config.simulator
  if (sim.enabled) {
    // Continue after where the previous run's event time stopped.
    const last = await newestEventTime(db, { group: config.group, topic: config.topic })
    const start = Math.max(sim.startMs ?? wallClock(), last === null ? -Infinity : last + 1)
    const simulator = new Simulator({ sensors: sim.sensors, ratePerSensor: sim.rate, seed: sim.seed, startTs: start })
    source = new SimulatorSource(simulator, bus.producer(), {
      speedup: sim.speedup,
      endTs: sim.durationMs === null ? null : start + sim.durationMs,
      wallClock
    })
    log.info({ sensors: sim.sensors, rate: sim.rate, speedup: sim.speedup, seed: sim.seed, start: new Date(start).toISOString() }, 'Simulator configured.')
  }
  const ingestClock = source === null ? wallClock : () => (source as SimulatorSource).now()
  const worker = new Worker({ db, consumer: bus.consumer(), detector: new Detector(), ingestClock, wallClock, log, metrics }, {
    group: config.group,
    topic: config.topic,
    windowing: config.windowing,
    validation: config.validation,
    maxBatch: config.maxBatch
  })
  await worker.start()
  source?.start()
  const app = await buildApp({ db, registry: metrics.registry, status: () => ({ watermark: worker.watermark, lag: bus.lag }), logger: log })
  const dropOldReadings = async (retentionMs: number): Promise<void> => {
    if (!Number.isFinite(worker.watermark)) return
    const dropped = await dropPartitionsBefore(db, worker.watermark - retentionMs)
    if (dropped.length > 0) log.info({ dropped }, 'Retention: dropped raw readings.')
  }
  const timers = [
    setInterval(() => metrics.lag.set(bus.lag), 1000),
    setInterval(() => { summarizeTimeIndex(db).catch((err: unknown) => { log.warn({ err }, 'BRIN summarization failed.') }) }, 30_000)
  ]
  const { retentionMs } = config
  if (retentionMs !== null) {
    timers.push(setInterval(() => {
      dropOldReadings(retentionMs).catch((err: unknown) => { log.error({ err }, 'Retention failed.') })
    }, 60_000))
  }
  for (const t of timers) t.unref()

  let stopping: Promise<void> | null = null
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      for (const t of timers) clearInterval(t)
      await source?.stop()
      await worker.stop({ drain: true, endOfInput: source?.finished === true })
      await app.close()
      await bus.close()
      await db.close()
    })()
    await stopping
  }
  return { db, bus, worker, source, metrics, app, sourceDone: source === null ? new Promise(() => {}) : source.done(), stop }
}
