// 24 simulated hours of the 25-sensor fleet through the real worker, with out-of-order, late,
// duplicated and malformed messages mixed in; then SQL checks that the stored windows equal a
// recomputation from the raw readings. Runs on PGlite and on PostgreSQL (DATABASE_URL).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { Detector } from '../../src/anomaly/index.ts'
import { MemoryBus } from '../../src/bus/index.ts'
import { createRandom, toWire, type Reading, type RejectReason } from '../../src/domain/index.ts'
import { PipelineMetrics, Worker } from '../../src/pipeline/index.ts'
import { Simulator } from '../../src/sources/index.ts'
import { checkConsistency } from '../helpers/consistency.ts'
import { databaseNames, testDatabases } from '../helpers/databases.ts'

const START = Date.UTC(2026, 0, 1)
const HOURS = 24
const RATE = 0.2 // readings per second per sensor: one every 5 s, 432,000 readings in 24 h

interface Message { at: number, order: number, key: string, value: string | Reading }

const malformed: [RejectReason, (r: Reading) => string][] = [
  ['invalid_json', r => `{"sensor_id": "${r.sensorId}", "value": `],
  ['invalid_json', () => ''],
  ['non_finite_value', r => toWire(r).replace(/"value":[^,]+/, '"value":NaN')],
  ['schema', r => toWire(r).replace(/"value":([^,]+)/, '"value":"$1"')],
  ['schema', r => toWire(r).replace(/"sensor_id":"[^"]+",/, '')],
  ['schema', () => '[1,2,3]'],
  ['bad_timestamp', r => toWire(r).replace(/"timestamp":"[^"]+"/, '"timestamp":"yesterday at noon"')],
  ['timestamp_in_future', r => toWire({ ...r, ts: r.ts + 2 * 86_400_000 })],
  ['timestamp_too_old', r => toWire({ ...r, ts: r.ts - 30 * 86_400_000 })],
  ['too_large', r => toWire(r).replace('{', `{"padding":"${'x'.repeat(20_000)}",`)]
]

/** The stream as a network would deliver it: ordered by delivery time, not event time. */
function buildStream (): { messages: Message[], unique: number, lateKeys: Set<string>, duplicates: number, dead: Map<string, number> } {
  const sim = new Simulator({ sensors: 25, ratePerSensor: RATE, seed: 7, startTs: START })
  const rnd = createRandom(99)
  const messages: Message[] = []
  const lateKeys = new Set<string>()
  const dead = new Map<string, number>()
  let unique = 0
  let duplicates = 0
  let order = 0
  const push = (at: number, key: string, value: string | Reading): void => { messages.push({ at, order: order++, key, value }) }
  while (sim.nextTs < START + HOURS * 3_600_000) {
    const r = sim.next()
    unique++
    const u = rnd.next()
    let delay = 0
    if (u < 0.03) {
      delay = 1000 + rnd.int(50_000) // out of order, inside the allowed lateness: revisions
    } else if (u < 0.032 && r.ts < START + HOURS * 3_600_000 - 900_000) {
      delay = 180_000 + rnd.int(420_000) // after the window is final: late (not at the very end, where nothing follows)
      lateKeys.add(`${r.sensorId}|${r.ts}`)
    }
    push(r.ts + delay, r.sensorId, rnd.next() < 0.1 ? toWire(r) : r)
    if (rnd.next() < 0.01) {
      duplicates++
      push(r.ts + delay + rnd.int(300_000), r.sensorId, toWire(r))
    }
    if (rnd.next() < 0.003) {
      const [reason, make] = malformed[rnd.int(malformed.length)]!
      dead.set(reason, (dead.get(reason) ?? 0) + 1)
      push(r.ts, r.sensorId, make(r))
    }
  }
  messages.sort((a, b) => a.at - b.at || a.order - b.order)
  return { messages, unique, lateKeys, duplicates, dead }
}

const stream = buildStream()

for (const database of testDatabases) {
  test(`pipeline on ${database.name} (of ${databaseNames}) - 24 h with out-of-order, late, duplicate and malformed messages`, { skip: database.skip }, async () => {
    const { db, drop } = await database.create()
    try {
      const bus = new MemoryBus({ partitions: 4, capacity: stream.messages.length + 1 })
      const producer = bus.producer()
      for (const m of stream.messages) assert.ok(producer.tryProduce(m.key, m.value))
      const metrics = new PipelineMetrics(undefined, false)
      let worker: Worker | null = null
      // The ingest clock of a replay is the stream's own progress; the wall clock stands still (no idleness).
      const ingestClock = (): number => Math.max(START, (worker?.watermark ?? -Infinity) + 10_000)
      worker = new Worker({
        db, consumer: bus.consumer(), detector: new Detector(), ingestClock, wallClock: () => 0, log: pino({ level: 'warn' }), metrics
      }, { maxBatch: 400 })
      let revisedWindows = 0
      worker.on('batch', b => { revisedWindows += b.revised.filter(w => w.revision > 1).length })
      await worker.start()
      await worker.stop({ drain: true, endOfInput: true })

      assert.equal(await PipelineMetrics.total(metrics.batchFailures), 0, 'no batch failed (the primary key never caught a missed duplicate)')
      const report = await checkConsistency(db)
      assert.deepEqual(report.mismatches, [])
      assert.equal(report.storedAndLate, 0)
      assert.equal(report.readings + report.lateReadings, stream.unique, 'every valid reading is stored or late, once')
      assert.equal(report.countedInWindows, report.readings, 'no reading counted twice')
      assert.equal(report.finalWindows, report.windows, 'end of input makes every window final')
      assert.equal(report.windows, 25 * HOURS * 60)
      assert.ok(revisedWindows > 100, `out-of-order readings revise windows (${revisedWindows})`)

      const late = await db.query<{ k: string }>('SELECT sensor_id || \'|\' || round(extract(epoch FROM timestamp) * 1000)::bigint AS k FROM late_readings')
      assert.deepEqual(new Set(late.map(r => r.k)), stream.lateKeys, 'exactly the readings delivered after their window was final are late')
      const bad = await db.query<{ watermark_ok: boolean }>('SELECT bool_and(window_start + interval \'120 seconds\' <= watermark) AS watermark_ok FROM late_readings')
      assert.equal(bad[0]?.watermark_ok, true, 'late readings arrived after end + allowed lateness')

      const dead = await db.query<{ reason: string, n: number }>('SELECT reason, count(*)::int AS n FROM dead_letters GROUP BY reason')
      assert.deepEqual(new Map(dead.map(d => [d.reason, d.n])), stream.dead)
      assert.equal(await PipelineMetrics.total(metrics.duplicates), stream.duplicates)
      const kept = await db.query<{ reason: string, ok: boolean }>(`SELECT reason, bool_and(CASE reason
          WHEN 'too_large' THEN length(raw) > 20000 WHEN 'non_finite_value' THEN raw LIKE '%"value":NaN%' ELSE true END
          AND source LIKE 'iot_sensors/%@%' AND detail <> '') AS ok FROM dead_letters GROUP BY reason`)
      for (const k of kept) assert.equal(k.ok, true, `dead letters keep raw text, source and detail (${k.reason})`)
    } finally {
      await drop()
    }
  })
}
