// Session cookies for the dashboard's live stream: a browser's EventSource cannot send an
// Authorization header, so POST /api/session with the token sets a short-lived cookie that the
// stream (and the other read endpoints) accept in place of it. HttpOnly (no script reads it),
// SameSite=Strict (no other site's page sends it), Path=/api, Secure over HTTPS. The value is
// `v1.<expiry, epoch ms>.<HMAC-SHA256 of both, base64url>`: nothing is stored on the server, and
// the cookie grants reading only, never the admin API.
import { createHmac, timingSafeEqual } from 'node:crypto'

export const SESSION_COOKIE = 'iot_session'
/** How long a session lasts; the dashboard makes a new one from the token it keeps when it ends. */
export const SESSION_TTL_MS = 3_600_000

export type SessionCheck = 'ok' | 'missing' | 'invalid' | 'expired'

/** The value of cookie `name` in a Cookie header, or null. */
export function cookieValue (header: string | undefined, name: string): string | null {
  if (header === undefined) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return null
}

export class SessionCookies {
  readonly #key: Buffer
  readonly ttlMs: number

  constructor (key: Buffer, ttlMs = SESSION_TTL_MS) {
    this.#key = key
    this.ttlMs = ttlMs
  }

  /** A new session's cookie value, valid for ttlMs from `nowMs`. */
  issue (nowMs: number): { value: string, expiresAt: number } {
    const expiresAt = nowMs + this.ttlMs
    const payload = `v1.${expiresAt}`
    return { value: `${payload}.${this.#mac(payload).toString('base64url')}`, expiresAt }
  }

  /** The Set-Cookie header of a session value (Secure when the request came over HTTPS). */
  setCookie (value: string, secure: boolean): string {
    return `${SESSION_COOKIE}=${value}; Path=/api; Max-Age=${Math.floor(this.ttlMs / 1000)}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`
  }

  /** Checks the session cookie of a Cookie header at `nowMs`. */
  check (cookieHeader: string | undefined, nowMs: number): SessionCheck {
    const value = cookieValue(cookieHeader, SESSION_COOKIE)
    if (value === null || value === '') return 'missing'
    const m = /^(v1\.(\d{1,16}))\.([A-Za-z0-9_-]{43})$/.exec(value)
    if (m === null) return 'invalid'
    const given = Buffer.from(m[3]!, 'base64url')
    if (given.length !== 32 || !timingSafeEqual(given, this.#mac(m[1]!))) return 'invalid'
    return Number(m[2]) > nowMs ? 'ok' : 'expired'
  }

  #mac (payload: string): Buffer {
    return createHmac('sha256', this.#key).update(payload, 'utf8').digest()
  }
}
