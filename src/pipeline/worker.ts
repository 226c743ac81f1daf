import { EventEmitter } from 'node:events'
import { type Logger } from 'pino'
import { type AlarmEvaluator } from '../alarms/index.ts'
import { type AssignmentHandler, type BusConsumer, type BusRecord } from '../bus/index.ts'
import { type ValidationOptions, defaultValidationOptions } from '../domain/index.ts'
import { type Db, commitAlarmCheck, commitBatch, isUnavailable, listDevices, loadOperatorState } from '../storage/index.ts'
import { type WindowingOptions, defaultWindowingOptions } from '../windowing/index.ts'
import { Backoff, type BackoffOptions, defaultBackoffOptions } from './backoff.ts'
import { PartitionClaims } from './claims.ts'
import { type ReadingDetector } from '../detection/index.ts'
import { Finalizer } from './finalizer.ts'
import { type PipelineMetrics } from './metrics.ts'
import { type BatchOutcome, type OutcomeSink } from './outcome.ts'
import { type PrepareContext, type PreparedBatch, prepareBatch, reclassify } from './prepare.ts'

export interface WorkerOptions {
  group: string
  topic: string
  windowing: WindowingOptions
  validation: ValidationOptions
  maxBatch: number
  pollWaitMs: number
  /** Readings per sensor replayed through the detectors when a worker takes over partitions (sensors without a stored snapshot). */
  warmupReadings: number
  /** At most this many readings per sensor replayed after its stored snapshot. */
  warmupAfterSnapshot: number
  /** Event time before the newest stored reading that the warm-up looks back over (sensors without a snapshot). */
  warmupSpanMs: number
  /** ... and for sensors with one (snapshots are at most an hour of event time apart: see SnapshotSchedule). */
  warmupSnapshotSpanMs: number
  /** Wall time between reads of the other workers' progress while idle. */
  idleRefreshMs: number
  /** A model's trees are stored at most this often per key, in event time (every version is listed). */
  modelTreesEveryMs: number
  /** Waits between attempts to recover after a failed batch (a database away: capped exponential, jittered). */
  retry: BackoffOptions
}

export const defaultWorkerOptions: WorkerOptions = {
  group: 'iot-monitor',
  topic: 'iot_sensors',
  windowing: defaultWindowingOptions,
  validation: defaultValidationOptions,
  maxBatch: 10_000,
  pollWaitMs: 50,
  warmupReadings: 100,
  warmupAfterSnapshot: 1000,
  warmupSpanMs: 3_600_000,
  warmupSnapshotSpanMs: 2 * 3_600_000,
  idleRefreshMs: 1000,
  modelTreesEveryMs: 3_600_000,
  retry: defaultBackoffOptions
}

export interface WorkerDeps {
  db: Db
  consumer: BusConsumer
  detector: ReadingDetector
  /** Ingest clock for the far-off timestamp check when a record carries no time of its own. */
  ingestClock: () => number
  /** Wall clock, only for idle timeouts. */
  wallClock: () => number
  log: Logger
  metrics: PipelineMetrics
  /**
   * The partition of a bus key (`streamKeyOf` of a sensor id, or a device id), to rebuild state only
   * for assigned partitions (all when absent).
   */
  partitionOf?: (key: string) => number
  /** Published inside each transaction (Kafka topics for other systems). */
  sink?: OutcomeSink
  /** Values in [0, 1) for the jitter of the retry waits (a seeded source in tests). */
  random?: () => number
  /**
   * The alarm core (absent or null: alarms off). It is evaluated on each batch's scored readings and
   * written in its transaction; every `rules.checkEveryMs` of wall time the worker also checks
   * for sensors and devices gone offline and takes in what operators did to active alarms.
   */
  alarms?: AlarmEvaluator | null
}

/** How the worker is doing, for readiness, the status line and /metrics. */
export interface WorkerHealth {
  /** Batches (or idle finalizations) failed in a row; 0 once one is stored. */
  consecutiveFailures: number
  /** Wall time of the next attempt while waiting to recover (null when not waiting). */
  retryAt: number | null
  /** Why the last attempt failed (null after a success). */
  lastError: string | null
  /** The last failure was the database being unreachable (not a fault in a batch). */
  databaseUnavailable: boolean
  /** Wall time of the last stored batch (null before the first). */
  lastStoredAt: number | null
}

/**
 * The stream worker: batch → validate → watermark and lateness (event time) → de-duplicate →
 * detect → window deltas → one transaction holding readings, verdicts, late readings, dead
 * letters, window deltas and the consumed offsets. It resumes from the offsets stored with the
 * data, so a crash at any moment neither loses nor double-counts a reading. Several workers may
 * share a topic (a Kafka consumer group): windows merge in the database, finality follows the
 * watermark combined over every worker's partitions, and stored offsets fence off a worker that
 * lost its partitions.
 *
 * This file is the batch loop; claims.ts restores partitions, prepare.ts prepares a batch in
 * memory, finalizer.ts closes windows, and storage's commitBatch stores a batch.
 */
export class Worker extends EventEmitter<{ batch: [BatchOutcome] }> {
  readonly options: WorkerOptions
  readonly #deps: WorkerDeps
  readonly #claims: PartitionClaims
  readonly #finalizer: Finalizer
  readonly #prepare: PrepareContext
  #running: Promise<void> | null = null
  /** The batch whose transaction is running (false once it failed). */
  #inFlight: Promise<boolean> | null = null
  #stopping: 'no' | 'drain' | 'now' = 'no'
  readonly #backoff: Backoff
  #health: WorkerHealth = { consecutiveFailures: 0, retryAt: null, lastError: null, databaseUnavailable: false, lastStoredAt: null }
  /** Ends the current wait between recovery attempts early (a stop). */
  #wake: (() => void) | null = null
  /** The highest watermark reported: rebuilding state after a failure never moves it back. */
  #reportedWatermark = -Infinity
  /**
   * A batch whose transaction failed without saying whether it committed (the connection dropped
   * during COMMIT): the offsets stored with the data tell, when the worker recovers.
   */
  #unsure: PreparedBatch | null = null
  /** Wall time of the last alarm check (offline, operators' actions). */
  #lastAlarmCheck = -Infinity
  /** Batches stored condition states in the log since it was last folded (see checkAlarms). */
  #conditionsLogged = false

  constructor (deps: WorkerDeps, options: Partial<WorkerOptions> = {}) {
    super()
    this.#deps = deps
    const o = this.options = { ...defaultWorkerOptions, ...options }
    this.#backoff = new Backoff(o.retry, deps.random)
    const c = deps.consumer
    const hasBacklog = c.hasBacklog === undefined ? undefined : (p: number) => c.hasBacklog?.(p) ?? false
    this.#claims = new PartitionClaims(
      { db: deps.db, detector: deps.detector, wallClock: deps.wallClock, log: deps.log, partitionOf: deps.partitionOf, alarms: deps.alarms ?? null }, o)
    this.#finalizer = new Finalizer({
      db: deps.db, claims: this.#claims, metrics: deps.metrics, wallClock: deps.wallClock, hasBacklog, sink: deps.sink, emit: (out) => this.emit('batch', out)
    }, o)
    this.#prepare = {
      claims: this.#claims, detector: deps.detector, topic: o.topic, validation: o.validation, ingestClock: deps.ingestClock, wallClock: deps.wallClock, hasBacklog, alarms: deps.alarms ?? null
    }
  }

  /** The event-time watermark; never lower than one reported before (state rebuilt after a failure starts from the stored one). */
  get watermark (): number {
    this.#reportedWatermark = Math.max(this.#reportedWatermark, this.#claims.op.watermark)
    return this.#reportedWatermark
  }

  get health (): Readonly<WorkerHealth> {
    return this.#health
  }

  /** The partitions this worker owns now. */
  get partitions (): readonly number[] {
    return this.#claims.assigned
  }

  /** Joins the group and starts consuming in the background. */
  async start (): Promise<void> {
    const handler: AssignmentHandler = {
      // A rebalance arrives between polls; the batch still being written finishes first.
      onAssigned: async (partitions) => {
        await this.#settleInFlight()
        return await this.#claims.assign(partitions)
      },
      onRevoked: async (partitions) => {
        await this.#settleInFlight()
        this.#claims.revoke(partitions)
      }
    }
    await this.#deps.consumer.subscribe(handler)
    this.#running = this.#loop()
  }

  /**
   * Stops consuming. With `drain`, first processes everything the bus still holds (stop the
   * sources before); with `endOfInput` (a bounded run ended) every window is final afterwards,
   * as Flink's final watermark makes it.
   */
  async stop (opts: { drain?: boolean, endOfInput?: boolean } = {}): Promise<void> {
    this.#stopping = opts.drain === true ? 'drain' : 'now'
    if (this.#stopping === 'now') this.#wake?.()
    await this.#running
    this.#running = null
    if (opts.endOfInput === true) await this.#finalizer.finalizeAll()
  }

  /** Processes and stores one batch in one transaction. Exposed for tests and benchmarks. */
  async processBatch (records: readonly BusRecord[]): Promise<BatchOutcome> {
    return await this.#write(prepareBatch(records, this.#prepare))
  }

  /**
   * Poll, prepare, write. Preparing a batch (validation, windows, detection) needs only memory, so
   * it runs while the previous batch's transaction is in flight; transactions stay in order.
   */
  async #loop (): Promise<void> {
    while (this.#stopping !== 'now') {
      if (this.#alarmCheckDue()) {
        // After the batch in flight: what the core holds in memory is then what is stored.
        if (!await this.#settleInFlight()) {
          await this.#recoverAfterFailure()
          continue
        }
        try {
          await this.checkAlarms()
        } catch (err) {
          this.#failed(err, 'The alarm check failed; rebuilding state from the database.')
          await this.#recoverAfterFailure()
          continue
        }
      }
      const records = await this.#deps.consumer.poll(this.options.maxBatch, this.options.pollWaitMs)
      if (records.length > 0) {
        const prepared = this.#tryPrepare(records)
        const previousOk = await this.#settleInFlight()
        if (!previousOk || prepared === null) {
          // Rebuild state from the database and rewind the bus: this batch (and any failed one) comes again.
          await this.#recoverAfterFailure()
          continue
        }
        if (prepared.received > 0) this.#inFlight = this.#tryWrite(prepared)
        continue
      }
      if (this.#inFlight !== null) {
        if (!await this.#settleInFlight()) await this.#recoverAfterFailure()
      } else if (this.#stopping === 'drain') {
        if (await (this.#deps.consumer.caughtUp?.() ?? Promise.resolve(true))) break
      } else {
        try {
          await this.#finalizer.idle()
        } catch (err) {
          // What it changed in memory (partitions marked idle) is rebuilt from the database with the rest.
          this.#failed(err, 'Idle finalization failed; rebuilding state from the database.')
          await this.#recoverAfterFailure()
        }
      }
    }
    if (!await this.#settleInFlight()) await this.#recoverAfterFailure()
  }

  #alarmCheckDue (): boolean {
    const alarms = this.#deps.alarms
    return alarms != null && this.#deps.wallClock() - this.#lastAlarmCheck >= alarms.rules.checkEveryMs
  }

  /**
   * The wall-clock side of alarms, in a transaction of its own (fenced like a batch): takes in what
   * operators did to the active alarms, raises offline alarms for sensors and devices (those whose
   * id hashes to an owned partition) past their deadline. Call it with no batch in flight. Exposed
   * for tests.
   */
  async checkAlarms (): Promise<void> {
    const alarms = this.#deps.alarms
    if (alarms == null) return
    const { db, wallClock, partitionOf, log } = this.#deps
    this.#lastAlarmCheck = wallClock()
    const claims = this.#claims
    if (claims.assigned.length === 0) return
    const ids = alarms.activeAlarmIds()
    if (ids.length > 0) alarms.applyOperatorState(await loadOperatorState(db, ids))
    let devices = null
    if (alarms.watchesOffline) {
      const mine = new Set(claims.assigned)
      devices = (await listDevices(db)).filter(d => d.revokedAt === null && (partitionOf === undefined || mine.has(partitionOf(d.id))))
    }
    const changes = alarms.checkOffline(wallClock(), devices)
    // The condition states the batches logged are folded into one row per state now and then.
    const fold = this.#conditionsLogged || (changes?.conditions.length ?? 0) > 0
    if (changes === null && !fold) return
    const owned = claims.assigned.map(partition => ({ partition, expectedOffset: claims.expected.get(partition) ?? 0 }))
    await commitAlarmCheck(db, this.options.group, this.options.topic, owned, changes, fold ? alarms.snapshotConditions() : null)
    this.#conditionsLogged = false
    if (changes === null) return
    const raised = changes.transitions.filter(t => t.status === 'firing').length
    if (raised > 0) log.info({ offline: raised }, 'Sensors or devices went offline.')
  }

  /** Waits for the batch in flight; false if it failed. */
  async #settleInFlight (): Promise<boolean> {
    const f = this.#inFlight
    if (f === null) return true
    const ok = await f
    if (this.#inFlight === f) this.#inFlight = null
    return ok
  }

  #tryPrepare (records: readonly BusRecord[]): PreparedBatch | null {
    try {
      return prepareBatch(records, this.#prepare)
    } catch (err) {
      this.#deps.log.error({ err }, 'Preparing a batch failed.')
      return null
    }
  }

  /** Writes a prepared batch; false when it failed (the loop then recovers, never concurrently with a prepare). */
  async #tryWrite (prepared: PreparedBatch): Promise<boolean> {
    try {
      await this.#write(prepared)
      return true
    } catch (err) {
      const fenced = (err as { code?: string }).code === 'IOT_ERR_FENCED'
      this.#failed(err, fenced ? 'Another worker stored these partitions (rebalance); going back to the stored offsets.' : 'Batch failed; going back to the stored offsets.')
      return false
    }
  }

  /**
   * Records a failure. A database out of reach is routine (the outage is logged once, where the
   * database is watched): it is logged here only at debug level; anything else is an error.
   */
  #failed (err: unknown, message: string): void {
    const unavailable = isUnavailable(err)
    const h = this.#health
    this.#health = { ...h, consecutiveFailures: h.consecutiveFailures + 1, lastError: (err as Error).message ?? String(err), databaseUnavailable: unavailable }
    this.#deps.metrics.batchFailures.inc()
    const fenced = (err as { code?: string }).code === 'IOT_ERR_FENCED'
    this.#deps.log[unavailable ? 'debug' : fenced ? 'warn' : 'error']({ err, failures: this.#health.consecutiveFailures }, message)
  }

  /**
   * Waits (capped exponential backoff, jittered), then rebuilds state as after a restart and
   * rewinds the consumer to the stored offsets; again and again until the database answers or
   * the worker is stopped at once. Nothing is lost meanwhile: the bus keeps what is not stored
   * (the embedded bus makes its producers wait when full).
   */
  async #recoverAfterFailure (): Promise<void> {
    for (;;) {
      const wait = this.#backoff.next()
      this.#health = { ...this.#health, retryAt: this.#deps.wallClock() + wait }
      await this.#sleep(wait)
      if (this.#stopping === 'now') break
      try {
        const offsets = await this.#claims.reclaim()
        this.#settleUnsure(offsets)
        // Everything before the stored offsets is stored (the embedded bus lets go of it).
        await this.#deps.consumer.commit(offsets)
        this.#deps.consumer.seek(offsets)
        break
      } catch (err) {
        this.#failed(err, 'Recovery failed; retrying.')
      }
    }
    this.#health = { ...this.#health, retryAt: null }
  }

  /**
   * The batch whose commit was in doubt committed when the stored offsets reach its end: it is
   * accounted for now (else the stream gives it again). Its late readings count as late (whether
   * one repeated a stored reading, which would make it a duplicate, is not known here).
   */
  #settleUnsure (stored: ReadonlyMap<number, number>): void {
    const b = this.#unsure
    this.#unsure = null
    if (b === null || b.next.size === 0) return
    for (const [p, next] of b.next) if ((stored.get(p) ?? -1) < next) return
    this.#account(b, {
      stored: b.scored, revised: [], finalized: [], late: b.late, deadLetters: b.deadLetters, duplicates: b.duplicates, watermark: b.watermark, oldestProducedAt: b.oldestProducedAt
    })
  }

  async #sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.#wake = null
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#wake = done
    })
  }

  /** One transaction: everything the batch changed, and the offsets it consumed. */
  async #write (b: PreparedBatch): Promise<BatchOutcome> {
    const { db, sink } = this.#deps
    const claims = this.#claims
    let outcome: BatchOutcome | null = null
    const toOutcome = (c: { storedWatermark: number, revised: BatchOutcome['revised'], late: BatchOutcome['late'], lateKept: number }): BatchOutcome => ({
      stored: b.scored,
      revised: c.revised,
      finalized: [],
      late: c.late,
      deadLetters: b.deadLetters,
      duplicates: b.duplicates + b.late.length - c.lateKept,
      watermark: Math.max(b.watermark, c.storedWatermark),
      oldestProducedAt: b.oldestProducedAt
    })
    const committed = await commitBatch(db, this.options, b, {
      settle: (storedWatermark) => {
        if (claims.finalEnd(storedWatermark) > b.finalBoundary) reclassify(b, storedWatermark, claims)
      },
      ...(sink === undefined ? {} : { publish: async (c) => { outcome = toOutcome(c); await sink.publish(outcome) } })
    }).catch((err: unknown) => {
      // The connection dropped: the transaction may have committed or not.
      if (isUnavailable(err)) this.#unsure = b
      throw err
    })
    const out = outcome ?? toOutcome(committed)
    if ((b.alarms?.conditions.length ?? 0) > 0) this.#conditionsLogged = true
    this.#account(b, out)
    await this.#deps.consumer.commit(b.next)
    claims.applyStored(committed.partitions, committed.storedWatermark)
    this.#backoff.reset()
    this.#health = { consecutiveFailures: 0, retryAt: null, lastError: null, databaseUnavailable: false, lastStoredAt: this.#deps.wallClock() }
    await this.#finalizer.maybeFinalize(committed.partitions)
    return out
  }

  /** Counts a stored batch in the metrics and tells the listeners (live dashboards, latency). */
  #account (b: PreparedBatch, out: BatchOutcome): void {
    const { metrics } = this.#deps
    metrics.received.inc(b.received)
    metrics.stored.inc(out.stored.length)
    metrics.duplicates.inc(out.duplicates)
    metrics.late.inc(out.late.length)
    for (const d of out.deadLetters) metrics.deadLetters.inc({ reason: d.reason })
    let rule = 0; let z = 0; let ml = 0; let combined = 0
    for (const { verdict } of out.stored) {
      if (verdict.ruleAnomaly) rule++
      if (verdict.zAnomaly) z++
      if (verdict.mlAnomaly === true) ml++
      if (verdict.anomaly) combined++
    }
    metrics.anomalies.inc({ detector: 'rule' }, rule)
    metrics.anomalies.inc({ detector: 'zscore' }, z)
    metrics.anomalies.inc({ detector: 'ml' }, ml)
    metrics.anomalies.inc({ detector: 'combined' }, combined)
    let deviceAnomalies = 0
    for (const d of b.deviceScores) if (d.anomaly) deviceAnomalies++
    metrics.deviceRows.inc(b.deviceScores.length)
    metrics.deviceAnomalies.inc(deviceAnomalies)
    metrics.snapshots.inc(b.snapshots.length)
    metrics.windowsUpdated.inc(out.revised.length)
    metrics.batchSeconds.observe((performance.now() - b.started) / 1000)
    this.emit('batch', out)
  }
}
