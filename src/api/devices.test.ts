// The devices endpoints through app.inject() on every test database: GET /api/devices for the
// dashboard (status, last seen, the sensors of each device), and the admin API behind its bearer token (403 while none is configured, 401 without
// or with a wrong one).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type FastifyInstance } from 'fastify'
import { DeviceRegistry, hashToken } from '../devices/index.ts'
import { PipelineMetrics } from '../pipeline/index.ts'
import { type ScoredReading } from '../domain/index.ts'
import { type Db, recordDevicesSeen, upsertSensors } from '../storage/index.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import { buildApp } from './app.ts'
import { type AdminDeviceJson, type DeviceListJson } from './contract.ts'

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0)
const iso = (ms: number): string => new Date(ms).toISOString()
const ADMIN = 'admin-token-for-the-tests-0123456789'
const TOKEN = /^iotd_[A-Za-z0-9_-]{43}$/
const status = (): { watermark: number, lag: number, latency: null } => ({ watermark: T0, lag: 0, latency: null })
/** A stored reading of a sensor at T0 (only its sensor row matters here). */
const scored = (sensorId: string, sensorType: string, unit: string, ts = T0): ScoredReading => ({
  reading: { sensorId, sensorType, location: 'Basement', value: 1, ts, unit, anomaly: null, anomalyKind: null, seq: null },
  verdict: { ruleAnomaly: false, zScore: 0, zAnomaly: false, mlScore: null, mlAnomaly: null, modelVersion: null, stuck: false, drift: false, anomalyScore: 0, anomaly: false, severity: null, explanation: null }
})

/** An admin view of a device added at T0 and never heard. */
const admin = (over: Partial<AdminDeviceJson> & Pick<AdminDeviceJson, 'id' | 'name' | 'location'>): AdminDeviceJson => ({
  last_seen: null, status: 'unknown', created_at: iso(T0), token_issued_at: iso(T0), revoked_at: null, connection: null, connection_at: null, ...over
})

test('without an admin token every admin route answers 403 saying how to turn it on; GET /api/devices stays open', async () => {
  const tdb = testDatabases[0]!
  const ctx = await tdb.create()
  const app = await buildApp({ db: ctx.db, registry: new PipelineMetrics(undefined, false).registry, status, webRoot: null })
  try {
    const forbidden = {
      error: 'forbidden',
      code: 'IOT_ERR_FORBIDDEN',
      message: 'the admin API is off: no admin token is configured; start the server with IOT_ADMIN_TOKEN=<at least 16 characters> (or --admin-token)'
    }
    for (const [method, url] of [['GET', '/api/admin/devices'], ['POST', '/api/admin/devices'], ['POST', '/api/admin/devices/x/rotate'], ['POST', '/api/admin/devices/x/revoke']] as const) {
      for (const authorization of [undefined, 'Bearer anything-at-all-0123456789']) {
        const res = await app.inject({ method, url, headers: authorization === undefined ? {} : { authorization }, ...(method === 'POST' ? { payload: {} } : {}) })
        assert.equal(res.statusCode, 403, `${method} ${url}`)
        assert.deepEqual(res.json(), forbidden)
      }
    }
    const open = await app.inject({ method: 'GET', url: '/api/devices' })
    assert.equal(open.statusCode, 200)
    const body = open.json<{ as_of: string, online_within_s: number, devices: unknown[] }>()
    assert.deepEqual({ ...body, as_of: '' }, { as_of: '', online_within_s: 120, devices: [] })
    assert.ok(Math.abs(Date.parse(body.as_of) - Date.now()) < 60_000, `as_of is the wall clock: ${body.as_of}`)
  } finally {
    await app.close()
    await ctx.drop()
  }
})

test('a database failure in an admin route is answered by the app: 503 while unreachable, not a device error', async () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
  const failing = { kind: 'postgres', query: async () => { throw refused }, copyFrom: async () => { throw refused } }
  const app = await buildApp({ db: failing, registry: new PipelineMetrics(undefined, false).registry, status, adminToken: ADMIN, webRoot: null })
  try {
    const res = await app.inject({ method: 'POST', url: '/api/admin/devices/d1/revoke', headers: { authorization: `Bearer ${ADMIN}` } })
    assert.equal(res.statusCode, 503)
    assert.deepEqual(res.json(), { error: 'unavailable', code: 'IOT_ERR_DB_UNAVAILABLE', message: 'the database is unreachable; retry later' })
  } finally {
    await app.close()
  }
})

for (const tdb of testDatabases) {
  describe(`devices API on ${tdb.name}`, { skip: tdb.skip }, () => {
    const name = tdb.name
    let ctx: Awaited<ReturnType<TestDatabase['create']>>
    let db: Db
    let app: FastifyInstance
    let registry: DeviceRegistry
    const clock = { now: T0 }
    before(async () => {
      ctx = await tdb.create()
      db = ctx.db
      // A registry that trusts its cache for an hour: only forget() can make a change seen at once.
      registry = new DeviceRegistry(db, { ttlMs: 3_600_000 })
      app = await buildApp({
        db, registry: new PipelineMetrics(undefined, false).registry, status, adminToken: ADMIN, deviceRegistry: registry, now: () => clock.now, webRoot: null
      })
    })
    after(async () => {
      await app.close()
      await ctx.drop()
    })

    const call = async (method: 'GET' | 'POST', url: string, payload?: unknown, authorization: string | null = `Bearer ${ADMIN}`) => {
      const res = await app.inject({ method, url, headers: authorization === null ? {} : { authorization }, ...(payload === undefined ? {} : { payload: payload as object }) })
      return { status: res.statusCode, body: res.json() as unknown, headers: res.headers }
    }

    test(`${name}: 401 with WWW-Authenticate without a bearer token or with a wrong one`, async () => {
      const missing = await call('GET', '/api/admin/devices', undefined, null)
      assert.equal(missing.status, 401)
      assert.equal(missing.headers['www-authenticate'], 'Bearer realm="iot-monitor"')
      assert.deepEqual(missing.body, { error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message: 'the admin API needs "Authorization: Bearer <admin token>"' })
      for (const authorization of [`Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}`, 'Bearer', `Bearer ${ADMIN} extra`, `${ADMIN}`]) {
        const res = await call('POST', '/api/admin/devices', { id: 'x', name: 'X', location: 'L' }, authorization)
        assert.equal(res.status, 401, authorization)
        assert.equal(res.headers['www-authenticate'], 'Bearer realm="iot-monitor"')
      }
      for (const wrong of [ADMIN.slice(0, -1), `${ADMIN}x`, ADMIN.toUpperCase(), 'short']) {
        const res = await call('POST', '/api/admin/devices/x/revoke', undefined, `Bearer ${wrong}`)
        assert.equal(res.status, 401, wrong)
        assert.equal(res.headers['www-authenticate'], 'Bearer realm="iot-monitor", error="invalid_token"')
        assert.deepEqual(res.body, { error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message: 'wrong admin token' })
      }
      assert.equal((await call('GET', '/api/admin/devices', undefined, `bearer ${ADMIN}`)).status, 200, 'the scheme is case-insensitive')
      assert.deepEqual((await call('GET', '/api/admin/devices')).body, { devices: [] }, 'nothing was added by refused requests')
    })

    test(`${name}: POST adds a device: 201 with the token once (no-store); the token authenticates; 409 for a taken id, 400 for bad input`, async () => {
      clock.now = T0
      const res = await call('POST', '/api/admin/devices', { id: 'api-dev-1', name: 'Boiler node', location: 'Basement' })
      assert.equal(res.status, 201)
      assert.equal(res.headers['cache-control'], 'no-store')
      const body = res.body as { device: AdminDeviceJson, token: string }
      assert.deepEqual(Object.keys(body).sort(), ['device', 'token'])
      assert.match(body.token, TOKEN)
      assert.deepEqual(body.device, admin({ id: 'api-dev-1', name: 'Boiler node', location: 'Basement' }))
      assert.deepEqual(await registry.authenticate(body.token), { id: 'api-dev-1', name: 'Boiler node', location: 'Basement' })
      const [row] = await db.query<{ hash: string }>('SELECT encode(token_hash, \'hex\') AS hash FROM devices WHERE device_id = $1', ['api-dev-1'])
      assert.equal(row!.hash, hashToken(body.token).toString('hex'))

      const taken = await call('POST', '/api/admin/devices', { id: 'api-dev-1', name: 'Other', location: 'Hall' })
      assert.equal(taken.status, 409)
      assert.deepEqual(taken.body, { error: 'conflict', code: 'IOT_ERR_DEVICE_EXISTS', message: 'a device "api-dev-1" exists already (revoked devices keep their ids)' })

      const badId = await call('POST', '/api/admin/devices', { id: 'bad id', name: 'N', location: 'L' })
      assert.equal(badId.status, 400)
      assert.deepEqual(badId.body, { error: 'bad_request', code: 'IOT_ERR_VALIDATION', message: 'a device id is 1-64 of A-Z a-z 0-9 . _ -, got "bad id"' })
      for (const payload of [{ id: 'x'.repeat(65), name: 'N', location: 'L' }, { id: 'ok', name: '', location: 'L' }, { id: 'ok', name: 'N' },
        { id: 'ok', name: 'N', location: 'L', token: 'mine' }, { id: { no: 'object' }, name: 'N', location: 'L' }]) {
        const r = await call('POST', '/api/admin/devices', payload)
        assert.equal(r.status, 400, JSON.stringify(payload))
        assert.equal((r.body as { code: string }).code, 'IOT_ERR_VALIDATION')
      }
      assert.deepEqual((await call('GET', '/api/admin/devices')).body, { devices: [admin({ id: 'api-dev-1', name: 'Boiler node', location: 'Basement' })] })
    })

    test(`${name}: rotate gives a new token and the old one is refused at once in this process; 404 for an unknown device`, async () => {
      clock.now = T0
      const added = (await call('POST', '/api/admin/devices', { id: 'api-rot', name: 'R', location: 'Roof' })).body as { token: string }
      assert.equal((await registry.authenticate(added.token))?.id, 'api-rot')
      clock.now = T0 + 60_000
      const res = await call('POST', '/api/admin/devices/api-rot/rotate')
      assert.equal(res.status, 200)
      assert.equal(res.headers['cache-control'], 'no-store')
      const body = res.body as { device: AdminDeviceJson, token: string }
      assert.match(body.token, TOKEN)
      assert.notEqual(body.token, added.token)
      assert.deepEqual(body.device, admin({ id: 'api-rot', name: 'R', location: 'Roof', token_issued_at: iso(T0 + 60_000) }))
      assert.equal(await registry.authenticate(added.token), null, 'the registry was told: its cache entry is gone')
      assert.equal((await registry.authenticate(body.token))?.id, 'api-rot')

      const unknown = await call('POST', '/api/admin/devices/no-such-device/rotate')
      assert.equal(unknown.status, 404)
      assert.deepEqual(unknown.body, { error: 'not_found', code: 'IOT_ERR_DEVICE_NOT_FOUND', message: 'no device "no-such-device"' })
      const bad = await call('POST', '/api/admin/devices/bad%20id/rotate')
      assert.equal(bad.status, 400)
      assert.equal((bad.body as { code: string }).code, 'IOT_ERR_VALIDATION')
    })

    test(`${name}: revoke refuses the token at once here, twice is unchanged, a revoked device gets no new token (409); unknown: 404`, async () => {
      clock.now = T0
      const added = (await call('POST', '/api/admin/devices', { id: 'api-rev', name: 'V', location: 'Vault' })).body as { token: string }
      assert.equal((await registry.authenticate(added.token))?.id, 'api-rev')
      clock.now = T0 + 5000
      const res = await call('POST', '/api/admin/devices/api-rev/revoke')
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, { device: admin({ id: 'api-rev', name: 'V', location: 'Vault', revoked_at: iso(T0 + 5000) }), changed: true })
      assert.equal(await registry.authenticate(added.token), null)
      clock.now = T0 + 9000
      assert.deepEqual((await call('POST', '/api/admin/devices/api-rev/revoke')).body,
        { device: admin({ id: 'api-rev', name: 'V', location: 'Vault', revoked_at: iso(T0 + 5000) }), changed: false })
      const rotate = await call('POST', '/api/admin/devices/api-rev/rotate')
      assert.equal(rotate.status, 409)
      assert.deepEqual(rotate.body, { error: 'conflict', code: 'IOT_ERR_DEVICE_REVOKED', message: `device "api-rev" was revoked at ${iso(T0 + 5000)}; a revoked device gets no new token` })
      const unknown = await call('POST', '/api/admin/devices/no-such-device/revoke')
      assert.equal(unknown.status, 404)
      assert.deepEqual(unknown.body, { error: 'not_found', code: 'IOT_ERR_DEVICE_NOT_FOUND', message: 'no device "no-such-device"' })
    })

    test(`${name}: GET /api/devices lists the active devices with last seen, status and sensors, never a token or digest`, async () => {
      await recordDevicesSeen(db, new Map([['api-dev-1', T0 + 100_000], ['api-rot', T0 + 10_000]]))
      // Sensors as the worker stores them: the devices' own (`<device id>.<type>`), and others that
      // are not theirs: a simulator sensor, a sensor of a device `api-rot.x` (none such), a sensor
      // named off the convention, and one of the revoked device.
      await upsertSensors(db, [
        scored('api-dev-1.temperature', 'temperature', '°C'), scored('api-dev-1.humidity', 'humidity', '%'),
        scored('api-dev-1.power', 'power', ''), scored('api-dev-1.humidity', 'humidity', '%', T0 + 1000),
        scored('server-room-temperature-1', 'temperature', '°C'), scored('api-rot.x.temperature', 'temperature', '°C'),
        scored('api-rot.temp', 'temperature', '°C'), scored('api-rev.co2', 'co2', 'ppm')
      ])
      // The cadence the worker learnt, stored with the sensor (a batch that knows none keeps it).
      await upsertSensors(db, [scored('api-dev-1.temperature', 'temperature', '°C')], new Map([['api-dev-1.temperature', 5000]]))
      await upsertSensors(db, [scored('api-dev-1.temperature', 'temperature', '°C', T0 + 2000)])
      clock.now = T0 + 200_000
      const res = await call('GET', '/api/devices', undefined, null)
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, {
        as_of: iso(T0 + 200_000),
        online_within_s: 120,
        devices: [
          {
            id: 'api-dev-1',
            name: 'Boiler node',
            location: 'Basement',
            last_seen: iso(T0 + 100_000),
            status: 'online',
            sensors: [{ sensor_type: 'humidity', unit: '%', cadence_ms: null }, { sensor_type: 'power', unit: '', cadence_ms: null },
              { sensor_type: 'temperature', unit: '°C', cadence_ms: 5000 }]
          },
          { id: 'api-rot', name: 'R', location: 'Roof', last_seen: iso(T0 + 10_000), status: 'offline', sensors: [] }
        ]
      })
      // The staleness rule: heard 120 s ago is online, a millisecond more is offline.
      clock.now = T0 + 100_000 + 120_000
      const statuses = async (): Promise<string[]> =>
        ((await call('GET', '/api/devices', undefined, null)).body as DeviceListJson).devices.map(d => `${d.id}:${d.status}`)
      assert.deepEqual(await statuses(), ['api-dev-1:online', 'api-rot:offline'])
      clock.now += 1
      assert.deepEqual(await statuses(), ['api-dev-1:offline', 'api-rot:offline'])
      assert.equal((await call('GET', '/api/devices?limit=5', undefined, null)).status, 400, 'unknown query parameters are errors')
      const all = (await call('GET', '/api/admin/devices')).body as { devices: AdminDeviceJson[] }
      assert.deepEqual(all.devices.map(d => [d.id, d.status, d.revoked_at]), [
        ['api-dev-1', 'offline', null], ['api-rev', 'unknown', iso(T0 + 5000)], ['api-rot', 'offline', null]
      ])
      assert.equal(all.devices.some(d => 'sensors' in d), false, 'the admin list does not read sensors')
      for (const text of [JSON.stringify(res.body), JSON.stringify(all)]) assert.equal(/token\b|hash|iotd_/.test(text), false, text)
    })
  })
}
