// A bounded map whose entries expire a fixed time after they were set (a hit does not extend it):
// what a cache of access decisions needs, so that a change elsewhere is seen within the TTL.
// Past its size the least recently used entry goes (a Map iterates in insertion order, and a hit
// moves its entry to the end). `peek` also hands out an expired entry, marked stale, for a caller
// that serves stale values when the source of truth does not answer (stale-if-error).
export class TtlCache<K, V> {
  readonly #entries = new Map<K, { value: V, expiresAt: number }>()
  readonly maxEntries: number
  readonly ttlMs: number

  constructor (maxEntries: number, ttlMs: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError(`maxEntries: expected an integer >= 1, got ${maxEntries}`)
    if (!(ttlMs >= 0)) throw new RangeError(`ttlMs: expected a number >= 0, got ${ttlMs}`)
    this.maxEntries = maxEntries
    this.ttlMs = ttlMs
  }

  get size (): number {
    return this.#entries.size
  }

  get (key: K, now: number): V | undefined {
    const e = this.#entries.get(key)
    if (e === undefined) return undefined
    this.#entries.delete(key)
    if (e.expiresAt <= now) return undefined
    this.#entries.set(key, e)
    return e.value
  }

  /**
   * The entry, fresh or expired (`fresh: false`), or undefined when there is none. An expired
   * entry is kept (a hit moves it to the most recently used end as `get` does), so that it can be
   * served when a refresh fails; it goes when it is replaced, deleted or the least recently used.
   */
  peek (key: K, now: number): { value: V, fresh: boolean } | undefined {
    const e = this.#entries.get(key)
    if (e === undefined) return undefined
    this.#entries.delete(key)
    this.#entries.set(key, e)
    return { value: e.value, fresh: e.expiresAt > now }
  }

  set (key: K, value: V, now: number): void {
    this.#entries.delete(key)
    this.#entries.set(key, { value, expiresAt: now + this.ttlMs })
    if (this.#entries.size > this.maxEntries) {
      // One in, one out: the first key is the least recently used.
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#entries.delete(oldest.value)
    }
  }

  delete (key: K): boolean {
    return this.#entries.delete(key)
  }

  /** Drops the entries whose value matches (a scan: for rare events such as a revocation). */
  deleteWhere (matches: (value: V) => boolean): number {
    let n = 0
    for (const [k, e] of this.#entries) {
      if (matches(e.value)) {
        this.#entries.delete(k)
        n++
      }
    }
    return n
  }

  clear (): void {
    this.#entries.clear()
  }
}
