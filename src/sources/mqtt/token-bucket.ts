/**
 * A token bucket that lends: `take` always hands out a token and says how long the caller must
 * wait before using it (0 while the bucket has tokens). Tokens taken in debt queue up behind each
 * other, so callers that each wait their answer are spaced at the refill rate, in order.
 */
export class TokenBucket {
  readonly #perSecond: number
  readonly #burst: number
  #tokens: number
  #updatedAt: number

  constructor (perSecond: number, burst: number, nowMs: number) {
    this.#perSecond = perSecond
    this.#burst = burst
    this.#tokens = burst
    this.#updatedAt = nowMs
  }

  /** Takes one token; returns the milliseconds to wait before it may be used. */
  take (nowMs: number): number {
    this.#refill(nowMs)
    this.#tokens -= 1
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#perSecond) * 1000)
  }

  #refill (nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.#updatedAt)
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed / 1000) * this.#perSecond)
    this.#updatedAt = nowMs
  }
}
