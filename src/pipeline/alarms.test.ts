// The worker with alarms on: conditions on each batch's readings (event time) written in its
// transaction; the wall-clock check raising offline alarms for silent sensors and for a device's
// MQTT Last Will; the next reading clearing them in the batch transaction; a restart continuing.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { AlarmEvaluator, defaultAlarmRules } from '../alarms/index.ts'
import { Detector } from '../anomaly/index.ts'
import { MemoryBus } from '../bus/index.ts'
import { type Reading } from '../domain/index.ts'
import { type Db, insertDevice, listAllAlarms, migrate, openPglite, setDeviceConnection } from '../storage/index.ts'
import { PipelineMetrics } from './metrics.ts'
import { Worker } from './worker.ts'

const T0 = Date.UTC(2026, 0, 1)
const log = pino({ level: process.env.TEST_LOG ?? 'silent' })
// Thresholds and offline only (the detectors flag 1300 ppm: a burst would join in).
const rules = { ...defaultAlarmRules, anomalyBurst: null, stuck: null, drift: null }

function reading (sensorId: string, sensorType: string, ts: number, value: number): Reading {
  return { sensorId, sensorType, location: 'Lab', value, ts, unit: '', anomaly: false, anomalyKind: null, seq: null }
}

function worker (db: Db, bus: MemoryBus, wall: { now: number }): Worker {
  return new Worker({
    db, consumer: bus.consumer(), detector: new Detector(), ingestClock: () => T0, wallClock: () => wall.now, log, metrics: new PipelineMetrics(undefined, false), alarms: new AlarmEvaluator(rules)
  }, { maxBatch: 50, pollWaitMs: 5, validation: { maxBytes: 16384, maxPastMs: null, maxFutureMs: null } })
}

async function until (what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!await probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

const keys = async (db: Db): Promise<string[]> => (await db.query<{ k: string }>('SELECT idempotency_key AS k FROM alarm_outbox ORDER BY outbox_id')).map(r => r.k)

test('Worker alarms - a threshold on event time, offline on wall time, a Last Will at once; readings clear them; a restart continues', async () => {
  const db = await openPglite('memory://')
  await migrate(db)
  const bus = new MemoryBus({ partitions: 2 })
  const wall = { now: 1_000_000 }
  let w = worker(db, bus, wall)
  await w.start()
  const p = bus.producer()
  // CO2 at 1300 ppm every 30 s for 4.5 min (pending), a pressure sensor every 10 s, and a device's sensor.
  await insertDevice(db, { id: 'dev-1', name: 'Dev', location: 'Lab', tokenHash: Buffer.alloc(32, 1), at: 0 })
  for (let t = 0; t <= 270_000; t += 30_000) p.tryProduce('co2-1', reading('co2-1', 'co2', T0 + t, 1300))
  for (let t = 0; t <= 30_000; t += 10_000) p.tryProduce('p-1', reading('p-1', 'pressure', T0 + t, 1013))
  p.tryProduce('dev-1.temperature', reading('dev-1.temperature', 'temperature', T0, 21))
  await until('stored', async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sensor_readings'))[0]!.n === 15)
  assert.deepEqual(await keys(db), [], 'pending: nothing yet')
  // A restart in the pending period: the stored condition state continues it.
  await w.stop()
  const bus2 = new MemoryBus({ partitions: 2 })
  const p2 = bus2.producer()
  w = worker(db, bus2, wall)
  await w.start()
  p2.tryProduce('co2-1', reading('co2-1', 'co2', T0 + 300_000, 1300))
  const co2 = `sensor:co2-1|threshold:co2_high|${T0 + 300_000}`
  await until('the threshold alarm', async () => (await keys(db)).length === 1)
  assert.deepEqual(await keys(db), [`${co2}|firing`])

  // The device's Last Will: offline at the next check, its sensor raises none of its own.
  await setDeviceConnection(db, 'dev-1', 'offline', wall.now + 10)
  wall.now += 20_000
  await w.checkAlarms()
  const dev = `device:dev-1|offline|${wall.now}`
  assert.deepEqual((await keys(db)).slice(1), [`${dev}|firing`])
  // Wall time passes past every sensor's deadline (max(3 × interval, 2 min)).
  wall.now += 121_000
  await w.checkAlarms()
  const offline = (await keys(db)).slice(2)
  assert.deepEqual(offline.sort(), [`sensor:co2-1|offline|${wall.now}|firing`, `sensor:p-1|offline|${wall.now}|firing`].sort())
  // Readings come back (late ones too: p-1's and the device's windows are final): each clears its offline
  // alarm in the batch's transaction, and 900 ppm the threshold.
  const back = wall.now + 5000
  wall.now = back
  p2.tryProduce('p-1', reading('p-1', 'pressure', T0 + 40_000, 1013))
  p2.tryProduce('co2-1', reading('co2-1', 'co2', T0 + 330_000, 900))
  p2.tryProduce('dev-1.temperature', reading('dev-1.temperature', 'temperature', T0 + 1000, 21))
  await until('cleared', async () => (await listAllAlarms(db)).every(a => !a.active))
  const alarms = await listAllAlarms(db)
  assert.deepEqual(alarms.map(a => [a.type, a.originator.id, a.clearMs]).sort(), [
    ['offline', 'co2-1', back], ['offline', 'dev-1', back], ['offline', 'p-1', back], ['threshold:co2_high', 'co2-1', T0 + 330_000]
  ].sort())
  assert.equal((await keys(db)).filter(k => k.endsWith('|resolved')).length, 4)
  await w.stop()
  await db.close()
})
