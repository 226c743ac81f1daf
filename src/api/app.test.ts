// The HTTP API over a seeded database (PGlite always, PostgreSQL when DATABASE_URL is set), driven
// with app.inject(): nothing listens on a port.
import { after, before, describe, test } from 'node:test'
import { once } from 'node:events'
import http from 'node:http'
import { type AddressInfo } from 'node:net'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type FastifyInstance } from 'fastify'
import { type DeadLetter, type Reading, type ScoredReading, type Verdict } from '../domain/index.ts'
import { PipelineMetrics } from '../pipeline/index.ts'
import {
  type Db, type Queryable, countDetections, ensureDayPartitions, finalizeWindows, insertDeadLetters, insertLateReadings, insertReadings,
  mergeDetectionCounts, mergeHourlyRollups, mergeWindowDeltas, migrate, openPglite, saveModels, upsertSensors
} from '../storage/index.ts'
import { type DetectionQuality } from '../anomaly/index.ts'
import { addToStats, createStatsAccumulator, type StatsAccumulator } from '../windowing/index.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import { buildApp } from './app.ts'
import { LiveHub } from './live.ts'

const MIN = 60_000
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0)
const iso = (ms: number): string => new Date(ms).toISOString()

function reading (over: Partial<Reading>): Reading {
  return { sensorId: 's', sensorType: 'temperature', location: 'lab', value: 21.5, ts: T0, unit: '°C', anomaly: false, anomalyKind: null, seq: 1, ...over }
}
function verdict (over: Partial<Verdict> = {}): Verdict {
  return { ruleAnomaly: false, zScore: 0.5, zAnomaly: false, mlScore: 0.25, mlAnomaly: false, modelVersion: 'if-1', stuck: false, drift: false, anomalyScore: 0, anomaly: false, severity: null, explanation: null, ...over }
}
const scored = (r: Partial<Reading>, v: Partial<Verdict> = {}): ScoredReading => ({ reading: reading(r), verdict: verdict(v) })

function acc (values: number[], flags: { rule?: number, label?: number, z?: number, ml?: number, combined?: number } = {}): StatsAccumulator {
  const a = createStatsAccumulator()
  values.forEach((value, i) => addToStats(a, {
    value,
    ruleAnomaly: i < (flags.rule ?? 0),
    labelAnomaly: i < (flags.label ?? 0),
    zAnomaly: i < (flags.z ?? 0),
    mlAnomaly: i < (flags.ml ?? 0),
    combinedAnomaly: i < (flags.combined ?? 0)
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
  stuck_anomaly: v.stuck,
  drift_anomaly: v.drift,
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
    await upsertSensors(tx, [api1, api2, api3, api4, ...bulk])
    const deltas = [
      { location: 'lab', sensorType: 'temperature', start: T0, end: T0 + MIN, acc: acc([21.5, 22.5], { rule: 1, label: 2, z: 1 }) },
      { location: 'lab', sensorType: 'humidity', start: T0, end: T0 + MIN, acc: acc([45.25]) },
      { location: 'yard', sensorType: 'temperature', start: T0, end: T0 + MIN, acc: acc([1, 2, 3, 4], { ml: 3, combined: 2 }) },
      { location: 'yard', sensorType: 'temperature', start: T0 + MIN, end: T0 + 2 * MIN, acc: acc([5]) }
    ]
    await mergeHourlyRollups(tx, deltas, await mergeWindowDeltas(tx, deltas))
    await finalizeWindows(tx, T0 + MIN)
    await insertDeadLetters(tx, deadLetters)
    await mergeDetectionCounts(tx, countDetections([api1, api2, api3, api4, ...bulk]))
    await saveModels(tx, [{ version: 'temperature#2', key: 'temperature', sequence: 2, trainedAt: T0, samples: 1000, nEstimators: 1, maxSamples: 256, offset: -0.6, model: Buffer.from('a stored model') }])
  })
  // A second delta for one window: revision 2.
  const again = [{ location: 'yard', sensorType: 'temperature', start: T0 + MIN, end: T0 + 2 * MIN, acc: acc([7]) }]
  await db.transaction(async tx => { await mergeHourlyRollups(tx, again, await mergeWindowDeltas(tx, again)) })
  // Late readings in two batches (received_at differs), the later batch is the newer.
  await insertLateReadings(db, [{ reading: reading({ sensorId: 'late-1', location: 'lab', ts: T0 - 5 * MIN + 123 }), windowStart: T0 - 5 * MIN, watermark: T0, latenessMs: 5 * MIN - 123 }])
  await new Promise(resolve => setTimeout(resolve, 5))
  await insertLateReadings(db, [{ reading: reading({ sensorId: 'late-2', location: 'yard', sensorType: 'humidity', ts: T0 - 4 * MIN, value: 60 }), windowStart: T0 - 4 * MIN, watermark: T0 + 1, latenessMs: 4 * MIN + 1 }])
}

const ids = (body: { readings?: { sensor_id: string, timestamp: string }[], anomalies?: { sensor_id: string, timestamp: string }[] }): string[] =>
  (body.readings ?? body.anomalies ?? []).map(r => `${r.sensor_id}@${Date.parse(r.timestamp) - T0}`)

for (const tdb of testDatabases) {
  describe(`api on ${tdb.name}`, { skip: tdb.skip }, () => {
    const name = tdb.name
    let ctx: Awaited<ReturnType<TestDatabase['create']>>
    let app: FastifyInstance
    const metrics = new PipelineMetrics(undefined, false)
    let status = { watermark: T0 + 3000 - 10_000, lag: 7 as number | null, latency: null as { p50: number, p99: number } | null }

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
      status = { watermark: T0 - 7000, lag: 7, latency: null }
      let res = await get('/health')
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, { status: 'ok', database: name, watermark: iso(T0 - 7000), lag: 7 })
      status = { watermark: -Infinity, lag: null, latency: null }
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
          combined_anomaly_count: 0,
          revision: 1,
          is_final: true
        }]
      })
      res = await get('/api/aggregates', { location: 'yard' })
      const yard = res.body as { count: number, aggregates: Record<string, unknown>[] }
      assert.equal(yard.count, 2)
      assert.deepEqual(yard.aggregates.map(a => [a.window_start, a.count_readings, a.avg_value, a.min_value, a.max_value, a.stddev_value, a.revision, a.is_final, a.ml_anomaly_count, a.combined_anomaly_count]), [
        [iso(T0 + MIN), 2, 6, 5, 7, 1, 2, false, 0, 0],
        [iso(T0), 4, 2.5, 1, 4, Math.sqrt(1.25), 1, true, 3, 2]
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

    // --- The dashboard's views.
    const range = { from: iso(T0), to: iso(T0 + 2 * MIN) }

    test(`${name}: GET /api/meta lists locations, sensor types with units, the sensors and their event-time span`, async () => {
      const res = await get('/api/meta')
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, {
        locations: ['bulk', 'lab', 'yard'],
        sensor_types: [{ sensor_type: 'co2', unit: 'ppm' }, { sensor_type: 'humidity', unit: '%' }, { sensor_type: 'temperature', unit: '°C' }],
        sensors: 5,
        oldest: iso(T0 - 3_600_000),
        newest: iso(T0 + 3000),
        window_ms: MIN
      })
    })

    test(`${name}: GET /api/overview sums the windows of the range; active sensors are those seen in the 5 min before the newest reading`, async () => {
      const res = await get('/api/overview', range)
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, {
        ...range,
        readings: 9,
        anomalies: 2,
        rule_anomalies: 1,
        z_anomalies: 1,
        ml_anomalies: 3,
        label_anomalies: 2,
        windows: 4,
        final_windows: 3,
        avg_readings_per_window: 2.25,
        active_sensors: 4,
        sensors: 5,
        locations: 3,
        by_location: [{ key: 'lab', readings: 3, anomalies: 0 }, { key: 'yard', readings: 6, anomalies: 2 }],
        by_sensor_type: [{ key: 'humidity', readings: 1, anomalies: 0 }, { key: 'temperature', readings: 8, anomalies: 2 }]
      })
      const yard = await get('/api/overview', { ...range, location: 'yard' }) as { body: { readings: number, active_sensors: number, sensors: number } }
      assert.deepEqual([yard.body.readings, yard.body.active_sensors, yard.body.sensors], [6, 2, 2])
      // Without a range: the hour before the newest reading.
      const dflt = await get('/api/overview') as { body: { from: string, to: string } }
      assert.deepEqual([dflt.body.from, dflt.body.to], [iso(T0 + 3001 - 3_600_000), iso(T0 + 3001)])
    })

    test(`${name}: GET /api/series answers from raw readings over a short span and from windows over a longer one, saying which`, async () => {
      let res = await get('/api/series', { ...range, sensor_type: 'temperature', max_points: '10' })
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, {
        ...range,
        resolution: 'raw',
        bucket_ms: 12_000,
        rows_read: 3,
        series: [
          { sensor_type: 'temperature', unit: '°C', name: 'lab', points: [[T0, 21.5, 21.5, 21.5, 1]] },
          { sensor_type: 'temperature', unit: '°C', name: 'yard', points: [[T0, (0.1 + 0.2 - 4.5) / 2, -4.5, 0.1 + 0.2, 2]] }
        ]
      })
      res = await get('/api/series', { ...range, sensor_type: 'temperature', max_points: '10', min_resolution: 'window' })
      assert.deepEqual(res.body, {
        ...range,
        resolution: 'window',
        bucket_ms: MIN,
        rows_read: 3,
        series: [
          { sensor_type: 'temperature', unit: '°C', name: 'lab', points: [[T0, 22, 21.5, 22.5, 2]] },
          { sensor_type: 'temperature', unit: '°C', name: 'yard', points: [[T0, 2.5, 1, 4, 4], [T0 + MIN, 6, 5, 7, 2]] }
        ]
      }, 'never finer than min_resolution')
      res = await get('/api/series', { from: iso(T0), to: iso(T0 + 20 * MIN), sensor_type: 'temperature', max_points: '10', group_by: 'sensor_type' })
      assert.deepEqual(res.body, {
        from: iso(T0),
        to: iso(T0 + 20 * MIN),
        resolution: 'window',
        bucket_ms: 2 * MIN,
        rows_read: 3,
        series: [{ sensor_type: 'temperature', unit: '°C', name: 'temperature', points: [[T0, (2 * 22 + 4 * 2.5 + 2 * 6) / 8, 1, 22.5, 8]] }]
      })
    })

    test(`${name}: GET /api/analytics/stats and /correlation summarise the range per location and type`, async () => {
      const res = await get('/api/analytics/stats', range)
      assert.equal(res.status, 200)
      const body = res.body as { rows: { location: string, sensor_type: string, unit: string, readings: number, avg: number, min: number, max: number, anomalies: number, anomaly_rate: number }[] }
      assert.deepEqual(body.rows.map(r => [r.location, r.sensor_type, r.unit, r.readings, r.avg, r.min, r.max, r.anomalies, r.anomaly_rate]), [
        ['lab', 'humidity', '%', 1, 45.25, 45.25, 45.25, 0, 0],
        ['lab', 'temperature', '°C', 2, 22, 21.5, 22.5, 0, 0],
        ['yard', 'temperature', '°C', 6, 22 / 6, 1, 7, 2, 2 / 6]
      ])
      const corr = await get('/api/analytics/correlation', range)
      assert.equal(corr.status, 200)
      assert.deepEqual(corr.body, {
        ...range, resolution: 'window', sensor_types: ['humidity', 'temperature'], matrix: [[null, null], [null, 1]], pairs: [[1, 1], [1, 3]]
      }, 'fewer than 3 aligned windows: no coefficient')
    })

    test(`${name}: GET /api/detection/scores is a histogram of the newest scored readings; /api/anomalies?detector= picks one detector`, async () => {
      const res = await get('/api/detection/scores', { limit: '100' })
      assert.equal(res.status, 200)
      const body = res.body as { readings: number, bins: { from: number, to: number, normal: number, anomalous: number }[] }
      assert.equal(body.readings, 100)
      assert.deepEqual(body.bins.filter(b => b.normal + b.anomalous > 0), [{ from: 0.25, to: 0.3, normal: 98, anomalous: 1 }, { from: 0.85, to: 0.9, normal: 1, anomalous: 0 }])
      await bad('/api/detection/scores', { limit: '50' })()
      assert.deepEqual(ids((await get('/api/anomalies', { detector: 'ml' })).body as { anomalies: [] }), ['api-4@3000'])
      assert.deepEqual(ids((await get('/api/anomalies', { detector: 'rule' })).body as { anomalies: [] }), ['api-3@2000'])
      assert.deepEqual(ids((await get('/api/anomalies', { detector: 'zscore' })).body as { anomalies: [] }), ['api-3@2000', 'api-1@0'])
      assert.deepEqual(ids((await get('/api/anomalies', { detector: 'combined' })).body as { anomalies: [] }), ['api-3@2000'])
      await bad('/api/anomalies', { detector: 'oracle' })()
    })

    test(`${name}: GET /api/pipeline reports totals, lag, watermark and the newest model per key`, async () => {
      status = { watermark: T0 - 7000, lag: 3, latency: { p50: 120, p99: 480 } }
      const res = await get('/api/pipeline')
      assert.equal(res.status, 200)
      assert.deepEqual({ ...res.body as object, models: undefined }, {
        database: name,
        readings_per_s: 0,
        readings_total: TOTAL,
        latency_ms: { p50: 120, p99: 480 },
        watermark: iso(T0 - 7000),
        newest_event: iso(T0 + 3000),
        late_readings: 2,
        dead_letters: 2,
        consumer_lag: 3,
        models: undefined
      })
      assert.deepEqual((res.body as { models: { version: string, samples: number }[] }).models.map(m => [m.version, m.samples]), [['temperature#2', 1000]])
    })

    test(`${name}: dashboard views reject bad ranges and parameters with a 400`, async () => {
      await bad('/api/overview', { from: iso(T0), to: iso(T0) })()
      await bad('/api/series', { max_points: '5' })()
      await bad('/api/series', { max_points: '2001' })()
      await bad('/api/series', { group_by: 'sensor' })()
      await bad('/api/series', { min_resolution: 'minute' })()
      await bad('/api/analytics/stats', { limit: '5' })()
      await bad('/api/live', { sensortype: 'co2' })()
    })
  })
}

test('a database out of reach: /health stays 200 (liveness), /ready is 503 with the reason, data endpoints 503 with Retry-After', async () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
  let failure: Error = refused
  const failing: Queryable & { kind: string } = {
    kind: 'postgres',
    query: async () => { throw failure },
    copyFrom: async () => { throw failure }
  }
  const app = await buildApp({ db: failing, registry: new PipelineMetrics(undefined, false).registry, status: () => ({ watermark: T0, lag: 0, latency: null }) })
  try {
    const health = await app.inject({ method: 'GET', url: '/health' })
    assert.equal(health.statusCode, 200)
    assert.deepEqual(health.json(), { status: 'ok', database: 'postgres', watermark: iso(T0), lag: 0 })
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    assert.equal(ready.statusCode, 503)
    assert.deepEqual(ready.json(), { status: 'not ready', reasons: ['the database does not answer: connect ECONNREFUSED 127.0.0.1:5432'] })
    const data = await app.inject({ method: 'GET', url: '/api/readings' })
    assert.equal(data.statusCode, 503)
    assert.equal(data.headers['retry-after'], '5')
    assert.deepEqual(data.json(), { error: 'unavailable', code: 'IOT_ERR_DB_UNAVAILABLE', message: 'the database is unreachable; retry later' })
    // Any other failure of a query is a 500 that keeps the database's message in the log.
    failure = new Error('relation "readings" does not exist')
    const broken = await app.inject({ method: 'GET', url: '/api/readings' })
    assert.equal(broken.statusCode, 500)
    assert.deepEqual(broken.json(), { error: 'internal', code: 'IOT_ERR_INTERNAL', message: 'internal error; see the server log' })
  } finally {
    await app.close()
  }
})

test('while the database is known to be away, data endpoints answer 503 without querying it; /ready says what the process reports', async () => {
  let queries = 0
  const counting: Queryable & { kind: string } = {
    kind: 'postgres',
    query: async () => { queries++; return [] },
    copyFrom: async () => {}
  }
  let reachable = false
  const app = await buildApp({
    db: counting,
    registry: new PipelineMetrics(undefined, false).registry,
    status: () => ({ watermark: T0, lag: 0, latency: null }),
    databaseReachable: () => reachable,
    readiness: () => reachable ? { ready: true, reasons: [] } : { ready: false, reasons: ['the database has been unreachable for 12 s: ECONNREFUSED'] }
  })
  try {
    const before = queries
    const data = await app.inject({ method: 'GET', url: '/api/overview' })
    assert.equal(data.statusCode, 503)
    assert.equal(data.headers['retry-after'], '5')
    assert.equal(queries, before)
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    assert.deepEqual([ready.statusCode, ready.json()], [503, { status: 'not ready', reasons: ['the database has been unreachable for 12 s: ECONNREFUSED'] }])
    assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
    reachable = true
    const back = await app.inject({ method: 'GET', url: '/ready' })
    assert.deepEqual([back.statusCode, back.json()], [200, { status: 'ready' }])
  } finally {
    await app.close()
  }
})

test('GET /api/live streams what the live hub publishes as Server-Sent Events, filtered by the query', async () => {
  const db = await openPglite('memory://')
  await migrate(db)
  const live = new LiveHub({ flushMs: 20 })
  const app = await buildApp({ db, registry: new PipelineMetrics(undefined, false).registry, status: () => ({ watermark: T0, lag: 0, latency: null }), live, webRoot: null })
  const abort = new AbortController()
  try {
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const res = await fetch(`${base}/api/live?sensor_type=humidity`, { signal: abort.signal })
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
    const reader = res.body!.getReader()
    let text = ''
    const until = async (re: RegExp): Promise<void> => {
      const deadline = Date.now() + 5000
      while (!re.test(text)) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${re} in: ${text.slice(0, 300)}`)
        const { value } = await reader.read()
        text += new TextDecoder().decode(value)
      }
    }
    await until(/retry: 2000\n/)
    live.publish({ stored: [api1, api2], revised: [], finalized: [] })
    await until(/event: readings\ndata: .*\n\n/)
    const data = JSON.parse(/event: readings\ndata: (.*)\n\n/.exec(text)![1]!) as { sensor_id: string }[]
    assert.deepEqual(data.map(r => r.sensor_id), ['api-2'], 'only the humidity reading')
    assert.equal(live.clients, 1)
    abort.abort()
    const deadline = Date.now() + 5000
    while (live.clients > 0) {
      assert.ok(Date.now() < deadline, 'the closed stream unsubscribes')
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  } finally {
    abort.abort()
    await app.close()
    await db.close()
  }
})

/** GET /api/live from `localAddress`: a 200 once its first bytes arrived (then open until close()), else the status, headers and JSON body. */
async function openLiveStream (port: number, localAddress = '127.0.0.1', headers: Record<string, string> = {}): Promise<{ status: number, retryAfter: string | undefined, body: unknown, close: () => void }> {
  return await new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/api/live', localAddress, headers, agent: false }, res => {
      const close = (): void => { req.destroy() }
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        text += d
        if (res.statusCode === 200 && text.includes('retry: 2000')) resolve({ status: 200, retryAfter: undefined, body: null, close })
      })
      res.on('end', () => {
        if (res.statusCode !== 200) resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text), close })
      })
      res.on('error', () => {})
    })
    req.on('error', reject)
  })
}

async function until (what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!done()) {
    assert.ok(Date.now() < deadline, what)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

test('GET /api/live past the caps is a 503 with Retry-After; closed streams free their places; the server close ends the rest', async () => {
  const db = await openPglite('memory://')
  await migrate(db)
  const live = new LiveHub({ maxClients: 3, maxClientsPerAddress: 2, retryAfterSeconds: 7 })
  const app = await buildApp({ db, registry: new PipelineMetrics(undefined, false).registry, status: () => ({ watermark: T0, lag: 0, latency: null }), live, webRoot: null })
  try {
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as AddressInfo).port
    const full = (res: { status: number, retryAfter: string | undefined, body: unknown }, what: string): void => {
      assert.equal(res.status, 503, what)
      assert.equal(res.retryAfter, '7', what)
      assert.deepEqual({ ...res.body as object, message: typeof (res.body as { message: unknown }).message }, { error: 'unavailable', code: 'IOT_ERR_LIVE_FULL', message: 'string' }, what)
    }
    const a1 = await openLiveStream(port)
    const a2 = await openLiveStream(port)
    assert.deepEqual([a1.status, a2.status], [200, 200])
    full(await openLiveStream(port), 'the third from one address (cap 2 per address)')
    const b1 = await openLiveStream(port, '127.0.0.2')
    assert.equal(b1.status, 200, 'another address still gets in')
    full(await openLiveStream(port, '127.0.0.3'), 'the fourth in all (cap 3)')
    assert.deepEqual([live.clients, live.clientsFrom('127.0.0.1'), live.rejected], [3, 2, 2])

    for (const s of [a1, a2, b1]) s.close()
    await until('closed streams leave the hub', () => live.clients === 0)
    assert.equal(live.clientsFrom('127.0.0.1'), 0)
    const again = [await openLiveStream(port), await openLiveStream(port), await openLiveStream(port, '127.0.0.2')]
    assert.deepEqual(again.map(s => s.status), [200, 200, 200], 'accepted again once the others left')

    await app.close()
    assert.deepEqual([live.clients, live.clientsFrom('127.0.0.1'), live.clientsFrom('127.0.0.2')], [0, 0, 0], 'the server close counts every stream out')
  } finally {
    await app.close()
    await db.close()
  }
})

test('GET /api/live from a client that hung up before its stream began: nothing is counted', async () => {
  const db = await openPglite('memory://')
  await migrate(db)
  const live = new LiveHub()
  const app = await buildApp({ db, registry: new PipelineMetrics(undefined, false).registry, status: () => ({ watermark: T0, lag: 0, latency: null }), live, webRoot: null })
  // The connection closes between the request's arrival and the handler (as when a client gives up while the server is busy).
  app.addHook('onRequest', async req => {
    if (req.headers['x-hang-up'] === undefined) return
    const closed = once(req.raw.socket, 'close')
    req.raw.socket.destroy()
    await closed
  })
  try {
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as AddressInfo).port
    await assert.rejects(openLiveStream(port, '127.0.0.1', { 'x-hang-up': '1' }))
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.deepEqual([live.clients, live.clientsFrom('127.0.0.1')], [0, 0])
    const s = await openLiveStream(port)
    assert.equal(live.clients, 1)
    s.close()
    await until('the closed stream leaves the hub', () => live.clients === 0)
  } finally {
    await app.close()
    await db.close()
  }
})

test('GET /api/pipeline has a real readings/s rate a second after the app is ready: the sampler starts with the app', async () => {
  const db = await openPglite('memory://')
  await migrate(db)
  const store = async (rows: ScoredReading[]): Promise<void> => { await db.transaction(async tx => { await mergeDetectionCounts(tx, countDetections(rows)) }) }
  await store([api1, api2, api3])
  let clock = T0
  const app = await buildApp({ db, registry: new PipelineMetrics(undefined, false).registry, status: () => ({ watermark: T0, lag: 0, latency: null }), webRoot: null, now: () => clock })
  try {
    await app.ready() // the first sample: 3 readings at T0
    await store([api4, ...bulk.slice(0, 3)])
    clock = T0 + 1000
    const res = await app.inject({ method: 'GET', url: '/api/pipeline' })
    assert.equal(res.statusCode, 200)
    const body = res.json<{ readings_per_s: number, readings_total: number }>()
    assert.deepEqual([body.readings_per_s, body.readings_total], [4, 7], '4 readings stored in the second since the first sample')
  } finally {
    await app.close()
    await db.close()
  }
})

test('the built dashboard is served at / and for any page path; unknown /api paths stay JSON 404s', async () => {
  const root = mkdtempSync(join(tmpdir(), 'iot-web-'))
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>dash</title>')
  writeFileSync(join(root, 'app.js'), 'console.log(1)')
  const db: Queryable & { kind: string } = { kind: 'pglite', query: async () => [], copyFrom: async () => {} }
  const registry = new PipelineMetrics(undefined, false).registry
  const app = await buildApp({ db, registry, status: () => ({ watermark: T0, lag: 0, latency: null }), webRoot: root })
  const bare = await buildApp({ db, registry, status: () => ({ watermark: T0, lag: 0, latency: null }), webRoot: null })
  try {
    for (const url of ['/', '/?tab=ml&location=lab', '/some/page']) {
      const res = await app.inject({ method: 'GET', url })
      assert.equal(res.statusCode, 200, url)
      assert.equal(res.body, '<!doctype html><title>dash</title>', url)
    }
    assert.equal((await app.inject({ method: 'GET', url: '/app.js' })).body, 'console.log(1)')
    const missing = await app.inject({ method: 'GET', url: '/api/nope?x=1' })
    assert.equal(missing.statusCode, 404)
    assert.deepEqual(missing.json(), { error: 'not_found', code: 'IOT_ERR_NOT_FOUND', message: 'no route GET /api/nope' })
    const notBuilt = await bare.inject({ method: 'GET', url: '/' })
    assert.equal(notBuilt.statusCode, 200)
    assert.match(notBuilt.body, /npm run build:web/)
  } finally {
    await app.close()
    await bare.close()
    rmSync(root, { recursive: true, force: true })
  }
})
