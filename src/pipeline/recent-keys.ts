/**
 * Event times of the readings stored per sensor whose windows are still open: enough to tell a
 * duplicate from a new out-of-order reading without a unique index on the raw table. Readings for
 * final windows take the late path, which is checked against the database instead.
 *
 * Per sensor, a sorted Float64Array used as a deque: in-order readings append (the common case),
 * pruning drops from the front once windows become final, binary search answers membership.
 * Memory is 8 bytes per reading in open windows, bounded by rate × (window + lateness).
 */
class SensorTimes {
  #buf = new Float64Array(16)
  #head = 0
  #tail = 0

  get size (): number {
    return this.#tail - this.#head
  }

  get last (): number {
    return this.#tail > this.#head ? this.#buf[this.#tail - 1]! : -Infinity
  }

  /** Adds `ts` unless present; returns false if it was already there (a duplicate). */
  add (ts: number): boolean {
    if (ts > this.last) {
      this.#ensureRoom()
      this.#buf[this.#tail++] = ts
      return true
    }
    if (this.has(ts)) return false
    this.#ensureRoom() // may move the contents: find the position afterwards
    const i = this.#lowerBound(ts)
    this.#buf.copyWithin(i + 1, i, this.#tail)
    this.#buf[i] = ts
    this.#tail++
    return true
  }

  has (ts: number): boolean {
    const i = this.#lowerBound(ts)
    return i < this.#tail && this.#buf[i] === ts
  }

  /** Forgets times before `boundary`. */
  pruneBefore (boundary: number): void {
    this.#head = this.#lowerBound(boundary)
    if (this.#head === this.#tail) this.#head = this.#tail = 0
  }

  #lowerBound (ts: number): number {
    let lo = this.#head
    let hi = this.#tail
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.#buf[mid]! < ts) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  #ensureRoom (): void {
    if (this.#tail < this.#buf.length) return
    const n = this.size
    // Compact in place when at least half is free, otherwise grow.
    const next = n * 2 <= this.#buf.length ? this.#buf : new Float64Array(this.#buf.length * 2)
    next.copyWithin(0, this.#head, this.#tail)
    if (next !== this.#buf) next.set(this.#buf.subarray(this.#head, this.#tail))
    this.#buf = next
    this.#head = 0
    this.#tail = n
  }
}

export class RecentKeys {
  readonly #sensors = new Map<string, SensorTimes>()
  #boundary = -Infinity

  /** Records a stored reading; false if this sensor already stored one at `ts` (a duplicate). */
  add (sensorId: string, ts: number): boolean {
    let s = this.#sensors.get(sensorId)
    if (s === undefined) {
      s = new SensorTimes()
      this.#sensors.set(sensorId, s)
    }
    return s.add(ts)
  }

  has (sensorId: string, ts: number): boolean {
    return this.#sensors.get(sensorId)?.has(ts) === true
  }

  /** Forgets readings before `boundary` (the start of the oldest open window). */
  pruneBefore (boundary: number): void {
    if (boundary <= this.#boundary) return
    this.#boundary = boundary
    for (const [id, s] of this.#sensors) {
      s.pruneBefore(boundary)
      if (s.size === 0) this.#sensors.delete(id)
    }
  }

  clear (): void {
    this.#sensors.clear()
    this.#boundary = -Infinity
  }

  /** Readings held, over all sensors. */
  get size (): number {
    let n = 0
    for (const s of this.#sensors.values()) n += s.size
    return n
  }
}
