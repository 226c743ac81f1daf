// The consistency check itself: a stuck sensor's flat hour (identical readings around 1014 hPa,
// where the sum-of-squares form of a stddev is off by 1.5e-5) is consistent, and a window that
// does not match its readings is reported.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { MemoryBus } from '../../src/bus/index.ts'
import { PipelineDetector } from '../../src/detection/index.ts'
import { type Reading } from '../../src/domain/index.ts'
import { PipelineMetrics, Worker } from '../../src/pipeline/index.ts'
import { checkConsistency } from './consistency.ts'
import { testDatabases } from './databases.ts'

const T0 = Date.UTC(2026, 11, 6, 11, 0, 0)

for (const database of testDatabases) {
  test(`consistency check on ${database.name} - a flat hour at 1014 hPa is consistent; a changed window is reported`, { skip: database.skip }, async () => {
    const { db, drop } = await database.create()
    try {
      const bus = new MemoryBus({ partitions: 1 })
      const producer = bus.producer()
      // 75 identical readings every 1.5 s (two windows of one hour), as a stuck sensor sends.
      for (let i = 0; i < 75; i++) {
        const r: Reading = { sensorId: 'p-1', sensorType: 'pressure', location: 'Laboratory', value: 1014.5740209262316, ts: T0 + i * 1500, unit: 'hPa', anomaly: null, anomalyKind: null, seq: null }
        assert.ok(producer.tryProduce(r.sensorId, r))
      }
      const worker = new Worker({
        db, consumer: bus.consumer(), detector: new PipelineDetector({ ml: false }), ingestClock: () => T0, wallClock: () => 0, log: pino({ level: 'warn' }), metrics: new PipelineMetrics(undefined, false)
      })
      await worker.start()
      await worker.stop({ drain: true, endOfInput: true })
      const ok = await checkConsistency(db)
      assert.deepEqual(ok.mismatches, [])
      assert.equal(ok.readings, 75)
      await db.query('UPDATE sensor_aggregates SET max_value = max_value + 1 WHERE window_start = to_timestamp($1 / 1000.0)', [T0])
      const bad = await checkConsistency(db)
      assert.equal(bad.mismatches.length, 2, 'the window and its hour')
    } finally {
      await drop()
    }
  })
}
