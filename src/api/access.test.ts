// Who may read, through app.inject(): the read API, /metrics and unknown /api paths behind the
// viewer or admin token (or a session cookie from POST /api/session) when reading needs a token;
// /health, /ready, the dashboard's page and device ingest open to it; nothing asked otherwise.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { type Db } from '../storage/index.ts'
import { testDatabases } from '../../test/helpers/databases.ts'
import { accessOf } from './access.ts'
import { buildApp, type ApiDeps } from './app.ts'

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0)
const VIEWER = 'viewer-token-for-the-tests-0123'
const ADMIN = 'admin-token-for-the-tests-01234'
const DEVICE = 'iotd_device-token-of-the-tests'
const status = (): { watermark: number, lag: number, latency: null } => ({ watermark: T0, lag: 0, latency: null })
const bearer = (t: string): { authorization: string } => ({ authorization: `Bearer ${t}` })

const MISSING = {
  error: 'unauthorized',
  code: 'IOT_ERR_UNAUTHORIZED',
  message: 'reading this API needs a token: send "Authorization: Bearer <viewer or admin token>" (the dashboard asks for it)'
}
const WRONG = { error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message: 'wrong token: neither the viewer nor the admin token of this server' }
const EXPIRED = {
  error: 'unauthorized',
  code: 'IOT_ERR_UNAUTHORIZED',
  message: 'the session has expired: send the token again (POST /api/session with "Authorization: Bearer <token>")'
}
const BAD_SESSION = {
  error: 'unauthorized',
  code: 'IOT_ERR_UNAUTHORIZED',
  message: 'the session cookie is not valid here (were the tokens changed?): send the token again (POST /api/session with "Authorization: Bearer <token>")'
}

/** A device ingest that knows one token and takes everything. */
const ingest: NonNullable<ApiDeps['ingest']> = {
  authenticate: async (token) => token === DEVICE ? { id: 'dev-1', name: 'Device 1', location: 'Lab' } : null,
  gateway: {
    telemetry: async () => ({ accepted: 1, rejected: 0, rejections: [] }),
    lineProtocol: async () => ({ accepted: 1, rejected: 0, rejections: [] })
  }
}

test('accessOf: routes by their pattern; paths no route has by the path', () => {
  const cases: Array<[string | undefined, string, string]> = [
    ['/health', '/health', 'open'],
    ['/ready', '/ready?x=1', 'open'],
    ['/api/session', '/api/session', 'open'],
    ['/', '/', 'open'],
    ['/index.html', '/index.html', 'open'],
    ['/metrics', '/metrics', 'read'],
    ['/api/readings', '/api/readings?limit=5', 'read'],
    ['/api/live', '/api/live', 'read'],
    ['/api/devices', '/api/devices', 'read'],
    ['/api/admin/devices/:id/rotate', '/api/admin/devices/x/rotate', 'admin'],
    ['/api/v1/:token/telemetry', '/api/v1/abc/telemetry', 'device'],
    ['/api/v2/write', '/api/v2/write?precision=ms', 'device'],
    [undefined, '/api/nothing-here?x=1', 'read'],
    [undefined, '/api/v1/abc/telemetry', 'read'],
    [undefined, '/some/page', 'open']
  ]
  for (const [route, url, expected] of cases) assert.equal(accessOf(route, url), expected, `${route ?? '(no route)'} ${url}`)
})

for (const tdb of [testDatabases[0]!]) {
  describe(`reading needs a token (${tdb.name})`, () => {
    let ctx: Awaited<ReturnType<typeof tdb.create>>
    let db: Db
    let app: FastifyInstance
    let registry: Registry
    const clock = { now: T0 }
    before(async () => {
      ctx = await tdb.create()
      db = ctx.db
      registry = new Registry()
      app = await buildApp({
        db, registry, status, webRoot: null, now: () => clock.now, viewerToken: VIEWER, adminToken: ADMIN, readRequiresToken: true, ingest
      })
    })
    after(async () => {
      await app.close()
      await ctx.drop()
    })

    test('the read API and /metrics: 401 without a token or with a wrong one (RFC 6750 WWW-Authenticate); 200 with the viewer or the admin token', async () => {
      for (const url of ['/api/meta', '/api/readings?limit=5', '/api/devices', '/api/pipeline', '/metrics']) {
        const none = await app.inject({ url })
        assert.equal(none.statusCode, 401, url)
        assert.equal(none.headers['www-authenticate'], 'Bearer realm="iot-monitor"')
        assert.deepEqual(none.json(), MISSING)
        const notBearer = await app.inject({ url, headers: { authorization: `Token ${VIEWER}` } })
        assert.deepEqual([notBearer.statusCode, notBearer.json()], [401, MISSING], `${url}: another scheme is no token`)
        const wrong = await app.inject({ url, headers: bearer('not-the-token-0123456789') })
        assert.equal(wrong.statusCode, 401, url)
        assert.equal(wrong.headers['www-authenticate'], 'Bearer realm="iot-monitor", error="invalid_token"')
        assert.deepEqual(wrong.json(), WRONG)
        for (const t of [VIEWER, ADMIN]) assert.equal((await app.inject({ url, headers: bearer(t) })).statusCode, 200, `${url} with ${t}`)
      }
    })

    test('open whatever the tokens: /health, /ready, the dashboard\'s page; device ingest keeps its device tokens', async () => {
      for (const url of ['/health', '/ready', '/']) assert.equal((await app.inject({ url })).statusCode, 200, url)
      const telemetry = await app.inject({ method: 'POST', url: `/api/v1/${DEVICE}/telemetry`, payload: '{"temperature":1}' })
      assert.deepEqual([telemetry.statusCode, telemetry.json()], [200, { accepted: 1, rejected: 0 }])
      const write = await app.inject({ method: 'POST', url: '/api/v2/write', headers: { authorization: `Token ${DEVICE}` }, payload: 'm value=1' })
      assert.equal(write.statusCode, 204)
      // The viewer token is not a device token.
      const viewerAsDevice = await app.inject({ method: 'POST', url: `/api/v1/${VIEWER}/telemetry`, payload: '{"temperature":1}' })
      assert.deepEqual([viewerAsDevice.statusCode, viewerAsDevice.json().message], [401, 'unknown, revoked or missing device token'])
    })

    test('an unknown /api path waits for a token before its 404; an encoded path is judged by the route it reaches', async () => {
      assert.equal((await app.inject({ url: '/api/nothing-here' })).statusCode, 401)
      assert.equal((await app.inject({ url: '/api/nothing-here', headers: bearer(VIEWER) })).statusCode, 404)
      for (const url of ['/%61pi/meta', '/api/%6Deta', '/api/meta/', '/api//meta']) {
        assert.deepEqual([(await app.inject({ url })).statusCode, (await app.inject({ url, headers: bearer(VIEWER) })).statusCode < 500], [401, true], url)
      }
    })

    test('POST /api/session: a viewer token gets an HttpOnly SameSite=Strict cookie that opens the read API (the live stream) for an hour, not the admin API', async () => {
      const none = await app.inject({ method: 'POST', url: '/api/session' })
      assert.deepEqual([none.statusCode, none.json(), none.headers['set-cookie']], [401, MISSING, undefined])
      const wrong = await app.inject({ method: 'POST', url: '/api/session', headers: bearer('not-the-token-0123456789') })
      assert.deepEqual([wrong.statusCode, wrong.json()], [401, WRONG])

      const res = await app.inject({ method: 'POST', url: '/api/session', headers: bearer(VIEWER) })
      assert.equal(res.statusCode, 200)
      assert.deepEqual(res.json(), { role: 'viewer', expires_at: '2026-01-15T13:00:00.000Z' })
      assert.equal(res.headers['cache-control'], 'no-store')
      const setCookie = String(res.headers['set-cookie'])
      assert.match(setCookie, /^iot_session=v1\.\d+\.[A-Za-z0-9_-]{43}; Path=\/api; Max-Age=3600; HttpOnly; SameSite=Strict$/)
      const cookie = setCookie.split(';')[0]!
      assert.equal((await app.inject({ url: '/api/meta', headers: { cookie } })).statusCode, 200)
      // A header, when sent, is judged alone: a wrong token is not saved by a good cookie.
      assert.equal((await app.inject({ url: '/api/meta', headers: { cookie, ...bearer('not-the-token-0123456789') } })).statusCode, 401)
      // Never the admin API.
      const adminWithCookie = await app.inject({ url: '/api/admin/devices', headers: { cookie } })
      assert.deepEqual([adminWithCookie.statusCode, adminWithCookie.json().code], [401, 'IOT_ERR_UNAUTHORIZED'])
      const admin = await app.inject({ method: 'POST', url: '/api/session', headers: bearer(ADMIN) })
      assert.equal(admin.json().role, 'admin')

      clock.now = T0 + 3_600_000
      try {
        const expired = await app.inject({ url: '/api/meta', headers: { cookie } })
        assert.equal(expired.statusCode, 401)
        assert.equal(expired.headers['www-authenticate'], 'Bearer realm="iot-monitor", error="invalid_token"')
        assert.deepEqual(expired.json(), EXPIRED)
      } finally {
        clock.now = T0
      }
      const forged = await app.inject({ url: '/api/meta', headers: { cookie: cookie.replace(/\.\d+\./, '.99999999999999.') } })
      assert.deepEqual([forged.statusCode, forged.json()], [401, BAD_SESSION])
    })

    test('the admin API: the admin token manages, the viewer token is a 403 (insufficient scope)', async () => {
      const viewer = await app.inject({ url: '/api/admin/devices', headers: bearer(VIEWER) })
      assert.equal(viewer.statusCode, 403)
      assert.equal(viewer.headers['www-authenticate'], 'Bearer realm="iot-monitor", error="insufficient_scope"')
      assert.deepEqual(viewer.json(), { error: 'forbidden', code: 'IOT_ERR_FORBIDDEN', message: 'the viewer token reads; managing devices needs the admin token' })
      assert.equal((await app.inject({ url: '/api/admin/devices', headers: bearer(ADMIN) })).statusCode, 200)
    })
  })
}

test('refusals are counted in iot_api_refused_total by scope and reason; reading open (loopback) asks nothing and POST /api/session sets no cookie', async () => {
  const db = { kind: 'pglite', query: async () => [], copyFrom: async () => {} }
  const registry = new Registry()
  const clock = { now: T0 }
  const app = await buildApp({ db, registry, status, webRoot: null, now: () => clock.now, viewerToken: VIEWER, adminToken: ADMIN, readRequiresToken: true })
  try {
    await app.inject({ url: '/metrics' })
    await app.inject({ url: '/metrics', headers: { authorization: 'Basic eDp5' } })
    await app.inject({ url: '/metrics', headers: bearer('not-the-token-0123456789') })
    await app.inject({ method: 'POST', url: '/api/session', headers: bearer('not-the-token-0123456789') })
    const cookie = String((await app.inject({ method: 'POST', url: '/api/session', headers: bearer(VIEWER) })).headers['set-cookie']).split(';')[0]!
    clock.now += 3_600_000
    await app.inject({ url: '/metrics', headers: { cookie } })
    await app.inject({ url: '/metrics', headers: { cookie: 'iot_session=forged' } })
    await app.inject({ url: '/api/admin/devices' })
    await app.inject({ url: '/api/admin/devices', headers: bearer(VIEWER) })
    await app.inject({ url: '/api/admin/devices', headers: bearer('not-the-token-0123456789') })
    const text = (await app.inject({ url: '/metrics', headers: bearer(VIEWER) })).body
    const counts = [...text.matchAll(/^iot_api_refused_total\{(.*)\} (\d+)$/gm)].map(m => `${m[1]} ${m[2]}`)
    assert.deepEqual(counts, [
      'scope="read",reason="missing" 2',
      'scope="read",reason="invalid" 3',
      'scope="read",reason="expired" 1',
      'scope="admin",reason="missing" 1',
      'scope="admin",reason="forbidden" 1',
      'scope="admin",reason="invalid" 1'
    ])
  } finally {
    await app.close()
  }

  const open = await buildApp({ db, registry: new Registry(), status, webRoot: null, viewerToken: null, adminToken: ADMIN })
  try {
    for (const url of ['/api/meta', '/metrics', '/api/nothing-here']) assert.notEqual((await open.inject({ url })).statusCode, 401, url)
    const session = await open.inject({ method: 'POST', url: '/api/session', headers: bearer('anything-at-all-0123') })
    assert.deepEqual([session.statusCode, session.json(), session.headers['set-cookie']], [200, { role: null, expires_at: null }, undefined])
  } finally {
    await open.close()
  }
})

test('reading that needs a token with no token configured is refused at build: IOT_ERR_CONFIG', async () => {
  const db = { kind: 'pglite', query: async () => [], copyFrom: async () => {} }
  await assert.rejects(buildApp({ db, registry: new Registry(), status, webRoot: null, readRequiresToken: true }), {
    name: 'IotError', code: 'IOT_ERR_CONFIG', message: 'reading needs a token, and neither a viewer nor an admin token is configured'
  })
})
