import { EventEmitter } from 'node:events'
import { type Logger } from 'pino'
import { type AssignmentHandler, type BusConsumer, type BusRecord } from '../bus/index.ts'
import { type ValidationOptions, defaultValidationOptions } from '../domain/index.ts'
import { type Db, commitBatch } from '../storage/index.ts'
import { type WindowingOptions, defaultWindowingOptions } from '../windowing/index.ts'
import { PartitionClaims } from './claims.ts'
import { type ReadingDetector } from './detection.ts'
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
  /** Readings per sensor replayed through the detectors when a worker takes over partitions. */
  warmupReadings: number
  /** Event time before the newest stored reading that the warm-up looks back over. */
  warmupSpanMs: number
  /** Wall time between reads of the other workers' progress while idle. */
  idleRefreshMs: number
  /** A model's trees are stored at most this often per key, in event time (every version is listed). */
  modelTreesEveryMs: number
}

export const defaultWorkerOptions: WorkerOptions = {
  group: 'iot-monitor',
  topic: 'iot_sensors',
  windowing: defaultWindowingOptions,
  validation: defaultValidationOptions,
  maxBatch: 10_000,
  pollWaitMs: 50,
  warmupReadings: 100,
  warmupSpanMs: 3_600_000,
  idleRefreshMs: 1000,
  modelTreesEveryMs: 3_600_000
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
  /** The partition of a sensor id, to rebuild state only for assigned partitions (all when absent). */
  partitionOf?: (sensorId: string) => number
  /** Published inside each transaction (Kafka topics for other systems). */
  sink?: OutcomeSink
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
  #failures = 0

  constructor (deps: WorkerDeps, options: Partial<WorkerOptions> = {}) {
    super()
    this.#deps = deps
    const o = this.options = { ...defaultWorkerOptions, ...options }
    const c = deps.consumer
    const hasBacklog = c.hasBacklog === undefined ? undefined : (p: number) => c.hasBacklog?.(p) ?? false
    this.#claims = new PartitionClaims(
      { db: deps.db, detector: deps.detector, wallClock: deps.wallClock, log: deps.log, partitionOf: deps.partitionOf }, o)
    this.#finalizer = new Finalizer({
      db: deps.db, claims: this.#claims, metrics: deps.metrics, wallClock: deps.wallClock, hasBacklog, sink: deps.sink, emit: (out) => this.emit('batch', out)
    }, o)
    this.#prepare = {
      claims: this.#claims, detector: deps.detector, topic: o.topic, validation: o.validation, ingestClock: deps.ingestClock, wallClock: deps.wallClock, hasBacklog
    }
  }

  get watermark (): number {
    return this.#claims.op.watermark
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
        await this.#finalizer.idle().catch((err: unknown) => { this.#deps.log.error({ err }, 'Idle finalization failed.') })
      }
    }
    if (!await this.#settleInFlight()) await this.#recoverAfterFailure()
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
      this.#failures = 0
      return true
    } catch (err) {
      const fenced = (err as { code?: string }).code === 'IOT_ERR_FENCED'
      this.#deps.log[fenced ? 'warn' : 'error']({ err, failures: this.#failures + 1 },
        fenced ? 'Another worker stored these partitions (rebalance); going back to the stored offsets.' : 'Batch failed; going back to the stored offsets.')
      return false
    }
  }

  async #recoverAfterFailure (): Promise<void> {
    this.#failures++
    this.#deps.metrics.batchFailures.inc()
    for (;;) {
      try {
        // Rebuilds state as after a restart and rewinds the consumer to the stored offsets.
        this.#deps.consumer.seek(await this.#claims.reclaim())
        break
      } catch (err) {
        if (this.#stopping === 'now') return
        this.#deps.log.error({ err }, 'Recovery failed; retrying.')
        await new Promise(resolve => setTimeout(resolve, 1000))
      }
    }
    await new Promise(resolve => setTimeout(resolve, Math.min(5000, 100 * 2 ** this.#failures)))
  }

  /** One transaction: everything the batch changed, and the offsets it consumed. */
  async #write (b: PreparedBatch): Promise<BatchOutcome> {
    const { db, metrics, sink } = this.#deps
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
    })
    const out = outcome ?? toOutcome(committed)
    await this.#deps.consumer.commit(b.next)
    claims.applyStored(committed.partitions, committed.storedWatermark)

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
    metrics.windowsUpdated.inc(out.revised.length)
    metrics.batchSeconds.observe((performance.now() - b.started) / 1000)
    this.emit('batch', out)
    await this.#finalizer.maybeFinalize(committed.partitions)
    return out
  }
}
