// Event times keep microsecond precision from the wire to the database and back: readings of one
// sensor within the same millisecond are distinct readings, and only a true redelivery (same
// sensor, same microsecond) is a duplicate. The original producer sends Python's
// `datetime.now().isoformat()`, with microseconds; cut to ms, a burst of 20,000 of its readings
// lost 1,529 as "duplicates".
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { Detector } from '../../src/anomaly/index.ts'
import { MemoryBus } from '../../src/bus/index.ts'
import { formatTimestamp, fromMicroseconds } from '../../src/domain/index.ts'
import { PipelineMetrics, Worker } from '../../src/pipeline/index.ts'
import { checkConsistency } from '../helpers/consistency.ts'
import { databaseNames, testDatabases } from '../helpers/databases.ts'

const START_US = Date.UTC(2026, 0, 1) * 1000
const SENSORS = 4
const PER_SENSOR = 5000
/** 20 readings of each sensor per millisecond: one every 50 µs. */
const STEP_US = 50
const REDELIVERED = 100

/** The original producer's message: a naive ISO time with six fraction digits. */
function producerMessage (sensor: number, us: number): string {
  const iso = formatTimestamp(fromMicroseconds(us)).replace('Z', '')
  const text = iso.length === 23 ? iso + '000' : iso
  return `{"sensor_id": "VIB_00${sensor}", "sensor_type": "vibration", "location": "Factory Floor", "value": ${(us % 997) / 10}, "timestamp": "${text}", "unit": "mm/s", "anomaly": false}`
}

for (const database of testDatabases) {
  test(`microsecond event times on ${database.name} (of ${databaseNames}): 20,000 readings within milliseconds all stored, exactly; redeliveries once`, { skip: database.skip }, async () => {
    const { db, drop } = await database.create()
    try {
      const sent = new Set<string>()
      const bus = new MemoryBus({ partitions: 2, capacity: SENSORS * PER_SENSOR + REDELIVERED + 1 })
      const producer = bus.producer()
      for (let i = 0; i < PER_SENSOR; i++) {
        for (let s = 1; s <= SENSORS; s++) {
          const us = START_US + i * STEP_US + s // sensors a microsecond apart
          sent.add(`VIB_00${s}|${us}`)
          assert.ok(producer.tryProduce(`VIB_00${s}`, producerMessage(s, us)))
          if (i % (PER_SENSOR / (REDELIVERED / SENSORS)) === 0) assert.ok(producer.tryProduce(`VIB_00${s}`, producerMessage(s, us)))
        }
      }
      const metrics = new PipelineMetrics(undefined, false)
      const worker = new Worker({
        db, consumer: bus.consumer(), detector: new Detector(), ingestClock: () => START_US / 1000 + 60_000, wallClock: () => 0, log: pino({ level: process.env.LOG_LEVEL ?? 'warn' }), metrics
      }, { maxBatch: 2000 })
      await worker.start()
      await worker.stop({ drain: true, endOfInput: true })

      assert.equal(await PipelineMetrics.total(metrics.duplicates), REDELIVERED)
      const stored = await db.query<{ k: string }>(`SELECT s.sensor_id || '|' || (extract(epoch FROM r.ts) * 1000000)::bigint AS k
        FROM readings r JOIN sensors s ON s.sensor_key = r.sensor_key`)
      assert.equal(stored.length, SENSORS * PER_SENSOR)
      assert.deepEqual(new Set(stored.map(r => r.k)), sent, 'every reading at its own microsecond')
      const report = await checkConsistency(db)
      assert.deepEqual(report.mismatches, [])
      assert.equal(report.countedInWindows, SENSORS * PER_SENSOR)
      const [first] = await db.query<{ t: string }>('SELECT to_char(min(ts) AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS.US\') AS t FROM readings')
      assert.equal(first?.t, '2026-01-01T00:00:00.000001')
    } finally {
      await drop()
    }
  })
}
