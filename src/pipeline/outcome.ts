import { type DeadLetter, type ScoredReading, type WindowAggregate } from '../domain/index.ts'
import { type LateReading } from '../storage/index.ts'

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
