// The HTTP API over a seeded database (PGlite always, PostgreSQL when DATABASE_URL is set), driven
// with app.inject(): nothing listens on a port.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type FastifyInstance } from 'fastify'
import { type DeadLetter, type Reading, type ScoredReading, type Verdict } from '../domain/index.ts'
import { PipelineMetrics } from '../pipeline/index.ts'
import {
  type Db, type Queryable, countDetections, ensureDayPartitions, finalizeWindows, insertDeadLetters, insertLateReadings, insertReadings,
  mergeDetectionCounts, mergeWindowDeltas, saveModels
} from '../storage/index.ts'
import { type DetectionQuality } from '../anomaly/index.ts'
import { addToStats, createStatsAccumulator, type StatsAccumulator } from '../windowing/index.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import { buildApp } from './app.ts'

const MIN = 60_000
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0)
const iso = (ms: number): string => new Date(ms).toISOString()

function reading (over: Partial<Reading>): Reading {
  return { sensorId: 's', sensorType: 'temperature', location: 'lab', value: 21.5, ts: T0, unit: '°C', anomaly: false, anomalyKind: null, seq: 1, ...over }
}
function verdict (over: Partial<Verdict> = {}): Verdict {
  return { ruleAnomaly: false, zScore: 0.5, zAnomaly: false, mlScore: 0.25, mlAnomaly: false, modelVersion: 'if-1', anomaly: false, severity: null, explanation: null, ...over }
}
const scored = (r: Partial<Reading>, v: Partial<Verdict> = {}): ScoredReading => ({ reading: reading(r), verdict: verdict(v) })

function acc (values: number[], flags: { rule?: number, label?: number, z?: number, ml?: number } = {}): StatsAccumulator {
  const a = createStatsAccumulator()
  values.forEach((value, i) => addToStats(a, {
    value,
    ruleAnomaly: i < (flags.rule ?? 0),
    labelAnomaly: i < (flags.label ?? 0),
    zAnomaly: i < (flags.z ?? 0),
    mlAnomaly: i < (flags.ml ?? 0)
  }))
  return a
}

// The seeded rows (newest first where order matters).
const api1 = scored({ sensorId: 'api-1', location: 'lab', sensorType: 'temperature', ts: T0, value: 21.5, seq: 1 },
  { zScore: Infinity, zAnomaly: true })
const api2 = scored({ sensorId: 'api-2', location: 'lab', sensorType: 'humidity', ts: T0 + 1000, value: 45.25, unit: '%', anomaly: null, seq: null },
  { zScore: null, mlScore: null, mlAnomaly: null, modelVersion: null })
const api3 = scored({ sensorId: 'api-3', location: 'yard', sensorType: 'temperature', ts: T0 + 2000, value: 0.1 + 0.2, anomaly: true, anomalyKind: 'spike' },
  { ruleAnomaly: true, zScore: -Infinity, zAnomaly: true, anomaly: true, severity: 'critical', explanation: 'rule: above max 0.2 °C; z -Infinity (baseline 21 ± 0 °C)' })
const api4 = scored({ sensorId: 'api-4', location: 'yard', sensorType: 'temperature', ts: T0 + 3000, value: -4.5 },
  { zScore: NaN, mlScore: 0.875, mlAnomaly: true, modelVersion: 'if-2' })
/** 150 older readings of another location, for the default limit. */
const bulk = Array.from({ length: 150 }, (_, i) => scored({ sensorId: 'bulk-1', location: 'bulk', sensorType: 'co2', unit: 'ppm', ts: T0 - 3_600_000 + i * 1000, value: 400 + i }))
const TOTAL = 4 + bulk.length

const json = ({ reading: r, verdict: v }: ScoredReading): Record<string, unknown> => ({
  sensor_id: r.sensorId,
  sensor_type: r.sensorType,
  location: r.location,
  value: r.value,
  unit: r.unit,
  timestamp: iso(r.ts),
  anomaly: r.anomaly,
  anomaly_type: r.anomalyKind,
  rule_anomaly: v.ruleAnomaly,
  z_score: v.zScore === null || Number.isFinite(v.zScore) ? v.zScore : String(v.zScore),
  z_anomaly: v.zAnomaly,
  ml_score: v.mlScore,
  ml_anomaly: v.mlAnomaly,
  model_version: v.modelVersion,
  combined_anomaly: v.anomaly,
  severity: v.severity,
  explanation: v.explanation
})

const deadLetters: DeadLetter[] = [
  { raw: '{"sensor_id": "x", "value": ', reason: 'invalid_json', detail: 'Unexpected end of JSON input', source: 'http', receivedAt: T0 + 10 },
  { raw: 'nul\u0000 "quoted" °C', reason: 'schema', detail: '/value: must be number', source: 'kafka:iot_sensors/3@1234', receivedAt: T0 + 20 }
]

async function seed (db: Db): Promise<void> {
  await ensureDayPartitions(db, [T0, T0 - 3_600_000])
  await db.transaction(async tx => {
    await insertReadings(tx, [api1, api2, api3, api4, ...bulk])
    await mergeWindowDeltas(tx, [
      { location: 'lab', sensorType: 'temperature', start: T0, end: T0 + MIN, acc: acc([21.5, 22.5], { rule: 1, label: 2, z: 1 }) },
      { location: 'lab', sensorType: 'humidity', start: T0, end: T0 + MIN, acc: acc([45.25]) },
      { location: 'yard', sensorType: 'temperature', start: T0, end: T0 + MIN, acc: acc([1, 2, 3, 4], { ml: 3 }) },
      { location: 'yard', sensorType: 'temperature', start: T0 + MIN, end: T0 + 2 * MIN, acc: acc([5]) }
    ])
    await finalizeWindows(tx, T0 + MIN)
    await insertDeadLetters(tx, deadLetters)
    await mergeDetectionCounts(tx, countDetections([api1, api2, api3, api4, ...bulk]))
    await saveModels(tx, [{ version: 'temperature#2', key: 'temperature', sequence: 2, trainedAt: T0, samples: 1000, nEstimators: 1, maxSamples: 256, offset: -0.6, model: { trees: [] } }])
  })
  // A second delta for one window: revision 2.
  await mergeWindowDeltas(db, [{ location: 'yard', sensorType: 'temperature', start: T0 + MIN, end: T0 + 2 * MIN, acc: acc([7]) }])
  // Late readings in two batches (received_at differs), the later batch is the newer.
  await insertLateReadings(db, [{ reading: reading({ sensorId: 'late-1', location: 'lab', ts: T0 - 5 * MIN + 123 }), windowStart: T0 - 5 * MIN, watermark: T0, latenessMs: 5 * MIN - 123 }])
  await new Promise(resolve => setTimeout(resolve, 5))
  await insertLateReadings(db, [{ reading: reading({ sensorId: 'late-2', location: 'yard', sensorType: 'humidity', ts: T0 - 4 * MIN, value: 60 }), windowStart: T0 - 4 * MIN, watermark: T0 + 1, latenessMs: 4 * MIN + 1 }])
}

const ids = (body: { readings?: { sensor_id: string, timestamp: string }[], anomalies?: { sensor_id: string, timestamp: string }[] }): string[] =>
  (body.readings ?? body.anomalies ?? []).map(r => `${r.sensor_id}@${Date.parse(r.timestamp) - T0}`)

for (const tdb of testDatabases) {
  describe(`api on ${tdb.name}`, () => {
    const name = tdb.name
    let ctx: Awaited<ReturnType<TestDatabase['create']>>
    let app: FastifyInstance
    const metrics = new PipelineMetrics(undefined, false)
    let status = { watermark: T0 + 3000 - 10_000, lag: 7 as number | null }

    before(async () => {
      ctx = await tdb.create()
      await seed(ctx.db)
      app = await buildApp({ db: ctx.db, registry: metrics.registry, status: () => status })
    })
    after(async () => {
      await app.close()
      await ctx.drop()
    })

    const get = async (url: string, query: Record<string, string> = {}): Promise<{ status: number, body: unknown, type: string }> => {
      const qs = new URLSearchParams(query).toString()
      const res = await app.inject({ method: 'GET', url: qs === '' ? url : `${url}?${qs}` })
      const type = String(res.headers['content-type'] ?? '')
      return { status: res.statusCode, body: type.startsWith('application/json') ? res.json() : res.body, type }
    }

    test(`${name}: GET /health reports the database kind, the watermark as ISO (or null) and the lag`, async () => {
      status = { watermark: T0 - 7000, lag: 7 }
      let res = await get('/health')
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, { status: 'ok', database: name, watermark: iso(T0 - 7000), lag: 7 })
      status = { watermark: -Infinity, lag: null }
      res = await get('/health')
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, { status: 'ok', database: name, watermark: null, lag: null })
    })

    test(`${name}: GET /metrics serves the registry in Prometheus text`, async () => {
      metrics.received.inc(3)
      metrics.deadLetters.inc({ reason: 'schema' }, 2)
      metrics.watermark.set(T0)
      const res = await get('/metrics')
      assert.equal(res.status, 200)
      assert.match(res.type, /^text\/plain; version=0\.0\.4/)
      const text = res.body as string
      assert.match(text, /^# HELP iot_records_received_total Records consumed from the bus\.$/m)
      assert.match(text, /^# TYPE iot_records_received_total counter$/m)
      assert.match(text, /^iot_records_received_total 3$/m)
      assert.match(text, /^iot_dead_letters_total\{reason="schema"\} 2$/m)
      assert.match(text, new RegExp(`^iot_watermark_ms ${T0}$`, 'm'))
      assert.match(text, /^iot_batch_seconds_bucket\{le="0.005"\} 0$/m)
      assert.doesNotMatch(text, /process_cpu|nodejs_/, 'no default metrics in this registry')
    })

    test(`${name}: GET /api/readings returns the exact JSON shape, newest first, with the default limit of 100`, async () => {
      let res = await get('/api/readings', { location: 'lab' })
      assert.equal(res.status, 200)
      assert.match(res.type, /^application\/json/)
      assert.deepEqual(res.body, { count: 2, readings: [json(api2), json(api1)] })
      res = await get('/api/readings')
      const all = res.body as { count: number, readings: { sensor_id: string, timestamp: string }[] }
      assert.equal(all.count, 100)
      assert.equal(all.readings.length, 100)
      assert.deepEqual(ids(all).slice(0, 5), ['api-4@3000', 'api-3@2000', 'api-2@1000', 'api-1@0', `bulk-1@${-3_600_000 + 149_000}`])
      res = await get('/api/readings', { limit: '5000' })
      assert.equal((res.body as { count: number }).count, TOTAL)
      res = await get('/api/readings', { limit: '1' })
      assert.deepEqual(res.body, { count: 1, readings: [json(api4)] })
    })

    test(`${name}: z_score ±Infinity and NaN are sent as strings`, async () => {
      const res = await get('/api/readings', { location: 'yard' })
      const body = res.body as { readings: { sensor_id: string, z_score: unknown }[] }
      assert.deepEqual(body.readings.map(r => [r.sensor_id, r.z_score]), [['api-4', 'NaN'], ['api-3', '-Infinity']])
      const lab = await get('/api/readings', { location: 'lab', sensor_type: 'temperature' })
      assert.equal((lab.body as { readings: { z_score: unknown }[] }).readings[0]!.z_score, 'Infinity')
    })

    test(`${name}: readings filters: location, sensor_type, from (inclusive) and to (exclusive) as ISO, naive ISO (UTC) or epoch ms`, async () => {
      const q = async (query: Record<string, string>): Promise<string[]> => {
        const res = await get('/api/readings', query)
        assert.equal(res.status, 200, JSON.stringify(res.body))
        return ids(res.body as { readings: { sensor_id: string, timestamp: string }[] })
      }
      assert.deepEqual(await q({ location: 'yard', sensor_type: 'temperature' }), ['api-4@3000', 'api-3@2000'])
      assert.deepEqual(await q({ sensor_type: 'humidity' }), ['api-2@1000'])
      assert.deepEqual(await q({ location: 'lab', sensor_type: 'co2' }), [])
      const window = ['api-3@2000', 'api-2@1000']
      assert.deepEqual(await q({ from: iso(T0 + 1000), to: iso(T0 + 3000) }), window)
      assert.deepEqual(await q({ from: '2026-01-15T12:00:01', to: '2026-01-15T12:00:03' }), window, 'naive = UTC')
      assert.deepEqual(await q({ from: '2026-01-15 12:00:01', to: '2026-01-15T12:00:03.000' }), window)
      assert.deepEqual(await q({ from: '2026-01-15T14:00:01+02:00', to: '2026-01-15T07:00:03-05:00' }), window, 'with a zone')
      assert.deepEqual(await q({ from: String(T0 + 1000), to: String(T0 + 3000) }), window, 'epoch ms')
      assert.deepEqual(await q({ from: '2026-01-15T12:00:01.001Z', to: String(T0 + 3001) }), ['api-4@3000', 'api-3@2000'])
      assert.deepEqual(await q({ from: String(T0 + 3000) }), ['api-4@3000'])
      assert.deepEqual(await q({ to: String(T0 + 1), location: 'lab' }), ['api-1@0'])
      assert.deepEqual(await q({ from: String(T0), to: String(T0 + 3000), location: 'lab', sensor_type: 'humidity', limit: '5' }), ['api-2@1000'])
      assert.deepEqual(await q({ from: String(T0 + 3000), to: String(T0 + 3000) }), [])
    })

    test(`${name}: GET /api/anomalies returns readings flagged by any detector, same shape and filters`, async () => {
      let res = await get('/api/anomalies')
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, { count: 3, anomalies: [json(api4), json(api3), json(api1)] })
      res = await get('/api/anomalies', { location: 'yard', from: String(T0 + 2000), to: iso(T0 + 3000) })
      assert.deepEqual(ids(res.body as { anomalies: { sensor_id: string, timestamp: string }[] }), ['api-3@2000'])
      res = await get('/api/anomalies', { sensor_type: 'temperature', limit: '2' })
      assert.deepEqual(ids(res.body as { anomalies: { sensor_id: string, timestamp: string }[] }), ['api-4@3000', 'api-3@2000'])
    })

    test(`${name}: GET /api/aggregates returns the exact JSON shape, newest window first, filtered on window_start`, async () => {
      let res = await get('/api/aggregates', { location: 'lab', sensor_type: 'temperature' })
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, {
        count: 1,
        aggregates: [{
          window_start: iso(T0),
          window_end: iso(T0 + MIN),
          location: 'lab',
          sensor_type: 'temperature',
          avg_value: 22,
          min_value: 21.5,
          max_value: 22.5,
          stddev_value: 0.5,
          count_readings: 2,
          anomaly_count: 1,
          label_anomaly_count: 2,
          z_score_anomalies: 1,
          ml_anomaly_count: 0,
          revision: 1,
          is_final: true
        }]
      })
      res = await get('/api/aggregates', { location: 'yard' })
      const yard = res.body as { count: number, aggregates: Record<string, unknown>[] }
      assert.equal(yard.count, 2)
      assert.deepEqual(yard.aggregates.map(a => [a.window_start, a.count_readings, a.avg_value, a.min_value, a.max_value, a.stddev_value, a.revision, a.is_final, a.ml_anomaly_count]), [
        [iso(T0 + MIN), 2, 6, 5, 7, 1, 2, false, 0],
        [iso(T0), 4, 2.5, 1, 4, Math.sqrt(1.25), 1, true, 3]
      ])
      const keys = async (query: Record<string, string>): Promise<string[]> => {
        const r = await get('/api/aggregates', query)
        assert.equal(r.status, 200)
        return (r.body as { aggregates: { location: string, sensor_type: string, window_start: string }[] }).aggregates
          .map(a => `${a.location}/${a.sensor_type}@${(Date.parse(a.window_start) - T0) / MIN}`)
      }
      assert.deepEqual(await keys({}), ['yard/temperature@1', 'lab/humidity@0', 'lab/temperature@0', 'yard/temperature@0'])
      assert.deepEqual(await keys({ limit: '2' }), ['yard/temperature@1', 'lab/humidity@0'])
      assert.deepEqual(await keys({ sensor_type: 'temperature' }), ['yard/temperature@1', 'lab/temperature@0', 'yard/temperature@0'])
      assert.deepEqual(await keys({ from: iso(T0 + MIN) }), ['yard/temperature@1'])
      assert.deepEqual(await keys({ from: '2026-01-15T12:00:00', to: String(T0 + MIN) }), ['lab/humidity@0', 'lab/temperature@0', 'yard/temperature@0'])
    })

    test(`${name}: GET /api/late-readings returns the exact JSON shape, latest arrival first, with filters`, async () => {
      const res = await get('/api/late-readings')
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, {
        count: 2,
        late_readings: [
          { sensor_id: 'late-2', location: 'yard', sensor_type: 'humidity', value: 60, timestamp: iso(T0 - 4 * MIN), window_start: iso(T0 - 4 * MIN), lateness_ms: 4 * MIN + 1 },
          { sensor_id: 'late-1', location: 'lab', sensor_type: 'temperature', value: 21.5, timestamp: iso(T0 - 5 * MIN + 123), window_start: iso(T0 - 5 * MIN), lateness_ms: 5 * MIN - 123 }
        ]
      })
      const who = async (query: Record<string, string>): Promise<string[]> => {
        const r = await get('/api/late-readings', query)
        assert.equal(r.status, 200)
        return (r.body as { late_readings: { sensor_id: string }[] }).late_readings.map(x => x.sensor_id)
      }
      assert.deepEqual(await who({ location: 'lab' }), ['late-1'])
      assert.deepEqual(await who({ sensor_type: 'humidity' }), ['late-2'])
      assert.deepEqual(await who({ from: iso(T0 - 4 * MIN) }), ['late-2'])
      assert.deepEqual(await who({ to: String(T0 - 4 * MIN) }), ['late-1'])
      assert.deepEqual(await who({ limit: '1' }), ['late-2'])
    })

    test(`${name}: GET /api/dead-letters returns the exact JSON shape, newest first`, async () => {
      let res = await get('/api/dead-letters')
      assert.equal(res.status, 200)
      const body = res.body as { count: number, dead_letters: { id: number }[] }
      assert.equal(body.count, 2)
      assert.ok(body.dead_letters[0]!.id > body.dead_letters[1]!.id)
      assert.deepEqual(body.dead_letters.map(({ id, ...rest }) => { assert.equal(typeof id, 'number'); return rest }), [
        { received_at: iso(T0 + 20), source: 'kafka:iot_sensors/3@1234', reason: 'schema', detail: '/value: must be number', raw: 'nul\\u0000 "quoted" °C' },
        { received_at: iso(T0 + 10), source: 'http', reason: 'invalid_json', detail: 'Unexpected end of JSON input', raw: '{"sensor_id": "x", "value": ' }
      ])
      res = await get('/api/dead-letters', { limit: '1' })
      assert.deepEqual((res.body as { dead_letters: { reason: string }[] }).dead_letters.map(d => d.reason), ['schema'])
      res = await get('/api/dead-letters', { limit: '1000' })
      assert.equal(res.status, 200)
    })

    test(`${name}: GET /api/dead-letters takes a limit up to 5000 like the other endpoints`, async () => {
      const res = await get('/api/dead-letters', { limit: '5000' })
      assert.equal(res.status, 200)
    })

    const bad = (url: string, query: Record<string, string>) => async () => {
      const res = await get(url, query)
      assert.equal(res.status, 400, `${url} ${JSON.stringify(query)} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`)
      const body = res.body as { error: string, code: string, message: string }
      assert.equal(body.code, 'IOT_ERR_VALIDATION')
      assert.equal(body.error, 'bad_request')
      assert.equal(typeof body.message, 'string')
    }

    test(`${name}: GET /api/detection/quality: precision, recall, F1 per detector and kind, rule vs ML; per sensor type`, async () => {
      const res = await get('/api/detection/quality')
      assert.equal(res.status, 200)
      const q = res.body as DetectionQuality
      // Labelled: api1 normal (z), api3 spike (rule + z), api4 normal (ML), 150 bulk normal; api2 unlabelled.
      assert.equal(q.labelled, 153)
      assert.deepEqual(q.labels, { normal: 152, spike: 1 })
      assert.deepEqual(q.detectors.rule.byKind.spike, { tp: 1, fp: 0, fn: 0, precision: 1, recall: 1, f1: 1 })
      assert.deepEqual(q.detectors.zscore.overall, { tp: 1, fp: 1, fn: 0, precision: 0.5, recall: 1, f1: 2 / 3 })
      assert.deepEqual(q.detectors.ml.overall, { tp: 0, fp: 1, fn: 1, precision: 0, recall: 0, f1: null })
      assert.deepEqual(q.detectors.combined.overall, { tp: 1, fp: 0, fn: 0, precision: 1, recall: 1, f1: 1 })
      assert.deepEqual(q.ruleVsMl, { scored: 153, both: 0, ruleOnly: 1, mlOnly: 1, neither: 151, agreement: 151 / 153 })
      const co2 = (await get('/api/detection/quality', { sensor_type: 'co2' })).body as DetectionQuality
      assert.deepEqual(co2.labels, { normal: 150 })
      assert.equal((await get('/api/detection/quality', { location: 'lab' })).status, 400)
    })

    test(`${name}: GET /api/detection/models lists stored models without their trees`, async () => {
      const res = await get('/api/detection/models')
      assert.deepEqual(res.body, { count: 1, models: [{ version: 'temperature#2', key: 'temperature', sequence: 2, trained_at: iso(T0), samples: 1000, created_at: (res.body as { models: Array<{ created_at: string }> }).models[0]!.created_at }] })
    })

    test(`${name}: bad input is a 400 with code IOT_ERR_VALIDATION`, async () => {
      for (const url of ['/api/readings', '/api/anomalies', '/api/aggregates', '/api/late-readings']) {
        await bad(url, { limit: '0' })()
        await bad(url, { limit: '6000' })()
        await bad(url, { limit: '5001' })()
        await bad(url, { limit: 'ten' })()
        await bad(url, { limit: '1.5' })()
        await bad(url, { from: 'garbage' })()
        await bad(url, { to: 'garbage' })()
        await bad(url, { from: '2026-02-30T00:00:00Z' })()
        await bad(url, { to: '2026-01-15T25:00:00' })()
        await bad(url, { from: '' })()
        await bad(url, { location: 'x'.repeat(129) })()
      }
      await bad('/api/dead-letters', { limit: '0' })()
      await bad('/api/dead-letters', { limit: '6000' })()
      const ok = await get('/api/readings', { limit: '5000' })
      assert.equal(ok.status, 200)
    })

    test(`${name}: an unknown query parameter is a 400`, async () => {
      for (const url of ['/api/readings', '/api/anomalies', '/api/aggregates', '/api/late-readings', '/api/dead-letters']) {
        await bad(url, { foo: '1' })()
        await bad(url, { sensortype: 'temperature' })()
      }
    })

    test(`${name}: an epoch-ms time out of the database's range is a 400, not a 500`, async () => {
      await bad('/api/readings', { from: '99999999999999999999' })()
      await bad('/api/aggregates', { to: '9'.repeat(30) })()
    })
  })
}

test('GET /health is 503 when the database query fails', async () => {
  const failing: Queryable & { kind: string } = {
    kind: 'postgres',
    query: async () => { throw new Error('connection refused') },
    copyFrom: async () => { throw new Error('connection refused') }
  }
  const app = await buildApp({ db: failing, registry: new PipelineMetrics(undefined, false).registry, status: () => ({ watermark: T0, lag: 0 }) })
  try {
    const res = await app.inject({ method: 'GET', url: '/health' })
    assert.equal(res.statusCode, 503)
    assert.deepEqual(res.json(), { status: 'unavailable', database: 'postgres', error: 'connection refused' })
    // A failing query behind a data endpoint is a 500, not a hang or a 400.
    const data = await app.inject({ method: 'GET', url: '/api/readings' })
    assert.equal(data.statusCode, 500)
    assert.equal(data.json().error, 'internal')
  } finally {
    await app.close()
  }
})
