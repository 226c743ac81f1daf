// LastSeenRecorder: the ingest marks each device it hears (a Map write per reading) and flushes
// the marks every few seconds in one statement, so devices.last_seen_at costs no write per reading.
import { type Queryable, recordDevicesSeen } from '../storage/index.ts'

export class LastSeenRecorder {
  readonly #db: Queryable
  #marks = new Map<string, number>()

  constructor (db: Queryable) {
    this.#db = db
  }

  /** Devices heard since the last flush. */
  get pending (): number {
    return this.#marks.size
  }

  /** A device was heard at `at` (epoch ms, wall time); keeps the newest time per device. */
  mark (deviceId: string, at: number): void {
    const prev = this.#marks.get(deviceId)
    if (prev === undefined || at > prev) this.#marks.set(deviceId, at)
  }

  /**
   * Writes the marks in one statement; returns the devices updated. Call it every few seconds and
   * at stop. If the write fails, the marks are kept (merged with newer ones) for the next flush and
   * the error is thrown.
   */
  async flush (): Promise<number> {
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
