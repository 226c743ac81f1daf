import { test } from 'node:test'
import assert from 'node:assert/strict'
import { type ScoredReading } from '../domain/index.ts'
import { testDatabases } from '../../test/helpers/databases.ts'
import { claimPartitions, ensureDayPartitions, insertReadings, recentReadings, summarizeTimeIndex } from './index.ts'
import { saveProgress } from './progress.ts'

const T0 = Date.UTC(2026, 4, 1)
const verdict = { ruleAnomaly: false, zScore: null, zAnomaly: false, mlScore: null, mlAnomaly: null, modelVersion: null, stuck: false, drift: false, anomalyScore: 0, anomaly: false, severity: null, explanation: null }
const row = (sensorId: string, ts: number): ScoredReading => ({
  reading: { sensorId, sensorType: 'co2', location: 'Lab', value: ts % 1000, ts, unit: 'ppm', anomaly: null, anomalyKind: null, seq: null },
  verdict
})

for (const database of testDatabases) {
  test(`${database.name}: the newest readings come from growing look-back spans, exactly as a full sort would give them`, { skip: database.skip }, async () => {
    const { db, drop } = await database.create()
    try {
      // Two days of one reading per 10 minutes, then a burst of 5 in the last minute.
      const rows: ScoredReading[] = []
      for (let t = T0; t < T0 + 2 * 86_400_000; t += 600_000) rows.push(row('a', t))
      const last = T0 + 2 * 86_400_000
      for (let i = 0; i < 5; i++) rows.push(row('b', last + i * 1000))
      await ensureDayPartitions(db, rows.map(r => r.reading.ts))
      await db.transaction(async tx => {
        await insertReadings(tx, rows)
        await claimPartitions(tx, 'g', 'iot_sensors', [0])
        await saveProgress(tx, 'g', 'iot_sensors', [{ partition: 0, expectedOffset: 0, nextOffset: rows.length, maxEventMs: last + 4000 }])
      })
      assert.ok(await summarizeTimeIndex(db) >= 0)
      const expected = rows.map(r => r.reading.ts).sort((x, y) => y - x)
      for (const limit of [3, 5, 6, 20, 300, 1000]) {
        const got = await recentReadings(db, { limit })
        assert.deepEqual(got.map(r => r.timestamp), expected.slice(0, limit), `limit ${limit}`)
      }
      const until = await recentReadings(db, { limit: 2, to: T0 + 3_600_000 })
      assert.deepEqual(until.map(r => r.timestamp), [T0 + 3_000_000, T0 + 2_400_000], 'a `to` bound is the upper end of the look-back')
    } finally {
      await drop()
    }
  })
}
