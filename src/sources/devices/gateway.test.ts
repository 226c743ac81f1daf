import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { Detector } from '../../anomaly/index.ts'
import { MemoryBus, type BusConsumer } from '../../bus/index.ts'
import { PipelineMetrics, Worker } from '../../pipeline/index.ts'
import { type Db, migrate, openPglite } from '../../storage/index.ts'
import { DeviceGateway } from './gateway.ts'

const NOW = Date.UTC(2026, 11, 6, 12)
const device = { id: 'esp32-1', name: 'Boiler ESP32', location: 'Boiler Room' }

async function subscribed (bus: MemoryBus): Promise<BusConsumer> {
  const c = bus.consumer()
  await c.subscribe({ onAssigned: async () => new Map(), onRevoked: async () => {} })
  return c
}

describe('DeviceGateway', () => {
  test('telemetry: readings go on the bus as wire JSON and rejected values as envelopes, both keyed by the device; the device is marked seen', async () => {
    const bus = new MemoryBus({ partitions: 1 })
    const consumer = await subscribed(bus)
    const seen: Array<[string, number]> = []
    const gw = new DeviceGateway({ producer: bus.producer(), clock: () => NOW, seen: (id, at) => { seen.push([id, at]) } })
    const out = await gw.telemetry(device, '{"temperature":22.5,"humidity":"wet"}')
    assert.deepEqual(out, {
      accepted: 1,
      rejected: 1,
      rejections: [{ at: 0, reason: 'non_numeric_value', detail: out.rejections[0]!.detail }]
    })
    assert.match(out.rejections[0]!.detail, /^device esp32-1, entry 0: /)
    assert.equal(gw.produced, 1)
    assert.deepEqual(seen, [['esp32-1', NOW]])
    const records = await consumer.poll(10, 0)
    assert.deepEqual(records.map(r => r.key), ['esp32-1', 'esp32-1'])
    assert.deepEqual(JSON.parse(records[0]!.value as string), {
      sensor_id: 'esp32-1.temperature', sensor_type: 'temperature', location: 'Boiler Room', value: 22.5, timestamp: '2026-12-06T12:00:00.000Z', unit: '°C'
    })
    assert.equal(Object.keys(JSON.parse(records[1]!.value as string) as object)[0], 'iot_rejected')
  })

  test('a full bus: with waitMs the put fails with IOT_ERR_BUS_FULL after that long; without, it waits until there is room', async () => {
    const bus = new MemoryBus({ partitions: 1, capacity: 2 })
    const consumer = await subscribed(bus)
    const gw = new DeviceGateway({ producer: bus.producer(), clock: () => NOW })
    await gw.telemetry(device, '{"temperature":1,"humidity":2}')
    await assert.rejects(gw.telemetry(device, '{"co2":400}', { waitMs: 20 }), { code: 'IOT_ERR_BUS_FULL' })
    let done = false
    const waiting = gw.telemetry(device, '{"pressure":1013}').then(() => { done = true })
    await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(done, false, 'waits while the bus is full')
    const held = await consumer.poll(10, 0)
    await consumer.commit(new Map([[0, held.at(-1)!.offset + 1]]))
    await waiting
    assert.equal(done, true)
  })

  test('end to end through the worker: line protocol and JSON become stored readings of the device, bad lines dead letters with line numbers and reasons', async () => {
    const db: Db = await openPglite('memory://')
    await migrate(db)
    const bus = new MemoryBus({ partitions: 2 })
    const worker = new Worker({
      db, consumer: bus.consumer(), detector: new Detector(), ingestClock: () => NOW, wallClock: () => NOW, log: pino({ level: 'silent' }), metrics: new PipelineMetrics(undefined, false)
    }, { pollWaitMs: 5 })
    await worker.start()
    const gw = new DeviceGateway({ producer: bus.producer(), clock: () => NOW })
    try {
      const t = (s: number): number => (NOW - 60_000 + s * 1000) * 1_000_000
      const body = [
        `environment,host=esp temperature=21.5,humidity=40i ${t(1)}`,
        'this is not line protocol',
        `co2 value=650 ${t(2)}`,
        `environment status="ok" ${t(3)}`
      ].join('\n')
      const lp = await gw.lineProtocol(device, body, 'ns')
      assert.deepEqual([lp.accepted, lp.rejected, lp.rejections.map(r => [r.at, r.reason])], [3, 2, [[2, 'line_protocol'], [4, 'non_numeric_value']]])
      const json = await gw.telemetry(device, JSON.stringify([{ ts: NOW - 30_000, values: { temp: 19.25 } }]))
      assert.deepEqual([json.accepted, json.rejected], [1, 0])
      const deadline = Date.now() + 5000
      const count = async (sql: string): Promise<number> => (await db.query<{ n: number }>(sql))[0]!.n
      while (await count('SELECT count(*)::int AS n FROM sensor_readings') + await count('SELECT count(*)::int AS n FROM dead_letters') < 6) {
        assert.ok(Date.now() < deadline, 'stored in time')
        await new Promise(resolve => setTimeout(resolve, 10))
      }
      const rows = await db.query<{ sensor_id: string, sensor_type: string, location: string, value: number, ms: number }>(
        'SELECT sensor_id, sensor_type, location, value, (extract(epoch FROM timestamp) * 1000)::float8 AS ms FROM sensor_readings ORDER BY timestamp, sensor_id')
      assert.deepEqual(rows, [
        { sensor_id: 'esp32-1.humidity', sensor_type: 'humidity', location: 'Boiler Room', value: 40, ms: NOW - 59_000 },
        { sensor_id: 'esp32-1.temperature', sensor_type: 'temperature', location: 'Boiler Room', value: 21.5, ms: NOW - 59_000 },
        { sensor_id: 'esp32-1.co2', sensor_type: 'co2', location: 'Boiler Room', value: 650, ms: NOW - 58_000 },
        { sensor_id: 'esp32-1.temperature', sensor_type: 'temperature', location: 'Boiler Room', value: 19.25, ms: NOW - 30_000 }
      ])
      const dead = await db.query<{ reason: string, raw: string, detail: string }>('SELECT reason, raw, detail FROM dead_letters ORDER BY detail')
      assert.deepEqual(dead.map(d => [d.reason, d.raw]), [['line_protocol', 'this is not line protocol'], ['non_numeric_value', dead[1]!.raw]])
      assert.match(dead[0]!.detail, /^device esp32-1, line 2: /)
      assert.match(dead[1]!.detail, /^device esp32-1, line 4: /)
    } finally {
      await gw.stop()
      await worker.stop()
      await db.close()
    }
  })
})
