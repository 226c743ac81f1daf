// Storage on every test database (PGlite always, PostgreSQL when DATABASE_URL is set): migrations,
// daily partitions, the write path of a batch (COPY, late readings, dead letters, window merges,
// finality, progress) and the read queries behind the API. One database per engine is shared by
// the tests; each test uses its own sensors, locations or days, or works inside a transaction it
// rolls back, so the tests do not see each other's rows.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type DeadLetter, type IotError, type Reading, type ScoredReading, type Verdict } from '../domain/index.ts'
import {
  addToStats, createStatsAccumulator, statsResult, type StatsAccumulator, type StatsInput, type WindowDelta
} from '../windowing/index.ts'
import { createServerDatabase, serverUrl, testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import {
  type Db, type Queryable, applyRetention, ensureDayPartitions, vacuumRewrittenTables, finalizeWindows, insertDeadLetters,
  insertLateReadings, insertReadings, loadReadingKeysSince, mergeWindowDeltas, migrate, openPostgres,
  recentAggregates, recentAnomalies, recentDeadLetters, recentLateReadings, recentReadings, type LateReading,
  openPglite, advanceWatermark, claimPartitions, loadPartitions, loadWatermark, lockFinality, markIdle,
  countDetections, loadDetectionCounts, loadLatestModels, mergeDetectionCounts, recentModels, saveModels, type StoredModel
} from './index.ts'
import { splitSql } from './migrate.ts'
import { MODEL_TREES_KEPT, MODEL_VERSIONS_KEPT } from './models.ts'
import { dropPartitionsBefore } from './partitions.ts'
import { fencePartitions, saveProgress } from './progress.ts'
import { findStoredKeys, readingFlags } from './readings.ts'

const DAY = 86_400_000
const MIN = 60_000
/** The day most tests write to (its partition is created once per database). */
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0)

function reading (over: Partial<Reading> = {}): Reading {
  return {
    sensorId: 'sensor-1',
    sensorType: 'temperature',
    location: 'lab',
    value: 21.5,
    ts: T0,
    unit: '°C',
    anomaly: false,
    anomalyKind: null,
    seq: 1,
    ...over
  }
}

function verdict (over: Partial<Verdict> = {}): Verdict {
  return { ruleAnomaly: false, zScore: 0.5, zAnomaly: false, mlScore: 0.4, mlAnomaly: false, modelVersion: 'if-1', stuck: false, drift: false, anomalyScore: 0, anomaly: false, severity: null, explanation: null, ...over }
}

const scored = (r: Partial<Reading> = {}, v: Partial<Verdict> = {}): ScoredReading => ({ reading: reading(r), verdict: verdict(v) })

/** postgres.js returns arrays of its own class (Result): compare as plain arrays. */
const plain = (x: unknown): unknown => Array.isArray(x) ? Array.from(x, plain) : x
function deepEqual (actual: unknown, expected: unknown, message?: string): void {
  assert.deepEqual(plain(actual), expected, message)
}

const ROLLBACK = new Error('rollback')
/** Runs `fn` in a transaction that is always rolled back: the test sees only its own rows. */
async function rolledBack (db: Db, fn: (tx: Queryable) => Promise<void>): Promise<void> {
  try {
    await db.transaction(async tx => {
      await fn(tx)
      throw ROLLBACK
    })
  } catch (err) {
    if (err !== ROLLBACK) throw err
  }
}

/** Every column of sensor_readings (the view over the compact rows), timestamps as epoch ms. */
interface RawRow {
  sensor_id: string
  sensor_type: string
  location: string
  value: number
  ts: number
  unit: string
  anomaly: boolean | null
  anomaly_type: string | null
  rule_anomaly: boolean
  z_score: number | null
  z_anomaly: boolean
  ml_score: number | null
  ml_anomaly: boolean | null
  model_version: string | null
  combined_anomaly: boolean
  severity: string | null
  explanation: string | null
}

async function rawReadings (q: Queryable, where: string, params: unknown[]): Promise<RawRow[]> {
  return await q.query<RawRow>(`SELECT sensor_id, sensor_type, location, value, round(extract(epoch FROM timestamp) * 1000)::float8 AS ts,
    unit, anomaly, anomaly_type, rule_anomaly, z_score, z_anomaly, ml_score, ml_anomaly, model_version, combined_anomaly, severity, explanation
    FROM sensor_readings WHERE ${where} ORDER BY timestamp, sensor_id`, params)
}

/**
 * What is stored of a scored reading: the scores as float4, the model version and explanation only
 * where a detector flagged it (the sequence number is not stored).
 */
const flagged = (v: Verdict): boolean => v.ruleAnomaly || v.zAnomaly || v.mlAnomaly === true || v.severity !== null
const toRaw = ({ reading: r, verdict: v }: ScoredReading): RawRow => ({
  sensor_id: r.sensorId,
  sensor_type: r.sensorType,
  location: r.location,
  value: r.value,
  ts: r.ts,
  unit: r.unit,
  anomaly: r.anomaly,
  anomaly_type: r.anomalyKind,
  rule_anomaly: v.ruleAnomaly,
  z_score: v.zScore === null ? null : Math.fround(v.zScore),
  z_anomaly: v.zAnomaly,
  ml_score: v.mlScore === null ? null : Math.fround(v.mlScore),
  ml_anomaly: v.mlAnomaly,
  model_version: flagged(v) ? v.modelVersion : null,
  combined_anomaly: v.anomaly,
  severity: v.severity,
  explanation: flagged(v) ? v.explanation : null
})

/** Bit-exact number comparison (tells -0 from 0 and matches NaN). */
function sameNumber (actual: unknown, expected: number | null, what: string): void {
  if (expected === null) {
    assert.equal(actual, null, what)
    return
  }
  assert.equal(typeof actual, 'number', `${what}: ${String(actual)} is not a number`)
  assert.ok(Object.is(actual, expected), `${what}: got ${String(actual)}, expected ${String(expected)}`)
}

function assertSameRows (actual: RawRow[], expected: RawRow[]): void {
  assert.equal(actual.length, expected.length, 'row count')
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!
    const e = expected[i]!
    for (const k of Object.keys(e) as (keyof RawRow)[]) {
      if (k === 'value' || k === 'z_score' || k === 'ml_score' || k === 'ts') {
        sameNumber(a[k], e[k], `row ${i} ${k}`)
      } else {
        assert.equal(a[k], e[k], `row ${i} ${k}`)
      }
    }
  }
}

function closeTo (actual: number, expected: number, what: string, rel = 1e-12): void {
  const tol = rel * Math.max(Math.abs(expected), 1e-300)
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (diff ${Math.abs(actual - expected)})`)
}

/** Deterministic pseudo-random numbers in [0, 1). */
function lcg (seed: number): () => number {
  let x = seed
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648
    return x / 2147483648
  }
}

function input (value: number, i: number): StatsInput {
  return { value, ruleAnomaly: i % 3 === 0, labelAnomaly: i % 5 === 0, zAnomaly: i % 7 === 0, mlAnomaly: i % 11 === 0, combinedAnomaly: i % 13 === 0 }
}

function accOf (values: readonly number[], offset = 0): StatsAccumulator {
  const acc = createStatsAccumulator()
  values.forEach((v, i) => addToStats(acc, input(v, i + offset)))
  return acc
}

const delta = (location: string, sensorType: string, start: number, acc: StatsAccumulator, size = MIN): WindowDelta =>
  ({ location, sensorType, start, end: start + size, acc })

const late = (r: Partial<Reading>, windowStart: number, watermark: number): LateReading => {
  const x = reading(r)
  return { reading: x, windowStart, watermark, latenessMs: watermark - x.ts }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function partitionsOf (q: Queryable): Promise<string[]> {
  const rows = await q.query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'readings' ORDER BY 1`)
  return rows.map(r => r.name)
}

test('splitSql - drops comments and splits on semicolons at line ends', () => {
  const script = [
    '-- header comment; with a semicolon;',
    'CREATE TABLE a (',
    '  x int, -- trailing comment; inline',
    '  y text',
    ');',
    '',
    '   -- an indented comment',
    'CREATE INDEX a_x ON a (x);   ',
    "INSERT INTO a VALUES (1, 'it''s')",
    ';',
    'SELECT 1;'
  ].join('\n')
  deepEqual(splitSql(script), [
    'CREATE TABLE a (\n  x int, \n  y text\n)',
    'CREATE INDEX a_x ON a (x)',
    "INSERT INTO a VALUES (1, 'it''s')",
    'SELECT 1'
  ])
  deepEqual(splitSql(''), [])
  deepEqual(splitSql('-- only a comment\n\n  \n'), [])
  deepEqual(splitSql('SELECT 2'), ['SELECT 2'], 'the last statement needs no semicolon')
})

test('splitSql - a dollar-quoted body stays one statement, its semicolons and dashes included', () => {
  const script = 'CREATE TABLE t (x int);\nDO $$\nDECLARE d date; -- kept\nBEGIN\n  PERFORM 1;\nEND $$;\nSELECT 1;'
  deepEqual(splitSql(script), ['CREATE TABLE t (x int)', 'DO $$\nDECLARE d date; -- kept\nBEGIN\n  PERFORM 1;\nEND $$', 'SELECT 1'])
})

test('splitSql - a script with Windows line ends splits like the same script with \\n', () => {
  const lf = '-- comment one;\nCREATE TABLE a (x int); -- after\n-- comment two\nSELECT 1;\n'
  const crlf = lf.replaceAll('\n', '\r\n')
  deepEqual(splitSql(crlf).map(s => s.replaceAll('\r', '')), splitSql(lf))
})

for (const tdb of testDatabases) {
  describe(`storage on ${tdb.name}`, { skip: tdb.skip }, () => {
    const name = tdb.name
    let ctx: Awaited<ReturnType<TestDatabase['create']>>
    let db: Db
    before(async () => {
      ctx = await tdb.create()
      db = ctx.db
      await ensureDayPartitions(db, [T0])
    })
    after(async () => { await ctx.drop() })

    test(`${name}: migrate is idempotent and records every migration`, async () => {
      const files = readdirSync(fileURLToPath(new URL('./migrations/', import.meta.url))).filter(f => f.endsWith('.sql')).sort()
      assert.ok(files.includes('0001_init.sql'))
      deepEqual(await migrate(db), [], 'a second run applies nothing')
      deepEqual(await migrate(db), [])
      const rows = await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')
      deepEqual(rows.map(r => r.name), files)
    })

    test(`${name}: a database of the wide schema (before 0006) is migrated: every reading reads back the same through sensor_readings`, async () => {
      const fresh = name === 'postgres' && serverUrl !== null ? await createServerDatabase(serverUrl) : null
      const old = fresh === null ? await openPglite('memory://') : await openPostgres(fresh.url)
      try {
        await migrate(old, { upTo: '0005_flagged_index.sql' })
        await old.query('CREATE TABLE sensor_readings_20260115 PARTITION OF sensor_readings FOR VALUES FROM (\'2026-01-15\') TO (\'2026-01-16\')')
        await old.query('CREATE TABLE sensor_readings_20260116 PARTITION OF sensor_readings FOR VALUES FROM (\'2026-01-16\') TO (\'2026-01-17\')')
        // Every verdict combination, labels with and without kinds, a sensor that moved (two locations).
        await old.query(`INSERT INTO sensor_readings (sensor_id, sensor_type, location, value, timestamp, unit, anomaly, anomaly_type, seq,
          rule_anomaly, z_score, z_anomaly, ml_score, ml_anomaly, model_version, combined_anomaly, severity, explanation) VALUES
          ('w-1', 'temperature', 'lab', 21.5, '2026-01-15T12:00:00Z', '°C', false, NULL, 1, false, 0.5, false, 0.25, false, 'temperature#3', false, NULL, NULL),
          ('w-1', 'temperature', 'lab', 99, '2026-01-15T12:00:01Z', '°C', true, 'spike', 2, true, 22, true, 0.71, true, 'temperature#3', true, 'critical', 'rule: above max 35 °C'),
          ('w-1', 'temperature', 'hall', 20, '2026-01-16T00:00:00.001Z', '°C', NULL, NULL, NULL, false, NULL, false, NULL, NULL, NULL, false, NULL, NULL),
          ('w-2', 'co2', 'lab', 900, '2026-01-15T12:00:02Z', 'ppm', true, 'surge', NULL, false, 3.5, true, 0.4, false, 'co2#1', false, 'minor', 'z +3.5'),
          ('w-2', 'co2', 'lab', 1200, '2026-01-15T12:00:03Z', 'ppm', true, NULL, NULL, false, 6.25, true, 0.6, true, 'co2#1', true, 'major', 'z +6.2; ml 0.60')`)
        await old.query(`INSERT INTO sensors (sensor_id, sensor_type, location, unit, first_seen, last_seen)
          VALUES ('w-1', 'temperature', 'hall', '°C', '2026-01-15T12:00:00Z', '2026-01-16T00:00:00.001Z'),
                 ('w-2', 'co2', 'lab', 'ppm', '2026-01-15T12:00:02Z', '2026-01-15T12:00:03Z')`)
        // Their windows (only the counts matter here): the statistics without flagged readings are added.
        await old.query(`INSERT INTO sensor_aggregates (window_start, window_end, location, sensor_type, avg_value, min_value, max_value,
          stddev_value, count_readings, anomaly_count, label_anomaly_count, z_score_anomalies, ml_anomaly_count, m2, combined_anomaly_count) VALUES
          ('2026-01-15T12:00:00Z', '2026-01-15T12:01:00Z', 'lab', 'temperature', 60.25, 21.5, 99, 38.75, 2, 1, 1, 1, 1, 3003.125, 1),
          ('2026-01-15T12:00:00Z', '2026-01-15T12:01:00Z', 'lab', 'co2', 1050, 900, 1200, 150, 2, 0, 2, 2, 1, 45000, 1),
          ('2026-01-16T00:00:00Z', '2026-01-16T00:01:00Z', 'hall', 'temperature', 20, 20, 20, 0, 1, 0, 0, 0, 0, 0, 0)`)
        const columns = `sensor_id, sensor_type, location, value, round(extract(epoch FROM timestamp) * 1000)::float8 AS ts, unit, anomaly, anomaly_type,
          rule_anomaly, z_score, z_anomaly, ml_score, ml_anomaly, model_version, combined_anomaly, severity, explanation`
        const before = await old.query(`SELECT ${columns} FROM sensor_readings ORDER BY timestamp`)
        deepEqual(await migrate(old, { upTo: '0006_compact_readings.sql' }), ['0006_compact_readings.sql'])
        // The scores were float8: as float4 now (0.71 and 0.6 change in their 8th digit); the model
        // version is kept where a detector flagged the reading.
        const f4 = (x: unknown): unknown => typeof x === 'number' ? Math.fround(x) : x
        deepEqual(await old.query(`SELECT ${columns} FROM sensor_readings ORDER BY timestamp`),
          before.map(r => ({ ...r, z_score: f4(r.z_score), ml_score: f4(r.ml_score), model_version: r.severity === null ? null : r.model_version })))
        deepEqual(await old.query(`SELECT sensor_id, location, round(extract(epoch FROM first_seen) * 1000)::float8 AS f,
          round(extract(epoch FROM last_seen) * 1000)::float8 AS l FROM sensors ORDER BY 1, 2`), [
          { sensor_id: 'w-1', location: 'hall', f: Date.UTC(2026, 0, 15, 12), l: Date.UTC(2026, 0, 16, 0, 0, 0, 1) },
          { sensor_id: 'w-1', location: 'lab', f: Date.UTC(2026, 0, 15, 12), l: Date.UTC(2026, 0, 15, 12, 0, 1) },
          { sensor_id: 'w-2', location: 'lab', f: Date.UTC(2026, 0, 15, 12, 0, 2), l: Date.UTC(2026, 0, 15, 12, 0, 3) }])
        deepEqual((await partitionsOf(old)), ['readings_20260115', 'readings_20260116'])
        deepEqual(await old.query(`SELECT location, sensor_type, normal_count, normal_avg, normal_min, normal_max FROM sensor_aggregates
          ORDER BY window_start, location, sensor_type`), [
          { location: 'lab', sensor_type: 'co2', normal_count: 1, normal_avg: 900, normal_min: 900, normal_max: 900 },
          { location: 'lab', sensor_type: 'temperature', normal_count: 1, normal_avg: 21.5, normal_min: 21.5, normal_max: 21.5 },
          { location: 'hall', sensor_type: 'temperature', normal_count: 1, normal_avg: 20, normal_min: 20, normal_max: 20 }])
      } finally {
        await old.close()
        await fresh?.drop()
      }
    })

    test(`${name}: the SQL function reading_flags makes the bits readingFlags makes in Node, for every verdict and label`, async () => {
      const cases: { v: Verdict, r: Reading, kind: number }[] = []
      for (const rule of [false, true]) {
        for (const z of [false, true]) {
          for (const ml of [null, false, true]) {
            for (const combined of [false, true]) {
              for (const severity of [null, 'minor', 'major', 'critical'] as const) {
                for (const label of [null, false, true]) {
                  for (const kind of [0, 3, 700]) {
                    for (const [stuck, drift] of [[false, false], [true, false], [false, true], [true, true]] as const) {
                      cases.push({ v: verdict({ ruleAnomaly: rule, zAnomaly: z, mlAnomaly: ml, stuck, drift, anomaly: combined, severity }), r: reading({ anomaly: label }), kind })
                    }
                  }
                }
              }
            }
          }
        }
      }
      const b = (x: boolean | null): string => x === null ? 'NULL' : String(x)
      const rows = await db.query<{ f: number, seven: number }>(`SELECT reading_flags(rule, z, ml, combined, severity, label, kind::int2, stuck, drift) AS f,
          reading_flags(rule, z, ml, combined, severity, label, kind::int2) AS seven
        FROM unnest($1::bool[], $2::bool[], $3::bool[], $4::bool[], $5::text[], $6::bool[], $7::int4[], $8::bool[], $9::bool[])
          WITH ORDINALITY AS x(rule, z, ml, combined, severity, label, kind, stuck, drift, i)
        ORDER BY i`, [`{${cases.map(c => b(c.v.ruleAnomaly)).join(',')}}`, `{${cases.map(c => b(c.v.zAnomaly)).join(',')}}`,
        `{${cases.map(c => b(c.v.mlAnomaly)).join(',')}}`, `{${cases.map(c => b(c.v.anomaly)).join(',')}}`,
        `{${cases.map(c => c.v.severity ?? 'NULL').join(',')}}`, `{${cases.map(c => b(c.r.anomaly)).join(',')}}`, `{${cases.map(c => c.kind).join(',')}}`,
        `{${cases.map(c => b(c.v.stuck)).join(',')}}`, `{${cases.map(c => b(c.v.drift)).join(',')}}`])
      deepEqual(rows.map(r => r.f), cases.map(c => readingFlags(c.r, c.v, c.kind)))
      // The seven-argument form of the older migrations still works: stuck and drift default to false.
      deepEqual(rows.map(r => r.seven), cases.map(c => readingFlags(c.r, { ...c.v, stuck: false, drift: false }, c.kind)))
    })

    const admin = serverUrl
    const allMigrations = readdirSync(fileURLToPath(new URL('./migrations/', import.meta.url))).filter(f => f.endsWith('.sql')).sort()
    if (name === 'postgres' && admin !== null) {
      test(`${name}: migrate on a fresh database applies every migration once, in order`, async () => {
        const created = await createServerDatabase(admin)
        const a = await openPostgres(created.url)
        try {
          deepEqual(await migrate(a), allMigrations)
          deepEqual(await migrate(a), [])
        } finally {
          await a.close()
          await created.drop()
        }
      })

      test(`${name}: two migrators starting at once on a fresh database both succeed, one applies`, async () => {
        const created = await createServerDatabase(admin)
        const a = await openPostgres(created.url)
        const b = await openPostgres(created.url)
        try {
          const [ra, rb] = await Promise.allSettled([migrate(a), migrate(b)])
          assert.equal(ra.status, 'fulfilled', ra.status === 'rejected' ? String(ra.reason) : '')
          assert.equal(rb.status, 'fulfilled', rb.status === 'rejected' ? String(rb.reason) : '')
          deepEqual([...ra.value, ...rb.value], allMigrations, 'exactly one of them applied them')
        } finally {
          await a.close()
          await b.close()
          await created.drop()
        }
      })
    }

    test(`${name}: ensureDayPartitions creates daily partitions idempotently; dropPartitionsBefore drops exactly those ending at or before the cut`, async () => {
      // Days in 2001: far before every other test's data, so the drops touch only these.
      const d1 = Date.UTC(2001, 2, 1)
      const times = [d1, d1 + 5, d1 + DAY - 1, d1 + DAY, d1 + 2 * DAY + 12 * 3_600_000, d1 + 3 * DAY]
      await ensureDayPartitions(db, times)
      await ensureDayPartitions(db, times)
      await ensureDayPartitions(db, [d1 + 3 * DAY + 1])
      const mine = (await partitionsOf(db)).filter(n => n.startsWith('readings_2001'))
      deepEqual(mine, ['readings_20010301', 'readings_20010302', 'readings_20010303', 'readings_20010304'])
      const bounds = await db.query<{ b: string }>(`SELECT pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_class c
        WHERE c.relname = 'readings_20010302'`)
      assert.match(bounds[0]!.b, /2001-03-02 00:00:00\+00.*2001-03-03 00:00:00\+00/)

      // Rows land in their day, the last millisecond of a day included.
      await insertReadings(db, [scored({ sensorId: 'part-1', ts: d1 + DAY - 1 }), scored({ sensorId: 'part-1', ts: d1 + DAY })])
      const perPartition = await db.query<{ p: string, n: number }>(`SELECT r.tableoid::regclass::text AS p, count(*)::int AS n
        FROM readings r JOIN sensors s USING (sensor_key) WHERE s.sensor_id = 'part-1' GROUP BY 1 ORDER BY 1`)
      deepEqual(perPartition.map(r => [r.p, r.n]), [['readings_20010301', 1], ['readings_20010302', 1]])

      // A second process (its own Db, its own cache) creating the same partitions is fine.
      if (ctx.url !== null) {
        const other = await openPostgres(ctx.url)
        try {
          await Promise.all([ensureDayPartitions(other, [...times, d1 + 4 * DAY]), ensureDayPartitions(db, [d1 + 4 * DAY])])
        } finally {
          await other.close()
        }
      }
      await ensureDayPartitions(db, [d1 + 4 * DAY])

      // The cut is the end of 2001-03-02: 0301 and 0302 go (0302 ends exactly at the cut), 0303 stays.
      deepEqual((await dropPartitionsBefore(db, d1 + 2 * DAY)).sort(), ['readings_20010301', 'readings_20010302'])
      deepEqual((await partitionsOf(db)).filter(n => n.startsWith('readings_2001')),
        ['readings_20010303', 'readings_20010304', 'readings_20010305'])
      deepEqual(await dropPartitionsBefore(db, d1 + 2 * DAY), [], 'nothing more to drop')
      deepEqual(await dropPartitionsBefore(db, d1 + 3 * DAY - 1), [], 'a cut inside a day keeps that day')
      assert.ok((await partitionsOf(db)).includes('readings_20260115'), 'later partitions are kept')
      const left = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM sensor_readings WHERE sensor_id = 'part-1'")
      assert.equal(left[0]!.n, 0, 'the dropped rows are gone')

      // A dropped day can be created again (the cache forgets it).
      await ensureDayPartitions(db, [d1 + 10])
      assert.ok((await partitionsOf(db)).includes('readings_20010301'))
      await insertReadings(db, [scored({ sensorId: 'part-2', ts: d1 + 10 })])
      deepEqual((await dropPartitionsBefore(db, d1 + 10 * DAY)).sort(),
        ['readings_20010301', 'readings_20010303', 'readings_20010304', 'readings_20010305'])
    })

    test(`${name}: applyRetention drops whole days of readings, late readings and dead letters older than the cut; windows stay`, async () => {
      // Days in 1999: before every other test's data.
      const d1 = Date.UTC(1999, 5, 1)
      await ensureDayPartitions(db, [d1, d1 + DAY])
      await insertReadings(db, [scored({ sensorId: 'ret', location: 'ret', ts: d1 + 5 }), scored({ sensorId: 'ret', location: 'ret', ts: d1 + DAY + 5 })])
      await insertLateReadings(db, [late({ sensorId: 'ret', location: 'ret', ts: d1 + 7 }, d1, d1 + 3 * MIN), late({ sensorId: 'ret', location: 'ret', ts: d1 + DAY + 7 }, d1 + DAY, d1 + DAY + 3 * MIN)])
      const letter = (receivedAt: number): DeadLetter => ({ raw: '{', reason: 'invalid_json', detail: 'x', source: 'ret', receivedAt })
      await insertDeadLetters(db, [letter(d1), letter(d1 + DAY)])
      await mergeWindowDeltas(db, [delta('ret', 'temperature', d1, accOf([1]))])
      // The cut inside the second day: the first day goes whole, the second stays; late readings and letters by their time.
      deepEqual(await applyRetention(db, d1 + DAY + 6, d1 + DAY - 1), { partitions: ['readings_19990601'], lateReadings: 1, deadLetters: 1, deviceScores: 0, detectorStates: 0 })
      deepEqual((await rawReadings(db, 'location = $1', ['ret'])).map(x => x.ts), [d1 + DAY + 5])
      const n = async (sql: string): Promise<number> => (await db.query<{ n: number }>(sql))[0]!.n
      assert.equal(await n("SELECT count(*)::int AS n FROM late_readings WHERE location = 'ret'"), 1)
      assert.equal(await n("SELECT count(*)::int AS n FROM dead_letters WHERE source = 'ret'"), 1)
      assert.equal(await n("SELECT count(*)::int AS n FROM sensor_aggregates WHERE location = 'ret'"), 1, 'windows stay')
      await vacuumRewrittenTables(db)
    })

    test(`${name}: insertReadings (COPY) stores every column exactly`, async () => {
      const loc = 'copy-exact'
      const rows: ScoredReading[] = [
        scored({ sensorId: 'tab\there', location: loc, sensorType: 'back\\slash "double" \'single\'', unit: '°C', ts: T0 + 1, value: 0.1 + 0.2 },
          { zScore: Infinity, zAnomaly: true, mlScore: 1e-300, modelVersion: 'v1\\N' }),
        scored({ sensorId: 'line\nbreak\r\nend', location: loc, unit: '', ts: T0 + 999, value: 1e-300, anomaly: null, anomalyKind: null, seq: null },
          { zScore: -Infinity, mlScore: null, mlAnomaly: null, modelVersion: null }),
        scored({ sensorId: 'ünïcødé 🌡️ µg/m³', location: loc, unit: 'µg/m³', ts: T0 + 123_456, value: -1e-300, anomaly: true, anomalyKind: 'spike', seq: 9_007_199_254_740_991 },
          { zScore: NaN, ruleAnomaly: true, anomaly: true, severity: 'critical', explanation: 'rule: above max 35 °C; z +\\N\t8' }),
        scored({ sensorId: '\\N', location: loc, unit: '\\.', ts: T0 + 86_399_999 - 12 * 3_600_000, value: 5e-324, anomalyKind: 'a\tb\\c\nd' },
          { zScore: null, zAnomaly: false, mlScore: 0.1 + 0.7, mlAnomaly: true }),
        scored({ sensorId: 'big', location: loc, value: Number.MAX_VALUE, ts: T0 + 7, seq: 0 }, { zScore: -3.0000000000000004 }),
        scored({ sensorId: 'third', location: loc, value: 1 / 3, ts: T0 + 8, unit: 'NULL' }, { zScore: Math.PI * 1e15 })
      ]
      await insertReadings(db, rows)
      const expected = rows.map(toRaw).sort((a, b) => a.ts - b.ts || (a.sensor_id < b.sensor_id ? -1 : 1))
      assertSameRows(await rawReadings(db, 'location = $1', [loc]), expected)
      deepEqual(await insertReadings(db, []), undefined, 'an empty batch is a no-op')
    })

    test(`${name}: insertReadings keeps the sign of -0`, async () => {
      const loc = 'copy-negzero'
      await insertReadings(db, [scored({ sensorId: 'nz', location: loc, value: -0 }, { zScore: -0 })])
      const [row] = await rawReadings(db, 'location = $1', [loc])
      sameNumber(row?.value, -0, 'value')
      sameNumber(row?.z_score, -0, 'z_score')
    })

    // Unpatched, postgres.js 3.4.x never settles the COPY writable when the server rejects the data
    // after CopyDone (porsager/postgres#1173): the transaction would hang, never roll back, and hold
    // its connection 'idle in transaction (aborted)'. scripts/patch-postgres.mjs (postinstall)
    // applies the fix; this guards it. A reading in a day without a partition is what the server
    // rejects here. On PostgreSQL the batch runs on a connection of its own, is given 1.5 s, and is
    // then killed so the suite goes on.
    test(`${name}: a COPY the server rejects makes insertReadings throw and the transaction roll back`,
      async () => {
        const loc = 'copy-rejected'
        await insertReadings(db, [scored({ sensorId: 'rej-1', location: loc, ts: T0 })])
        const wdb = ctx.url === null ? db : await openPostgres(ctx.url, 1)
        const pending: Promise<unknown>[] = []
        let hung = false
        const noPartition = Date.UTC(2099, 0, 1)
        try {
          for (const batch of [
            [scored({ sensorId: 'rej-2', location: loc, ts: T0 }), scored({ sensorId: 'rej-1', location: loc, ts: noPartition })],
            [scored({ sensorId: 'rej-3', location: loc, ts: noPartition + 5 })]
          ]) {
            const tx = wdb.transaction(async tx => {
              await insertLateReadings(tx, [late({ sensorId: 'rej-late', location: loc, ts: T0 - DAY }, T0 - DAY, T0)])
              await mergeWindowDeltas(tx, [delta(loc, 'temperature', T0, accOf([1, 2]))])
              await insertReadings(tx, batch)
            })
            pending.push(tx.catch(() => {}))
            const timeout = sleep(1500).then(() => { hung = true; throw new Error('insertReadings neither returned nor threw within 1.5 s') })
            await assert.rejects(Promise.race([tx, timeout]), (err: { code?: string }) => {
              assert.equal(err.code, '23514', 'no partition of relation "readings" found for row')
              return true
            })
          }
        } finally {
          if (wdb !== db) {
            if (hung) {
              // Kill the stuck transaction (this settles it); closing wdb would wait 5 s for it.
              await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND state LIKE 'idle in transaction%'`)
              await Promise.all(pending)
            } else {
              await wdb.close()
            }
          }
        }
        deepEqual((await rawReadings(db, 'location = $1', [loc])).map(r => [r.sensor_id, r.value]), [['rej-1', 21.5]])
        deepEqual(await db.query('SELECT 1 FROM late_readings WHERE location = $1', [loc]), [])
        deepEqual(await db.query('SELECT 1 FROM sensor_aggregates WHERE location = $1', [loc]), [])
        deepEqual(await db.query("SELECT 1 FROM sensors WHERE sensor_id IN ('rej-2', 'rej-3')"), [], 'the sensors recorded first roll back too')
        // The database is usable after the failed transactions.
        await db.transaction(async tx => { await insertReadings(tx, [scored({ sensorId: 'rej-2', location: loc, ts: T0 })]) })
        assert.equal((await rawReadings(db, 'location = $1', [loc])).length, 2)
      })

    test(`${name}: findStoredKeys returns exactly the stored (sensor, time) keys`, async () => {
      const loc = 'keys-find'
      const odd = 'odd "id", {with} \\ back\\slash'
      await insertReadings(db, [
        scored({ sensorId: 'find-1', location: loc, ts: T0 + 10 }),
        scored({ sensorId: 'find-1', location: loc, ts: T0 + 20 }),
        scored({ sensorId: odd, location: loc, ts: T0 + 123 })
      ])
      deepEqual(await findStoredKeys(db, []), new Set())
      const found = await db.transaction(async tx => await findStoredKeys(tx, [
        { sensorId: 'find-1', ts: T0 + 10 },
        { sensorId: 'find-1', ts: T0 + 11 },
        { sensorId: 'find-2', ts: T0 + 10 },
        { sensorId: 'find-1', ts: T0 + 20 },
        { sensorId: odd, ts: T0 + 123 },
        { sensorId: odd, ts: T0 + 124 },
        { sensorId: 'find-1', ts: T0 + 10 + DAY * 400 } // no partition for that day: simply not stored
      ]))
      deepEqual(found, new Set([`find-1|${T0 + 10}`, `find-1|${T0 + 20}`, `${odd}|${T0 + 123}`]))
    })

    test(`${name}: loadReadingKeysSince returns the keys at or after the time`, async () => {
      const loc = 'keys-since'
      const t = T0 + 3_600_000
      await insertReadings(db, [
        scored({ sensorId: 'since-1', location: loc, ts: t - 1 }),
        scored({ sensorId: 'since-1', location: loc, ts: t }),
        scored({ sensorId: 'since-2', location: loc, ts: t + 1 }),
        scored({ sensorId: 'since-1', location: loc, ts: t + 60_000 })
      ])
      const mine = (keys: { sensorId: string, ts: number }[]): string[] =>
        keys.filter(k => k.sensorId.startsWith('since-')).map(k => `${k.sensorId}|${k.ts}`).sort()
      deepEqual(mine(await loadReadingKeysSince(db, t)), [`since-1|${t + 60_000}`, `since-1|${t}`, `since-2|${t + 1}`].sort())
      deepEqual(mine(await loadReadingKeysSince(db, t + 60_001)), [])
      deepEqual(mine(await loadReadingKeysSince(db, -Infinity)), [`since-1|${t - 1}`, `since-1|${t + 60_000}`, `since-1|${t}`, `since-2|${t + 1}`].sort())
      for (const k of await loadReadingKeysSince(db, t)) assert.equal(typeof k.ts, 'number')
    })

    test(`${name}: insertLateReadings keeps every column, skips a key already kept and returns the count inserted`, async () => {
      const loc = 'late-insert'
      const wm = T0 + 10 * MIN
      const a = late({ sensorId: 'late "a"\t{1}', location: loc, ts: T0 + 1, unit: '°C', anomaly: null, anomalyKind: null, seq: null, value: 0.1 + 0.2 }, T0, wm)
      const b = late({ sensorId: 'late-b', location: loc, ts: T0 + 2, anomaly: true, anomalyKind: 'drift', seq: 42, value: 1e-300 }, T0, wm)
      assert.equal(await insertLateReadings(db, []), 0)
      assert.equal(await insertLateReadings(db, [a, b]), 2)
      assert.equal(await insertLateReadings(db, [a]), 0, 'already kept')
      const c = late({ sensorId: 'late-c', location: loc, ts: T0 + 3 }, T0, wm + 5000)
      assert.equal(await db.transaction(async tx => await insertLateReadings(tx, [b, c, c])), 1, 'b kept before, c twice in one batch')
      const rows = await db.query<Record<string, unknown>>(`SELECT sensor_id, sensor_type, location, value, unit, anomaly, anomaly_type, seq,
        round(extract(epoch FROM timestamp) * 1000)::float8 AS ts, round(extract(epoch FROM window_start) * 1000)::float8 AS ws,
        round(extract(epoch FROM watermark) * 1000)::float8 AS wm, lateness_ms FROM late_readings WHERE location = $1 ORDER BY timestamp`, [loc])
      deepEqual(rows, [a, b, c].map(x => ({
        sensor_id: x.reading.sensorId,
        sensor_type: x.reading.sensorType,
        location: loc,
        value: x.reading.value,
        unit: x.reading.unit,
        anomaly: x.reading.anomaly,
        anomaly_type: x.reading.anomalyKind,
        seq: x.reading.seq,
        ts: x.reading.ts,
        ws: x.windowStart,
        wm: x.watermark,
        lateness_ms: x.latenessMs
      })))
    })

    test(`${name}: insertDeadLetters keeps the raw text (NUL shown as \\u0000), source, reason and detail`, async () => {
      const at = T0 + 777
      const letters: DeadLetter[] = [
        { raw: '{"a":1,\u0000"b":"x\u0000"}', reason: 'invalid_json', detail: 'NUL \u0000 in detail', source: 'http', receivedAt: at },
        { raw: 'tab\tnl\n"q" \'s\' \\ {,} °C 🌡️ NULL', reason: 'schema', detail: '', source: 'kafka:iot_sensors/3@1234', receivedAt: at + 1 },
        { raw: '', reason: 'too_large', detail: 'd', source: 'simulator', receivedAt: at + 2 }
      ]
      await rolledBack(db, async tx => {
        await tx.query('DELETE FROM dead_letters')
        await insertDeadLetters(tx, [])
        await insertDeadLetters(tx, letters)
        const rows = await recentDeadLetters(tx, 10)
        deepEqual(rows.map(r => ({ receivedAt: r.receivedAt, source: r.source, reason: r.reason, detail: r.detail, raw: r.raw })), [
          { receivedAt: at + 2, source: 'simulator', reason: 'too_large', detail: 'd', raw: '' },
          { receivedAt: at + 1, source: 'kafka:iot_sensors/3@1234', reason: 'schema', detail: '', raw: letters[1]!.raw },
          { receivedAt: at, source: 'http', reason: 'invalid_json', detail: 'NUL \\u0000 in detail', raw: '{"a":1,\\u0000"b":"x\\u0000"}' }
        ])
        assert.ok(rows[0]!.id > rows[1]!.id && rows[1]!.id > rows[2]!.id, 'newest (highest id) first')
        deepEqual((await recentDeadLetters(tx, 1)).map(r => r.reason), ['too_large'])
        // The read query shows at most 2000 characters of the raw text; the table keeps all of it.
        await insertDeadLetters(tx, [{ raw: 'x'.repeat(5000), reason: 'too_large', detail: '', source: 'http', receivedAt: at + 3 }])
        assert.equal((await recentDeadLetters(tx, 1))[0]!.raw.length, 2000)
        const full = await tx.query<{ n: number }>('SELECT max(length(raw))::int AS n FROM dead_letters')
        assert.equal(full[0]!.n, 5000)
      })
    })

    test(`${name}: mergeWindowDeltas in several calls equals one accumulator over all values`, async () => {
      const loc = 'merge'
      const rnd = lcg(42)
      const values = Array.from({ length: 240 }, (_, i) => 1e6 + 50 * rnd() + (i % 17 === 0 ? 1000 * rnd() : 0))
      const chunks = [values.slice(0, 1), values.slice(1, 60), values.slice(60, 61), values.slice(61, 200), values.slice(200)]
      const w = T0 + 30 * MIN
      const other = accOf([5, 6, 7])
      let offset = 0
      for (let i = 0; i < chunks.length; i++) {
        const chunk = chunks[i]!
        const deltas = [delta(loc, 'pressure', w, accOf(chunk, offset))]
        if (i === 2) deltas.push(delta(loc, 'humidity', w, other)) // another window in the same call
        offset += chunk.length
        const revised = await db.transaction(async tx => await mergeWindowDeltas(tx, deltas))
        const mine = revised.find(a => a.sensorType === 'pressure')
        assert.ok(mine !== undefined)
        assert.equal(mine.revision, i + 1, 'revision counts merges')
        assert.equal(mine.count, offset)
        assert.equal(revised.length, deltas.length, 'returns each revised window once')
      }
      deepEqual(await mergeWindowDeltas(db, []), [])
      const all = statsResult(accOf(values))
      const [agg] = await recentAggregates(db, { location: loc, sensorType: 'pressure', limit: 10 })
      assert.ok(agg !== undefined)
      assert.equal(agg.windowStart, w)
      assert.equal(agg.windowEnd, w + MIN)
      assert.equal(agg.count, all.count)
      assert.equal(agg.min, all.min)
      assert.equal(agg.max, all.max)
      closeTo(agg.avg, all.avg, 'avg')
      closeTo(agg.stddev, all.stddev, 'stddev')
      deepEqual([agg.anomalyCount, agg.labelAnomalyCount, agg.zScoreAnomalies, agg.mlAnomalyCount, agg.combinedAnomalyCount],
        [all.ruleAnomalies, all.labelAnomalies, all.zAnomalies, all.mlAnomalies, all.combinedAnomalies])
      assert.equal(agg.revision, chunks.length)
      assert.equal(agg.isFinal, false)
      const [hum] = await recentAggregates(db, { location: loc, sensorType: 'humidity', limit: 10 })
      deepEqual(hum && [hum.count, hum.avg, hum.min, hum.max, hum.revision], [3, 6, 5, 7, 1])
      closeTo(hum!.stddev, Math.sqrt(2 / 3), 'stddev of 5, 6, 7')
    })

    test(`${name}: finalizeWindows marks exactly the windows ending at or before the boundary; Infinity marks all`, async () => {
      await rolledBack(db, async tx => {
        await tx.query('DELETE FROM sensor_aggregates')
        const b = T0 + 2 * 3_600_000
        const starts = [b - 2 * MIN, b - MIN, b - MIN + 1, b]
        await mergeWindowDeltas(tx, starts.map(s => delta('fin', 'temperature', s, accOf([1, 2, 3]))))
        const first = await finalizeWindows(tx, b)
        deepEqual(first.map(a => `${a.windowStart - b}..${a.windowEnd - b} ${String(a.isFinal)}`).sort(),
          [`${-2 * MIN}..${-MIN} true`, `${-MIN}..0 true`])
        assert.equal(first[0]!.count, 3)
        deepEqual(await finalizeWindows(tx, b), [], 'final windows are not returned again')
        deepEqual(await finalizeWindows(tx, NaN), [])
        deepEqual(await finalizeWindows(tx, -Infinity), [])
        const rows = await tx.query<{ s: number, f: boolean, at: boolean }>(`SELECT round(extract(epoch FROM window_start) * 1000)::float8 AS s,
          is_final AS f, finalized_at IS NOT NULL AS at FROM sensor_aggregates ORDER BY window_start`)
        deepEqual(rows, [
          { s: b - 2 * MIN, f: true, at: true }, { s: b - MIN, f: true, at: true },
          { s: b - MIN + 1, f: false, at: false }, { s: b, f: false, at: false }
        ])
        const rest = await finalizeWindows(tx, Infinity)
        deepEqual(rest.map(a => a.windowStart).sort((x, y) => x - y), [b - MIN + 1, b])
        assert.ok(rest.every(a => a.isFinal))
        deepEqual(await finalizeWindows(tx, Infinity), [])
      })
    })

    test(`${name}: progress: claim, fenced save, idle marks, the stored watermark never decreases`, async () => {
      const g = 'group-1'
      const topic = 'iot_sensors'
      deepEqual(await loadPartitions(db, g, topic), [])
      assert.equal(await loadWatermark(db, g, topic), -Infinity)
      // Claiming creates rows at offset 0 (and is idempotent).
      deepEqual(await claimPartitions(db, g, topic, [1, 0, 7]), [
        { partition: 0, nextOffset: 0, maxEventMs: null, idle: false },
        { partition: 1, nextOffset: 0, maxEventMs: null, idle: false },
        { partition: 7, nextOffset: 0, maxEventMs: null, idle: false }])
      let all = await db.transaction(async tx => await saveProgress(tx, g, topic, [
        { partition: 0, expectedOffset: 0, nextOffset: 10, maxEventMs: T0 },
        { partition: 1, expectedOffset: 0, nextOffset: 2 ** 40, maxEventMs: null }]))
      deepEqual(all, [
        { partition: 0, nextOffset: 10, maxEventMs: T0, idle: false },
        { partition: 1, nextOffset: 2 ** 40, maxEventMs: null, idle: false },
        { partition: 7, nextOffset: 0, maxEventMs: null, idle: false }], 'every partition comes back, the others too')
      all = await saveProgress(db, g, topic, [
        { partition: 0, expectedOffset: 10, nextOffset: 25, maxEventMs: T0 - 1000 }, // older event time: the greatest stays
        { partition: 7, expectedOffset: 0, nextOffset: 3, maxEventMs: null }]) // null keeps what was known
      deepEqual(all.map(p => [p.partition, p.nextOffset, p.maxEventMs]), [[0, 25, T0], [1, 2 ** 40, null], [7, 3, null]])
      // The fence up front: the expected offsets pass, any other fails before anything is written.
      await db.transaction(async tx => { await fencePartitions(tx, g, topic, [{ partition: 0, expectedOffset: 25, nextOffset: 30, maxEventMs: null }]) })
      await assert.rejects(db.transaction(async tx => {
        await fencePartitions(tx, g, topic, [{ partition: 7, expectedOffset: 3, nextOffset: 9, maxEventMs: null }, { partition: 0, expectedOffset: 24, nextOffset: 30, maxEventMs: null }])
      }), (err: unknown) => (err as IotError).code === 'IOT_ERR_FENCED')
      // A worker that expected another offset lost the partition: the whole transaction fails, nothing changes.
      await assert.rejects(db.transaction(async tx => {
        await saveProgress(tx, g, topic, [
          { partition: 1, expectedOffset: 2 ** 40, nextOffset: 2 ** 40 + 5, maxEventMs: T0 },
          { partition: 0, expectedOffset: 10, nextOffset: 30, maxEventMs: T0 + 9 }])
      }), (err: unknown) => (err as IotError).code === 'IOT_ERR_FENCED')
      deepEqual((await loadPartitions(db, g, topic)).map(p => p.nextOffset), [25, 2 ** 40, 3])
      // Idle marks are fenced too; the next save clears the mark.
      await markIdle(db, g, topic, [{ partition: 7, expectedOffset: 3, idle: true }, { partition: 0, expectedOffset: 99, idle: true }])
      deepEqual((await loadPartitions(db, g, topic)).map(p => p.idle), [false, false, true])
      await saveProgress(db, g, topic, [{ partition: 7, expectedOffset: 3, nextOffset: 4, maxEventMs: T0 + 5 }])
      deepEqual((await loadPartitions(db, g, topic)).map(p => p.idle), [false, false, false])
      // A new owner claims an idle partition: active again until it says otherwise.
      await markIdle(db, g, topic, [{ partition: 7, expectedOffset: 4, idle: true }])
      deepEqual((await claimPartitions(db, g, topic, [7])).map(p => [p.partition, p.nextOffset, p.idle]), [[0, 25, false], [1, 2 ** 40, false], [7, 4, false]])
      // The stored watermark: only raised, under the lock.
      await db.transaction(async tx => {
        assert.equal(await lockFinality(tx, g, topic, 'exclusive'), -Infinity)
        await advanceWatermark(tx, g, topic, T0 - 10_000.5)
      })
      await db.transaction(async tx => {
        assert.equal(await lockFinality(tx, g, topic, 'shared'), T0 - 10_000.5, 'microseconds kept')
        await advanceWatermark(tx, g, topic, T0 - 20_000)
        await advanceWatermark(tx, g, topic, Number.NaN)
      })
      assert.equal(await loadWatermark(db, g, topic), T0 - 10_000.5)
      // Other groups and topics are separate.
      await claimPartitions(db, 'group-2', topic, [0])
      deepEqual(await loadPartitions(db, g, 'other-topic'), [])
      assert.equal(await loadWatermark(db, 'group-2', topic), -Infinity)
      assert.equal((await loadPartitions(db, g, topic)).length, 3)
    })

    // PGlite has one connection: its transactions never overlap.
    if (name === 'postgres') {
      test(`${name}: a batch holding the finality lock shared delays a finalization until it commits`, async () => {
        const g = 'lock-group'
        const topic = 'iot_sensors'
        const other = await openPostgres(ctx.url ?? '', 2)
        try {
          const order: string[] = []
          let release!: () => void
          const held = new Promise<void>(resolve => { release = resolve })
          let locked!: () => void
          const isLocked = new Promise<void>(resolve => { locked = resolve })
          const batch = db.transaction(async tx => {
            await lockFinality(tx, g, topic, 'shared')
            locked()
            await held
            order.push('batch committed')
          })
          await isLocked
          // A second batch shares the lock at once.
          await other.transaction(async tx => { await lockFinality(tx, g, topic, 'shared'); order.push('second batch') })
          const finalize = other.transaction(async tx => {
            await lockFinality(tx, g, topic, 'exclusive')
            order.push('finalization')
          })
          await new Promise(resolve => setTimeout(resolve, 200))
          order.push('released')
          release()
          await Promise.all([batch, finalize])
          deepEqual(order, ['second batch', 'released', 'batch committed', 'finalization'])
        } finally {
          await other.close()
        }
      })
    }

    test(`${name}: the ml_anomaly_predictions view exposes the original columns from sensor_readings`, async () => {
      const loc = 'ml-view'
      await insertReadings(db, [
        scored({ sensorId: 'mlv-1', location: loc, ts: T0 + 1, value: 3.25, anomaly: true, anomalyKind: 'spike' },
          { mlAnomaly: true, mlScore: 0.71, ruleAnomaly: true, zScore: 4.5, zAnomaly: true, modelVersion: 'if-7' }),
        scored({ sensorId: 'mlv-2', location: loc, ts: T0 + 2, value: -1 },
          { mlAnomaly: null, mlScore: null, ruleAnomaly: false, zScore: null, modelVersion: null }),
        scored({ sensorId: 'mlv-3', location: loc, ts: T0 + 3, value: 0 }, { mlAnomaly: false, mlScore: 0.2, ruleAnomaly: true })
      ])
      const rows = await db.query(`SELECT sensor_id, sensor_type, location, value, round(extract(epoch FROM timestamp) * 1000)::float8 AS ts,
        is_anomaly, anomaly_score, rule_based_anomaly, z_score, z_anomaly, model_version, labelled_anomaly, anomaly_type
        FROM ml_anomaly_predictions WHERE location = $1 ORDER BY timestamp`, [loc])
      // Scores are stored as float4; the model version only where a detector flagged the reading.
      deepEqual(rows, [
        { sensor_id: 'mlv-1', sensor_type: 'temperature', location: loc, value: 3.25, ts: T0 + 1, is_anomaly: true, anomaly_score: Math.fround(0.71), rule_based_anomaly: true, z_score: 4.5, z_anomaly: true, model_version: 'if-7', labelled_anomaly: true, anomaly_type: 'spike' },
        { sensor_id: 'mlv-2', sensor_type: 'temperature', location: loc, value: -1, ts: T0 + 2, is_anomaly: false, anomaly_score: null, rule_based_anomaly: false, z_score: null, z_anomaly: false, model_version: null, labelled_anomaly: false, anomaly_type: null },
        { sensor_id: 'mlv-3', sensor_type: 'temperature', location: loc, value: 0, ts: T0 + 3, is_anomaly: false, anomaly_score: Math.fround(0.2), rule_based_anomaly: true, z_score: 0.5, z_anomaly: false, model_version: 'if-1', labelled_anomaly: false, anomaly_type: null }
      ])
    })

    test(`${name}: recentReadings and recentAnomalies honour location, sensorType, from (inclusive), to (exclusive), limit, newest first`, async () => {
      await rolledBack(db, async tx => {
        await tx.query('DELETE FROM readings')
        const rows = [
          scored({ sensorId: 'r-1', location: 'lab', sensorType: 'temperature', ts: T0 }),
          scored({ sensorId: 'r-2', location: 'lab', sensorType: 'humidity', ts: T0 + 500, unit: '%' }, { zAnomaly: true, zScore: -Infinity }),
          scored({ sensorId: 'r-1', location: 'lab', sensorType: 'temperature', ts: T0 + 1000 }, { ruleAnomaly: true }),
          scored({ sensorId: 'r-3', location: 'yard', sensorType: 'temperature', ts: T0 + 1500, anomaly: true, anomalyKind: 'drift' }),
          scored({ sensorId: 'r-1', location: 'lab', sensorType: 'temperature', ts: T0 + 2000 }, { mlAnomaly: null, mlScore: null, modelVersion: null }),
          scored({ sensorId: 'r-3', location: 'yard', sensorType: 'temperature', ts: T0 + 2500 }, { mlAnomaly: true, mlScore: 0.9 })
        ]
        await insertReadings(tx, rows)
        const ids = (xs: { sensorId: string, timestamp: number }[]): string[] => xs.map(x => `${x.sensorId}@${x.timestamp - T0}`)
        deepEqual(ids(await recentReadings(tx, { limit: 100 })), ['r-3@2500', 'r-1@2000', 'r-3@1500', 'r-1@1000', 'r-2@500', 'r-1@0'])
        deepEqual(ids(await recentReadings(tx, { limit: 2 })), ['r-3@2500', 'r-1@2000'])
        deepEqual(ids(await recentReadings(tx, { location: 'lab', limit: 100 })), ['r-1@2000', 'r-1@1000', 'r-2@500', 'r-1@0'])
        deepEqual(ids(await recentReadings(tx, { sensorType: 'temperature', limit: 100 })), ['r-3@2500', 'r-1@2000', 'r-3@1500', 'r-1@1000', 'r-1@0'])
        deepEqual(ids(await recentReadings(tx, { location: 'lab', sensorType: 'humidity', limit: 100 })), ['r-2@500'])
        deepEqual(ids(await recentReadings(tx, { from: T0 + 1000, to: T0 + 2000, limit: 100 })), ['r-3@1500', 'r-1@1000'])
        deepEqual(ids(await recentReadings(tx, { from: T0 + 1001, to: T0 + 2001, limit: 100 })), ['r-1@2000', 'r-3@1500'])
        deepEqual(ids(await recentReadings(tx, { from: T0 + 2500, limit: 100 })), ['r-3@2500'])
        deepEqual(ids(await recentReadings(tx, { to: T0 + 500, limit: 100 })), ['r-1@0'])
        deepEqual(ids(await recentReadings(tx, { location: 'nowhere', limit: 100 })), [])
        deepEqual(ids(await recentReadings(tx, { location: 'lab', from: T0 + 1, to: T0 + 2000, limit: 1 })), ['r-1@1000'])
        // The full shape of a stored reading.
        deepEqual(await recentReadings(tx, { location: 'lab', sensorType: 'humidity', limit: 1 }), [{
          sensorId: 'r-2',
          sensorType: 'humidity',
          location: 'lab',
          value: 21.5,
          timestamp: T0 + 500,
          unit: '%',
          anomaly: false,
          anomalyType: null,
          ruleAnomaly: false,
          zScore: -Infinity,
          zAnomaly: true,
          mlScore: 0.4,
          mlAnomaly: false,
          modelVersion: 'if-1',
          stuckAnomaly: false,
          driftAnomaly: false,
          combinedAnomaly: false,
          severity: null,
          explanation: null
        }])
        // Anomalies: flagged by a detector (rule, z-score or ML); the source's label alone is not one.
        deepEqual(ids(await recentAnomalies(tx, { limit: 100 })), ['r-3@2500', 'r-1@1000', 'r-2@500'])
        deepEqual(ids(await recentAnomalies(tx, { location: 'lab', limit: 100 })), ['r-1@1000', 'r-2@500'])
        deepEqual(ids(await recentAnomalies(tx, { sensorType: 'temperature', limit: 100 })), ['r-3@2500', 'r-1@1000'])
        deepEqual(ids(await recentAnomalies(tx, { from: T0 + 500, to: T0 + 2500, limit: 100 })), ['r-1@1000', 'r-2@500'])
        deepEqual(ids(await recentAnomalies(tx, { limit: 1 })), ['r-3@2500'])
        // Stuck and drift are detectors too: a reading only they flagged is listed, under any and under its own.
        await insertReadings(tx, [
          scored({ sensorId: 'r-4', location: 'yard', sensorType: 'co2', ts: T0 + 3000, unit: 'ppm' }, { stuck: true, anomaly: true, anomalyScore: 0.5, severity: 'major' }),
          scored({ sensorId: 'r-5', location: 'yard', sensorType: 'co2', ts: T0 + 3500, unit: 'ppm' }, { drift: true, anomaly: true, anomalyScore: 0.6, severity: 'major' })
        ])
        deepEqual(ids(await recentAnomalies(tx, { limit: 2 })), ['r-5@3500', 'r-4@3000'])
        deepEqual(ids(await recentAnomalies(tx, { limit: 100 }, 'stuck')), ['r-4@3000'])
        deepEqual(ids(await recentAnomalies(tx, { limit: 100 }, 'drift')), ['r-5@3500'])
        deepEqual(ids(await recentAnomalies(tx, { limit: 100 }, 'combined')), ['r-5@3500', 'r-4@3000'])
        const [stuck] = await recentReadings(tx, { limit: 2 })
        deepEqual([stuck!.stuckAnomaly, stuck!.driftAnomaly], [false, true])
      })
    })

    test(`${name}: recentAggregates honours location, sensorType, from (inclusive), to (exclusive) on window_start, limit, newest first`, async () => {
      await rolledBack(db, async tx => {
        await tx.query('DELETE FROM sensor_aggregates')
        const w = T0 + 4 * 3_600_000
        await mergeWindowDeltas(tx, [
          delta('lab', 'temperature', w, accOf([1, 2])),
          delta('lab', 'humidity', w, accOf([40])),
          delta('yard', 'temperature', w, accOf([3])),
          delta('lab', 'temperature', w + MIN, accOf([4])),
          delta('yard', 'temperature', w + 2 * MIN, accOf([5]))
        ])
        const keys = (xs: { location: string, sensorType: string, windowStart: number }[]): string[] =>
          xs.map(x => `${x.location}/${x.sensorType}@${(x.windowStart - w) / MIN}`)
        deepEqual(keys(await recentAggregates(tx, { limit: 100 })),
          ['yard/temperature@2', 'lab/temperature@1', 'lab/humidity@0', 'lab/temperature@0', 'yard/temperature@0'])
        deepEqual(keys(await recentAggregates(tx, { limit: 3 })), ['yard/temperature@2', 'lab/temperature@1', 'lab/humidity@0'])
        deepEqual(keys(await recentAggregates(tx, { location: 'lab', limit: 100 })), ['lab/temperature@1', 'lab/humidity@0', 'lab/temperature@0'])
        deepEqual(keys(await recentAggregates(tx, { sensorType: 'temperature', limit: 100 })),
          ['yard/temperature@2', 'lab/temperature@1', 'lab/temperature@0', 'yard/temperature@0'])
        deepEqual(keys(await recentAggregates(tx, { from: w + MIN, to: w + 2 * MIN, limit: 100 })), ['lab/temperature@1'])
        deepEqual(keys(await recentAggregates(tx, { from: w + 1, limit: 100 })), ['yard/temperature@2', 'lab/temperature@1'])
        deepEqual(keys(await recentAggregates(tx, { to: w + 1, location: 'yard', limit: 100 })), ['yard/temperature@0'])
        deepEqual(await recentAggregates(tx, { location: 'lab', sensorType: 'temperature', to: w + 1, limit: 100 }), [{
          windowStart: w,
          windowEnd: w + MIN,
          location: 'lab',
          sensorType: 'temperature',
          avg: 1.5,
          min: 1,
          max: 2,
          stddev: 0.5,
          count: 2,
          anomalyCount: 1,
          labelAnomalyCount: 1,
          zScoreAnomalies: 1,
          mlAnomalyCount: 1,
          combinedAnomalyCount: 1,
          revision: 1,
          isFinal: false
        }])
      })
    })

    test(`${name}: recentLateReadings honours location, sensorType, from (inclusive), to (exclusive) on event time, limit, latest arrival first`, async () => {
      const wm = T0 + 20 * 3_600_000
      const ws = T0 + 5 * 3_600_000
      // One batch (one transaction) each, arriving in this order; event times deliberately not in arrival order.
      const arrivals = [
        late({ sensorId: 'lr-1', location: 'late-lab', sensorType: 'temperature', ts: ws + 3000 }, ws, wm),
        late({ sensorId: 'lr-2', location: 'late-lab', sensorType: 'humidity', ts: ws + 1000 }, ws, wm),
        late({ sensorId: 'lr-3', location: 'late-yard', sensorType: 'temperature', ts: ws + 2000 }, ws, wm + 1),
        late({ sensorId: 'lr-1', location: 'late-lab', sensorType: 'temperature', ts: ws }, ws, wm + 2)
      ]
      for (const a of arrivals) {
        await insertLateReadings(db, [a])
        await sleep(3) // received_at is now(): keep arrivals apart
      }
      const ids = (xs: { sensorId: string, timestamp: number }[]): string[] => xs.map(x => `${x.sensorId}@${x.timestamp - ws}`)
      const mine = { from: ws, to: ws + MIN }
      deepEqual(ids(await recentLateReadings(db, { ...mine, limit: 100 })), ['lr-1@0', 'lr-3@2000', 'lr-2@1000', 'lr-1@3000'])
      deepEqual(ids(await recentLateReadings(db, { ...mine, limit: 2 })), ['lr-1@0', 'lr-3@2000'])
      deepEqual(ids(await recentLateReadings(db, { location: 'late-lab', limit: 100 })), ['lr-1@0', 'lr-2@1000', 'lr-1@3000'])
      deepEqual(ids(await recentLateReadings(db, { ...mine, sensorType: 'temperature', limit: 100 })), ['lr-1@0', 'lr-3@2000', 'lr-1@3000'])
      deepEqual(ids(await recentLateReadings(db, { from: ws + 1000, to: ws + 3000, limit: 100 })), ['lr-3@2000', 'lr-2@1000'])
      deepEqual(await recentLateReadings(db, { location: 'late-yard', limit: 100 }), [{
        sensorId: 'lr-3', location: 'late-yard', sensorType: 'temperature', value: 21.5, timestamp: ws + 2000, windowStart: ws, latenessMs: wm + 1 - ws - 2000
      }])
    })

    test(`${name}: recentLateReadings of one batch come back in a stable order (newest event time first)`, async () => {
      const ws = T0 + 6 * 3_600_000
      const batch = [0, 5, 1, 4, 2, 3].map(i => late({ sensorId: `lb-${i}`, location: 'late-batch', ts: ws + i * 1000 }, ws, ws + 10 * MIN))
      await insertLateReadings(db, batch)
      const got = (await recentLateReadings(db, { location: 'late-batch', limit: 100 })).map(r => r.sensorId)
      deepEqual(got, ['lb-5', 'lb-4', 'lb-3', 'lb-2', 'lb-1', 'lb-0'])
    })

    test(`${name}: mergeDetectionCounts adds up per cell; loadDetectionCounts reads all or one type`, async () => {
      await rolledBack(db, async tx => {
        const type = 'dc-type'
        const rows = [
          scored({ sensorType: type, anomaly: false }, { mlAnomaly: null }),
          scored({ sensorType: type, anomaly: false }, { mlAnomaly: null }),
          scored({ sensorType: type, anomaly: true, anomalyKind: 'spike' }, { ruleAnomaly: true, zAnomaly: true, mlAnomaly: true, anomaly: true }),
          scored({ sensorType: type, anomaly: null }, {}),
          scored({ sensorType: type, anomaly: true, anomalyKind: 'stuck' }, { stuck: true, anomaly: true }),
          scored({ sensorType: type, anomaly: true, anomalyKind: 'stuck' }, { anomaly: false }),
          scored({ sensorType: type, anomaly: true, anomalyKind: 'drift' }, { drift: true, anomaly: true })
        ]
        await mergeDetectionCounts(tx, countDetections(rows))
        await mergeDetectionCounts(tx, countDetections(rows.slice(0, 1)))
        await mergeDetectionCounts(tx, [])
        const got = (await loadDetectionCounts(tx, type)).sort((a, b) => a.label < b.label ? -1 : a.label > b.label ? 1 : a.readings - b.readings || +a.stuckAnomaly - +b.stuckAnomaly)
        const no = { stuckAnomaly: false, driftAnomaly: false }
        deepEqual(got.map(c => ({ ...c })), [
          { sensorType: type, label: 'drift', ruleAnomaly: false, zAnomaly: false, mlState: 0, stuckAnomaly: false, driftAnomaly: true, combinedAnomaly: true, readings: 1 },
          { sensorType: type, label: 'normal', ruleAnomaly: false, zAnomaly: false, mlState: -1, ...no, combinedAnomaly: false, readings: 3 },
          { sensorType: type, label: 'spike', ruleAnomaly: true, zAnomaly: true, mlState: 1, ...no, combinedAnomaly: true, readings: 1 },
          { sensorType: type, label: 'stuck', ruleAnomaly: false, zAnomaly: false, mlState: 0, ...no, combinedAnomaly: false, readings: 1 },
          { sensorType: type, label: 'stuck', ruleAnomaly: false, zAnomaly: false, mlState: 0, stuckAnomaly: true, driftAnomaly: false, combinedAnomaly: true, readings: 1 },
          { sensorType: type, label: 'unlabelled', ruleAnomaly: false, zAnomaly: false, mlState: 0, ...no, combinedAnomaly: false, readings: 1 }
        ])
        assert.ok((await loadDetectionCounts(tx)).length >= 6)
      })
    })

    test(`${name}: saveModels lists the newest ${MODEL_VERSIONS_KEPT} versions per key, their trees hourly and on the newest ${MODEL_TREES_KEPT}; loadLatestModels returns the newest with trees, bytes intact`, async () => {
      await rolledBack(db, async tx => {
        // One model every 5 minutes of event time, as the forest retrains.
        const model = (key: string, sequence: number): StoredModel => ({
          version: `${key}#${sequence}`,
          key,
          sequence,
          trainedAt: T0 + sequence * 300_000,
          samples: 1000,
          nEstimators: 2,
          maxSamples: 256,
          offset: -0.55 - sequence / 1000,
          model: Uint8Array.from(Buffer.from(`model ${key} ${sequence}: any bytes, stored as they are \u0000\u00ff`))
        })
        const hour = 3_600_000
        for (let i = 1; i <= 40; i++) await saveModels(tx, [model('sm-a', i)], hour)
        await saveModels(tx, [model('sm-b', 1), model('sm-b', 2)], hour)
        await saveModels(tx, [{ ...model('sm-b', 2), samples: 5 }], hour) // a version already stored stays as it is
        await saveModels(tx, [model('sm-c', 1), model('sm-c', 2), model('sm-c', 3)], 0) // every model's trees
        const kept = await tx.query<{ version: string, trees: boolean }>(
          "SELECT version, model IS NOT NULL AS trees FROM anomaly_models WHERE model_key = 'sm-a' ORDER BY sequence")
        // Trees at sequences 1, 13, 25 and 37 (12 models apart: an hour); the newest two of them are kept.
        deepEqual(kept.map(k => `${k.version}${k.trees ? '+' : ''}`),
          Array.from({ length: 20 }, (_, i) => `sm-a#${21 + i}${21 + i === 25 || 21 + i === 37 ? '+' : ''}`))
        const latest = (await loadLatestModels(tx)).filter(m => m.key.startsWith('sm-'))
        deepEqual(latest.map(m => ({ ...m, model: Uint8Array.from(m.model) })), [
          { ...model('sm-a', 37), lastSequence: 40 }, { ...model('sm-b', 1), lastSequence: 2 }, { ...model('sm-c', 3), lastSequence: 3 }])
        deepEqual((await tx.query<{ version: string }>("SELECT version FROM anomaly_models WHERE model_key = 'sm-c' AND model IS NOT NULL ORDER BY 1"))
          .map(r => r.version), ['sm-c#2', 'sm-c#3'])
        const info = (await recentModels(tx, 3)).map(m => m.version)
        assert.equal(info.length, 3)
      })
    })
  })
}
