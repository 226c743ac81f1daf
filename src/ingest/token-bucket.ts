/**
 * A token bucket per device, shared by the ways devices write: MQTT delays a message beyond it
 * (`take`: the token is lent and the caller waits), HTTP refuses a request beyond it with 429
 * (`tryTake`: nothing is taken, the caller is told when to come back). No clock of its own: the
 * time is passed in.
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

  /**
   * Takes one token, always (it lends); returns the milliseconds to wait before it may be used (0
   * while the bucket has tokens). Tokens taken in debt queue up behind each other, so callers that
   * each wait their answer are spaced at the refill rate, in order.
   */
  take (nowMs: number): number {
    this.#refill(nowMs)
    this.#tokens -= 1
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#perSecond) * 1000)
  }

  /**
   * Takes one token if there is one and returns 0; else takes nothing and returns the milliseconds
   * until there will be one (at least 1).
   */
  tryTake (nowMs: number): number {
    this.#refill(nowMs)
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return 0
    }
    // Less a rounding error, so that 0.99 tokens at 10/s is 1 ms away, not 2.
    return Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.#perSecond - 1e-9))
  }

  /** The bucket is full at `nowMs`: it is as good as a new one (and may be forgotten). */
  full (nowMs: number): boolean {
    this.#refill(nowMs)
    return this.#tokens >= this.#burst
  }

  #refill (nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.#updatedAt)
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed / 1000) * this.#perSecond)
    this.#updatedAt = Math.max(this.#updatedAt, nowMs)
  }
}
