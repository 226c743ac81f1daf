import { EventEmitter } from 'node:events'
import { type Logger } from 'pino'
import { type AssignmentHandler, type BusConsumer, type BusRecord, type StartOffsets } from '../bus/index.ts'
import {
  type DeadLetter, type Reading, type ScoredReading, type ValidationOptions, type Verdict, type WindowAggregate,
  defaultValidationOptions, validateMessage
} from '../domain/index.ts'
import {
  type Db, type LateReading, type PartitionProgress, ensureDayPartitions, finalizeWindows, findStoredKeys,
  insertDeadLetters, insertLateReadings, insertReadings, loadProgress, loadReadingKeysSince, mergeWindowDeltas, saveProgress
} from '../storage/index.ts'
import { ON_TIME, WindowDeltas, WindowOperator, type WindowingOptions, defaultWindowingOptions } from '../windowing/index.ts'
import { type PipelineMetrics } from './metrics.ts'
import { RecentKeys } from './recent-keys.ts'

/** The detection seam: one verdict per reading, in arrival order, per sensor state inside. */
export interface ReadingDetector {
  detect(reading: Reading): Verdict
  /** Forget all state (after a failed batch or a rebalance); rebuilt from the next readings. */
  clear?(): void
}

/** What one stored batch changed; emitted as the worker's `batch` event after commit. */
export interface BatchOutcome {
  stored: ScoredReading[]
  revised: WindowAggregate[]
  finalized: WindowAggregate[]
  late: LateReading[]
  deadLetters: DeadLetter[]
  duplicates: number
  watermark: number
}

/** A batch prepared in memory, waiting for its transaction. */
interface PreparedBatch {
  received: number
  scored: ScoredReading[]
  late: LateReading[]
  deadLetters: DeadLetter[]
  deltas: WindowDeltas
  next: Map<number, number>
  progress: PartitionProgress[]
  duplicates: number
  watermark: number
  finalBoundary: number
  started: number
}

export interface WorkerOptions {
  group: string
  topic: string
  windowing: WindowingOptions
  validation: ValidationOptions
  maxBatch: number
  pollWaitMs: number
}

export const defaultWorkerOptions: WorkerOptions = {
  group: 'iot-monitor',
  topic: 'iot_sensors',
  windowing: defaultWindowingOptions,
  validation: defaultValidationOptions,
  maxBatch: 10_000,
  pollWaitMs: 50
}

export interface WorkerDeps {
  db: Db
  consumer: BusConsumer
  detector: ReadingDetector
  /** Ingest clock for the far-off timestamp check: wall time live, the virtual clock when simulated. */
  ingestClock: () => number
  /** Wall clock, only for idle timeouts. */
  wallClock: () => number
  log: Logger
  metrics: PipelineMetrics
  /** The partition of a sensor id, to rebuild state only for assigned partitions (all when absent). */
  partitionOf?: (sensorId: string) => number
}

/**
 * The stream worker: batch → validate → watermark and lateness (event time) → de-duplicate →
 * detect → window deltas → one transaction holding readings, verdicts, late readings, dead
 * letters, window deltas and the consumed offsets. It resumes from the offsets stored with the data, so a crash at any moment
 * neither loses nor double-counts a reading.
 */
export class Worker extends EventEmitter<{ batch: [BatchOutcome] }> {
  readonly options: WorkerOptions
  readonly #deps: WorkerDeps
  #op: WindowOperator
  /** Event times stored per sensor in open windows: tells duplicates from out-of-order readings. */
  readonly #recent = new RecentKeys()
  #assigned: number[] = []
  #running: Promise<void> | null = null
  #stopping: 'no' | 'drain' | 'now' = 'no'
  #failures = 0

  constructor (deps: WorkerDeps, options: Partial<WorkerOptions> = {}) {
    super()
    this.#deps = deps
    this.options = { ...defaultWorkerOptions, ...options }
    this.#op = new WindowOperator(this.options.windowing)
  }

  get watermark (): number {
    return this.#op.watermark
  }

  /** Joins the group and starts consuming in the background. */
  async start (): Promise<void> {
    const handler: AssignmentHandler = {
      onAssigned: async (partitions) => await this.#assign(partitions),
      onRevoked: async (partitions) => { this.#revoke(partitions) }
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
    if (opts.endOfInput === true) await this.#finalizeAll()
  }

  /**
   * Poll, prepare, write. Preparing a batch (validation, windows, detection) needs only memory, so
   * it runs while the previous batch's transaction is in flight; transactions stay in order.
   */
  async #loop (): Promise<void> {
    let inFlight: Promise<boolean> | null = null
    while (this.#stopping !== 'now') {
      const records = await this.#deps.consumer.poll(this.options.maxBatch, this.options.pollWaitMs)
      if (records.length > 0) {
        const prepared = this.#tryPrepare(records)
        const previousOk = inFlight === null || await inFlight
        inFlight = null
        if (!previousOk || prepared === null) {
          // Rebuild state from the database and rewind the bus: this batch (and any failed one) comes again.
          await this.#recoverAfterFailure()
          continue
        }
        inFlight = this.#tryWrite(prepared)
        continue
      }
      if (inFlight !== null) {
        if (!await inFlight) await this.#recoverAfterFailure()
        inFlight = null
      } else if (this.#stopping === 'drain') {
        break
      } else {
        await this.#idle().catch((err: unknown) => { this.#deps.log.error({ err }, 'Idle finalization failed.') })
      }
    }
    if (inFlight !== null && !await inFlight) await this.#recoverAfterFailure()
  }

  #tryPrepare (records: readonly BusRecord[]): PreparedBatch | null {
    try {
      return this.#prepare(records)
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
      this.#deps.log.error({ err, failures: this.#failures + 1 }, 'Batch failed; going back to the stored offsets.')
      return false
    }
  }

  async #recoverAfterFailure (): Promise<void> {
    this.#failures++
    this.#deps.metrics.batchFailures.inc()
    for (;;) {
      try {
        await this.#recover()
        break
      } catch (err) {
        if (this.#stopping === 'now') return
        this.#deps.log.error({ err }, 'Recovery failed; retrying.')
        await new Promise(resolve => setTimeout(resolve, 1000))
      }
    }
    await new Promise(resolve => setTimeout(resolve, Math.min(5000, 100 * 2 ** this.#failures)))
  }

  /** Rebuilds state as after a restart and rewinds the consumer to the stored offsets. */
  async #recover (): Promise<void> {
    const partitions = this.#assigned
    this.#revoke(partitions)
    const offsets = await this.#assign(partitions)
    this.#deps.consumer.seek(offsets)
  }

  async #assign (partitions: number[]): Promise<StartOffsets> {
    const { options: o } = this
    const progress = await loadProgress(this.#deps.db, o.group, o.topic)
    const now = this.#deps.wallClock()
    const offsets: StartOffsets = new Map()
    for (const p of partitions) {
      const stored = progress.partitions.get(p)
      this.#op.watermarks.addChannel(p, now, stored?.maxEventMs ?? -Infinity)
      offsets.set(p, stored?.nextOffset ?? 0)
    }
    this.#op.watermarks.restoreFloor(progress.watermark)
    // Readings stored in windows that are still open: a repeat of one of them is a duplicate.
    const since = this.#op.finalEndBoundary - this.#op.options.sizeMs
    this.#recent.clear()
    for (const k of await loadReadingKeysSince(this.#deps.db, since)) {
      if (this.#deps.partitionOf === undefined || partitions.includes(this.#deps.partitionOf(k.sensorId))) this.#recent.add(k.sensorId, k.ts)
    }
    this.#assigned = [...new Set([...this.#assigned, ...partitions])]
    this.#deps.log.info({ partitions, watermark: progress.watermark }, 'Partitions assigned.')
    return offsets
  }

  #revoke (partitions: number[]): void {
    for (const p of partitions) this.#op.watermarks.removeChannel(p)
    this.#assigned = this.#assigned.filter(p => !partitions.includes(p))
    this.#recent.clear()
    this.#deps.detector.clear?.()
    if (this.#assigned.length === 0) this.#op = new WindowOperator(this.options.windowing)
  }

  /** No records: let idle partitions stop holding the watermark back, and close what that finalizes. */
  async #idle (): Promise<void> {
    const before = this.#op.watermark
    const after = this.#op.watermarks.tick(this.#deps.wallClock())
    if (after > before) await this.#closeWindows(this.#op.finalEndBoundary, after)
  }

  /** Marks windows ending at or before `endBoundary` final and stores `watermark`, in one transaction. */
  async #closeWindows (endBoundary: number, watermark: number): Promise<void> {
    const finalized = await this.#deps.db.transaction(async tx => {
      const f = await finalizeWindows(tx, endBoundary)
      await saveProgress(tx, this.options.group, this.options.topic, [], watermark)
      return f
    })
    this.#recent.pruneBefore(this.#op.finalEndBoundary - this.#op.options.sizeMs)
    this.#deps.metrics.windowsFinalized.inc(finalized.length)
    this.#deps.metrics.watermark.set(watermark)
    this.emit('batch', { stored: [], revised: [], finalized, late: [], deadLetters: [], duplicates: 0, watermark })
  }

  /** Processes and stores one batch in one transaction. Exposed for tests and benchmarks. */
  async processBatch (records: readonly BusRecord[]): Promise<BatchOutcome> {
    return await this.#write(this.#prepare(records))
  }

  /** Everything a batch needs that is not I/O: validate, watermark, de-duplicate, detect, window. */
  #prepare (records: readonly BusRecord[]): PreparedBatch {
    const { detector } = this.#deps
    const started = performance.now()
    const wall = this.#deps.wallClock()
    const op = this.#op
    op.watermarks.tick(wall)
    const ingestNow = this.#deps.ingestClock()
    const scored: ScoredReading[] = []
    const late: LateReading[] = []
    const deadLetters: DeadLetter[] = []
    const deltas = new WindowDeltas(op.options.sizeMs)
    const next = new Map<number, number>()
    let duplicates = 0
    // In arrival order: validate raw text (in-process readings are trusted), then watermark and
    // lateness, de-duplication, detection and the window delta.
    for (const rec of records) {
      next.set(rec.partition, rec.offset + 1)
      let r: Reading
      if (typeof rec.value === 'string') {
        const v = validateMessage(rec.value, ingestNow, this.options.validation)
        if (!v.ok) {
          deadLetters.push({ raw: rec.value, reason: v.reason, detail: v.detail, source: `${this.options.topic}/${rec.partition}@${rec.offset}`, receivedAt: wall })
          continue
        }
        r = v.reading
      } else {
        r = rec.value
      }
      const lateness = op.assign(rec.partition, r.ts)
      if (lateness !== ON_TIME) {
        // A late repeat of a reading stored while its window was open (still remembered) is a duplicate.
        if (this.#recent.has(r.sensorId, r.ts)) duplicates++
        else late.push({ reading: r, windowStart: op.windows.startOf(r.ts), watermark: op.watermark, latenessMs: lateness })
        continue
      }
      if (!this.#recent.add(r.sensorId, r.ts)) {
        duplicates++
        continue
      }
      const verdict = detector.detect(r)
      scored.push({ reading: r, verdict })
      deltas.add(r.location, r.sensorType, op.windows.startOf(r.ts), {
        value: r.value,
        ruleAnomaly: verdict.ruleAnomaly,
        labelAnomaly: r.anomaly === true,
        zAnomaly: verdict.zAnomaly,
        mlAnomaly: verdict.mlAnomaly === true
      })
    }
    const progress: PartitionProgress[] = [...next].map(([partition, nextOffset]) => {
      const max = op.watermarks.channelMaxTs(partition)
      return { partition, nextOffset, maxEventMs: Number.isFinite(max) ? max : null }
    })
    const finalBoundary = op.finalEndBoundary
    this.#recent.pruneBefore(finalBoundary - op.options.sizeMs)
    return { received: records.length, scored, late, deadLetters, deltas, next, progress, duplicates, watermark: op.watermark, finalBoundary, started }
  }

  /** One transaction: everything the batch changed, and the offsets it consumed. */
  async #write (b: PreparedBatch): Promise<BatchOutcome> {
    const { db, metrics } = this.#deps
    await ensureDayPartitions(db, b.scored.map(s => s.reading.ts))
    const outcome = await db.transaction(async tx => {
      // A late reading may repeat one stored earlier, in a window final by now: look those up.
      const stored = await findStoredKeys(tx, b.late.map(l => l.reading))
      const late = stored.size === 0 ? b.late : b.late.filter(l => !stored.has(`${l.reading.sensorId}|${l.reading.ts}`))
      await insertReadings(tx, b.scored)
      const lateKept = await insertLateReadings(tx, late)
      await insertDeadLetters(tx, b.deadLetters)
      const revised = await mergeWindowDeltas(tx, b.deltas.drain())
      const finalized = await finalizeWindows(tx, b.finalBoundary)
      await saveProgress(tx, this.options.group, this.options.topic, b.progress, b.watermark)
      return {
        stored: b.scored,
        revised,
        finalized,
        late,
        deadLetters: b.deadLetters,
        duplicates: b.duplicates + b.late.length - lateKept,
        watermark: b.watermark
      }
    })
    await this.#deps.consumer.commit(b.next)

    metrics.received.inc(b.received)
    metrics.stored.inc(outcome.stored.length)
    metrics.duplicates.inc(outcome.duplicates)
    metrics.late.inc(outcome.late.length)
    for (const d of outcome.deadLetters) metrics.deadLetters.inc({ reason: d.reason })
    let rule = 0; let z = 0; let ml = 0
    for (const { verdict } of outcome.stored) {
      if (verdict.ruleAnomaly) rule++
      if (verdict.zAnomaly) z++
      if (verdict.mlAnomaly === true) ml++
    }
    metrics.anomalies.inc({ detector: 'rule' }, rule)
    metrics.anomalies.inc({ detector: 'zscore' }, z)
    metrics.anomalies.inc({ detector: 'ml' }, ml)
    metrics.windowsUpdated.inc(outcome.revised.length)
    metrics.windowsFinalized.inc(outcome.finalized.length)
    if (Number.isFinite(outcome.watermark)) metrics.watermark.set(outcome.watermark)
    metrics.batchSeconds.observe((performance.now() - b.started) / 1000)
    this.emit('batch', outcome)
    return outcome
  }

  /** End of a bounded input: every window becomes final (Flink's final watermark). */
  async #finalizeAll (): Promise<void> {
    const { sizeMs, allowedLatenessMs } = this.#op.options
    let maxTs = -Infinity
    for (const p of this.#assigned) maxTs = Math.max(maxTs, this.#op.watermarks.channelMaxTs(p))
    // What a later run must treat as final: every window up to the last one seen.
    const floor = Number.isFinite(maxTs) ? this.#op.windows.startOf(maxTs) + sizeMs + allowedLatenessMs : this.#op.watermark
    this.#op.watermarks.restoreFloor(floor)
    await this.#closeWindows(Infinity, floor)
  }
}
