/** An event-time window `[start, end)` in epoch ms (Flink's TimeWindow). */
export interface TimeWindow {
  readonly start: number
  readonly end: number
}

/** Assigns event timestamps to tumbling windows of `sizeMs`, aligned to the epoch plus `offsetMs`. */
export class TumblingEventTimeWindows {
  readonly sizeMs: number
  readonly offsetMs: number

  constructor (sizeMs: number, offsetMs = 0) {
    if (!Number.isInteger(sizeMs) || sizeMs <= 0) throw new RangeError(`window size must be a positive integer of ms, got ${sizeMs}`)
    if (!Number.isInteger(offsetMs) || offsetMs < 0 || offsetMs >= sizeMs) throw new RangeError(`window offset must be in [0, size), got ${offsetMs}`)
    this.sizeMs = sizeMs
    this.offsetMs = offsetMs
  }

  /** Start of the window that holds `ts` (works for negative timestamps too). */
  startOf (ts: number): number {
    const r = (ts - this.offsetMs) % this.sizeMs
    return ts - (r < 0 ? r + this.sizeMs : r)
  }

  windowOf (ts: number): TimeWindow {
    const start = this.startOf(ts)
    return { start, end: start + this.sizeMs }
  }
}
