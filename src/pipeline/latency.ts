// Bus-to-stored latency of a worker's batches: wall time from the oldest record of a batch entering
// the bus (Kafka's record timestamp, the memory bus's produce time) to the batch being stored.
import { type Latency } from '../storage/index.ts'

/** Batches kept at most (the oldest half goes when full: memory stays bounded whatever the batch rate). */
const MAX_BATCHES = 10_000

function percentile (sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
}

export class LatencyTracker {
  readonly #now: () => number
  readonly #spanMs: number
  /** [wall time, latency ms] per batch, oldest first. */
  #latencies: [number, number][] = []

  /** `spanMs`: the wall time the percentiles cover. */
  constructor (now: () => number = Date.now, spanMs = 60_000) {
    this.#now = now
    this.#spanMs = spanMs
  }

  /** A stored batch (the worker's `batch` event). */
  add (batch: { stored: readonly unknown[], oldestProducedAt: number | null }): void {
    if (batch.oldestProducedAt === null || batch.stored.length === 0) return
    const now = this.#now()
    this.#latencies.push([now, Math.max(0, now - batch.oldestProducedAt)])
    if (this.#latencies.length > MAX_BATCHES) this.#latencies.splice(0, MAX_BATCHES / 2)
  }

  /** Median and 99th percentile over the batches stored within the span; null when none was. */
  latency (): Latency | null {
    const since = this.#now() - this.#spanMs
    const first = this.#latencies.findIndex(([t]) => t >= since)
    this.#latencies = first < 0 ? [] : this.#latencies.slice(first)
    if (this.#latencies.length === 0) return null
    const sorted = this.#latencies.map(([, ms]) => ms).sort((a, b) => a - b)
    return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) }
  }
}
