// Device scores, detector snapshots and the warm-up read, on every test database (PGlite always,
// PostgreSQL when DATABASE_URL is set).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type Reading, type ScoredReading } from '../domain/index.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import { WindowDeltas } from '../windowing/index.ts'
import {
  type Db, type DetectorSnapshot, type DeviceScoreRow, applyRetention, commitBatch, deviceScores, ensureDayPartitions, listDeviceScoreSummaries, loadDetectorState,
  loadWarmupReadings
} from './index.ts'

const S = 1000
const T0 = Date.UTC(2026, 2, 3, 10, 0, 0)
const MEASUREMENTS = ['temperature', 'humidity']

function row (i: number, over: Partial<DeviceScoreRow> = {}): DeviceScoreRow {
  return { device: 'esp32-1', measurements: MEASUREMENTS, ts: T0 + i * S, score: 0.25 + i / 100, rowScore: 0.5 - i / 100, anomaly: false, modelVersion: 'device:esp32-1#1', explanation: null, ...over }
}

function reading (sensorId: string, ts: number, value: number): ScoredReading {
  const r: Reading = { sensorId, sensorType: 'temperature', location: 'Lab', value, ts, unit: '°C', anomaly: null, anomalyKind: null, seq: null }
  return {
    reading: r,
    verdict: { ruleAnomaly: false, zScore: null, zAnomaly: false, mlScore: null, mlAnomaly: null, modelVersion: null, stuck: false, drift: false, anomalyScore: 0, anomaly: false, severity: null, explanation: null }
  }
}

const commit = async (db: Db, b: { scored?: ScoredReading[], deviceScores?: DeviceScoreRow[], snapshots?: DetectorSnapshot[] }): Promise<void> => {
  await commitBatch(db, { group: 'g', topic: 't', modelTreesEveryMs: 3_600_000 },
    { scored: b.scored ?? [], late: [], deadLetters: [], deltas: new WindowDeltas(60_000), models: [], progress: [], deviceScores: b.deviceScores ?? [], snapshots: b.snapshots ?? [] })
}

for (const tdb of testDatabases) {
  describe(`device scores and detector state on ${tdb.name}`, { skip: tdb.skip }, () => {
    let ctx: Awaited<ReturnType<TestDatabase['create']>>
    let db: Db
    before(async () => {
      ctx = await tdb.create()
      db = ctx.db
      await ensureDayPartitions(db, [T0])
    })
    after(async () => { await ctx.drop() })

    test(`${tdb.name}: a batch's device scores are stored with their series; model and explanation only on anomalies`, async () => {
      const explanation = 'device 0.81 (esp32-1#1): humidity -6.0σ (others imply +0.3σ) 88%'
      await commit(db, { deviceScores: [row(0), row(1, { anomaly: true, score: 0.81, explanation }), row(2)] })
      await commit(db, { deviceScores: [row(3), row(4, { device: 'esp32-2', measurements: ['co2', 'temperature', 'humidity'] })] })
      const all = await deviceScores(db, 'esp32-1', T0, T0 + 60 * S, 100)
      assert.deepEqual(all.map(p => [p.ts, [...p.measurements], p.score, p.rowScore, p.anomaly, p.modelVersion, p.explanation]), [
        [T0, MEASUREMENTS, 0.25, 0.5, false, null, null],
        [T0 + S, MEASUREMENTS, Math.fround(0.81), Math.fround(0.49), true, 'device:esp32-1#1', explanation],
        [T0 + 2 * S, MEASUREMENTS, Math.fround(0.27), Math.fround(0.48), false, null, null],
        [T0 + 3 * S, MEASUREMENTS, Math.fround(0.28), Math.fround(0.47), false, null, null]
      ])
      // The newest `limit`, oldest first; [from, to).
      assert.deepEqual((await deviceScores(db, 'esp32-1', T0, T0 + 60 * S, 2)).map(p => p.ts), [T0 + 2 * S, T0 + 3 * S])
      assert.deepEqual((await deviceScores(db, 'esp32-1', T0 + S, T0 + 3 * S, 100)).map(p => p.ts), [T0 + S, T0 + 2 * S])
      assert.deepEqual([...await deviceScores(db, 'nobody', T0, T0 + 60 * S, 100)], [])
      const summaries = await listDeviceScoreSummaries(db, 86_400_000)
      assert.deepEqual(summaries.map(s => ({ ...s, measurements: [...s.measurements] })), [
        { device: 'esp32-1', measurements: MEASUREMENTS, firstSeen: T0, lastSeen: T0 + 3 * S, lastScore: Math.fround(0.28), lastAnomaly: false, anomalies: 1 },
        { device: 'esp32-2', measurements: ['co2', 'temperature', 'humidity'], firstSeen: T0 + 4 * S, lastSeen: T0 + 4 * S, lastScore: Math.fround(0.29), lastAnomaly: false, anomalies: 0 }
      ])
      // Retention drops scores older than the event-time cut.
      const r = await applyRetention(db, T0 + 2 * S, Date.UTC(2000, 0, 1))
      assert.equal(r.deviceScores, 2)
      assert.deepEqual((await deviceScores(db, 'esp32-1', T0, T0 + 60 * S, 100)).map(p => p.ts), [T0 + 2 * S, T0 + 3 * S])
    })

    test(`${tdb.name}: snapshots replace the stored ones of their keys; the warm-up replays only readings after a sensor's snapshot`, async () => {
      const bytes = (n: number, len: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (n * 31 + i) & 255)
      const scored = [...Array.from({ length: 10 }, (_, i) => reading('snap-a', T0 + i * 60 * S, i)), ...Array.from({ length: 10 }, (_, i) => reading('snap-b', T0 + i * 60 * S + 1, 100 + i))]
      await commit(db, { scored, snapshots: [{ key: 'sensor:snap-a', lastTs: T0 + 3 * 60 * S, state: bytes(1, 70_000) }, { key: 'forest:temperature', lastTs: T0, state: bytes(2, 5) }] })
      await commit(db, { snapshots: [{ key: 'sensor:snap-a', lastTs: T0 + 6 * 60 * S, state: bytes(3, 3) }] })
      const stored = await loadDetectorState(db)
      assert.deepEqual(stored.map(s => [s.key, s.lastTs, [...s.state]]), [
        ['forest:temperature', T0, [...bytes(2, 5)]],
        ['sensor:snap-a', T0 + 6 * 60 * S, [...bytes(3, 3)]]
      ])
      assert.deepEqual((await loadDetectorState(db, k => k.startsWith('forest:'))).map(s => s.key), ['forest:temperature'])
      // snap-a: its readings after its snapshot (at most 2 of them: the newest); snap-b (none): its newest 4; in event-time order.
      const replay = await loadWarmupReadings(db, { sinceMs: T0, perSensor: 4, snapshotSinceMs: T0, afterSnapshot: 2 })
      assert.deepEqual(replay.filter(r => r.sensorId.startsWith('snap-')).map(r => [r.sensorId, (r.ts - T0) / (60 * S)]), [
        ['snap-b', 6 + 1 / 60_000], ['snap-b', 7 + 1 / 60_000], ['snap-a', 8], ['snap-b', 8 + 1 / 60_000], ['snap-a', 9], ['snap-b', 9 + 1 / 60_000]
      ])
      // Each side's own time bound: snapshots looked back from minute 7 on, the others from minute 9 on.
      const bounded = await loadWarmupReadings(db, { sinceMs: T0 + 9 * 60 * S, perSensor: 4, snapshotSinceMs: T0 + 7 * 60 * S, afterSnapshot: 10 })
      assert.deepEqual(bounded.filter(r => r.sensorId.startsWith('snap-')).map(r => [r.sensorId, (r.ts - T0) / (60 * S)]), [
        ['snap-a', 7], ['snap-a', 8], ['snap-a', 9], ['snap-b', 9 + 1 / 60_000]
      ])
    })
  })
}
