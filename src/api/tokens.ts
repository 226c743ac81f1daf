// The API's bearer tokens: the viewer token reads, the admin token reads and manages (devices,
// later alarm actions). A presented token is compared with both as SHA-256 digests through
// timingSafeEqual, always both: the time taken says nothing about how much of a token a guess got
// right, nor which of the two it resembled.
import { createHash, timingSafeEqual } from 'node:crypto'

export type ApiRole = 'viewer' | 'admin'

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

/** The token of `Authorization: Bearer <token>` (scheme case-insensitive), or null when the header is absent or another shape. */
export function bearerToken (header: string | undefined): string | null {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '')
  return m === null ? null : m[1]!
}

export class ApiTokens {
  readonly #viewer: Buffer | null
  readonly #admin: Buffer | null
  readonly #sessionKey: Buffer

  constructor (tokens: { viewerToken: string | null, adminToken: string | null }) {
    this.#viewer = tokens.viewerToken === null ? null : digest(tokens.viewerToken)
    this.#admin = tokens.adminToken === null ? null : digest(tokens.adminToken)
    // Session cookies are signed with a key of the tokens: every api process with the same tokens
    // takes the others' cookies, and changing a token ends the sessions made with the old one.
    this.#sessionKey = createHash('sha256')
      .update(`iot-monitor session v1\n${tokens.viewerToken ?? ''}\n${tokens.adminToken ?? ''}`, 'utf8').digest()
  }

  /** Whether any token is configured (reading can be asked for one). */
  get any (): boolean {
    return this.#viewer !== null || this.#admin !== null
  }

  get hasAdmin (): boolean {
    return this.#admin !== null
  }

  /** The key that signs session cookies (see SessionCookies). */
  get sessionKey (): Buffer {
    return this.#sessionKey
  }

  /** The role of a presented token, or null when it is neither the viewer nor the admin token. */
  roleOf (token: string): ApiRole | null {
    const d = digest(token)
    // Both compared, whatever the first gives (`&&`/`||` would skip the second).
    const admin = this.#admin !== null && timingSafeEqual(d, this.#admin)
    const viewer = this.#viewer !== null && timingSafeEqual(d, this.#viewer)
    return admin ? 'admin' : viewer ? 'viewer' : null
  }
}
