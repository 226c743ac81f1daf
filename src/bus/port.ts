import { type Reading } from '../domain/index.ts'

/**
 * What travels on the readings topic: raw wire text (from Kafka, MQTT, HTTP, files: validated by
 * the worker) or a Reading already built by an in-process source (the simulator), which the
 * embedded bus passes without serialising.
 */
export type BusValue = string | Reading

export interface BusRecord {
  partition: number
  offset: number
  key: string
  value: BusValue
  /** When the record entered the bus (Kafka's record timestamp): the ingest clock for validation. */
  timestamp?: number
  /** Wall time when the record was produced (end-to-end latency), if known. */
  producedAt?: number
  /** Set when the bus could not decode what the broker holds at these offsets (a corrupt or unreadable record batch): `value` is '' and `key` is ''; the worker stores a dead letter with this text as its detail instead of a reading. `offset` is the batch's last offset, so the stream moves on past the whole batch. */
  undecodable?: string
}

/** Where a consumer starts on each partition it is given. */
export type StartOffsets = Map<number, number>

export interface AssignmentHandler {
  /** Partitions were assigned: load state for them and return the offsets to resume from. */
  onAssigned(partitions: number[]): Promise<StartOffsets>
  /** Partitions are being taken away: finish and forget their state. */
  onRevoked(partitions: number[]): Promise<void>
}

export interface BusProducer {
  /** Enqueues a record; false when the bus is full (wait for `writable()` and retry). */
  tryProduce(key: string, value: BusValue): boolean
  /** Resolves when there is room again (back-pressure). */
  writable(): Promise<void>
  /** Resolves when everything produced so far is accepted by the bus. */
  flush(): Promise<void>
  /**
   * Records tryProduce took that the bus does not hold durably yet (Kafka: not acknowledged by the
   * brokers; the memory bus takes them at once): what a stop that cannot flush leaves behind.
   */
  readonly unacknowledged: number
  close(): Promise<void>
}

export interface BusConsumer {
  /** Joins the group; assignment changes arrive through the handler. */
  subscribe(handler: AssignmentHandler): Promise<void>
  /** Up to `max` records, waiting at most `waitMs` for the first. Empty when none arrived or closed. */
  poll(max: number, waitMs: number): Promise<BusRecord[]>
  /**
   * Acknowledges records up to (excluding) these next offsets after their batch is stored; the
   * bus may release them. The stored offsets in the database stay the source of truth.
   */
  commit(offsets: Map<number, number>): Promise<void>
  /** Goes back to these offsets (after a failed batch) so the records are delivered again. */
  seek(offsets: StartOffsets): void
  /**
   * Whether everything in the assigned partitions has been handed out (for a drain). Absent: an
   * empty poll means caught up (the memory bus).
   */
  caughtUp?(): Promise<boolean>
  /**
   * Whether records of this partition are known to be waiting (fetched or on the broker, not yet
   * handed out by `poll`). Absent: records are delivered in arrival order, none waits behind others.
   */
  hasBacklog?(partition: number): boolean
  /** Records in the assigned partitions not yet handed out (consumer lag), if known. */
  lag?(): number | null
  close(): Promise<void>
}

export interface Bus {
  readonly topic: string
  readonly partitions: number
  producer(): BusProducer
  consumer(group: string): BusConsumer
  /**
   * The newest event time of a reading the bus holds from before this process started (what a
   * restarted source continues after), or null when it holds none. The memory bus keeps nothing
   * across processes: always null. Kafka: see `KafkaBus.newestEventTime`.
   */
  newestEventTime(): Promise<number | null>
  close(): Promise<void>
}
