import { test } from 'node:test'
import assert from 'node:assert/strict'
import { type ScoredReading } from '../domain/index.ts'
import { createStatsAccumulator, addToStats } from '../windowing/index.ts'
import { type Db, ensureDayPartitions, insertReadings, mergeWindowDeltas, migrate, openPglite, upsertSensors } from '../storage/index.ts'
import { LiveHub } from './live.ts'
import { DbTail } from './tail.ts'

const T0 = Date.UTC(2026, 2, 1, 8)
const MIN = 60_000
const row = (sensorId: string, ts: number, value: number): ScoredReading => ({
  reading: { sensorId, sensorType: 'co2', location: 'Lab', value, ts, unit: 'ppm', anomaly: null, anomalyKind: null, seq: null },
  verdict: { ruleAnomaly: value > 1000, zScore: 0, zAnomaly: false, mlScore: null, mlAnomaly: null, modelVersion: null, stuck: false, drift: false, anomalyScore: 0, anomaly: value > 1000, severity: value > 1000 ? 'critical' : null, explanation: null }
})

/** Stores readings and their window delta, as another process's worker would. */
async function store (db: Db, rows: ScoredReading[]): Promise<void> {
  await ensureDayPartitions(db, rows.map(r => r.reading.ts))
  await db.transaction(async tx => {
    await insertReadings(tx, rows)
    await upsertSensors(tx, rows)
    const acc = createStatsAccumulator()
    for (const r of rows) addToStats(acc, { value: r.reading.value, ruleAnomaly: false, labelAnomaly: false, zAnomaly: false, mlAnomaly: false, combinedAnomaly: false })
    await mergeWindowDeltas(tx, [{ location: 'Lab', sensorType: 'co2', start: T0, end: T0 + MIN, acc }])
  })
}

test('DbTail - sends what other processes stored since the last look, nothing of the past, each window change once', async () => {
  const db = await openPglite('memory://')
  await migrate(db)
  const hub = new LiveHub()
  const sent: string[] = []
  hub.subscribe({}, c => { sent.push(c); return true })
  const tail = new DbTail(db, hub)
  try {
    await tail.poll()
    await store(db, [row('a', T0, 400), row('b', T0 + 1000, 410)])
    await tail.poll()
    hub.flush()
    assert.deepEqual(sent, [], 'the first look only notes where the data stands')

    await store(db, [row('a', T0 + 2000, 420), row('b', T0 + 3000, 1500)])
    await tail.poll()
    hub.flush()
    const events = sent.map(c => [/^event: (\w+)/.exec(c)![1], JSON.parse(/data: (.*)\n\n$/s.exec(c)![1]!)] as [string, { sensor_id?: string, revision?: number }[]])
    assert.deepEqual(events.map(([e, d]) => [e, d.map(x => x.sensor_id ?? `rev ${x.revision}`)]), [
      ['readings', ['a', 'b']],
      ['anomalies', ['b']],
      ['windows', ['rev 2']]
    ])
    sent.length = 0
    await tail.poll()
    hub.flush()
    assert.deepEqual(sent, [], 'nothing changed, nothing sent')
  } finally {
    tail.stop()
    hub.close()
    await db.close()
  }
})
