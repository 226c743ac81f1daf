import { addToStats, createStatsAccumulator, mergeStats, type StatsAccumulator, type StatsInput } from './accumulator.ts'
import { TumblingEventTimeWindows } from './time-window.ts'
import { ChannelWatermarks } from './watermark.ts'

export interface WindowingOptions {
  /** Tumbling window size. */
  sizeMs: number
  /** How far behind the highest event time the watermark trails. */
  maxOutOfOrdernessMs: number
  /** How long after the watermark passes a window's end it still accepts readings (revisions). */
  allowedLatenessMs: number
  /** Wall time after which a silent channel stops holding the watermark back. */
  idleTimeoutMs: number
}

export const defaultWindowingOptions: WindowingOptions = {
  sizeMs: 60_000,
  maxOutOfOrdernessMs: 10_000,
  allowedLatenessMs: 60_000,
  idleTimeoutMs: 30_000
}

/** Returned by `assign` for a reading whose window is still open. */
export const ON_TIME = -1

/**
 * Event-time tumbling windows with a watermark and allowed lateness (Flink semantics):
 * a window `[start, end)` is final once the watermark reaches `end + allowedLatenessMs`.
 * A reading for a window that is not final is on time (it merges and revises the window);
 * a reading for a final window is late and goes to the late output, never into the window.
 */
export class WindowOperator {
  readonly options: WindowingOptions
  readonly windows: TumblingEventTimeWindows
  readonly watermarks: ChannelWatermarks

  constructor (options: WindowingOptions = defaultWindowingOptions) {
    if (options.allowedLatenessMs < 0 || options.maxOutOfOrdernessMs < 0 || options.idleTimeoutMs <= 0) {
      throw new RangeError('allowed lateness and out-of-orderness must be >= 0, idle timeout > 0')
    }
    this.options = options
    this.windows = new TumblingEventTimeWindows(options.sizeMs)
    this.watermarks = new ChannelWatermarks(options.maxOutOfOrdernessMs, options.idleTimeoutMs)
  }

  /**
   * Advances the watermark with a reading of time `ts` from `channel` and classifies it:
   * returns ON_TIME (-1) when its window is open, else how late it is (watermark − ts, ms > 0).
   */
  assign (channel: number, ts: number): number {
    const wm = this.watermarks.observe(channel, ts)
    const end = this.windows.startOf(ts) + this.options.sizeMs
    return end + this.options.allowedLatenessMs <= wm ? wm - ts : ON_TIME
  }

  get watermark (): number {
    return this.watermarks.current
  }

  /** Windows whose end is at or before this are final. */
  get finalEndBoundary (): number {
    return this.watermarks.current - this.options.allowedLatenessMs
  }

  isFinal (windowStart: number): boolean {
    return windowStart + this.options.sizeMs <= this.finalEndBoundary
  }
}

/** The change a batch makes to one window (location, sensor type, start). */
export interface WindowDelta {
  location: string
  sensorType: string
  start: number
  end: number
  acc: StatsAccumulator
}

/** Collects per-window deltas of a batch; `drain` hands them over for merging in the store. */
export class WindowDeltas {
  readonly sizeMs: number
  #deltas = new Map<string, WindowDelta>()

  constructor (sizeMs: number) {
    this.sizeMs = sizeMs
  }

  add (location: string, sensorType: string, start: number, input: StatsInput): void {
    const key = rollUpKey(location, sensorType, start)
    let d = this.#deltas.get(key)
    if (d === undefined) {
      d = { location, sensorType, start, end: start + this.sizeMs, acc: createStatsAccumulator() }
      this.#deltas.set(key, d)
    }
    addToStats(d.acc, input)
  }

  get size (): number {
    return this.#deltas.size
  }

  /**
   * Hands the deltas over in one fixed order (location, sensor type, start): workers merging into
   * the same windows concurrently then lock their rows in the same order and cannot deadlock.
   */
  drain (): WindowDelta[] {
    const out = [...this.#deltas.values()].sort(byKey)
    this.#deltas = new Map()
    return out
  }
}

export const rollUpKey = (location: string, sensorType: string, start: number): string => `${start}\u0000${location}\u0000${sensorType}`

/**
 * Merges window deltas into coarser buckets of `bucketMs` (hourly roll-ups): a window belongs to
 * the bucket its start falls in. Same fixed order as WindowDeltas.drain.
 */
export function rollUp (deltas: readonly WindowDelta[], bucketMs: number): WindowDelta[] {
  const out = new Map<string, WindowDelta>()
  for (const d of deltas) {
    const start = Math.floor(d.start / bucketMs) * bucketMs
    const key = rollUpKey(d.location, d.sensorType, start)
    const o = out.get(key)
    if (o === undefined) out.set(key, { location: d.location, sensorType: d.sensorType, start, end: start + bucketMs, acc: { ...d.acc } })
    else o.acc = mergeStats(o.acc, d.acc)
  }
  return [...out.values()].sort(byKey)
}

function byKey (a: WindowDelta, b: WindowDelta): number {
  return a.location < b.location ? -1 : a.location > b.location ? 1 : a.sensorType < b.sensorType ? -1 : a.sensorType > b.sensorType ? 1 : a.start - b.start
}
