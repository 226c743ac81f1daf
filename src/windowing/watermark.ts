/**
 * Watermarks over several input channels (Kafka partitions), as Flink does across input channels:
 * each channel's watermark is its highest event time minus the allowed out-of-orderness; the
 * combined watermark is the minimum over channels that are not idle. A channel that received
 * nothing for `idleTimeoutMs` of wall time is idle and ignored (Flink's `withIdleness`) until it
 * delivers again. The combined watermark never goes back.
 *
 * Wall time enters only through `tick(now)`, called by the worker once per batch; the class reads
 * no clock itself.
 */
export class ChannelWatermarks {
  readonly maxOutOfOrdernessMs: number
  readonly idleTimeoutMs: number
  readonly #maxTs = new Map<number, number>()
  readonly #lastActive = new Map<number, number>()
  readonly #idle = new Set<number>()
  /** Channels seen since the last tick. */
  readonly #touched = new Set<number>()
  /** Watermarks of channels owned elsewhere (other workers), already combined with their idleness. */
  readonly #external = new Map<number, number>()
  #combined = -Infinity
  /** Open `batch` calls (they nest: the worker's restore batches the externals' update too). */
  #batchDepth = 0

  constructor (maxOutOfOrdernessMs: number, idleTimeoutMs: number) {
    this.maxOutOfOrdernessMs = maxOutOfOrdernessMs
    this.idleTimeoutMs = idleTimeoutMs
  }

  /** Registers a channel this instance owns; `maxTs` restores its progress after a restart. */
  addChannel (channel: number, now: number, maxTs = -Infinity): void {
    this.#maxTs.set(channel, Math.max(maxTs, this.#maxTs.get(channel) ?? -Infinity))
    this.#lastActive.set(channel, now)
    this.#idle.delete(channel)
    this.#external.delete(channel)
    this.#recompute()
  }

  /**
   * Applies several changes (channels added, externals set) and takes the minimum once, after all
   * of them. Taken after each one, the first channel (if ahead of the others) would raise the
   * watermark, which never goes back, and the others' readings would all be late.
   */
  batch (changes: () => void): void {
    this.#batchDepth++
    try {
      changes()
    } finally {
      this.#batchDepth--
      this.#recompute()
    }
  }

  removeChannel (channel: number): void {
    this.#maxTs.delete(channel)
    this.#lastActive.delete(channel)
    this.#idle.delete(channel)
    this.#touched.delete(channel)
    this.#recompute()
  }

  /** Sets the watermark of a channel owned by another worker (null: idle or unknown, ignored). */
  setExternal (channel: number, watermark: number | null): void {
    if (watermark === null) this.#external.delete(channel)
    else this.#external.set(channel, watermark)
    this.#recompute()
  }

  /** Raises the combined watermark to at least `floor` (restored after a restart). */
  restoreFloor (floor: number): void {
    if (floor > this.#combined) this.#combined = floor
  }

  /** Records an event of time `ts` on `channel`. Returns the combined watermark after it. */
  observe (channel: number, ts: number): number {
    const prev = this.#maxTs.get(channel)
    if (prev === undefined) throw new RangeError(`channel ${channel} is not assigned`)
    this.#touched.add(channel)
    if (this.#idle.delete(channel)) {
      if (ts > prev) this.#maxTs.set(channel, ts)
      this.#recompute()
    } else if (ts > prev) {
      this.#maxTs.set(channel, ts)
      // Only a channel at the minimum can raise the combined watermark.
      if (prev - this.maxOutOfOrdernessMs <= this.#combined) this.#recompute()
    }
    return this.#combined
  }

  /**
   * Marks channels idle that saw nothing for the idle timeout of wall time `now`. A channel for
   * which `hasBacklog` says records are waiting (not yet delivered) counts as active: a channel is
   * idle when its source is silent, not when the consumer is busy elsewhere.
   */
  tick (now: number, hasBacklog?: (channel: number) => boolean): number {
    for (const c of this.#touched) this.#lastActive.set(c, now)
    this.#touched.clear()
    if (hasBacklog !== undefined) {
      for (const c of this.#lastActive.keys()) if (!this.#idle.has(c) && hasBacklog(c)) this.#lastActive.set(c, now)
    }
    let changed = false
    for (const [c, last] of this.#lastActive) {
      if (!this.#idle.has(c) && now - last >= this.idleTimeoutMs) {
        this.#idle.add(c)
        changed = true
      }
    }
    if (changed) this.#recompute()
    return this.#combined
  }

  /** The combined watermark (-Infinity before every active channel has data). */
  get current (): number {
    return this.#combined
  }

  /** This channel's own watermark (highest event time − out-of-orderness), or null if idle or empty. */
  channelWatermark (channel: number): number | null {
    const m = this.#maxTs.get(channel)
    if (m === undefined || m === -Infinity || this.#idle.has(channel)) return null
    return m - this.maxOutOfOrdernessMs
  }

  channelMaxTs (channel: number): number {
    return this.#maxTs.get(channel) ?? -Infinity
  }

  isIdle (channel: number): boolean {
    return this.#idle.has(channel)
  }

  get channels (): number[] {
    return [...this.#maxTs.keys()]
  }

  #recompute (): void {
    if (this.#batchDepth > 0) return
    let min = Infinity
    for (const [c, m] of this.#maxTs) {
      if (this.#idle.has(c)) continue
      const w = m - this.maxOutOfOrdernessMs
      if (w < min) min = w
    }
    for (const w of this.#external.values()) if (w < min) min = w
    // All channels idle: hold the watermark where it is (nothing moves event time forward).
    if (min !== Infinity && min > this.#combined) this.#combined = min
  }
}

/** A partition's stored progress, as far as the combined watermark is concerned. */
export interface ChannelProgress {
  maxEventMs: number | null
  idle: boolean
}

/**
 * The combined watermark over stored partitions (those of every worker in the group): the minimum
 * over partitions not marked idle of (highest event time − out-of-orderness), never below `floor`
 * (the stored watermark). A partition with no data yet holds it back until its owner marks it
 * idle; if every partition is idle the watermark stays at `floor`.
 */
export function combinedWatermark (parts: Iterable<ChannelProgress>, maxOutOfOrdernessMs: number, floor: number): number {
  let min = Infinity
  for (const p of parts) {
    if (p.idle) continue
    const w = p.maxEventMs === null ? -Infinity : p.maxEventMs - maxOutOfOrdernessMs
    if (w < min) min = w
  }
  return min === Infinity ? floor : Math.max(floor, min)
}
