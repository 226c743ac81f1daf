// DeviceRegistry: which device a token belongs to, for the ingest (MQTT CONNECT, HTTP requests).
// Backed by the database, with two small caches in front so that neither a busy device nor a
// flood of wrong tokens costs a query each time:
// - accepted tokens, trusted for `ttlMs` (default 5 s) from their lookup: a revocation or rotation
//   made by another process (the CLI, another api) takes effect here within that time; one made
//   through this process's admin API takes effect at once (`forget`).
// - refused tokens, for `refusedTtlMs` (default 60 s). That may be long: a refused token never
//   becomes valid later (tokens are new random values at add and rotate; revocation is final).
// Both are bounded (least recently used out). Tokens that do not have a token's shape are refused
// without a lookup, and concurrent lookups of one token share one query.
import { type Queryable, findDeviceByTokenHash } from '../storage/index.ts'
import { type Device } from './device.ts'
import { hashToken, isWellFormedToken } from './token.ts'
import { TtlCache } from './ttl-cache.ts'

/** Why a token was refused: not a token's shape, no device has it, or its device is revoked. */
export type RefusalReason = 'malformed' | 'unknown' | 'revoked'

export interface DeviceRegistryOptions {
  /** Accepted tokens kept (default 10,000). */
  maxEntries?: number
  /** How long an accepted token is trusted without asking the database (default 5,000 ms). */
  ttlMs?: number
  /** Refused tokens kept (default 10,000). */
  maxRefusedEntries?: number
  /** How long a refused token is refused without asking the database (default 60,000 ms). */
  refusedTtlMs?: number
  /** Wall clock of the caches (tests inject one). */
  now?: () => number
  /** Called for every refusal, cached or not: the callers count refused attempts in their metrics. */
  onRefused?: (reason: RefusalReason) => void
}

export const defaultRegistryOptions = { maxEntries: 10_000, ttlMs: 5_000, maxRefusedEntries: 10_000, refusedTtlMs: 60_000 } as const

type Lookup = { device: Device } | { refused: 'unknown' | 'revoked' }

export class DeviceRegistry {
  readonly #db: Queryable
  readonly #accepted: TtlCache<string, Device>
  readonly #refused: TtlCache<string, 'unknown' | 'revoked'>
  readonly #pending = new Map<string, Promise<Lookup>>()
  readonly #now: () => number
  readonly #onRefused: (reason: RefusalReason) => void
  /** Raised by forget/clear: a lookup that started before must not cache what it read. */
  #generation = 0

  constructor (db: Queryable, options: DeviceRegistryOptions = {}) {
    this.#db = db
    const o = { ...defaultRegistryOptions, ...options }
    this.#accepted = new TtlCache(o.maxEntries, o.ttlMs)
    this.#refused = new TtlCache(o.maxRefusedEntries, o.refusedTtlMs)
    this.#now = options.now ?? Date.now
    this.#onRefused = options.onRefused ?? (() => {})
  }

  /**
   * The device a token belongs to, or null (refused: see onRefused). Throws what the database
   * throws (the caller answers "unavailable", not "refused"); a failed lookup is not cached.
   */
  async authenticate (token: string): Promise<Device | null> {
    if (!isWellFormedToken(token)) return this.#refuse('malformed')
    const hash = hashToken(token)
    const key = hash.toString('base64')
    const now = this.#now()
    const device = this.#accepted.get(key, now)
    if (device !== undefined) return device
    const refused = this.#refused.get(key, now)
    if (refused !== undefined) return this.#refuse(refused)
    let pending = this.#pending.get(key)
    if (pending === undefined) {
      pending = this.#lookup(hash, key).finally(() => { this.#pending.delete(key) })
      this.#pending.set(key, pending)
    }
    const found = await pending
    return 'device' in found ? found.device : this.#refuse(found.refused)
  }

  /** Drops what is cached for a device (after revoking or rotating it in this process). */
  forget (deviceId: string): void {
    this.#generation++
    this.#accepted.deleteWhere(d => d.id === deviceId)
  }

  clear (): void {
    this.#generation++
    this.#accepted.clear()
    this.#refused.clear()
  }

  /** Entries held by the two caches. */
  get cached (): { accepted: number, refused: number } {
    return { accepted: this.#accepted.size, refused: this.#refused.size }
  }

  async #lookup (hash: Buffer, key: string): Promise<Lookup> {
    const generation = this.#generation
    const row = await findDeviceByTokenHash(this.#db, hash)
    const found: Lookup = row === null
      ? { refused: 'unknown' }
      : row.revokedAt !== null
        ? { refused: 'revoked' }
        : { device: Object.freeze({ id: row.id, name: row.name, location: row.location }) }
    if (generation === this.#generation) {
      const now = this.#now()
      if ('device' in found) this.#accepted.set(key, found.device, now)
      else this.#refused.set(key, found.refused, now)
    }
    return found
  }

  #refuse (reason: RefusalReason): null {
    this.#onRefused(reason)
    return null
  }
}
