import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SESSION_TTL_MS, SessionCookies, cookieValue } from './session.ts'
import { ApiTokens, bearerToken } from './tokens.ts'

const VIEWER = 'viewer-token-0123456789'
const ADMIN = 'admin-token-0123456789'

describe('bearerToken', () => {
  test('takes the token of "Bearer <token>" (any case, spaces or tabs around); anything else is null', () => {
    assert.equal(bearerToken(`Bearer ${VIEWER}`), VIEWER)
    assert.equal(bearerToken(`bearer \t${VIEWER}  `), VIEWER)
    for (const h of [undefined, '', 'Bearer', 'Bearer ', `Token ${VIEWER}`, `Basic ${VIEWER}`, 'Bearer a b', `Bearer${VIEWER}`]) assert.equal(bearerToken(h), null, String(h))
  })
})

describe('ApiTokens', () => {
  test('the role of a token: admin, viewer, or null; a prefix or a longer string is not the token', () => {
    const t = new ApiTokens({ viewerToken: VIEWER, adminToken: ADMIN })
    assert.deepEqual([t.roleOf(ADMIN), t.roleOf(VIEWER), t.roleOf(VIEWER.slice(0, -1)), t.roleOf(VIEWER + 'x'), t.roleOf('')], ['admin', 'viewer', null, null, null])
    assert.deepEqual([t.any, t.hasAdmin], [true, true])
  })

  test('with one token or none', () => {
    const viewerOnly = new ApiTokens({ viewerToken: VIEWER, adminToken: null })
    assert.deepEqual([viewerOnly.roleOf(VIEWER), viewerOnly.roleOf(ADMIN), viewerOnly.hasAdmin], ['viewer', null, false])
    const none = new ApiTokens({ viewerToken: null, adminToken: null })
    assert.deepEqual([none.roleOf(VIEWER), none.any], [null, false])
  })

  test('the session key follows the tokens: the same tokens, the same key (api processes share sessions); another token, another key', () => {
    const a = new ApiTokens({ viewerToken: VIEWER, adminToken: ADMIN }).sessionKey
    assert.deepEqual(new ApiTokens({ viewerToken: VIEWER, adminToken: ADMIN }).sessionKey, a)
    assert.notDeepEqual(new ApiTokens({ viewerToken: VIEWER + '1', adminToken: ADMIN }).sessionKey, a)
    assert.notDeepEqual(new ApiTokens({ viewerToken: ADMIN, adminToken: VIEWER }).sessionKey, a)
  })
})

describe('SessionCookies', () => {
  const key = new ApiTokens({ viewerToken: VIEWER, adminToken: null }).sessionKey
  const T0 = Date.UTC(2026, 0, 15, 12)

  test('a cookie issued now is good until its expiry, an hour later by default, then expired', () => {
    const s = new SessionCookies(key)
    const { value, expiresAt } = s.issue(T0)
    assert.equal(expiresAt, T0 + SESSION_TTL_MS)
    assert.match(value, /^v1\.\d+\.[A-Za-z0-9_-]{43}$/)
    const header = `theme=dark; iot_session=${value}; other=1`
    assert.deepEqual([s.check(header, T0), s.check(header, expiresAt - 1), s.check(header, expiresAt)], ['ok', 'ok', 'expired'])
  })

  test('a changed expiry, a changed signature, another key or a malformed value is invalid; none is missing', () => {
    const s = new SessionCookies(key)
    const { value } = s.issue(T0)
    const [v, exp, mac] = value.split('.') as [string, string, string]
    const later = `${v}.${Number(exp) + 3_600_000}.${mac}`
    const flipped = `${v}.${exp}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`
    for (const bad of [later, flipped, 'v1.1.x', 'garbage', `v2.${exp}.${mac}`]) assert.equal(s.check(`iot_session=${bad}`, T0), 'invalid', bad)
    const other = new SessionCookies(new ApiTokens({ viewerToken: 'another-viewer-token-0123', adminToken: null }).sessionKey)
    assert.equal(other.check(`iot_session=${value}`, T0), 'invalid')
    assert.deepEqual([s.check(undefined, T0), s.check('theme=dark', T0), s.check('iot_session=', T0)], ['missing', 'missing', 'missing'])
  })

  test('Set-Cookie: HttpOnly, SameSite=Strict, Path=/api, Max-Age of the lifetime; Secure over HTTPS', () => {
    const s = new SessionCookies(key, 600_000)
    assert.equal(s.setCookie('V', false), 'iot_session=V; Path=/api; Max-Age=600; HttpOnly; SameSite=Strict')
    assert.equal(s.setCookie('V', true), 'iot_session=V; Path=/api; Max-Age=600; HttpOnly; SameSite=Strict; Secure')
  })

  test('cookieValue finds a cookie by its exact name', () => {
    assert.equal(cookieValue('a=1; iot_session_x=2; iot_session=3', 'iot_session'), '3')
    assert.equal(cookieValue('a=1', 'iot_session'), null)
  })
})
