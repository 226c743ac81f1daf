// Window finality: windows become final when the watermark combined over every stored partition
// of the group (not only this worker's) passes their end plus the allowed lateness.
import { type Db, advanceWatermark, finalizeWindows, loadPartitions, lockFinality, markIdle, type PartitionState } from '../storage/index.ts'
import { combinedWatermark } from '../windowing/index.ts'
import { type PartitionClaims } from './claims.ts'
import { type PipelineMetrics } from './metrics.ts'
import { type BatchOutcome, type OutcomeSink } from './outcome.ts'

export interface FinalizerDeps {
  db: Db
  claims: PartitionClaims
  metrics: PipelineMetrics
  wallClock: () => number
  hasBacklog: ((partition: number) => boolean) | undefined
  sink?: OutcomeSink | undefined
  /** Hears each finalization that changed windows, after its commit. */
  emit: (outcome: BatchOutcome) => void
}

export interface FinalizerOptions {
  group: string
  topic: string
  /** Wall time between reads of the other workers' progress while idle. */
  idleRefreshMs: number
}

export class Finalizer {
  readonly #deps: FinalizerDeps
  readonly #options: FinalizerOptions

  constructor (deps: FinalizerDeps, options: FinalizerOptions) {
    this.#deps = deps
    this.#options = options
  }

  /**
   * No records: mark partitions that went quiet idle, read the other workers' progress now and
   * then, and finalize what the combined watermark allows.
   */
  async idle (): Promise<void> {
    const { claims, db } = this.#deps
    const w = claims.op.watermarks
    const wasIdle = new Set(claims.assigned.filter(p => w.isIdle(p)))
    w.tick(this.#deps.wallClock(), this.#deps.hasBacklog)
    const changed = claims.assigned.filter(p => w.isIdle(p) && !wasIdle.has(p))
    const { group, topic } = this.#options
    if (changed.length > 0) {
      await markIdle(db, group, topic, changed.map(p => ({ partition: p, expectedOffset: claims.expected.get(p) ?? 0, idle: true })))
    }
    if (changed.length === 0 && this.#deps.wallClock() - claims.lastRefresh < this.#options.idleRefreshMs) return
    const all = await loadPartitions(db, group, topic)
    claims.applyStored(all, claims.storedWatermark)
    await this.maybeFinalize(all)
  }

  /** Finalizes when the watermark combined over every stored partition makes another window final. */
  async maybeFinalize (all: readonly PartitionState[]): Promise<void> {
    const { claims } = this.#deps
    const stored = claims.storedWatermark
    const combined = combinedWatermark(all, claims.op.options.maxOutOfOrdernessMs, stored)
    if (!Number.isFinite(combined) || combined <= stored) return
    const { windows } = claims.op
    const before = claims.finalEnd(stored)
    // Each window end is a window start: the last final end moves when the start containing the boundary does.
    if (!Number.isFinite(before) || windows.startOf(claims.finalEnd(combined)) > windows.startOf(before)) await this.#closeWindows(null)
  }

  /** End of a bounded input: every window becomes final (Flink's final watermark). */
  async finalizeAll (): Promise<void> {
    const { claims } = this.#deps
    const { op } = claims
    const { sizeMs, allowedLatenessMs } = op.options
    let maxTs = -Infinity
    for (const p of claims.assigned) maxTs = Math.max(maxTs, op.watermarks.channelMaxTs(p))
    // What a later run must treat as final: every window up to the last one seen.
    const floor = Number.isFinite(maxTs) ? op.windows.startOf(maxTs) + sizeMs + allowedLatenessMs : op.watermark
    op.watermarks.restoreFloor(floor)
    await this.#closeWindows(floor)
  }

  /**
   * Under the exclusive finality lock, in one transaction: computes the watermark over every
   * stored partition (or takes the end of input's), marks the windows it makes final, stores it.
   */
  async #closeWindows (endOfInput: number | null): Promise<void> {
    const { claims, db } = this.#deps
    const { group, topic } = this.#options
    const ooo = claims.op.options.maxOutOfOrdernessMs
    const result = await db.transaction(async tx => {
      const stored = await lockFinality(tx, group, topic, 'exclusive')
      const all = await loadPartitions(tx, group, topic)
      const watermark = endOfInput ?? combinedWatermark(all, ooo, stored)
      if (endOfInput === null && watermark <= stored) return { all, watermark: stored, outcome: null }
      // Windows that start before the last final boundary minus a window were final already.
      const openFrom = claims.finalEnd(stored) - claims.op.options.sizeMs
      const finalized = await finalizeWindows(tx, endOfInput === null ? claims.finalEnd(watermark) : Infinity, openFrom)
      await advanceWatermark(tx, group, topic, watermark)
      const outcome: BatchOutcome = { stored: [], revised: [], finalized, late: [], deadLetters: [], duplicates: 0, watermark, oldestProducedAt: null }
      if (finalized.length > 0) await this.#deps.sink?.publish(outcome)
      return { all, watermark: Math.max(stored, watermark), outcome }
    })
    claims.applyStored(result.all, result.watermark)
    const { outcome } = result
    if (outcome === null) return
    claims.recent.pruneBefore(claims.op.finalEndBoundary - claims.op.options.sizeMs)
    const { metrics } = this.#deps
    metrics.windowsFinalized.inc(outcome.finalized.length)
    if (Number.isFinite(outcome.watermark)) metrics.watermark.set(outcome.watermark)
    this.#deps.emit(outcome)
  }
}
