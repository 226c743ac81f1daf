// The composition root: builds the roles a process runs from its configuration and wires them
// together (sources, bus, worker, API, the maintenance timers), and takes them down again.
import { hostname } from 'node:os'
import { type FastifyInstance } from 'fastify'
import { type Logger } from 'pino'
import { type DeviceIngest, LiveHub, buildApp } from '../api/index.ts'
import { type Bus, type BusConsumer, type BusProducer, KafkaBus, MemoryBus, ensureTopics, partitionFor } from '../bus/index.ts'
import { type Config, readRequiresToken } from '../config/index.ts'
import { IotError, streamKeyOf } from '../domain/index.ts'
import { AlarmEvaluator } from '../alarms/index.ts'
import { Backoff, EventSink, LatencyTracker, PipelineDetector, PipelineMetrics, ThreadTrainer, Worker, type EventTopics } from '../pipeline/index.ts'
import { DeviceRegistry, LastSeenRecorder, markOnlineDevicesOffline } from '../devices/index.ts'
import { NotificationDispatcher } from '../notify/index.ts'
import {
  type DeviceStatus, DeviceGateway, ExternalMqttSource, MqttBrokerSource, type MqttDevice, Simulator, SimulatorSource, type Source
} from '../sources/index.ts'
import {
  type Db, type GroupStatus, type Latency, DbAvailability, applyRetention, isUnavailable, loadGroupStatus, loadWatermark, migrate, newestEventTime,
  openDb, removeWorkerStatus, reportWorkerStatus, startProbe, summarizeTimeIndex, vacuumRewrittenTables, watchDb
} from '../storage/index.ts'
import { BackgroundDb } from './background-db.ts'
import { type Readiness, readiness } from './readiness.ts'

/**
 * What a process runs: `ingest` (sources → bus), `worker` (bus → detection, windows → database),
 * `api` (HTTP over the database). Embedded mode runs all three on the memory bus; with Kafka any
 * subset, in as many processes as wanted.
 */
export type Role = 'ingest' | 'worker' | 'api'
export const allRoles: ReadonlySet<Role> = new Set(['ingest', 'worker', 'api'])

export interface RunningSystem {
  roles: ReadonlySet<Role>
  db: Db | null
  /** Whether the database answers, as last seen (null: no database here). */
  availability: DbAvailability | null
  bus: Bus | null
  worker: Worker | null
  source: Source | null
  metrics: PipelineMetrics
  app: FastifyInstance | null
  /** The live hub of the API (its clients), when this process serves one. */
  live: LiveHub | null
  /** Where devices reach this process over MQTT (the built-in broker's address, or the external broker's URL); null: no MQTT. */
  mqtt: string | null
  /** Resolves when a bounded simulation (--duration) has produced its last reading (never without one). */
  sourceDone: Promise<void>
  /** The newest watermark known here (the worker's, else the stored one); never goes back. */
  watermark(): number
  /** Whether this process does its job now (GET /ready), and why not. */
  readiness(): Readiness
  /**
   * What a stop would leave behind right now, one sentence each (empty when nothing): readings
   * accepted and not stored, readings not acknowledged by Kafka, records waiting in Kafka.
   */
  pending(): string[]
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

/** Wall time between reports of a worker's lag and latency to the database (read by api processes). */
const WORKER_REPORT_MS = 2000
/** Reports older than this are from workers that stopped or hang. */
const WORKER_REPORT_FRESH_MS = 10_000
/**
 * How often the database is asked SELECT 1: while it answers, so that an idle process notices an
 * outage (readiness fails within about 10 s); while it does not, so that its return is noticed
 * within about 2 s. A slower answer than the timeout counts as none.
 */
const PROBE = { upMs: 5000, downMs: 1000, timeoutMs: 3000 }

/**
 * Opens the database; while it is out of reach (not started yet, restarting), waits and tries again
 * (capped exponential backoff) instead of failing: the process starts when it answers. Any other
 * failure (a wrong password, a missing database) ends the start at once.
 */
async function openDbWaiting (config: Config, log: Logger): Promise<Db> {
  const backoff = new Backoff({ initialMs: 500, maxMs: 5000 })
  for (;;) {
    try {
      return await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
    } catch (err) {
      if (!isUnavailable(err)) throw err
      const wait = backoff.next()
      if (backoff.attempts === 1) log.warn({ err: (err as Error).message }, 'Waiting for PostgreSQL to answer; retrying with backoff.')
      await new Promise(resolve => setTimeout(resolve, wait))
    }
  }
}

const fmt = new Intl.NumberFormat('en-US')

export async function startSystem (config: Config, log: Logger, roles: ReadonlySet<Role>, wallClock: () => number = Date.now): Promise<RunningSystem> {
  const brokers = config.kafka.brokers
  if (brokers === null && roles.has('ingest') !== roles.has('worker')) {
    throw new IotError('IOT_ERR_CONFIG', 'the ingest and worker roles on their own need Kafka: give --kafka-brokers (or KAFKA_BROKERS)')
  }
  // Before anything starts: an API beyond loopback with no token to ask for is refused (IOT_ERR_CONFIG).
  const readNeedsToken = roles.has('api') && readRequiresToken(config)
  const sim = config.simulator
  const runsSource = roles.has('ingest') && sim.enabled
  // The ingest role alone needs no database: it produces to Kafka whether PostgreSQL is up or not.
  // Serving devices from an external broker (--mqtt-url), it looks them up there, connecting in the
  // background so that PostgreSQL being away neither holds up its start nor stops it producing.
  const needsDb = roles.has('worker') || roles.has('api')
  const devicesOnly = !needsDb && roles.has('ingest') && config.mqtt.enabled && config.mqtt.url !== null
  if (devicesOnly && config.databaseUrl === null) {
    throw new IotError('IOT_ERR_CONFIG', 'ingest --mqtt-url looks devices up in PostgreSQL: give --database-url (or DATABASE_URL)')
  }
  const background = devicesOnly ? await BackgroundDb.open({ open: async () => await openDb({ databaseUrl: config.databaseUrl }), log }) : null
  const opened = needsDb ? await openDbWaiting(config, log) : background?.db ?? null
  // Every statement reports whether the database answered; the roles read it to wait, to answer 503, for /ready.
  const availability = opened === null ? null : new DbAvailability(wallClock)
  const db = opened === null || availability === null ? null : watchDb(opened, availability)
  // Started without the database (said by BackgroundDb): known away, so the probe asks every second.
  if (background !== null && !background.connected) availability?.failed(background.lastError ?? new IotError('IOT_ERR_DB_UNAVAILABLE', 'PostgreSQL has not answered yet'))
  const closers: (() => Promise<void>)[] = []
  const metrics = new PipelineMetrics()
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c().catch((err: unknown) => { log.error({ err }, 'Shutdown step failed.') })
  }
  try {
    if (db !== null && opened !== null && availability !== null) {
      closers.push(async () => { await db.close() })
      if (opened.kind === 'postgres') {
        const stopProbe = startProbe(opened, availability, PROBE)
        closers.push(async () => { stopProbe() })
      }
      availability.onChange(e => {
        if (e.reachable) {
          metrics.databaseReconnects.inc()
          log.info({ downForMs: e.downForMs }, `PostgreSQL answers again after ${(e.downForMs / 1000).toFixed(1)} s; resuming.`)
        } else if (devicesOnly) {
          log.warn({ reason: e.reason }, 'PostgreSQL is unreachable: devices looked up before are served from the cache; messages of others wait at the broker, unacknowledged.')
        } else {
          log.warn({ reason: e.reason }, 'PostgreSQL is unreachable; waiting for it (readings wait in the bus, nothing is lost).')
        }
      })
      if (roles.has('worker') || brokers === null) {
        const applied = await migrate(db)
        if (applied.length > 0) log.info({ applied }, 'Database migrated.')
      }
    }
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
      if (bus.partitions !== config.partitions) {
        log.warn({ topic: config.topic, partitions: bus.partitions, asked: config.partitions },
          `Topic ${config.topic} has ${bus.partitions} partitions, not the ${config.partitions} asked for: --partitions applies only when the topic is created.`)
      }
    }
    const theBus = bus
    if (theBus !== null) closers.push(async () => { await theBus.close() })

    let producer: BusProducer | null = null
    if (runsSource && bus !== null) {
      // Continue after where the previous run's event time stopped.
      // Kafka keeps what earlier runs produced (stored or not); the embedded bus nothing, so there the database says.
      const last = bus instanceof KafkaBus
        ? await bus.newestEventTime()
        : db === null ? null : await newestEventTime(db, { group: config.group, topic: config.topic })
      const start = Math.max(sim.startMs ?? wallClock(), last === null ? -Infinity : last + 1)
      const simulator = new Simulator({ sensors: sim.sensors, ratePerSensor: sim.rate, seed: sim.seed, startTs: start })
      producer = bus.producer()
      source = new SimulatorSource(simulator, producer, {
        speedup: sim.speedup,
        endTs: sim.durationMs === null ? null : start + sim.durationMs,
        wallClock
      })
      log.info({ sensors: sim.sensors, rate: sim.rate, speedup: sim.speedup, seed: sim.seed, start: new Date(start).toISOString() }, 'Simulator configured.')
    }

    let worker: Worker | null = null
    let consumer: BusConsumer | null = null
    let detector: PipelineDetector | null = null
    let trainer: ThreadTrainer | null = null
    const latency = new LatencyTracker(wallClock)
    const instance = `${hostname().replace(/[\s#@]/g, '-')}-${process.pid}`
    if (roles.has('worker') && bus !== null && db !== null) {
      const parts = bus.partitions
      let sink: EventSink | undefined
      if (bus instanceof KafkaBus && config.kafka.events) {
        const topics: EventTopics = { deadLetters: `${config.topic}.dlq`, aggregates: config.kafka.aggregatesTopic, anomalies: config.kafka.anomaliesTopic }
        await ensureTopics(brokers ?? [], Object.values(topics).map(name => ({ name, partitions: parts })))
        sink = new EventSink(bus.publisher(), topics)
      }
      consumer = bus.consumer(config.group)
      trainer = config.detection.ml || config.detection.devices !== 'off'
        ? new ThreadTrainer({ onFailure: err => { log.error({ err }, 'The model training thread died: the Isolation Forests keep their current models.') } })
        : null
      const thread = trainer
      if (thread !== null) {
        closers.push(async () => { await thread.close() })
        // Models from the first minutes on, also when the stream runs far faster than real time.
        await thread.ready()
      }
      detector = new PipelineDetector({
        rules: config.detection.rules,
        // Several workers of a group train models of the same keys: their versions name the process.
        ml: config.detection.ml && { scope: config.detection.mlScope, instance: brokers === null ? '' : instance },
        trainer: trainer ?? undefined,
        // A forest per device over its measurements (a device's readings share a partition: see streamKeyOf).
        devices: config.detection.devices !== 'off' && { simulated: config.detection.devices === 'all' },
        deviceTrainer: trainer?.devices,
        // Restarts and rebalances restore the detectors' state instead of starting them over.
        snapshots: {}
      })
      worker = new Worker({
        db,
        consumer,
        detector,
        ingestClock,
        wallClock,
        log,
        metrics,
        partitionOf: (key) => partitionFor(key, parts),
        // Alarms on each batch (event time) and on the wall clock (offline), written with the batch.
        alarms: config.alarms.enabled ? new AlarmEvaluator(config.alarms.rules, { partitionOf: (id) => partitionFor(streamKeyOf(id), parts) }) : null,
        ...(sink === undefined ? {} : { sink })
      }, {
        group: config.group,
        topic: config.topic,
        windowing: config.windowing,
        validation: config.validation,
        maxBatch: config.maxBatch
      })
      worker.on('batch', b => { latency.add(b) })
      await worker.start()
    }
    source?.start()

    // Alarm notifications leave from the process that runs the worker (several such processes share
    // the outbox safely); without a webhook they wait in the database.
    let notifier: NotificationDispatcher | null = null
    if (roles.has('worker') && db !== null && config.notify.webhooks.length > 0) {
      const n = config.notify
      notifier = new NotificationDispatcher({
        db,
        targets: n.webhooks,
        policy: { groupBy: n.groupBy, groupWaitMs: n.groupWaitMs, groupIntervalMs: n.groupIntervalMs, repeatIntervalMs: n.repeatIntervalMs },
        retry: { baseMs: n.retryWaitMs, maxMs: n.retryMaxWaitMs },
        timeoutMs: n.timeoutMs,
        // A claimed row stays with this process while its request may still be running.
        leaseMs: 2 * n.timeoutMs + 5000,
        payload: { receiver: 'iot-monitor', externalUrl: n.externalUrl ?? `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}` },
        log: log.child({ component: 'notify' }),
        registry: metrics.registry,
        reachable: () => availability?.reachable ?? true
      })
      notifier.start()
      log.info({ webhooks: n.webhooks.length, format: n.webhooks[0]?.format }, 'Alarm notifications on.')
    }

    // Devices writing over HTTP and MQTT: where this process both ingests and serves the API, and in
    // the ingest role alone with an external broker (--mqtt-url; HTTP needs the api role). Tokens and
    // ids are looked up in the database (cached, and served stale while it is away); last seen and
    // connection states are recorded every few seconds (kept through an outage).
    let gateway: DeviceGateway | null = null
    let mqtt: Source | null = null
    let mqttAddress: string | null = null
    let deviceIngest: DeviceIngest | undefined
    let lastSeen: LastSeenRecorder | null = null
    let registry: DeviceRegistry | null = null
    if (roles.has('ingest') && (roles.has('api') || devicesOnly) && bus !== null && db !== null) {
      const r = registry = new DeviceRegistry(db, {
        reachable: () => availability?.reachable ?? true,
        onRefused: (reason) => { metrics.ingestRefused.inc({ reason }) },
        onStale: () => { metrics.deviceLookupsStale.inc() }
      })
      const seen = lastSeen = new LastSeenRecorder(db)
      const g = gateway = new DeviceGateway({ producer: bus.producer(), clock: wallClock, seen: (id, at) => { seen.mark(id, at) } })
      deviceIngest = { authenticate: async (token) => await r.authenticate(token), gateway: g, rateLimit: config.deviceRateLimit }
      if (config.mqtt.enabled) {
        if (config.mqtt.url === null) {
          // Before the built-in broker takes connections: those of the last run are gone.
          await markOnlineDevicesOffline(db, wallClock()).then(
            (cut) => { if (cut > 0) log.info({ devices: cut }, 'Devices left online by the last run are offline until they reconnect.') },
            (err: unknown) => { log.warn({ err }, 'Marking the devices of the last run offline failed.') })
        }
        const started = await startMqtt(config, log, {
          authenticate: async (token) => await r.authenticate(token),
          resolveDevice: async (id) => await r.resolve(id),
          onTelemetry: async (device, payload) => (await g.telemetry(device, payload)).accepted,
          onStatus: (device: MqttDevice, status: DeviceStatus, retained: boolean) => {
            // A retained status is the broker's last known value, not a sign of life.
            if (retained) return
            seen.connection(device.id, status, wallClock())
            // Written at once while the database answers; else with the next flush after it returns.
            if (availability?.reachable === false) return
            seen.flush().catch((err: unknown) => { if (!isUnavailable(err)) log.warn({ err, device: device.id }, 'Recording a device status failed.') })
          }
        })
        if (started !== null) {
          mqtt = started.source
          mqttAddress = started.address
        }
      }
    }

    // Without a worker here, the watermark comes from the database, and the lag and latency from
    // what the workers report there.
    let storedWatermark = -Infinity
    let group: GroupStatus = { workers: 0, lag: null, latency: null }
    const watermark = (): number => worker === null ? storedWatermark : worker.watermark
    const lag = (): number | null => worker === null ? group.lag : bus instanceof MemoryBus ? bus.lag : consumer?.lag?.() ?? null
    const status = (): { watermark: number, lag: number | null, latency: Latency | null } =>
      ({ watermark: watermark(), lag: lag(), latency: worker === null ? group.latency : latency.latency() })
    const startedAt = wallClock()
    const ready = (): Readiness => readiness({
      now: wallClock(), startedAt, database: availability?.state ?? null, worker: worker?.health ?? null, backlog: worker === null ? null : lag()
    }, config.readiness)
    metrics.watchHealth({
      databaseUp: () => availability?.reachable ?? null,
      consecutiveFailures: () => worker?.health.consecutiveFailures ?? null,
      lastStoredAgeSeconds: () => {
        const at = worker?.health.lastStoredAt ?? null
        return at === null ? null : (wallClock() - at) / 1000
      },
      trainingWaits: () => trainer?.waits ?? null,
      trainingFailures: () => detector?.trainingFailures ?? null
    })

    let app: FastifyInstance | null = null
    let live: LiveHub | null = null
    if (roles.has('api') && db !== null) {
      const hub = live = new LiveHub({ maxClients: config.live.maxClients, maxClientsPerAddress: config.live.maxClientsPerAddress })
      // Batches stored in this process reach the dashboards at once; without a worker here, the API tails the database.
      worker?.on('batch', b => { hub.publish(b) })
      app = await buildApp({
        db,
        registry: metrics.registry,
        status,
        readiness: ready,
        ...(availability === null ? {} : { databaseReachable: () => availability.reachable }),
        adminToken: config.adminToken,
        viewerToken: config.viewerToken,
        readRequiresToken: readNeedsToken,
        logger: log,
        windowing: config.windowing,
        live: hub,
        tailDatabase: worker === null,
        ...(registry === null ? {} : { deviceRegistry: registry }),
        ...(deviceIngest === undefined ? {} : { ingest: deviceIngest })
      })
    }

    const readStatus = db === null || worker !== null || !roles.has('api')
      ? null
      : async (): Promise<void> => {
        storedWatermark = await loadWatermark(db, config.group, config.topic)
        group = await loadGroupStatus(db, config.group, config.topic, WORKER_REPORT_FRESH_MS)
      }
    await readStatus?.().catch((err: unknown) => { log.warn({ err }, 'Reading the pipeline status failed.') })
    const timers = startMaintenance({
      config, db, availability, worker, log, wallClock, metrics, lag, latency, instance, embeddedDb: db?.kind === 'pglite', readStatus, lastSeen
    })

    const pending = (): string[] => {
      const lines: string[] = []
      const away = availability?.state
      if (away !== undefined && !away.reachable) {
        lines.push(`PostgreSQL has been unreachable for ${Math.round((wallClock() - (away.downSince ?? wallClock())) / 1000)} s (${away.reason ?? 'no answer'}); everything stored before is kept.`)
      }
      if (bus instanceof MemoryBus && bus.held > 0) {
        lines.push(`${fmt.format(bus.held)} readings accepted into the embedded bus were not stored; the embedded bus keeps nothing across a restart: they are lost.`)
      }
      const unacked = producer?.unacknowledged ?? 0
      if (!(bus instanceof MemoryBus) && unacked > 0) {
        lines.push(`${fmt.format(unacked)} readings were not acknowledged by Kafka: they are lost (everything Kafka acknowledged is kept there).`)
      }
      const waiting = bus instanceof KafkaBus ? consumer?.lag?.() ?? null : null
      if (waiting !== null && waiting > 0) {
        lines.push(`${fmt.format(waiting)} readings in Kafka are not stored yet: they stay in Kafka, and a worker stores them when one runs.`)
      }
      return lines
    }

    let stopping: Promise<void> | null = null
    const stop = async (beforeClose?: (db: Db) => Promise<void>): Promise<void> => {
      stopping ??= (async () => {
        for (const t of timers) clearInterval(t)
        await source?.stop()
        await mqtt?.stop()
        await gateway?.stop()
        if (availability?.reachable !== false) {
          await lastSeen?.flush().catch((err: unknown) => { if (!isUnavailable(err)) log.warn({ err }, 'Recording the devices last seen failed.') })
        }
        // Embedded, or ingest and worker in one process: store everything the source produced.
        const drain = roles.has('ingest') && roles.has('worker')
        await worker?.stop({ drain, endOfInput: drain && source?.finished === true })
          .catch((err: unknown) => { log.error({ err }, 'Stopping the worker failed; what it did not store stays in the bus or is listed above.') })
        await notifier?.stop()
        await app?.close()
        if (db !== null && worker !== null) {
          await removeWorkerStatus(db, config.group, config.topic, instance).catch((err: unknown) => { log.warn({ err }, 'Removing the worker status failed.') })
        }
        if (db !== null && beforeClose !== undefined) {
          await beforeClose(db).catch((err: unknown) => { log.error({ err }, 'Final report failed.') })
        }
        await closeAll()
      })()
      await stopping
    }
    return {
      roles,
      db,
      availability,
      bus,
      worker,
      // The ingest role alone without a simulator: its devices are its source (status line, summary).
      source: source ?? (devicesOnly ? gateway : null),
      metrics,
      app,
      live,
      mqtt: mqttAddress,
      sourceDone: source === null ? new Promise(() => {}) : source.done(),
      watermark,
      readiness: ready,
      pending,
      stop
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}

interface MqttHooks {
  authenticate: (token: string) => Promise<MqttDevice | null>
  resolveDevice: (deviceId: string) => Promise<MqttDevice | null>
  onTelemetry: (device: MqttDevice, payload: Buffer) => Promise<number>
  onStatus: (device: MqttDevice, status: DeviceStatus, retained: boolean) => void
}

/**
 * Devices over MQTT: subscribes to the external broker (--mqtt-url), else runs the built-in one.
 * When the default port (1883) is taken and no port was asked for, the built-in broker stays off
 * (another broker, or another iot-monitor, runs there) and says so; an asked-for port must work.
 */
async function startMqtt (config: Config, log: Logger, hooks: MqttHooks): Promise<{ source: Source, address: string } | null> {
  const m = config.mqtt
  if (m.url !== null) {
    const external = new ExternalMqttSource({ url: m.url, topicPrefix: m.topicPrefix, log, ...hooks })
    external.start()
    return { source: external, address: m.url }
  }
  const rate = config.deviceRateLimit
  const rateLimit = rate === null ? null : { messagesPerSecond: rate.perSecond, burst: rate.burst }
  const broker = new MqttBrokerSource({ host: m.host, port: m.port, tls: m.tls, rateLimit, log, ...hooks })
  broker.start()
  try {
    const a = await broker.listening()
    return { source: broker, address: `${m.tls === null ? 'mqtt' : 'mqtts'}://${a.host}:${a.port}` }
  } catch (err) {
    const inUse = (err as { cause?: { code?: string } }).cause?.code === 'EADDRINUSE'
    await broker.stop().catch(() => {})
    if (!inUse || m.portGiven) throw err
    log.warn({ host: m.host, port: m.port }, `MQTT port ${m.port} is in use: the built-in MQTT broker is off (give --mqtt-port, or --mqtt-url to use the broker there).`)
    return null
  }
}

interface MaintenanceDeps {
  config: Config
  db: Db | null
  availability: DbAvailability | null
  worker: Worker | null
  log: Logger
  wallClock: () => number
  metrics: PipelineMetrics
  lag: () => number | null
  latency: LatencyTracker
  instance: string
  /** PGlite: no autovacuum, so the rewritten tables are vacuumed here. */
  embeddedDb: boolean
  /** An api without a worker: reads the stored watermark and the workers' reports. */
  readStatus: (() => Promise<void>) | null
  /** Devices heard by this process's ingest, written every few seconds. */
  lastSeen: LastSeenRecorder | null
}

/**
 * The timers beside the stream: the consumer lag metric, the worker's report of its lag and latency
 * (for api processes of their own), the stored watermark and the workers' reports (an api without a
 * worker), BRIN summaries, retention, and the embedded database's vacuum.
 */
function startMaintenance (d: MaintenanceDeps): NodeJS.Timeout[] {
  const { config, db, worker, log } = d
  const timers: NodeJS.Timeout[] = []
  // While the database is away, the tasks that need it wait (the outage is logged once, not by each task).
  const every = (ms: number, what: string, fn: () => Promise<void>, level: 'warn' | 'error' = 'warn'): void => {
    timers.push(setInterval(() => {
      if (d.availability?.reachable === false) return
      fn().catch((err: unknown) => { if (!isUnavailable(err)) log[level]({ err }, `${what} failed.`) })
    }, ms))
  }
  if (worker !== null) {
    timers.push(setInterval(() => {
      const l = d.lag()
      if (l !== null) d.metrics.lag.set(l)
    }, 1000))
  }
  if (db !== null && worker !== null) {
    every(WORKER_REPORT_MS, 'Reporting the worker status', async () => {
      await reportWorkerStatus(db, config.group, config.topic, { instance: d.instance, partitions: worker.partitions, lag: d.lag(), latency: d.latency.latency() })
    })
    every(30_000, 'BRIN summarization', async () => { await summarizeTimeIndex(db) })
    const { retentionMs } = config
    if (retentionMs !== null) {
      every(60_000, 'Retention', async () => {
        if (!Number.isFinite(worker.watermark)) return
        const r = await applyRetention(db, worker.watermark - retentionMs, d.wallClock() - retentionMs)
        if (r.partitions.length + r.lateReadings + r.deadLetters + r.deviceScores + r.detectorStates > 0) log.info(r, 'Retention: dropped raw data older than the retention.')
      }, 'error')
    }
    if (d.embeddedDb) every(60_000, 'Vacuum', async () => { await vacuumRewrittenTables(db) })
  }
  if (d.readStatus !== null) every(2000, 'Reading the pipeline status', d.readStatus)
  const { lastSeen } = d
  if (lastSeen !== null) every(5000, 'Recording the devices last seen', async () => { await lastSeen.flush() })
  for (const t of timers) t.unref()
  return timers
}
