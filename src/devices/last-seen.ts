// LastSeenRecorder: the ingest marks each device it hears (a Map write per reading) and flushes
// the marks every few seconds in one statement, so devices.last_seen_at costs no write per reading.
// It also holds the MQTT connection states (online, offline) until they are written. Nothing here
// fails the ingest: a write that fails (the database away) keeps its marks, merged with newer
// ones, for the next flush, so what was heard during an outage is written after it.
import { type DeviceConnection, type Queryable, recordDevicesSeen, setDeviceConnection } from '../storage/index.ts'

export class LastSeenRecorder {
  readonly #db: Queryable
  #marks = new Map<string, number>()
  #connections = new Map<string, { connection: DeviceConnection, at: number }>()
  /** Flushes run one after another: a later one never writes before an earlier one. */
  #flushing: Promise<unknown> = Promise.resolve()

  constructor (db: Queryable) {
    this.#db = db
  }

  /** Devices heard, and connection states reported, since the last flush. */
  get pending (): number {
    return this.#marks.size + this.#connections.size
  }

  /** A device was heard at `at` (epoch ms, wall time); keeps the newest time per device. */
  mark (deviceId: string, at: number): void {
    const prev = this.#marks.get(deviceId)
    if (prev === undefined || at > prev) this.#marks.set(deviceId, at)
  }

  /** A device's MQTT connection state as of `at` (epoch ms); keeps the newest per device. */
  connection (deviceId: string, connection: DeviceConnection, at: number): void {
    const prev = this.#connections.get(deviceId)
    if (prev === undefined || at >= prev.at) this.#connections.set(deviceId, { connection, at })
  }

  /**
   * Writes the marks in one statement and the connection states (one statement each: they are
   * rare); returns the devices whose last seen was updated. Call it every few seconds and at stop.
   * If a write fails, what it did not write is kept for the next flush and the error is thrown.
   */
  async flush (): Promise<number> {
    const run = this.#flushing.then(async () => await this.#flush(), async () => await this.#flush())
    this.#flushing = run
    return await run
  }

  async #flush (): Promise<number> {
    const connections = this.#connections
    this.#connections = new Map()
    try {
      for (const [id, c] of connections) {
        await setDeviceConnection(this.#db, id, c.connection, c.at)
        connections.delete(id)
      }
    } finally {
      // Not written: kept unless a newer state came meanwhile.
      for (const [id, c] of connections) {
        const newer = this.#connections.get(id)
        if (newer === undefined || newer.at < c.at) this.#connections.set(id, c)
      }
    }
    if (this.#marks.size === 0) return 0
    const marks = this.#marks
    this.#marks = new Map()
    try {
      return await recordDevicesSeen(this.#db, marks)
    } catch (err) {
      for (const [id, at] of marks) this.mark(id, at)
      throw err
    }
  }
}
