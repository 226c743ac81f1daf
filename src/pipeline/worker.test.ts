import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { Detector } from '../anomaly/index.ts'
import { MemoryBus, partitionFor, type BusConsumer, type BusRecord } from '../bus/index.ts'
import { createRandom, type Reading } from '../domain/index.ts'
import { type Db, migrate, openPglite } from '../storage/index.ts'
import { PipelineDetector } from '../detection/index.ts'
import { PipelineMetrics } from './metrics.ts'
import { Worker, type WorkerDeps } from './worker.ts'

const T0 = Date.UTC(2026, 0, 1)
const log = pino({ level: process.env.TEST_LOG ?? 'silent' })

function reading (sensorId: string, ts: number, value = 20): Reading {
  return { sensorId, sensorType: 'temperature', location: 'Lab', value, ts, unit: '°C', anomaly: false, anomalyKind: null, seq: null }
}

/** A sensor id that the bus puts on `partition` (of `partitions`). */
function sensorOn (partition: number, partitions: number, salt = ''): string {
  for (let i = 0; ; i++) if (partitionFor(`s${salt}${i}`, partitions) === partition) return `s${salt}${i}`
}

async function freshDb (): Promise<Db> {
  const db = await openPglite('memory://')
  await migrate(db)
  return db
}

function worker (db: Db, bus: MemoryBus, wall: { now: number }, metrics = new PipelineMetrics(undefined, false), overrides: Partial<WorkerDeps> = {}): Worker {
  return new Worker({
    db, consumer: overrides.consumer ?? bus.consumer(), detector: new Detector(), ingestClock: () => T0, wallClock: () => wall.now, log, metrics, ...overrides
  }, { maxBatch: 50, pollWaitMs: 5, validation: { maxBytes: 16384, maxPastMs: null, maxFutureMs: null } })
}

async function until (what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000
  while (!await probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

const count = async (db: Db, sql: string): Promise<number> => (await db.query<{ n: number }>(sql))[0]!.n

/** The database refusing every statement and transaction while `away()` holds, as a stopped server does; `refused` counts them. */
function outage (db: Db, away: () => boolean): { db: Db, refused: () => number } {
  let refused = 0
  const refuse = (): void => {
    if (!away()) return
    refused++
    throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
  }
  return {
    db: { ...db, query: async (text, params) => { refuse(); return await db.query(text, params) }, transaction: async (fn) => { refuse(); return await db.transaction(fn) } },
    refused: () => refused
  }
}

test('Worker - a silent partition holds windows open until the idle timeout of wall time, then they close', async () => {
  const db = await freshDb()
  const bus = new MemoryBus({ partitions: 2 })
  const wall = { now: 0 }
  const w = worker(db, bus, wall)
  await w.start()
  const busy = sensorOn(0, 2)
  const p = bus.producer()
  for (let s = 0; s < 300; s += 5) p.tryProduce(busy, reading(busy, T0 + s * 1000))
  await until('readings stored', async () => await count(db, 'SELECT count(*)::int AS n FROM sensor_readings') === 60)
  assert.equal(w.watermark, -Infinity, 'partition 1 has no data yet: no watermark')
  assert.equal(await count(db, 'SELECT count(*)::int AS n FROM sensor_aggregates WHERE is_final'), 0)
  // The busy partition keeps delivering; the silent one is idle once 30 s of wall time passed since it was assigned.
  wall.now = 29_999
  p.tryProduce(busy, reading(busy, T0 + 300_000))
  await until('the next reading stored', async () => await count(db, 'SELECT count(*)::int AS n FROM sensor_readings') === 61)
  await new Promise(resolve => setTimeout(resolve, 50))
  assert.equal(await count(db, 'SELECT count(*)::int AS n FROM sensor_aggregates WHERE is_final'), 0, 'not idle yet')
  wall.now = 30_000
  // Watermark = 300 s − 10 s = 290 s: windows ending at or before 230 s are final (0–60 … 180–240 → 3 of them end ≤ 230 s).
  await until('idle finalization', async () => await count(db, 'SELECT count(*)::int AS n FROM sensor_aggregates WHERE is_final') === 3)
  assert.equal(w.watermark, T0 + 290_000)
  assert.deepEqual(await db.query('SELECT partition, idle FROM stream_offsets ORDER BY partition'), [{ partition: 0, idle: false }, { partition: 1, idle: true }])
  await w.stop()
  await db.close()
})

test('Worker - a failed transaction is retried from the stored offsets and counts nothing twice', async () => {
  const db = await freshDb()
  let failNext = true
  const flaky: Db = {
    ...db,
    transaction: async (fn) => await db.transaction(async tx => {
      const r = await fn(tx)
      if (failNext) {
        failNext = false
        throw new Error('injected failure after the writes, before commit')
      }
      return r
    })
  }
  const bus = new MemoryBus({ partitions: 1 })
  const metrics = new PipelineMetrics(undefined, false)
  const w = worker(flaky, bus, { now: 0 }, metrics)
  await w.start()
  const p = bus.producer()
  for (let i = 0; i < 120; i++) p.tryProduce('a', reading('a', T0 + i * 1000, i))
  p.tryProduce('a', reading('a', T0 + 5000, 5)) // a duplicate
  await w.stop({ drain: true, endOfInput: true })
  assert.equal(await PipelineMetrics.total(metrics.batchFailures), 1)
  assert.equal(await count(db, 'SELECT count(*)::int AS n FROM sensor_readings'), 120)
  assert.equal(await count(db, 'SELECT sum(count_readings)::int AS n FROM sensor_aggregates'), 120)
  assert.equal(await PipelineMetrics.total(metrics.duplicates), 1)
  const [row] = await db.query<{ avg: number, n: number }>(`SELECT avg_value AS avg, count_readings AS n FROM sensor_aggregates
    WHERE window_start = to_timestamp(${T0 / 1000})`)
  assert.deepEqual(row, { avg: 29.5, n: 60 })
  await db.close()
})

test('Worker - after a restart, a repeat of a reading stored in a still-open window is a duplicate', async () => {
  const db = await freshDb()
  const first = new MemoryBus({ partitions: 1 })
  const w1 = worker(db, first, { now: 0 })
  await w1.start()
  for (let i = 0; i < 30; i++) first.producer().tryProduce('a', reading('a', T0 + i * 1000, i))
  await w1.stop({ drain: true })

  const second = new MemoryBus({ partitions: 1 })
  const metrics = new PipelineMetrics(undefined, false)
  const w2 = worker(db, second, { now: 0 }, metrics)
  await w2.start()
  const p = second.producer()
  p.tryProduce('a', reading('a', T0 + 10_000, 10)) // stored before the restart, window still open
  p.tryProduce('a', reading('a', T0 + 10_500, 99)) // new, out of order
  p.tryProduce('a', reading('a', T0 + 30_000, 30)) // new
  await w2.stop({ drain: true, endOfInput: true })
  assert.equal(await PipelineMetrics.total(metrics.duplicates), 1)
  assert.equal(await count(db, 'SELECT count(*)::int AS n FROM sensor_readings'), 32)
  assert.equal(await count(db, 'SELECT count_readings AS n FROM sensor_aggregates'), 32)
  const [offsets] = await db.query<{ next_offset: number }>('SELECT next_offset FROM stream_offsets WHERE partition = 0')
  assert.equal(offsets?.next_offset, 33, 'the second run continued the offsets of the first')
  await db.close()
})

test('Worker - late readings are kept, a late repeat of a stored reading is a duplicate, malformed text is a dead letter', async () => {
  const db = await freshDb()
  const bus = new MemoryBus({ partitions: 1 })
  const metrics = new PipelineMetrics(undefined, false)
  const w = worker(db, bus, { now: 0 }, metrics)
  await w.start()
  const p = bus.producer()
  for (let s = 0; s <= 200; s += 10) p.tryProduce('a', reading('a', T0 + s * 1000))
  // watermark now 190 s: window [0, 60 s) is final (60 + 60 ≤ 190)
  p.tryProduce('a', reading('a', T0 + 15_000, 7)) // new but late
  p.tryProduce('a', reading('a', T0 + 20_000)) // repeat of a stored reading, late
  p.tryProduce('a', '{"sensor_id": "a", "value": ')
  await w.stop({ drain: true })
  const late = await db.query<{ lateness_ms: number, value: number }>('SELECT lateness_ms, value FROM late_readings')
  assert.deepEqual(late, [{ lateness_ms: 175_000, value: 7 }])
  assert.equal(await PipelineMetrics.total(metrics.duplicates), 1)
  const dead = await db.query<{ reason: string, source: string }>('SELECT reason, source FROM dead_letters')
  assert.deepEqual(dead, [{ reason: 'invalid_json', source: 'iot_sensors/0@23' }])
  assert.equal(await count(db, 'SELECT count_readings AS n FROM sensor_aggregates WHERE is_final'), 6)
  await db.close()
})

test('Worker - a record the bus could not decode is a dead letter with its offsets and reason, and the partition moves on', async () => {
  const db = await freshDb()
  const bus = new MemoryBus({ partitions: 1 })
  const metrics = new PipelineMetrics(undefined, false)
  // What the Kafka bus hands out for a batch it cannot decode (bus/kafka/wire): one record at the batch's last offset.
  const inner = bus.consumer()
  const consumer: BusConsumer = {
    subscribe: async (handler) => { await inner.subscribe(handler) },
    poll: async (max: number, waitMs: number): Promise<BusRecord[]> => (await inner.poll(max, waitMs)).map(r => r.offset !== 1
      ? r
      : { partition: r.partition, offset: r.offset, key: '', value: '', undecodable: 'record batch at offsets 1-1 of iot_sensors/0: unsupported compression codec 4 (zstd)' }),
    commit: async (offsets) => { await inner.commit(offsets) },
    seek: (offsets) => { inner.seek(offsets) },
    close: async () => { await inner.close() }
  }
  const w = worker(db, bus, { now: 0 }, metrics, { consumer })
  await w.start()
  const p = bus.producer()
  for (let s = 0; s < 3; s++) p.tryProduce('a', reading('a', T0 + s * 1000))
  await w.stop({ drain: true })
  const dead = await db.query<{ reason: string, source: string, detail: string, raw: string }>('SELECT reason, source, detail, raw FROM dead_letters')
  assert.deepEqual(dead, [{
    reason: 'undecodable', source: 'iot_sensors/0@1', detail: 'record batch at offsets 1-1 of iot_sensors/0: unsupported compression codec 4 (zstd)', raw: ''
  }])
  assert.deepEqual((await db.query<{ ts: number }>('SELECT round(extract(epoch FROM timestamp) * 1000)::float8 AS ts FROM sensor_readings ORDER BY 1')).map(r => r.ts),
    [T0, T0 + 2000])
  assert.equal(await count(db, 'SELECT next_offset::int AS n FROM stream_offsets'), 3)
  assert.equal(await PipelineMetrics.total(metrics.deadLetters), 1)
  await db.close()
})

test('Worker - models are listed with the batch that trained them, their trees hourly; a restarted worker restores the newest with trees and numbers on', async () => {
  const db = await freshDb()
  let bus = new MemoryBus({ partitions: 1 })
  const wall = { now: 0 }
  const rnd = createRandom(8)
  const send = (from: number, to: number): void => {
    const p = bus.producer()
    for (let s = from; s < to; s++) for (const id of ['t1', 't2']) p.tryProduce(id, reading(id, T0 + s * 1000, 20 + rnd.normal()))
  }
  const stored = async (): Promise<string[]> => (await db.query<{ version: string, trees: boolean }>(
    'SELECT version, model IS NOT NULL AS trees FROM anomaly_models ORDER BY sequence')).map(r => `${r.version}${r.trees ? ' with trees' : ''}`)
  // Each model scores from the reading that asked for it (installAfterRows 0): the schedule below is the training times'.
  const a = worker(db, bus, wall, undefined, { detector: new PipelineDetector({ ml: { nEstimators: 10, installAfterRows: 0 } }) })
  await a.start()
  // 2 sensors at 1/s: the z baselines warm up in 30 s, the first model after 50 vectors (25 s more), then one per 5 minutes.
  send(0, 700)
  await until('1400 readings stored', async () => await count(db, 'SELECT count(*)::int AS n FROM sensor_readings') === 1400)
  await a.stop()
  // Trained at 55 s, 355 s and 655 s of event time: only the first keeps its trees (the next are less than an hour later).
  assert.deepEqual(await stored(), ['temperature#1 with trees', 'temperature#2', 'temperature#3'])
  // A reading keeps the version of the model that scored it where a detector flagged it: the
  // newest model trained before it (which one depends on whether a detector flagged one of the
  // few readings after the last training: the robust z-score flags fewer).
  const [last] = await db.query<{ v: string, ts: number }>(`SELECT model_version AS v, extract(epoch FROM timestamp)::float8 * 1000 AS ts
    FROM sensor_readings WHERE model_version IS NOT NULL ORDER BY timestamp DESC LIMIT 1`)
  const current = await db.query<{ v: string }>(`SELECT version AS v FROM anomaly_models
    WHERE extract(epoch FROM trained_at)::float8 * 1000 <= $1 ORDER BY trained_at DESC LIMIT 2`, [last!.ts])
  assert.ok(current.some(c => c.v === last!.v), `${last!.v} among ${current.map(c => c.v).join(', ')}`)
  assert.match(last!.v, /^temperature#[23]$/)

  // A restart: a fresh bus holding the whole stream again; the worker resumes from the stored offset.
  bus = new MemoryBus({ partitions: 1 })
  const b = worker(db, bus, wall, undefined, { detector: new PipelineDetector({ ml: { nEstimators: 10, installAfterRows: 0 } }) })
  await b.start()
  send(0, 1000)
  await until('2000 readings stored', async () => await count(db, 'SELECT count(*)::int AS n FROM sensor_readings') === 2000)
  await b.stop()
  // The restored model (#1, the newest with trees) is older than the retraining interval: the warm-up
  // replay of the last stored readings trains the next at once, numbered after every listed version.
  const after = await db.query<{ v: string }>(`SELECT DISTINCT model_version AS v FROM sensor_readings
    WHERE timestamp >= to_timestamp($1 / 1000.0) AND model_version IS NOT NULL ORDER BY 1`, [T0 + 700_000])
  assert.deepEqual(after.map(r => r.v), ['temperature#4', 'temperature#5'])
  assert.deepEqual(await stored(), ['temperature#1 with trees', 'temperature#2', 'temperature#3', 'temperature#4', 'temperature#5'])
  assert.equal(await count(db, 'SELECT sum(readings)::int AS n FROM detection_counts'), 2000)
  await db.close()
})

test('Worker - a database away for several attempts: it keeps its partitions, waits with backoff, then stores every reading once', async () => {
  const db = await freshDb()
  let away = false
  const down = outage(db, () => away)
  const bus = new MemoryBus({ partitions: 2 })
  const wall = { now: 0 }
  const metrics = new PipelineMetrics(undefined, false)
  const w = new Worker({ db: down.db, consumer: bus.consumer(), detector: new Detector(), ingestClock: () => T0, wallClock: () => wall.now, log, metrics, random: () => 0 },
    { maxBatch: 50, pollWaitMs: 5, validation: { maxBytes: 16384, maxPastMs: null, maxFutureMs: null }, retry: { initialMs: 10, maxMs: 40 } })
  await w.start()
  assert.deepEqual(w.partitions, [0, 1])
  const p = bus.producer()
  const a = sensorOn(0, 2)
  const b = sensorOn(1, 2)
  for (let s = 0; s < 100; s++) { p.tryProduce(a, reading(a, T0 + s * 1000)); p.tryProduce(b, reading(b, T0 + s * 1000)) }
  await until('the first readings stored', async () => await count(db, 'SELECT count(*)::int AS n FROM sensor_readings') === 200)

  away = true
  for (let s = 100; s < 200; s++) { p.tryProduce(a, reading(a, T0 + s * 1000)); p.tryProduce(b, reading(b, T0 + s * 1000)) }
  await until('several attempts refused', async () => down.refused() >= 6)
  assert.equal(w.health.databaseUnavailable, true)
  assert.ok(w.health.consecutiveFailures >= 3, `failures in a row: ${w.health.consecutiveFailures}`)
  assert.notEqual(w.health.retryAt, null, 'waiting for the next attempt')
  assert.deepEqual(w.partitions, [0, 1], 'failed recoveries keep the partitions')
  const watermark = w.watermark

  away = false
  await until('everything stored', async () => await count(db, 'SELECT count(*)::int AS n FROM sensor_readings') === 400)
  assert.deepEqual(w.partitions, [0, 1])
  assert.ok(w.watermark >= watermark, 'the reported watermark never goes back')
  await until('healthy again', async () => w.health.consecutiveFailures === 0)
  assert.deepEqual({ ...w.health, lastStoredAt: null }, { consecutiveFailures: 0, retryAt: null, lastError: null, databaseUnavailable: false, lastStoredAt: null })
  assert.equal(await PipelineMetrics.total(metrics.stored), 400, 'each reading counted once')
  assert.equal(await count(db, 'SELECT sum(count_readings)::int AS n FROM sensor_aggregates'), 400)
  await w.stop()
  await db.close()
})

test('Worker - a stop while waiting for the database ends the wait at once', async () => {
  const db = await freshDb()
  let away = false
  const bus = new MemoryBus({ partitions: 1 })
  const w = new Worker({ db: outage(db, () => away).db, consumer: bus.consumer(), detector: new Detector(), ingestClock: () => T0, wallClock: Date.now, log, metrics: new PipelineMetrics(undefined, false) },
    { maxBatch: 50, pollWaitMs: 5, validation: { maxBytes: 16384, maxPastMs: null, maxFutureMs: null }, retry: { initialMs: 60_000, maxMs: 60_000 } })
  await w.start()
  away = true
  bus.producer().tryProduce('s1', reading('s1', T0))
  await until('waiting a minute before the next attempt', async () => w.health.retryAt !== null)
  const t = performance.now()
  await w.stop()
  assert.ok(performance.now() - t < 1000, 'the stop did not wait for the backoff')
  assert.equal(bus.held, 1, 'the reading stays in the bus, unstored')
  await db.close()
})

test('Worker - a commit whose answer was lost (the connection dropped at COMMIT) is counted once, from the stored offsets', async () => {
  const db = await freshDb()
  let loseAnswer = true
  const dropping: Db = {
    ...db,
    transaction: async (fn) => {
      const r = await db.transaction(fn)
      if (loseAnswer) {
        loseAnswer = false
        throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
      }
      return r
    }
  }
  const bus = new MemoryBus({ partitions: 1 })
  const metrics = new PipelineMetrics(undefined, false)
  const w = new Worker({ db: dropping, consumer: bus.consumer(), detector: new Detector(), ingestClock: () => T0, wallClock: Date.now, log, metrics, random: () => 0 },
    { maxBatch: 50, pollWaitMs: 5, validation: { maxBytes: 16384, maxPastMs: null, maxFutureMs: null }, retry: { initialMs: 10, maxMs: 40 } })
  await w.start()
  const p = bus.producer()
  for (let s = 0; s < 30; s++) p.tryProduce('s1', reading('s1', T0 + s * 1000))
  await until('stored', async () => await PipelineMetrics.total(metrics.stored) === 30)
  for (let s = 30; s < 60; s++) p.tryProduce('s1', reading('s1', T0 + s * 1000))
  await until('all stored', async () => await PipelineMetrics.total(metrics.stored) === 60)
  await new Promise(resolve => setTimeout(resolve, 50))
  assert.equal(await PipelineMetrics.total(metrics.stored), 60, 'the batch in doubt counted once')
  assert.equal(await PipelineMetrics.total(metrics.duplicates), 0)
  assert.equal(await count(db, 'SELECT count(*)::int AS n FROM sensor_readings'), 60)
  assert.equal(bus.held, 0, 'the embedded bus let go of the stored readings')
  await w.stop()
  await db.close()
})
