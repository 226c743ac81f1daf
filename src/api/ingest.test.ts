// The limits of HTTP device ingest through app.inject(), with the real DeviceGateway on a memory
// bus: the per-device rate (429 with Retry-After, checked before the body is read), the body size
// (413, also after gzip), and a payload's bytes and values and a body's lines (400 with the
// reason, the rest kept); each answered in the route's shape and counted by reason.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { type FastifyInstance, type InjectOptions } from 'fastify'
import { Registry } from 'prom-client'
import { MemoryBus } from '../bus/index.ts'
import { type IngestDevice } from '../ingest/index.ts'
import { DeviceGateway } from '../sources/index.ts'
import { buildApp, type ApiDeps } from './app.ts'

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0)
const TOKENS: Record<string, IngestDevice> = {
  'iotd_token-of-dev-1': { id: 'dev-1', name: 'Device 1', location: 'Lab' },
  'iotd_token-of-dev-2': { id: 'dev-2', name: 'Device 2', location: 'Lab' }
}
const status = (): { watermark: number, lag: number, latency: null } => ({ watermark: T0, lag: 0, latency: null })
const db = { kind: 'pglite', query: async () => [], copyFrom: async () => {} }
const telemetry = (token: string, payload: string | Buffer, headers: Record<string, string> = {}): InjectOptions =>
  ({ method: 'POST', url: `/api/v1/${token}/telemetry`, payload, headers: { 'content-type': 'application/json', ...headers } })
const write = (token: string, payload: string | Buffer, headers: Record<string, string> = {}): InjectOptions =>
  ({ method: 'POST', url: '/api/v2/write?precision=ms', payload, headers: { authorization: `Token ${token}`, ...headers } })

async function ingestApp (rateLimit: NonNullable<ApiDeps['ingest']>['rateLimit'], clock: { now: number }): Promise<{ app: FastifyInstance, registry: Registry, bus: MemoryBus }> {
  const bus = new MemoryBus({ capacity: 1_000_000 })
  const gateway = new DeviceGateway({ producer: bus.producer(), clock: () => clock.now })
  const registry = new Registry()
  const app = await buildApp({
    db,
    registry,
    status,
    webRoot: null,
    now: () => clock.now,
    ingest: { authenticate: async (token) => TOKENS[token] ?? null, gateway, ...(rateLimit === undefined ? {} : { rateLimit }) }
  })
  return { app, registry, bus }
}

const refusals = async (registry: Registry): Promise<string[]> =>
  [...(await registry.getSingleMetricAsString('iot_ingest_refused_total')).matchAll(/^iot_ingest_refused_total\{(.*)\} (\d+)$/gm)].map(m => `${m[1]} ${m[2]}`)

describe('HTTP ingest: the per-device rate limit', () => {
  const clock = { now: T0 }
  let app: FastifyInstance
  let registry: Registry
  before(async () => { ({ app, registry } = await ingestApp({ perSecond: 2, burst: 3 }, clock)) })
  after(async () => { await app.close() })

  test('past its burst a device gets 429 with Retry-After and a clear message, in each route\'s shape; another device is not held up; the refill lets it in again', async () => {
    const codes: number[] = []
    for (let i = 0; i < 3; i++) codes.push((await app.inject(telemetry('iotd_token-of-dev-1', '{"temperature":21}'))).statusCode)
    assert.deepEqual(codes, [200, 200, 200])
    const limited = await app.inject(telemetry('iotd_token-of-dev-1', '{"temperature":21}'))
    assert.equal(limited.statusCode, 429)
    assert.equal(limited.headers['retry-after'], '1')
    assert.deepEqual(limited.json(), {
      error: 'too_many_requests', code: 'IOT_ERR_RATE_LIMITED', message: 'device dev-1 is over its rate limit of 2 requests/s (bursts of 3); retry after 1 s'
    })
    // One bucket per device, whichever route it writes to.
    const influx = await app.inject(write('iotd_token-of-dev-1', 'environment temperature=21'))
    assert.equal(influx.statusCode, 429)
    assert.equal(influx.headers['retry-after'], '1')
    assert.deepEqual(influx.json(), { code: 'too many requests', message: 'device dev-1 is over its rate limit of 2 requests/s (bursts of 3); retry after 1 s' })
    assert.equal((await app.inject(write('iotd_token-of-dev-2', 'environment temperature=21'))).statusCode, 204)
    // A wrong token is a 401, never a 429, and takes nothing from anyone's bucket.
    assert.equal((await app.inject(telemetry('iotd_wrong', '{"temperature":21}'))).statusCode, 401)
    clock.now += 500
    assert.equal((await app.inject(telemetry('iotd_token-of-dev-1', '{"temperature":21}'))).statusCode, 200)
    assert.equal((await app.inject(telemetry('iotd_token-of-dev-1', '{"temperature":21}'))).statusCode, 429)
    assert.deepEqual(await refusals(registry), ['reason="rate_limited" 3'])
  })

  test('refused before the body is read: a limited device\'s oversized body is a 429, not a 413', async () => {
    const res = await app.inject(telemetry('iotd_token-of-dev-1', Buffer.alloc(2 * 1024 * 1024, 0x20)))
    assert.equal(res.statusCode, 429)
  })
})

describe('HTTP ingest: no rate limit (--device-rate-limit off)', () => {
  test('a hundred requests at the same instant are all taken', async () => {
    const { app, registry } = await ingestApp(null, { now: T0 })
    try {
      for (let i = 0; i < 100; i++) assert.equal((await app.inject(telemetry('iotd_token-of-dev-1', '{"temperature":21}'))).statusCode, 200)
      assert.deepEqual(await refusals(registry), [])
    } finally {
      await app.close()
    }
  })
})

describe('HTTP ingest: the size limits', () => {
  const clock = { now: T0 }
  let app: FastifyInstance
  let registry: Registry
  before(async () => { ({ app, registry } = await ingestApp(null, clock)) })
  after(async () => { await app.close() })

  test('a telemetry body over 1 MiB is a 413 IOT_ERR_TOO_LARGE; a write body over 16 MiB, plain or decompressed, is InfluxDB\'s 413 "request too large"', async () => {
    const big = await app.inject(telemetry('iotd_token-of-dev-1', Buffer.alloc(1024 * 1024 + 1, 0x20)))
    assert.equal(big.statusCode, 413)
    assert.deepEqual(big.json(), {
      error: 'payload_too_large', code: 'IOT_ERR_TOO_LARGE', message: 'the body is larger than 1048576 bytes (the limit of this endpoint); send smaller batches'
    })
    const huge = await app.inject(write('iotd_token-of-dev-1', Buffer.alloc(16 * 1024 * 1024 + 1, 0x0a)))
    assert.equal(huge.statusCode, 413)
    assert.deepEqual(huge.json(), { code: 'request too large', message: 'the body is larger than 16777216 bytes (the limit of this endpoint); send smaller batches' })
    const bomb = await app.inject(write('iotd_token-of-dev-1', gzipSync(Buffer.alloc(16 * 1024 * 1024 + 1, 0x0a)), { 'content-encoding': 'gzip' }))
    assert.equal(bomb.statusCode, 413)
    assert.deepEqual(bomb.json(), {
      code: 'request too large', message: 'the body decompresses to more than 16777216 bytes (the limit of this endpoint); send smaller batches'
    })
    // At the limit it is read (blank lines only: nothing to take, nothing to reject).
    assert.equal((await app.inject(write('iotd_token-of-dev-1', gzipSync(Buffer.alloc(16 * 1024 * 1024, 0x0a)), { 'content-encoding': 'gzip' }))).statusCode, 204)
    assert.deepEqual(await refusals(registry), ['reason="too_large" 3'])
  })

  test('a JSON payload over 64 KiB or with more than 1,000 values: 400 with its reason, the payload a dead letter', async () => {
    const long = JSON.stringify({ temperature: 21, note: 'x'.repeat(64 * 1024) })
    const tooLong = await app.inject(telemetry('iotd_token-of-dev-1', long))
    assert.equal(tooLong.statusCode, 400)
    assert.deepEqual(tooLong.json(), {
      code: 'invalid',
      message: 'partial write: 0 readings accepted, 1 rejected (kept in the dead letters)',
      accepted: 0,
      rejected: 1,
      rejections: [{ at: -1, reason: 'too_large', detail: 'device dev-1: payload exceeds 65536 bytes' }]
    })
    const values = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`m${i}`, i]))
    const tooMany = await app.inject(telemetry('iotd_token-of-dev-1', JSON.stringify(values)))
    assert.equal(tooMany.statusCode, 400)
    assert.deepEqual(tooMany.json().rejections, [{ at: -1, reason: 'too_many_values', detail: 'device dev-1: 1001 values in one payload, at most 1000' }])
  })

  test('a line-protocol body of more than 50,000 lines: the first 50,000 are taken, the rest is one too_many_lines rejection', async () => {
    const lines = Array.from({ length: 50_001 }, (_, i) => `environment temperature=${20 + (i % 10)} ${T0 - 60_000 + i}`)
    const res = await app.inject(write('iotd_token-of-dev-1', lines.join('\n')))
    assert.equal(res.statusCode, 400)
    assert.deepEqual(res.json(), {
      code: 'invalid',
      message: 'partial write: 50000 readings accepted, 1 rejected (kept in the dead letters)',
      accepted: 50_000,
      rejected: 1,
      rejections: [{ at: 50_001, reason: 'too_many_lines', detail: 'device dev-1, line 50001: the body has more than 50000 lines; lines from 50001 on were not read' }]
    })
  })
})

test('Fastify\'s own refusals are client errors in the API\'s shape, not 500s: broken JSON to the admin API, a body over the default limit', async () => {
  const app = await buildApp({ db, registry: new Registry(), status, webRoot: null, adminToken: 'admin-token-for-the-tests-01234' })
  try {
    const headers = { authorization: 'Bearer admin-token-for-the-tests-01234', 'content-type': 'application/json' }
    const broken = await app.inject({ method: 'POST', url: '/api/admin/devices', headers, payload: '{"id":' })
    assert.equal(broken.statusCode, 400)
    assert.equal(broken.json().code, 'IOT_ERR_VALIDATION')
    const big = await app.inject({ method: 'POST', url: '/api/admin/devices', headers, payload: `{"id":"${'x'.repeat(1024 * 1024)}"}` })
    assert.deepEqual([big.statusCode, big.json()], [413, { error: 'payload_too_large', code: 'IOT_ERR_TOO_LARGE', message: 'the request body is larger than this endpoint takes' }])
  } finally {
    await app.close()
  }
})
