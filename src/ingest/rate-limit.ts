import { TokenBucket } from './token-bucket.ts'

/** Writes a device may make per second, and how many at once after a quiet spell. */
export interface DeviceRateLimit {
  perSecond: number
  burst: number
}

/** 50 writes a second per device, bursts of 100: far above what a sensor sends, low enough to stop a runaway loop. */
export const defaultDeviceRateLimit: Readonly<DeviceRateLimit> = { perSecond: 50, burst: 100 }

/** The burst that goes with a rate: two seconds' worth, at least one write. */
export function burstFor (perSecond: number): number {
  return Math.max(1, Math.ceil(perSecond * 2))
}

/** Full buckets are forgotten at most this often (a full bucket is the same as a new one). */
const SWEEP_INTERVAL_MS = 60_000

/**
 * One token bucket per key (a device id), refusing past the limit: `tryTake` answers 0 when the
 * write may go ahead, else the milliseconds until it may. Buckets that filled up again are dropped
 * from time to time, so memory follows the devices writing now, not every device ever seen.
 */
export class RateLimiter {
  readonly limit: Readonly<DeviceRateLimit>
  readonly #buckets = new Map<string, TokenBucket>()
  #sweptAt = -Infinity

  constructor (limit: Readonly<DeviceRateLimit>) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) throw new RangeError(`a rate limit needs perSecond > 0 and burst >= 1, got ${limit.perSecond}/${limit.burst}`)
    this.limit = limit
  }

  /** Buckets held now. */
  get size (): number {
    return this.#buckets.size
  }

  tryTake (key: string, nowMs: number): number {
    if (nowMs - this.#sweptAt >= SWEEP_INTERVAL_MS) this.#sweep(nowMs)
    let bucket = this.#buckets.get(key)
    if (bucket === undefined) {
      bucket = new TokenBucket(this.limit.perSecond, this.limit.burst, nowMs)
      this.#buckets.set(key, bucket)
    }
    return bucket.tryTake(nowMs)
  }

  #sweep (nowMs: number): void {
    this.#sweptAt = nowMs
    for (const [key, bucket] of this.#buckets) if (bucket.full(nowMs)) this.#buckets.delete(key)
  }
}
