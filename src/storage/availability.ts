// Whether the database answers: every query and transaction through a watched Db reports its
// outcome here, and a probe asks while nobody else does. The roles read it to back off (the
// worker), to answer 503 at once (the API), for /ready, the status line and /metrics.
import { IotError } from '../domain/index.ts'
import { type Db, type Queryable } from './db.ts'

/** postgres.js's own codes for a connection that closed, never opened or timed out. */
const DRIVER_CODES = new Set(['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT'])
/** Socket errors of a server that is down, restarting or out of reach. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])
/**
 * SQLSTATEs of a server going away or not accepting connections yet: admin_shutdown,
 * crash_shutdown, cannot_connect_now, too_many_connections (class 08 is checked apart).
 */
const SERVER_CODES = new Set(['57P01', '57P02', '57P03', '53300'])

/** True when `err` (or an error it wraps) says the database cannot be reached, not that a statement was wrong. */
export function isUnavailable (err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code !== 'string') continue
    if (code === 'IOT_ERR_DB_UNAVAILABLE' || DRIVER_CODES.has(code) || SOCKET_CODES.has(code) || SERVER_CODES.has(code) || code.startsWith('08')) return true
  }
  return false
}

/** A short reason for logs and /ready: the code and the first line of the message. */
function reasonOf (err: unknown): string {
  const e = err as { code?: unknown, message?: unknown }
  const message = typeof e.message === 'string' ? e.message.split('\n')[0]!.slice(0, 200) : String(err)
  return typeof e.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message
}

export interface AvailabilityState {
  reachable: boolean
  /** Wall time the database was first seen unreachable in this outage (null while reachable). */
  downSince: number | null
  /** Why the last attempt failed (null while reachable). */
  reason: string | null
  /** Times the database answered again after an outage. */
  reconnects: number
}

export type AvailabilityListener = (event: { reachable: boolean, reason: string | null, downForMs: number }) => void

/** What is known of the database's reachability (no I/O here: watchDb and the probe report to it). */
export class DbAvailability {
  #state: AvailabilityState = { reachable: true, downSince: null, reason: null, reconnects: 0 }
  readonly #clock: () => number
  readonly #listeners: AvailabilityListener[] = []

  constructor (clock: () => number = Date.now) {
    this.#clock = clock
  }

  get state (): Readonly<AvailabilityState> {
    return this.#state
  }

  get reachable (): boolean {
    return this.#state.reachable
  }

  /** Hears each change between reachable and unreachable. */
  onChange (listener: AvailabilityListener): void {
    this.#listeners.push(listener)
  }

  succeeded (): void {
    const s = this.#state
    if (s.reachable) return
    const downForMs = this.#clock() - (s.downSince ?? this.#clock())
    this.#state = { reachable: true, downSince: null, reason: null, reconnects: s.reconnects + 1 }
    for (const l of this.#listeners) l({ reachable: true, reason: null, downForMs })
  }

  /** Records a failure; true when it says the database is unreachable (other errors leave the state alone). */
  failed (err: unknown): boolean {
    if (!isUnavailable(err)) return false
    const s = this.#state
    const reason = reasonOf(err)
    if (!s.reachable) {
      this.#state = { ...s, reason }
      return true
    }
    this.#state = { ...s, reachable: false, downSince: this.#clock(), reason }
    for (const l of this.#listeners) l({ reachable: false, reason, downForMs: 0 })
    return true
  }
}

/** The same database, reporting the outcome of every statement, COPY and transaction to `availability`. */
export function watchDb (db: Db, availability: DbAvailability): Db {
  const watched = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      const result = await run()
      availability.succeeded()
      return result
    } catch (err) {
      availability.failed(err)
      throw err
    }
  }
  const queryable: Queryable = {
    query: async (text, params) => await watched(async () => await db.query(text, params)),
    copyFrom: async (table, columns, data) => { await watched(async () => { await db.copyFrom(table, columns, data) }) }
  }
  return {
    kind: db.kind,
    ...queryable,
    exec: async (script) => { await watched(async () => { await db.exec(script) }) },
    transaction: async (fn) => await watched(async () => await db.transaction(fn)),
    close: async () => { await db.close() }
  }
}

/** `SELECT 1`, failing with IOT_ERR_DB_UNAVAILABLE when no answer comes within `timeoutMs`. */
export async function answersWithin (db: Queryable, timeoutMs: number): Promise<void> {
  let timeout: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      db.query('SELECT 1'),
      new Promise<never>((_resolve, reject) => {
        timeout = setTimeout(() => { reject(new IotError('IOT_ERR_DB_UNAVAILABLE', `the database did not answer within ${timeoutMs} ms`)) }, timeoutMs)
      })
    ])
  } finally {
    clearTimeout(timeout)
  }
}

/**
 * Asks the database `SELECT 1` now and then: every `upMs` while it answers (an idle process
 * notices an outage), every `downMs` while it does not (it notices the return). An answer slower
 * than `timeoutMs` counts as unreachable. Returns a function that stops the probe.
 */
export function startProbe (db: Queryable, availability: DbAvailability, o: { upMs: number, downMs: number, timeoutMs: number }): () => void {
  let timer: NodeJS.Timeout | null = null
  let stopped = false
  const probe = async (): Promise<void> => {
    try {
      await answersWithin(db, o.timeoutMs)
      availability.succeeded()
    } catch (err) {
      // Any failure of SELECT 1 means the database cannot serve us.
      availability.failed(isUnavailable(err) ? err : new IotError('IOT_ERR_DB_UNAVAILABLE', reasonOf(err), { cause: err }))
    }
  }
  const next = (): void => {
    if (stopped) return
    timer = setTimeout(() => { probe().finally(next) }, availability.reachable ? o.upMs : o.downMs)
    timer.unref()
  }
  next()
  return () => {
    stopped = true
    if (timer !== null) clearTimeout(timer)
  }
}
