// Capped exponential backoff with jitter: the waits between attempts to reach a database that is
// away. The jitter keeps a group of workers from knocking at the same instant when it returns.

export interface BackoffOptions {
  /** The first wait. */
  initialMs: number
  /** No wait is longer than this (it bounds the time from the database's return to the next attempt). */
  maxMs: number
}

export const defaultBackoffOptions: BackoffOptions = { initialMs: 250, maxMs: 5000 }

export class Backoff {
  readonly options: BackoffOptions
  readonly #random: () => number
  #attempts = 0

  /** `random` returns values in [0, 1) (a seeded source in tests). */
  constructor (options: Partial<BackoffOptions> = {}, random: () => number = Math.random) {
    this.options = { ...defaultBackoffOptions, ...options }
    this.#random = random
  }

  /** Failed attempts since the last reset. */
  get attempts (): number {
    return this.#attempts
  }

  /** The wait before the next attempt: the capped exponential step, jittered down by up to half. */
  next (): number {
    const { initialMs, maxMs } = this.options
    const step = Math.min(maxMs, initialMs * 2 ** Math.min(this.#attempts, 30))
    this.#attempts++
    return Math.round(step / 2 + this.#random() * step / 2)
  }

  reset (): void {
    this.#attempts = 0
  }
}
