// DeviceRegistry: which device a token belongs to (MQTT CONNECT to the built-in broker, HTTP
// requests), and which device a topic's device id names (an external broker's `iot/<id>/...`).
// Backed by the database, with small caches in front so that neither a busy device nor a flood of
// wrong tokens or made-up ids costs a query each time:
// - accepted tokens and ids, trusted for `ttlMs` (default 5 s) from their lookup: a revocation or
//   rotation made by another process (the CLI, another api) takes effect here within that time;
//   one made through this process's admin API takes effect at once (`forget`).
// - refused tokens, for `refusedTtlMs` (default 60 s). That may be long: a refused token never
//   becomes valid later (tokens are new random values at add and rotate; revocation is final).
//   Refused ids, for `ttlMs`: an unknown id becomes valid when the device is added.
// All are bounded (least recently used out). Tokens and ids that do not have the right shape are
// refused without a lookup, and concurrent lookups of one key share one query.
//
// Stale-if-error: an entry past its TTL is kept, and when its refresh fails (the database does
// not answer within `lookupTimeoutMs`, or answers with an error) or the database is known to be
// away (`reachable`), the old answer is served, accepted or refused, for as long as that lasts. A
// key never looked up has no old answer: the lookup throws (IOT_ERR_DB_UNAVAILABLE when the
// database is away) and the caller refuses for now without saying "unknown" (the built-in broker
// answers CONNACK 3, HTTP 503, an external broker's message is not acknowledged and comes again).
import { setTimeout as sleep } from 'node:timers/promises'
import { IotError } from '../domain/index.ts'
import { type Queryable, type StoredDevice, findDevice, findDeviceByTokenHash } from '../storage/index.ts'
import { DEVICE_ID_PATTERN, type Device } from './device.ts'
import { hashToken, isWellFormedToken } from './token.ts'
import { TtlCache } from './ttl-cache.ts'

/** Why a token or id was refused: not the right shape, no device has it, or its device is revoked. */
export type RefusalReason = 'malformed' | 'unknown' | 'revoked'

export interface DeviceRegistryOptions {
  /** Accepted tokens kept, and as many accepted ids (default 10,000 each). */
  maxEntries?: number
  /** How long an accepted token or id (and a refused id) is trusted without asking the database (default 5,000 ms). */
  ttlMs?: number
  /** Refused tokens kept, and as many refused ids (default 10,000 each). */
  maxRefusedEntries?: number
  /** How long a refused token is refused without asking the database (default 60,000 ms). */
  refusedTtlMs?: number
  /** A lookup that has not answered after this long fails (the old answer is served if there is one; default 3,000 ms). */
  lookupTimeoutMs?: number
  /**
   * Whether the database is known to answer (the process's DbAvailability): while it is not,
   * expired entries are served without a lookup and keys never looked up fail at once.
   */
  reachable?: () => boolean
  /** Wall clock of the caches (tests inject one). */
  now?: () => number
  /** Called for every refusal, cached or not: the callers count refused attempts in their metrics. */
  onRefused?: (reason: RefusalReason) => void
  /** Called each time an expired answer is served because the database did not give a fresh one. */
  onStale?: () => void
}

export const defaultRegistryOptions = { maxEntries: 10_000, ttlMs: 5_000, maxRefusedEntries: 10_000, refusedTtlMs: 60_000, lookupTimeoutMs: 3_000 } as const

type Refused = 'unknown' | 'revoked'
type Lookup = { device: Device } | { refused: Refused }

/** One kind of key (token digests, device ids): its two caches and the lookups under way. */
class Lookups {
  readonly accepted: TtlCache<string, Device>
  readonly refused: TtlCache<string, Refused>
  readonly pending = new Map<string, Promise<Lookup>>()
  constructor (accepted: TtlCache<string, Device>, refused: TtlCache<string, Refused>) {
    this.accepted = accepted
    this.refused = refused
  }
}

export class DeviceRegistry {
  readonly #db: Queryable
  readonly #tokens: Lookups
  readonly #ids: Lookups
  readonly #now: () => number
  readonly #reachable: () => boolean
  readonly #timeoutMs: number
  readonly #onRefused: (reason: RefusalReason) => void
  readonly #onStale: () => void
  /** Raised by forget/clear: a lookup that started before must not cache what it read. */
  #generation = 0

  constructor (db: Queryable, options: DeviceRegistryOptions = {}) {
    this.#db = db
    const o = { ...defaultRegistryOptions, ...options }
    this.#tokens = new Lookups(new TtlCache(o.maxEntries, o.ttlMs), new TtlCache(o.maxRefusedEntries, o.refusedTtlMs))
    this.#ids = new Lookups(new TtlCache(o.maxEntries, o.ttlMs), new TtlCache(o.maxRefusedEntries, o.ttlMs))
    this.#timeoutMs = o.lookupTimeoutMs
    this.#now = options.now ?? Date.now
    this.#reachable = options.reachable ?? (() => true)
    this.#onRefused = options.onRefused ?? (() => {})
    this.#onStale = options.onStale ?? (() => {})
  }

  /**
   * The device a token belongs to, or null (refused: see onRefused). Throws when the database
   * gives no answer and there is no old one (the caller answers "unavailable", not "refused").
   */
  async authenticate (token: string): Promise<Device | null> {
    if (!isWellFormedToken(token)) return this.#refuse('malformed')
    const hash = hashToken(token)
    return this.#answer(await this.#resolve(this.#tokens, hash.toString('base64'), async () => await findDeviceByTokenHash(this.#db, hash)))
  }

  /**
   * The registered, not revoked device with this id, or null (refused: see onRefused); throws as
   * `authenticate` does. For sources that name the device in the topic (an external broker).
   */
  async resolve (deviceId: string): Promise<Device | null> {
    if (!DEVICE_ID_PATTERN.test(deviceId)) return this.#refuse('malformed')
    return this.#answer(await this.#resolve(this.#ids, deviceId, async () => await findDevice(this.#db, deviceId)))
  }

  /** Drops what is cached for a device (after adding, revoking or rotating it in this process). */
  forget (deviceId: string): void {
    this.#generation++
    this.#tokens.accepted.deleteWhere(d => d.id === deviceId)
    this.#ids.accepted.delete(deviceId)
    this.#ids.refused.delete(deviceId)
  }

  clear (): void {
    this.#generation++
    for (const l of [this.#tokens, this.#ids]) {
      l.accepted.clear()
      l.refused.clear()
    }
  }

  /** Entries held by the caches of tokens (ids: `cachedIds`), expired ones included. */
  get cached (): { accepted: number, refused: number } {
    return { accepted: this.#tokens.accepted.size, refused: this.#tokens.refused.size }
  }

  get cachedIds (): { accepted: number, refused: number } {
    return { accepted: this.#ids.accepted.size, refused: this.#ids.refused.size }
  }

  async #resolve (l: Lookups, key: string, load: () => Promise<StoredDevice | null>): Promise<Lookup> {
    const now = this.#now()
    const accepted = l.accepted.peek(key, now)
    if (accepted?.fresh === true) return { device: accepted.value }
    const refused = l.refused.peek(key, now)
    if (refused?.fresh === true) return { refused: refused.value }
    const stale: Lookup | null = accepted !== undefined ? { device: accepted.value } : refused !== undefined ? { refused: refused.value } : null
    if (!this.#reachable()) {
      if (stale === null) throw new IotError('IOT_ERR_DB_UNAVAILABLE', 'the database is unreachable and this device was not looked up before')
      this.#onStale()
      return stale
    }
    let pending = l.pending.get(key)
    if (pending === undefined) {
      pending = this.#lookup(l, key, load).finally(() => { l.pending.delete(key) })
      l.pending.set(key, pending)
    }
    try {
      return await this.#within(pending)
    } catch (err) {
      if (stale === null) throw err
      this.#onStale()
      return stale
    }
  }

  /** The lookup's answer, or IOT_ERR_DB_UNAVAILABLE after lookupTimeoutMs (the lookup goes on, and caches what it finds). */
  async #within (pending: Promise<Lookup>): Promise<Lookup> {
    const timeout = new AbortController()
    try {
      return await Promise.race([
        pending,
        sleep(this.#timeoutMs, undefined, { signal: timeout.signal, ref: false }).then(() => {
          throw new IotError('IOT_ERR_DB_UNAVAILABLE', `the device lookup got no answer within ${this.#timeoutMs} ms`)
        })
      ])
    } finally {
      timeout.abort()
    }
  }

  async #lookup (l: Lookups, key: string, load: () => Promise<StoredDevice | null>): Promise<Lookup> {
    const generation = this.#generation
    const row = await load()
    const found: Lookup = row === null
      ? { refused: 'unknown' }
      : row.revokedAt !== null
        ? { refused: 'revoked' }
        : { device: Object.freeze({ id: row.id, name: row.name, location: row.location }) }
    if (generation === this.#generation) {
      const now = this.#now()
      if ('device' in found) {
        l.accepted.set(key, found.device, now)
        l.refused.delete(key)
      } else {
        l.refused.set(key, found.refused, now)
        l.accepted.delete(key)
      }
    }
    return found
  }

  #answer (found: Lookup): Device | null {
    return 'device' in found ? found.device : this.#refuse(found.refused)
  }

  #refuse (reason: RefusalReason): null {
    this.#onRefused(reason)
    return null
  }
}
