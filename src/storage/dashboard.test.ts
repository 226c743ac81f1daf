// The dashboard queries over data written by the worker's own write path (windows, hourly
// roll-ups, sensors), checked against values computed here from the raw readings.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type ScoredReading, type Verdict } from '../domain/index.ts'
import { WindowDeltas } from '../windowing/index.ts'
import { testDatabases } from '../../test/helpers/databases.ts'
import {
  type Db, correlation, ensureDayPartitions, insertReadings, loadMeta, mergeHourlyRollups, mergeWindowDeltas, newestReadingTime,
  openWindows, rangeStats, scoreBins, sensorCounts, series, upsertSensors
} from './index.ts'
import { bucketSize } from './dashboard.ts'

const MIN = 60_000
const HOUR = 3_600_000
const T0 = Date.UTC(2026, 4, 1)
const locations = ['A', 'B'] as const
const types = [{ t: 'temperature', unit: '°C' }, { t: 'humidity', unit: '%' }, { t: 'co2', unit: 'ppm' }] as const

/** 3 h of one reading per 30 s per (location, type); the types move together (humidity) and against (co2) the temperature. */
function dataset (): ScoredReading[] {
  const out: ScoredReading[] = []
  for (let i = 0; i < 360; i++) {
    const ts = T0 + i * 30_000
    const wave = Math.sin(i / 10)
    for (const loc of locations) {
      const offset = loc === 'A' ? 0 : 5 // rooms at different levels: must not pose as correlation
      for (const { t, unit } of types) {
        const value = t === 'temperature' ? 20 + offset + wave : t === 'humidity' ? 50 - 4 * offset + 2 * wave : 400 + 30 * offset - 3 * wave
        const flagged = i % 50 === 0
        const verdict: Verdict = {
          ruleAnomaly: flagged,
          zScore: 0,
          zAnomaly: false,
          mlScore: (i % 20) / 20 + 0.01,
          mlAnomaly: i % 25 === 0,
          modelVersion: 'm',
          stuck: false,
          drift: false,
          anomalyScore: flagged ? 1 : 0.1,
          anomaly: flagged,
          severity: flagged ? 'critical' : null,
          explanation: null
        }
        out.push({ reading: { sensorId: `${t}-${loc}`, sensorType: t, location: loc, value, ts, unit, anomaly: flagged, anomalyKind: flagged ? 'spike' : null, seq: i }, verdict })
      }
    }
  }
  return out
}

/** Stores a batch as the worker does: readings, window deltas, hourly roll-ups, sensors. */
async function store (db: Db, batch: ScoredReading[]): Promise<void> {
  await ensureDayPartitions(db, batch.map(s => s.reading.ts))
  await db.transaction(async tx => {
    const deltas = new WindowDeltas(MIN)
    for (const { reading: r, verdict: v } of batch) {
      deltas.add(r.location, r.sensorType, Math.floor(r.ts / MIN) * MIN, {
        value: r.value, ruleAnomaly: v.ruleAnomaly, labelAnomaly: r.anomaly === true, zAnomaly: v.zAnomaly, mlAnomaly: v.mlAnomaly === true, combinedAnomaly: v.anomaly
      })
    }
    await insertReadings(tx, batch)
    const d = deltas.drain()
    await mergeHourlyRollups(tx, d, await mergeWindowDeltas(tx, d))
    await upsertSensors(tx, batch)
  })
}

function expectedStats (rows: ScoredReading[]): { n: number, mean: number, sd: number, min: number, max: number, combined: number } {
  const v = rows.map(s => s.reading.value)
  const mean = v.reduce((a, b) => a + b, 0) / v.length
  return {
    n: v.length,
    mean,
    sd: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length),
    min: Math.min(...v),
    max: Math.max(...v),
    combined: rows.filter(s => s.verdict.anomaly).length
  }
}

const close = (got: number, want: number, what: string): void => {
  assert.ok(Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want)), `${what}: got ${got}, want ${want}`)
}

test('bucketSize - the smallest multiple of the unit giving at most maxPoints buckets', () => {
  assert.equal(bucketSize(HOUR, 300, 1000), 12_000)
  assert.equal(bucketSize(HOUR, 3600, 1000), 1000)
  assert.equal(bucketSize(30 * 86_400_000, 300, HOUR), 3 * HOUR)
  assert.equal(bucketSize(10 * MIN, 300, MIN), MIN, 'never below one unit')
})

test('scoreBins - 20 bins over [0, 1], split by the combined verdict; 1.0 goes in the last bin, null scores nowhere', () => {
  const bins = scoreBins([
    { mlScore: 0, combinedAnomaly: false }, { mlScore: 0.049, combinedAnomaly: false }, { mlScore: 0.05, combinedAnomaly: true },
    { mlScore: 1, combinedAnomaly: true }, { mlScore: null, combinedAnomaly: true }
  ])
  assert.equal(bins.length, 20)
  assert.deepEqual(bins[0], { from: 0, to: 0.05, normal: 2, anomalous: 0 })
  assert.deepEqual(bins[1], { from: 0.05, to: 0.1, normal: 0, anomalous: 1 })
  assert.deepEqual(bins[19], { from: 0.95, to: 1, normal: 0, anomalous: 1 })
  assert.equal(bins.reduce((s, b) => s + b.normal + b.anomalous, 0), 4, 'the null score is not counted')
})

for (const database of testDatabases) {
  describe(`${database.name}: dashboard queries`, { skip: database.skip }, () => {
    test('range statistics mix hourly roll-ups and edge windows, and equal the raw readings exactly', async () => {
      const { db, drop } = await database.create()
      try {
        const data = dataset()
        // Two batches that share windows and hours: revisions must not count windows twice.
        await store(db, data.filter((_, i) => i % 2 === 0))
        await store(db, data.filter((_, i) => i % 2 === 1))
        const [hourRows] = await db.query<{ w: number }>('SELECT sum(windows)::int AS w FROM sensor_aggregates_hourly')
        assert.equal(hourRows?.w, 3 * 60 * locations.length * types.length, 'each window counted once in its hour')

        for (const [from, to] of [[T0 + 17 * MIN, T0 + 2 * HOUR + 41 * MIN], [T0, T0 + 3 * HOUR], [T0 + 5 * MIN, T0 + 50 * MIN]] as const) {
          const stats = await rangeStats(db, { from, to, location: 'B' })
          assert.deepEqual(stats.map(s => s.sensorType), ['co2', 'humidity', 'temperature'], 'one row per type of location B')
          for (const s of stats) {
            const rows = data.filter(d => d.reading.location === 'B' && d.reading.sensorType === s.sensorType && d.reading.ts >= from && d.reading.ts < to)
            const e = expectedStats(rows)
            const what = `${s.sensorType} ${(from - T0) / MIN}-${(to - T0) / MIN} min`
            assert.equal(s.readings, e.n, `${what}: readings`)
            assert.equal(s.min, e.min, `${what}: min`)
            assert.equal(s.max, e.max, `${what}: max`)
            assert.equal(s.combinedAnomalies, e.combined, `${what}: anomalies`)
            assert.equal(s.windows, (to - from) / MIN, `${what}: windows`)
            close(s.avg, e.mean, `${what}: avg`)
            close(s.stddev, e.sd, `${what}: stddev`)
          }
        }
        assert.equal(await openWindows(db, { from: T0, to: T0 + 3 * HOUR }), 3 * 60 * 6, 'nothing finalized yet')
      } finally {
        await drop()
      }
    })

    test('series read raw rows, windows or hourly roll-ups by span, in at most maxPoints buckets, with exact bucket values', async () => {
      const { db, drop } = await database.create()
      try {
        const data = dataset()
        await store(db, data)
        const opts = { maxPoints: 30, groupBy: 'location' as const, windowMs: MIN }

        // 10 minutes: 20 raw readings per series, 20 s buckets.
        const raw = await series(db, { from: T0, to: T0 + 10 * MIN, sensorType: 'temperature' }, opts)
        assert.equal(raw.resolution, 'raw')
        assert.equal(raw.bucketMs, 20_000)
        assert.equal(raw.rowsRead, 40)
        assert.deepEqual(raw.buckets.filter(b => b.name === 'A').slice(0, 3).map(b => [b.t - T0, b.n]), [[0, 1], [20_000, 1], [60_000, 1]], 'readings every 30 s in 20 s buckets')

        // 2 hours: too many raw rows for the limit given, windows merged 4 at a time (120 min / 30 points).
        const win = await series(db, { from: T0, to: T0 + 2 * HOUR, sensorType: 'temperature' }, { ...opts, rawLimit: 100 })
        assert.equal(win.resolution, 'window')
        assert.equal(win.bucketMs, 4 * MIN)
        assert.equal(win.rowsRead, 2 * 120)
        const b0 = win.buckets.find(b => b.name === 'B' && b.t === T0 + 8 * MIN)!
        const e0 = expectedStats(data.filter(d => d.reading.location === 'B' && d.reading.sensorType === 'temperature' && d.reading.ts >= T0 + 8 * MIN && d.reading.ts < T0 + 12 * MIN))
        assert.deepEqual([b0.n, b0.min, b0.max], [e0.n, e0.min, e0.max], 'a window bucket merges its windows exactly')
        close(b0.avg, e0.mean, 'window bucket avg')

        // Beyond the window limit: hourly roll-ups, merged over locations with group_by sensor_type.
        const hour = await series(db, { from: T0, to: T0 + 3 * HOUR }, { ...opts, groupBy: 'sensor_type', rawLimit: 100, windowLimit: 100 })
        assert.equal(hour.resolution, 'hour')
        assert.equal(hour.bucketMs, HOUR)
        assert.equal(hour.rowsRead, 3 * 6, '3 hours x 6 series read')
        const co2 = hour.buckets.filter(b => b.name === 'co2')
        assert.equal(co2.length, 3, 'one series per type, 3 points')
        const e1 = expectedStats(data.filter(d => d.reading.sensorType === 'co2' && d.reading.ts >= T0 + HOUR && d.reading.ts < T0 + 2 * HOUR))
        assert.deepEqual([co2[1]!.n, co2[1]!.min, co2[1]!.max], [e1.n, e1.min, e1.max], 'hour bucket over both locations')
        close(co2[1]!.avg, e1.mean, 'hour bucket avg')
      } finally {
        await drop()
      }
    })

    test('correlation of window means is centred per location: +1, -1 between the types, not confounded by room levels', async () => {
      const { db, drop } = await database.create()
      try {
        await store(db, dataset())
        const c = await correlation(db, { from: T0, to: T0 + 3 * HOUR })
        assert.equal(c.resolution, 'window')
        assert.deepEqual(c.sensorTypes, ['co2', 'humidity', 'temperature'])
        const r = (a: string, b: string): number | null => c.matrix[c.sensorTypes.indexOf(a)]![c.sensorTypes.indexOf(b)]!
        close(r('temperature', 'humidity')!, 1, 'temperature ~ humidity')
        close(r('temperature', 'co2')!, -1, 'temperature ~ co2')
        close(r('co2', 'co2')!, 1, 'diagonal')
        assert.equal(c.pairs[0]![1], 2 * 180, 'aligned on (location, window start)')
        const hourly = await correlation(db, { from: T0, to: T0 + 3 * HOUR, location: 'A' }, HOUR)
        assert.equal(hourly.resolution, 'hour')
        assert.equal(hourly.pairs[0]![0], 3)
        const empty = await correlation(db, { from: T0 - HOUR, to: T0 })
        assert.deepEqual(empty, { resolution: 'window', sensorTypes: [], matrix: [], pairs: [] })
      } finally {
        await drop()
      }
    })

    test('sensors: meta, newest reading, active and total counts per filter', async () => {
      const { db, drop } = await database.create()
      try {
        assert.deepEqual(await loadMeta(db), { locations: [], sensorTypes: [], sensors: 0, oldest: null, newest: null })
        const data = dataset()
        // Location A's co2 sensor stops after the first hour.
        await store(db, data.filter(d => !(d.reading.sensorId === 'co2-A' && d.reading.ts >= T0 + HOUR)))
        const last = T0 + 359 * 30_000
        assert.deepEqual(await loadMeta(db), {
          locations: ['A', 'B'],
          sensorTypes: [{ sensorType: 'co2', unit: 'ppm' }, { sensorType: 'humidity', unit: '%' }, { sensorType: 'temperature', unit: '°C' }],
          sensors: 6,
          oldest: T0,
          newest: last
        })
        assert.equal(await newestReadingTime(db), last)
        assert.deepEqual(await sensorCounts(db, {}, last - 5 * MIN), { sensors: 6, active: 5, locations: 2 })
        assert.deepEqual(await sensorCounts(db, { sensorType: 'co2' }, last - 5 * MIN), { sensors: 2, active: 1, locations: 2 })
        assert.deepEqual(await sensorCounts(db, { location: 'B', sensorType: 'co2' }, last - 5 * MIN), { sensors: 1, active: 1, locations: 1 })
      } finally {
        await drop()
      }
    })
  })
}
