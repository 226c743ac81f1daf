/**
 * Something that takes readings in and puts them on the bus: the simulator today; MQTT, HTTP and
 * files implement the same shape. A source validates nothing it passes on as raw text (the worker
 * does, so every source gets the same dead letters); it only paces itself against the bus.
 */
export interface Source {
  /** For logs and the status line ("simulator", "mqtt", ...). */
  readonly name: string
  /** Readings this source has put on the bus so far. */
  readonly produced: number
  /** A bounded source (a simulated duration, a file) that has produced everything it will. */
  readonly finished: boolean
  /** The ingest clock of what it produces: wall time for live sources, the simulator's virtual clock. */
  now(): number
  start(): void
  /** Resolves when the source ends by itself (a bounded run); a live source's never does before stop. */
  done(): Promise<void>
  /** Stops taking readings in and hands what it accepted to the bus (flushed). */
  stop(): Promise<void>
}
