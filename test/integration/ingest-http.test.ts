// Devices writing over HTTP to the embedded system, with real clients: curl for the ThingsBoard
// JSON shapes, the official InfluxDB JavaScript client (and a gzip body) for line protocol. Each
// one's readings end up in sensor_readings with the device's sensor ids, location, type and time;
// bad input gets its documented answer and lands in the dead letters; nothing else stops. Then the
// system on 0.0.0.0: reading behind the viewer and admin tokens, the dashboard's session cookie for
// the live stream, a device over its rate limit, and the start refused without any token.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { InfluxDB, Point } from '@influxdata/influxdb-client'
import { pino } from 'pino'
import { startEmbedded, type RunningSystem } from '../../src/app/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { addDevice, revokeDevice } from '../../src/devices/index.ts'
import { createRandom } from '../../src/domain/index.ts'

const log = pino({ level: process.env.TEST_LOG ?? 'silent' })

/** curl, run asynchronously: the server answers from this same process. */
async function curl (args: string[], input?: string | Buffer): Promise<{ status: number, body: string }> {
  const child = spawn('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  child.stdin.end(input)
  const [code] = await once(child, 'exit') as [number | null]
  assert.equal(code, 0, `curl failed: ${err}`)
  const i = out.lastIndexOf('\n')
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) }
}

describe('HTTP device ingest (embedded system, real clients)', () => {
  let dir = ''
  let sys: RunningSystem
  let base = ''
  let token = ''
  let revokedToken = ''
  const db = (): NonNullable<RunningSystem['db']> => sys.db!
  const count = async (sql: string, params: unknown[] = []): Promise<number> => (await db().query<{ n: number }>(sql, params))[0]!.n
  async function until (what: string, ok: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 15_000
    while (!await ok()) {
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iot-ingest-http-'))
    const { config } = loadConfig(['start', '--data-dir', dir, '--port', '0', '--no-simulator', '--no-ml'], {})
    sys = await startEmbedded(config, log)
    base = await sys.app!.listen({ host: '127.0.0.1', port: 0 })
    token = (await addDevice(db(), { id: 'esp32-boiler', name: 'Boiler ESP32', location: 'Boiler Room' }, Date.now())).token
    revokedToken = (await addDevice(db(), { id: 'old-node', name: 'Old node', location: 'Lab' }, Date.now())).token
    await revokeDevice(db(), 'old-node', Date.now())
  })
  after(async () => {
    await sys.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('curl: the ThingsBoard shapes (server time, ts + values, an array) are stored as the device\'s sensors', async () => {
    const t0 = Date.now() - 60_000
    const url = `${base}/api/v1/${token}/telemetry`
    assert.deepEqual(await curl(['-H', 'content-type: application/json', '--data-binary', '@-', url], '{"temperature":22.5,"humidity":41}'), { status: 200, body: '{"accepted":2,"rejected":0}' })
    const arrayBody = JSON.stringify([{ ts: t0, values: { co2: 612 } }, { ts: t0 + 1000, values: { co2: 618, temp: 22.25 } }])
    assert.equal((await curl(['-H', 'content-type: application/json', '--data-binary', '@-', url], arrayBody)).status, 200)
    await until('5 readings stored', async () => await count("SELECT count(*)::int AS n FROM sensor_readings WHERE sensor_id LIKE 'esp32-boiler.%'") === 5)
    const rows = await db().query<{ sensor_id: string, sensor_type: string, location: string, value: number, ms: number }>(`
      SELECT sensor_id, sensor_type, location, value, (extract(epoch FROM timestamp) * 1000)::float8 AS ms FROM sensor_readings
      WHERE sensor_id LIKE 'esp32-boiler.%' AND timestamp <= 'epoch'::timestamptz + $1 * interval '1 millisecond' ORDER BY timestamp, sensor_id`, [t0 + 1000])
    assert.deepEqual(rows, [
      { sensor_id: 'esp32-boiler.co2', sensor_type: 'co2', location: 'Boiler Room', value: 612, ms: t0 },
      { sensor_id: 'esp32-boiler.co2', sensor_type: 'co2', location: 'Boiler Room', value: 618, ms: t0 + 1000 },
      { sensor_id: 'esp32-boiler.temperature', sensor_type: 'temperature', location: 'Boiler Room', value: 22.25, ms: t0 + 1000 }
    ])
  })

  test('curl: wrong, revoked and malformed tokens get 401 and store nothing; broken JSON and NaN get 400 and land in the dead letters', async () => {
    const before = await count('SELECT count(*)::int AS n FROM sensor_readings')
    for (const t of ['iotd_' + 'A'.repeat(43), revokedToken, 'nope']) {
      const r = await curl(['-H', 'content-type: application/json', '--data-binary', '{"temperature":1}', `${base}/api/v1/${t}/telemetry`])
      assert.equal(r.status, 401, t)
      assert.equal(JSON.parse(r.body).code, 'IOT_ERR_UNAUTHORIZED')
    }
    const broken = await curl(['-H', 'content-type: application/json', '--data-binary', '{"temperature":', `${base}/api/v1/${token}/telemetry`])
    assert.equal(broken.status, 400)
    assert.deepEqual([JSON.parse(broken.body).accepted, JSON.parse(broken.body).rejected, JSON.parse(broken.body).rejections[0].reason], [0, 1, 'invalid_json'])
    const nan = await curl(['-H', 'content-type: application/json', '--data-binary', '{"temperature":NaN,"humidity":40}', `${base}/api/v1/${token}/telemetry`])
    assert.equal(nan.status, 400)
    await until('the dead letters', async () => await count("SELECT count(*)::int AS n FROM dead_letters WHERE detail LIKE 'device esp32-boiler%'") === 2)
    assert.equal(await count('SELECT count(*)::int AS n FROM sensor_readings'), before, 'the refused writes stored nothing (the NaN payload as a whole is a dead letter)')
    const metrics = (await curl([`${base}/metrics`])).body
    assert.match(metrics, /^iot_ingest_refused_total\{reason="unknown"\} 1$/m)
    assert.match(metrics, /^iot_ingest_refused_total\{reason="revoked"\} 1$/m)
    assert.match(metrics, /^iot_ingest_refused_total\{reason="malformed"\} 1$/m)
  })

  test('the official InfluxDB client writes line protocol (gzip above 1 KB), stored with its times; a wrong token is its 401', async () => {
    const t0 = Date.now() - 30_000
    const write = new InfluxDB({ url: base, token }).getWriteApi('any-org', 'any-bucket', 'ms', { maxRetries: 0 })
    for (let i = 0; i < 100; i++) {
      write.writePoint(new Point('environment').tag('room', 'boiler').floatField('temperature', 20 + i / 100).intField('humidity', 40 + (i % 3)).timestamp(t0 + i * 100))
    }
    await write.close()
    await until('200 readings stored', async () => await count("SELECT count(*)::int AS n FROM sensor_readings WHERE sensor_id IN ('esp32-boiler.temperature', 'esp32-boiler.humidity') AND timestamp >= 'epoch'::timestamptz + $1 * interval '1 millisecond' AND timestamp < 'epoch'::timestamptz + ($1 + 10000) * interval '1 millisecond'", [t0]) === 200)
    const last = await db().query<{ value: number, ms: number }>(`SELECT value, (extract(epoch FROM timestamp) * 1000)::float8 AS ms FROM sensor_readings
      WHERE sensor_id = 'esp32-boiler.temperature' AND timestamp >= 'epoch'::timestamptz + $1 * interval '1 millisecond'
      AND timestamp < 'epoch'::timestamptz + ($1 + 10000) * interval '1 millisecond' ORDER BY timestamp DESC LIMIT 1`, [t0])
    assert.deepEqual(last, [{ value: 20.99, ms: t0 + 9900 }])
    const wrong = new InfluxDB({ url: base, token: 'iotd_' + 'B'.repeat(43) }).getWriteApi('o', 'b', 'ms', { maxRetries: 0 })
    wrong.writePoint(new Point('environment').floatField('temperature', 1))
    await assert.rejects(wrong.close(), (err: { statusCode?: number }) => err.statusCode === 401)
  })

  test('a device\'s fields written together are one device row: its own model scores them, and a broken relation alarms, named', async () => {
    const pump = (await addDevice(db(), { id: 'pump-7', name: 'Pump 7', location: 'Plant' }, Date.now())).token
    const t0 = Date.now() - 900_000
    const rnd = createRandom(5)
    const write = new InfluxDB({ url: base, token: pump }).getWriteApi('o', 'b', 'ms', { maxRetries: 0 })
    // flow and current move together (one load), pressure on its own; from row 640 to 679 the current
    // goes against the flow (1.5σ either way): each value within its usual range, the relation broken.
    for (let i = 0; i < 720; i++) {
      const broken = i >= 640 && i < 680
      const n = rnd.normal()
      const load = broken ? Math.sign(n) * 1.5 : n
      write.writePoint(new Point('pump').floatField('flow', 30 + 3 * load + 0.3 * rnd.normal())
        .floatField('current', 12 + (broken ? -1.2 : 1.2) * load + 0.1 * rnd.normal()).floatField('pressure', 4 + 0.2 * rnd.normal()).timestamp(t0 + i * 1000))
    }
    await write.close()
    type Devices = { devices: Array<{ device: string, measurements: string[], last_score: number | null, anomalies_24h: number }> }
    await until('pump-7 scored to its last row', async () => {
      const d = (await (await fetch(`${base}/api/detection/devices`)).json() as Devices).devices.find(x => x.device === 'pump-7')
      return d !== undefined && (await (await fetch(`${base}/api/detection/devices/pump-7/scores?limit=1`)).json() as { scores: Array<{ ts: string }> }).scores[0]?.ts === new Date(t0 + 719_000).toISOString()
    })
    const listed = (await (await fetch(`${base}/api/detection/devices`)).json() as Devices).devices.find(x => x.device === 'pump-7')!
    // Line protocol carries a point's fields sorted by name.
    assert.deepEqual(listed.measurements, ['current', 'flow', 'pressure'])
    const { scores } = await (await fetch(`${base}/api/detection/devices/pump-7/scores?limit=5000`)).json() as { scores: Array<{ ts: string, score: number, anomaly: boolean, model_version: string | null, explanation: string | null }> }
    // Scored from the 16th row after the first model was asked for (row 400), every row after.
    assert.equal(scores.length, 720 - 416)
    const alarmed = scores.filter(s => s.anomaly).map(s => (Date.parse(s.ts) - t0) / 1000)
    assert.ok(alarmed.length >= 20 && alarmed.every(i => i >= 640 && i < 690), `alarmed rows: ${alarmed.join(', ')}`)
    assert.equal(listed.anomalies_24h, alarmed.length)
    const first = scores.find(s => s.anomaly)!
    assert.match(first.model_version!, /^device:pump-7#\d+$/)
    // Current and flow named, not the pressure.
    assert.match(first.explanation!, /^device 0\.\d\d \(pump-7#\d+\): (current|flow) [^,]+, (current|flow) [^,]+$/)
    // Fitted on the training thread: /metrics tells how often the stream waited for it, and that no fit failed.
    const metrics = (await curl([`${base}/metrics`])).body
    assert.match(metrics, /^iot_training_waits \d+$/m)
    assert.match(metrics, /^iot_training_failures 0$/m)
    assert.match(metrics, /^iot_device_anomalies_total [1-9]\d*$/m)
  })

  test('10,000 malformed lines in one gzip write: 400 with the counts, every bad line a dead letter with its line number, the good lines kept', async () => {
    // Nanoseconds past 2^53: whole milliseconds as BigInt (a double would round some below their millisecond).
    const t0 = BigInt(Date.now() - 20_000) * 1_000_000n
    const lines: string[] = []
    for (let i = 0; i < 10_000; i++) {
      lines.push(`pressure value=${1000 + i / 1000} ${t0 + BigInt(i) * 1_000_000n}`)
      lines.push(`broken line ${i}`)
    }
    const body = gzipSync(lines.join('\n'))
    const r = await curl(['-H', `Authorization: Token ${token}`, '-H', 'Content-Encoding: gzip', '--data-binary', '@-', `${base}/api/v2/write?org=o&bucket=b&precision=ns`], body)
    assert.equal(r.status, 400, r.body)
    const answer = JSON.parse(r.body) as { accepted: number, rejected: number, rejections: Array<{ at: number, reason: string, detail: string }> }
    assert.deepEqual([answer.accepted, answer.rejected, answer.rejections.length], [10_000, 10_000, 20])
    assert.deepEqual(answer.rejections.slice(0, 2).map(x => [x.at, x.reason]), [[2, 'line_protocol'], [4, 'line_protocol']])
    await until('the good lines', async () => await count("SELECT count(*)::int AS n FROM sensor_readings WHERE sensor_id = 'esp32-boiler.pressure'") === 10_000)
    await until('the bad lines', async () => await count("SELECT count(*)::int AS n FROM dead_letters WHERE reason = 'line_protocol'") === 10_000)
    assert.equal(await count("SELECT count(*)::int AS n FROM dead_letters WHERE detail = 'device esp32-boiler, line 20000: ' || split_part(detail, ': ', 2)"), 1, 'the last bad line keeps its number')
  })
})

describe('beyond loopback: the embedded system on 0.0.0.0 with viewer and admin tokens, over real HTTP', () => {
  const VIEWER = 'viewer-token-of-the-test-0123'
  const ADMIN = 'admin-token-of-the-test-01234'
  let dir = ''
  let sys: RunningSystem
  let base = ''

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iot-access-http-'))
    const { config } = loadConfig([
      'start', '--data-dir', dir, '--host', '0.0.0.0', '--port', '0', '--no-simulator', '--no-ml', '--no-mqtt', '--device-rate-limit', '1'
    ], { IOT_VIEWER_TOKEN: VIEWER, IOT_ADMIN_TOKEN: ADMIN })
    sys = await startEmbedded(config, log)
    await sys.app!.listen({ host: config.host, port: 0 })
    const address = sys.app!.server.address()
    assert.ok(address !== null && typeof address === 'object')
    assert.equal(address.address, '0.0.0.0')
    base = `http://127.0.0.1:${address.port}`
  })
  after(async () => {
    await sys.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('with neither token the CLI refuses to start: exit 2, IOT_ERR_CONFIG saying what to give, nothing created', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'iot-access-refused-'))
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '--host', '0.0.0.0', '--port', '0', '--data-dir', empty, '--no-mqtt'], {
        cwd: new URL('../../', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, IOT_VIEWER_TOKEN: '', IOT_ADMIN_TOKEN: '', DATABASE_URL: '', KAFKA_BROKERS: '' }
      })
      let err = ''
      child.stderr.on('data', (d: Buffer) => { err += d.toString() })
      const [code] = await once(child, 'exit') as [number | null]
      assert.equal(code, 2)
      assert.match(err, /^error IOT_ERR_CONFIG: --host 0\.0\.0\.0 serves the API beyond this machine, where reading it needs a token, and none is configured: give IOT_VIEWER_TOKEN=/)
      assert.deepEqual(readdirSync(empty), [])
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })

  test('the read API, /metrics and the live stream need a token; /health, /ready and the dashboard page do not', async () => {
    for (const path of ['/api/meta', '/api/readings', '/metrics', '/api/live']) {
      const res = await fetch(base + path)
      assert.equal(res.status, 401, path)
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="iot-monitor"')
      assert.equal((await res.json() as { code: string }).code, 'IOT_ERR_UNAUTHORIZED')
    }
    for (const token of [VIEWER, ADMIN]) {
      const meta = await fetch(`${base}/api/meta`, { headers: { authorization: `Bearer ${token}` } })
      assert.equal(meta.status, 200)
      await meta.arrayBuffer()
    }
    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${VIEWER}` } })
    assert.match(await metrics.text(), /^iot_api_refused_total\{scope="read",reason="missing"\} 4$/m)
    for (const path of ['/health', '/ready', '/']) {
      const res = await fetch(base + path)
      assert.equal(res.status, 200, path)
      await res.arrayBuffer()
    }
  })

  test('the dashboard\'s way: POST /api/session with the token sets the cookie that opens the live stream', async () => {
    const session = await fetch(`${base}/api/session`, { method: 'POST', headers: { authorization: `Bearer ${VIEWER}` } })
    assert.equal(session.status, 200)
    assert.equal((await session.json() as { role: string }).role, 'viewer')
    const cookie = session.headers.get('set-cookie')!.split(';')[0]!
    const ctl = new AbortController()
    const live = await fetch(`${base}/api/live`, { headers: { cookie }, signal: ctl.signal })
    assert.equal(live.status, 200)
    assert.equal(live.headers.get('content-type'), 'text/event-stream; charset=utf-8')
    const reader = live.body!.getReader()
    const first = new TextDecoder().decode((await reader.read()).value)
    assert.ok(first.startsWith('retry: 2000\n: connected\n\n'), first)
    ctl.abort()
    await reader.cancel().catch(() => {})
  })

  test('a device made through the admin API writes with its own token, and past its rate (1/s, bursts of 2) gets 429 with Retry-After', async () => {
    const viewerAdd = await fetch(`${base}/api/admin/devices`, {
      method: 'POST', headers: { authorization: `Bearer ${VIEWER}`, 'content-type': 'application/json' }, body: JSON.stringify({ id: 'lan-node', name: 'LAN node', location: 'Lab' })
    })
    assert.equal(viewerAdd.status, 403)
    await viewerAdd.arrayBuffer()
    const added = await fetch(`${base}/api/admin/devices`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ id: 'lan-node', name: 'LAN node', location: 'Lab' })
    })
    assert.equal(added.status, 201)
    const { token: device } = await added.json() as { token: string }
    const post = async (): Promise<Response> => await fetch(`${base}/api/v1/${device}/telemetry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"temperature":21.5}' })
    const answers: Array<[number, string | null]> = []
    for (let i = 0; i < 3; i++) {
      const res = await post()
      answers.push([res.status, res.headers.get('retry-after')])
      await res.arrayBuffer()
    }
    assert.deepEqual(answers, [[200, null], [200, null], [429, '1']])
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text()
    assert.match(metrics, /^iot_ingest_refused_total\{reason="rate_limited"\} 1$/m)
  })
})
