import { EventEmitter } from 'node:events'
import { type Logger } from 'pino'
import { type AssignmentHandler, type BusConsumer, type BusRecord, type StartOffsets } from '../bus/index.ts'
import {
  type DeadLetter, type Reading, type ScoredReading, type ValidationOptions, type Verdict, type WindowAggregate,
  defaultValidationOptions, validateMessage
} from '../domain/index.ts'
import {
  type Db, type LateReading, type PartitionProgress, type PartitionState, type StoredModel, advanceWatermark, claimPartitions, countDetections,
  ensureDayPartitions, fencePartitions, finalizeWindows, findStoredKeys, insertDeadLetters, insertLateReadings, insertReadings, loadLatestModels,
  loadPartitions, loadReadingKeysSince, loadRecentReadings, loadWatermark, lockFinality, markIdle, mergeDetectionCounts, mergeHourlyRollups,
  mergeWindowDeltas, saveModels, saveProgress, upsertSensors
} from '../storage/index.ts'
import {
  ON_TIME, WindowDeltas, WindowOperator, type WindowingOptions, combinedWatermark, defaultWindowingOptions
} from '../windowing/index.ts'
import { type ReadingDetector } from './detection.ts'
import { type PipelineMetrics } from './metrics.ts'
import { RecentKeys } from './recent-keys.ts'

/** What one stored batch (or one finalization) changed; emitted as the worker's `batch` event after commit. */
export interface BatchOutcome {
  stored: ScoredReading[]
  revised: WindowAggregate[]
  finalized: WindowAggregate[]
  late: LateReading[]
  deadLetters: DeadLetter[]
  duplicates: number
  watermark: number
  /** Wall time the oldest record of the batch was produced, when the bus knows it (end-to-end latency). */
  oldestProducedAt: number | null
}

/**
 * Receives each outcome inside its transaction, before the commit (events for other systems): a
 * failure rolls the batch back, so every stored change is published at least once. Consumers
 * de-duplicate by key and `revision`.
 */
export interface OutcomeSink {
  publish(outcome: BatchOutcome): Promise<void>
}

/** A batch prepared in memory, waiting for its transaction. */
interface PreparedBatch {
  received: number
  scored: ScoredReading[]
  late: LateReading[]
  deadLetters: DeadLetter[]
  deltas: WindowDeltas
  /** Models the detectors trained while preparing the batch. */
  models: StoredModel[]
  next: Map<number, number>
  progress: PartitionProgress[]
  duplicates: number
  watermark: number
  finalBoundary: number
  started: number
  oldestProducedAt: number | null
}

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
  idleRefreshMs: 1000
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
 */
export class Worker extends EventEmitter<{ batch: [BatchOutcome] }> {
  readonly options: WorkerOptions
  readonly #deps: WorkerDeps
  #op: WindowOperator
  /** Event times stored per sensor in open windows: tells duplicates from out-of-order readings. */
  readonly #recent = new RecentKeys()
  #assigned: number[] = []
  /** Per owned partition, the next offset once every prepared batch is stored (the fence for the next one). */
  readonly #expected = new Map<number, number>()
  /** The stored watermark as last read: windows ending at or before its final boundary are final. */
  #storedWatermark = -Infinity
  #running: Promise<void> | null = null
  /** The batch whose transaction is running (false once it failed). */
  #inFlight: Promise<boolean> | null = null
  #stopping: 'no' | 'drain' | 'now' = 'no'
  #failures = 0
  #lastRefresh = -Infinity
  readonly #hasBacklog: ((partition: number) => boolean) | undefined

  constructor (deps: WorkerDeps, options: Partial<WorkerOptions> = {}) {
    super()
    this.#deps = deps
    this.options = { ...defaultWorkerOptions, ...options }
    this.#op = new WindowOperator(this.options.windowing)
    const c = deps.consumer
    this.#hasBacklog = c.hasBacklog === undefined ? undefined : (p) => c.hasBacklog?.(p) ?? false
  }

  get watermark (): number {
    return this.#op.watermark
  }

  /** Joins the group and starts consuming in the background. */
  async start (): Promise<void> {
    const handler: AssignmentHandler = {
      // A rebalance arrives between polls; the batch still being written finishes first.
      onAssigned: async (partitions) => {
        await this.#settleInFlight()
        return await this.#assign(partitions)
      },
      onRevoked: async (partitions) => {
        await this.#settleInFlight()
        this.#revoke(partitions)
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
    if (opts.endOfInput === true) await this.#finalizeAll()
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
        await this.#idle().catch((err: unknown) => { this.#deps.log.error({ err }, 'Idle finalization failed.') })
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

  /**
   * Takes partitions: claims them in the database, restores their event-time progress, the
   * de-duplication keys of open windows and the detectors' baselines, and returns the stored
   * offsets to resume from.
   */
  async #assign (partitions: number[]): Promise<StartOffsets> {
    const { options: o } = this
    const { db, partitionOf } = this.#deps
    const all = await claimPartitions(db, o.group, o.topic, partitions)
    const storedWatermark = await loadWatermark(db, o.group, o.topic)
    const now = this.#deps.wallClock()
    const offsets: StartOffsets = new Map()
    const mine = new Set([...this.#assigned, ...partitions])
    this.#assigned = [...mine].sort((a, b) => a - b)
    // Own channels and the other workers' partitions in one step: the minimum is taken over all of them.
    this.#op.watermarks.batch(() => {
      for (const s of all) {
        if (!partitions.includes(s.partition)) continue
        this.#op.watermarks.addChannel(s.partition, now, s.maxEventMs ?? -Infinity)
        offsets.set(s.partition, s.nextOffset)
        this.#expected.set(s.partition, s.nextOffset)
      }
      this.#applyStored(all, storedWatermark)
    })
    const owns = (sensorId: string): boolean => partitionOf === undefined || mine.has(partitionOf(sensorId))
    // Readings stored in windows that are still open: a repeat of one of them is a duplicate.
    const since = this.#op.finalEndBoundary - this.#op.options.sizeMs
    for (const k of await loadReadingKeysSince(db, since)) {
      if (owns(k.sensorId)) this.#recent.add(k.sensorId, k.ts)
    }
    // The detectors' models and baselines: the stored models, then the newest stored readings of each sensor, replayed in order.
    const unreadable = this.#deps.detector.restoreModels?.(await loadLatestModels(db)) ?? []
    if (unreadable.length > 0) this.#deps.log.warn({ versions: unreadable }, 'Stored models could not be read; their keys train new ones.')
    const newest = all.reduce((m, s) => Math.max(m, s.maxEventMs ?? -Infinity), -Infinity)
    let warmed = 0
    if (Number.isFinite(newest) && this.#deps.detector.clear !== undefined) {
      const replay = (await loadRecentReadings(db, newest - o.warmupSpanMs, o.warmupReadings)).filter(r => owns(r.sensorId))
      this.#deps.detector.detectMany(replay)
      warmed = replay.length
    }
    this.#deps.log.info({ partitions, watermark: this.#op.watermark, warmed }, 'Partitions assigned.')
    return offsets
  }

  #revoke (partitions: number[]): void {
    for (const p of partitions) {
      this.#op.watermarks.removeChannel(p)
      this.#expected.delete(p)
    }
    this.#assigned = this.#assigned.filter(p => !partitions.includes(p))
    // Per-sensor state is rebuilt from the database for whatever stays assigned.
    this.#recent.clear()
    this.#deps.detector.clear?.()
    if (this.#assigned.length === 0) this.#op = new WindowOperator(this.options.windowing)
  }

  /**
   * Takes in the stored state of every partition: others' progress joins the watermark as
   * external channels, and the stored watermark is a floor (windows final there are final here).
   */
  #applyStored (all: readonly PartitionState[], storedWatermark: number): void {
    const w = this.#op.watermarks
    const ooo = this.#op.options.maxOutOfOrdernessMs
    w.batch(() => {
      for (const s of all) {
        if (this.#assigned.includes(s.partition)) continue
        w.setExternal(s.partition, s.idle ? null : s.maxEventMs === null ? -Infinity : s.maxEventMs - ooo)
      }
    })
    if (storedWatermark > this.#storedWatermark) this.#storedWatermark = storedWatermark
    w.restoreFloor(this.#storedWatermark)
    this.#lastRefresh = this.#deps.wallClock()
  }

  /**
   * No records: mark partitions that went quiet idle, read the other workers' progress now and
   * then, and finalize what the combined watermark allows.
   */
  async #idle (): Promise<void> {
    const w = this.#op.watermarks
    const wasIdle = new Set(this.#assigned.filter(p => w.isIdle(p)))
    w.tick(this.#deps.wallClock(), this.#hasBacklog)
    const changed = this.#assigned.filter(p => w.isIdle(p) && !wasIdle.has(p))
    const { group, topic } = this.options
    if (changed.length > 0) {
      await markIdle(this.#deps.db, group, topic, changed.map(p => ({ partition: p, expectedOffset: this.#expected.get(p) ?? 0, idle: true })))
    }
    if (changed.length === 0 && this.#deps.wallClock() - this.#lastRefresh < this.options.idleRefreshMs) return
    const all = await loadPartitions(this.#deps.db, group, topic)
    this.#applyStored(all, this.#storedWatermark)
    await this.#maybeFinalize(all)
  }

  /** Windows ending at or before this are final under `watermark`. */
  #finalEnd (watermark: number): number {
    return watermark - this.#op.options.allowedLatenessMs
  }

  /** Finalizes when the watermark combined over every stored partition makes another window final. */
  async #maybeFinalize (all: readonly PartitionState[]): Promise<void> {
    const combined = combinedWatermark(all, this.#op.options.maxOutOfOrdernessMs, this.#storedWatermark)
    if (!Number.isFinite(combined) || combined <= this.#storedWatermark) return
    const { windows } = this.#op
    const before = this.#finalEnd(this.#storedWatermark)
    // Each window end is a window start: the last final end moves when the start containing the boundary does.
    if (!Number.isFinite(before) || windows.startOf(this.#finalEnd(combined)) > windows.startOf(before)) await this.#closeWindows(null)
  }

  /**
   * Under the exclusive finality lock, in one transaction: computes the watermark over every
   * stored partition (or takes the end of input's), marks the windows it makes final, stores it.
   */
  async #closeWindows (endOfInput: number | null): Promise<void> {
    const { group, topic } = this.options
    const ooo = this.#op.options.maxOutOfOrdernessMs
    const result = await this.#deps.db.transaction(async tx => {
      const stored = await lockFinality(tx, group, topic, 'exclusive')
      const all = await loadPartitions(tx, group, topic)
      const watermark = endOfInput ?? combinedWatermark(all, ooo, stored)
      if (endOfInput === null && watermark <= stored) return { all, watermark: stored, outcome: null }
      const finalized = await finalizeWindows(tx, endOfInput === null ? this.#finalEnd(watermark) : Infinity)
      await advanceWatermark(tx, group, topic, watermark)
      const outcome: BatchOutcome = { stored: [], revised: [], finalized, late: [], deadLetters: [], duplicates: 0, watermark, oldestProducedAt: null }
      if (finalized.length > 0) await this.#deps.sink?.publish(outcome)
      return { all, watermark: Math.max(stored, watermark), outcome }
    })
    this.#applyStored(result.all, result.watermark)
    const { outcome } = result
    if (outcome === null) return
    this.#recent.pruneBefore(this.#op.finalEndBoundary - this.#op.options.sizeMs)
    this.#deps.metrics.windowsFinalized.inc(outcome.finalized.length)
    if (Number.isFinite(outcome.watermark)) this.#deps.metrics.watermark.set(outcome.watermark)
    this.emit('batch', outcome)
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
    op.watermarks.tick(wall, this.#hasBacklog)
    const fallbackIngest = this.#deps.ingestClock()
    const accepted: Reading[] = []
    const scored: ScoredReading[] = []
    const late: LateReading[] = []
    const deadLetters: DeadLetter[] = []
    const deltas = new WindowDeltas(op.options.sizeMs)
    const expected = this.#expected
    const first = new Map<number, number>()
    let received = 0
    let duplicates = 0
    let oldestProducedAt = Infinity
    // In arrival order: validate raw text (in-process readings are trusted), then watermark and
    // lateness, de-duplication, detection and the window delta.
    for (const rec of records) {
      const stored = expected.get(rec.partition)
      // Not ours (any more), or already stored (a fetch that started behind the stored offset).
      if (stored === undefined || rec.offset < stored) continue
      if (!first.has(rec.partition)) first.set(rec.partition, stored)
      expected.set(rec.partition, rec.offset + 1)
      received++
      if (rec.producedAt !== undefined && rec.producedAt < oldestProducedAt) oldestProducedAt = rec.producedAt
      let r: Reading
      if (typeof rec.value === 'string') {
        const v = validateMessage(rec.value, rec.timestamp ?? fallbackIngest, this.options.validation)
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
      accepted.push(r)
    }
    // Detection in one call (the Isolation Forest scores the batch's rows per model together).
    const verdicts = detector.detectMany(accepted)
    for (let i = 0; i < accepted.length; i++) {
      const r = accepted[i] as Reading
      const verdict = verdicts[i] as Verdict
      scored.push({ reading: r, verdict })
      addDelta(deltas, op.windows.startOf(r.ts), r, verdict)
    }
    const next = new Map<number, number>()
    const progress: PartitionProgress[] = []
    for (const [partition, expectedOffset] of first) {
      const nextOffset = expected.get(partition)!
      next.set(partition, nextOffset)
      const max = op.watermarks.channelMaxTs(partition)
      progress.push({ partition, expectedOffset, nextOffset, maxEventMs: Number.isFinite(max) ? max : null })
    }
    const finalBoundary = op.finalEndBoundary
    this.#recent.pruneBefore(finalBoundary - op.options.sizeMs)
    const models = detector.drainModels?.() ?? []
    const oldest = Number.isFinite(oldestProducedAt) ? oldestProducedAt : null
    return { received, scored, late, deadLetters, deltas, models, next, progress, duplicates, watermark: op.watermark, finalBoundary, started, oldestProducedAt: oldest }
  }

  /**
   * Another worker finalized windows after this batch was prepared (its view of their partitions
   * was older): readings for those windows are late now, as if they had arrived after the
   * finalization, and the deltas are rebuilt without them.
   */
  #reclassify (b: PreparedBatch, storedWatermark: number): void {
    const { windows } = this.#op
    const boundary = this.#finalEnd(storedWatermark)
    const keep: ScoredReading[] = []
    const deltas = new WindowDeltas(this.#op.options.sizeMs)
    for (const s of b.scored) {
      const start = windows.startOf(s.reading.ts)
      if (start + windows.sizeMs <= boundary) {
        b.late.push({ reading: s.reading, windowStart: start, watermark: storedWatermark, latenessMs: storedWatermark - s.reading.ts })
      } else {
        keep.push(s)
        addDelta(deltas, start, s.reading, s.verdict)
      }
    }
    b.scored = keep
    b.deltas = deltas
  }

  /** One transaction: everything the batch changed, and the offsets it consumed. */
  async #write (b: PreparedBatch): Promise<BatchOutcome> {
    const { db, metrics } = this.#deps
    const { group, topic } = this.options
    await ensureDayPartitions(db, b.scored.map(s => s.reading.ts))
    let all: PartitionState[] = []
    let storedWatermark = -Infinity
    const outcome = await db.transaction(async tx => {
      // No window becomes final while this transaction merges into it.
      storedWatermark = await lockFinality(tx, group, topic, 'shared')
      await fencePartitions(tx, group, topic, b.progress)
      if (this.#finalEnd(storedWatermark) > b.finalBoundary) this.#reclassify(b, storedWatermark)
      // A late reading may repeat one stored earlier, in a window final by now: look those up.
      const stored = await findStoredKeys(tx, b.late.map(l => l.reading))
      const late = stored.size === 0 ? b.late : b.late.filter(l => !stored.has(`${l.reading.sensorId}|${l.reading.ts}`))
      await insertReadings(tx, b.scored)
      const lateKept = await insertLateReadings(tx, late)
      await insertDeadLetters(tx, b.deadLetters)
      const deltas = b.deltas.drain()
      const revised = await mergeWindowDeltas(tx, deltas)
      await mergeHourlyRollups(tx, deltas, revised)
      await upsertSensors(tx, b.scored)
      await mergeDetectionCounts(tx, countDetections(b.scored))
      await saveModels(tx, b.models)
      all = await saveProgress(tx, group, topic, b.progress)
      const out: BatchOutcome = {
        stored: b.scored,
        revised,
        finalized: [],
        late,
        deadLetters: b.deadLetters,
        duplicates: b.duplicates + b.late.length - lateKept,
        watermark: Math.max(b.watermark, storedWatermark),
        oldestProducedAt: b.oldestProducedAt
      }
      await this.#deps.sink?.publish(out)
      return out
    })
    await this.#deps.consumer.commit(b.next)
    this.#applyStored(all, storedWatermark)

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
    metrics.batchSeconds.observe((performance.now() - b.started) / 1000)
    this.emit('batch', outcome)
    await this.#maybeFinalize(all)
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
    await this.#closeWindows(floor)
  }
}

function addDelta (deltas: WindowDeltas, start: number, r: Reading, verdict: Verdict): void {
  deltas.add(r.location, r.sensorType, start, {
    value: r.value,
    ruleAnomaly: verdict.ruleAnomaly,
    labelAnomaly: r.anomaly === true,
    zAnomaly: verdict.zAnomaly,
    mlAnomaly: verdict.mlAnomaly === true,
    combinedAnomaly: verdict.anomaly
  })
}
