// The fleet against the project's built-in broker (MqttBrokerSource, aedes) on a free port, with
// hooks of the test's own: what each device publishes, its status, and a broker that holds its
// PUBACKs (a slow pipeline) to show the in-flight bound.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import { IotError } from '../domain/index.ts'
import { type DeviceStatus, type MqttDevice, MqttBrokerSource } from '../sources/index.ts'
import { type SimulatedDevice } from './fleet-devices.ts'
import { MqttFleet } from './mqtt-fleet.ts'
import { MAX_VALUES_PER_MESSAGE } from './payload.ts'

const log = pino({ level: process.env.TEST_LOG ?? 'silent' })

const lab: SimulatedDevice = { id: 'sim-laboratory-01', name: 'Simulated Laboratory 01', location: 'Laboratory', sensorTypes: ['temperature', 'co2'] }
const office: SimulatedDevice = { id: 'sim-office-01', name: 'Simulated Office 01', location: 'Office', sensorTypes: ['temperature'] }
const tokens = new Map<string, MqttDevice>([['token-lab', lab], ['token-office', office]])

/** An mqtt:// URL where nobody listens. */
async function freePortUrl (): Promise<string> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  assert.ok(address !== null && typeof address === 'object')
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return `mqtt://127.0.0.1:${address.port}`
}

async function until (what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!ok()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
    await sleep(5)
  }
}

describe('MqttFleet against the built-in broker', () => {
  let broker: MqttBrokerSource
  let url = ''
  const messages: Array<{ device: string, payload: string }> = []
  const statuses: Array<[string, DeviceStatus]> = []
  let holding = false
  const held: Array<() => void> = []

  before(async () => {
    broker = new MqttBrokerSource({
      port: 0,
      log,
      rateLimit: null,
      authenticate: async (token) => tokens.get(token) ?? null,
      onTelemetry: async (device, payload) => {
        messages.push({ device: device.id, payload: payload.toString('utf8') })
        if (holding) await new Promise<void>(resolve => { held.push(resolve) })
        return 1
      },
      onStatus: (device, status) => { statuses.push([device.id, status]) }
    })
    broker.start()
    const { port } = await broker.listening()
    url = `mqtt://127.0.0.1:${port}`
  })
  after(async () => { await broker.stop() })

  test('each device publishes its readings as ThingsBoard JSON with its token as username; online on connect, offline at close', async () => {
    messages.length = 0
    statuses.length = 0
    const fleet = new MqttFleet({ url, broker: { kind: 'iot-monitor' }, members: [{ device: lab, token: 'token-lab' }, { device: office, token: 'token-office' }], maxInFlight: 4, log })
    await fleet.connect()
    await until('online', () => statuses.length === 2)
    assert.ok(fleet.offer(0, { sensorType: 'temperature', value: 21.5, ts: 1000 }))
    assert.ok(fleet.offer(0, { sensorType: 'co2', value: 600.25, ts: 1000 }))
    assert.ok(fleet.offer(1, { sensorType: 'temperature', value: 19, ts: 1010 }))
    assert.ok(fleet.offer(0, { sensorType: 'temperature', value: 21.75, ts: 2000 }))
    await fleet.flush()
    const s = fleet.stats()
    assert.deepEqual([s.devices, s.connected, s.published, s.acknowledged, s.failed, s.inFlight, s.buffered], [2, 2, 4, 4, 0, 0, 0])
    // What the lab sent, in order, whatever the messages' cut (the first value leaves at once, the rest within the interval).
    const entries = (device: string): unknown[] => messages.filter(m => m.device === device).flatMap(m => {
      const p: unknown = JSON.parse(m.payload)
      return Array.isArray(p) ? p : [p]
    })
    assert.deepEqual(entries('sim-laboratory-01').flatMap(e => {
      const { ts, values } = e as { ts: number, values: Record<string, number> }
      return Object.entries(values).map(([k, v]) => [ts, k, v])
    }), [[1000, 'temperature', 21.5], [1000, 'co2', 600.25], [2000, 'temperature', 21.75]])
    assert.deepEqual(entries('sim-office-01'), [{ ts: 1010, values: { temperature: 19 } }])
    await fleet.close()
    await until('offline', () => statuses.length === 4)
    assert.deepEqual(statuses.toSorted(), [['sim-laboratory-01', 'offline'], ['sim-laboratory-01', 'online'], ['sim-office-01', 'offline'], ['sim-office-01', 'online']])
  })

  test('a broker that holds its PUBACKs: at most maxInFlight messages and one message being gathered per device, then the fleet waits; nothing is lost', async () => {
    messages.length = 0
    holding = true
    const fleet = new MqttFleet({ url, broker: { kind: 'iot-monitor' }, members: [{ device: lab, token: 'token-lab' }], maxInFlight: 2, publishIntervalMs: 0, log })
    await fleet.connect()
    let offered = 0
    while (fleet.offer(0, { sensorType: 'temperature', value: offered, ts: 1000 + offered })) offered++
    // Two messages of one reading in flight (unacknowledged), then a message's worth gathered.
    assert.equal(offered, 2 + MAX_VALUES_PER_MESSAGE)
    let s = fleet.stats()
    assert.deepEqual([s.inFlight, s.published, s.acknowledged, s.buffered, s.waits], [2, 2, 0, MAX_VALUES_PER_MESSAGE, 1])
    assert.equal(fleet.unacknowledged, 2 + MAX_VALUES_PER_MESSAGE)
    await until('both held at the broker', () => held.length === 2)
    let roomy = false
    const room = fleet.room().then(() => { roomy = true })
    await sleep(100)
    assert.equal(roomy, false, 'no room while the broker holds the PUBACKs')
    assert.equal(fleet.offer(0, { sensorType: 'temperature', value: -1, ts: 1 }), false)
    holding = false
    for (const release of held.splice(0)) release()
    await room
    assert.ok(fleet.offer(0, { sensorType: 'temperature', value: offered, ts: 1000 + offered }))
    offered++
    await fleet.flush()
    s = fleet.stats()
    assert.deepEqual([s.inFlight, s.published, s.acknowledged, s.failed, s.buffered], [0, offered, offered, 0, 0])
    const values = messages.flatMap(m => {
      const p: unknown = JSON.parse(m.payload)
      return (Array.isArray(p) ? p : [p]).map(e => (e as { values: { temperature: number } }).values.temperature)
    })
    assert.deepEqual(values, Array.from({ length: offered }, (_, i) => i))
    await fleet.close()
  })

  test('a token the broker refuses (CONNACK 5) fails the connect with IOT_ERR_MQTT; no broker at all fails it after the timeout', async () => {
    const refused = new MqttFleet({ url, broker: { kind: 'iot-monitor' }, members: [{ device: lab, token: 'token-wrong' }], maxInFlight: 1, log })
    await assert.rejects(refused.connect(), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_MQTT' && /sim-laboratory-01/.test(err.message))
    const nobody = new MqttFleet({ url: await freePortUrl(), broker: { kind: 'iot-monitor' }, members: [{ device: lab, token: 'token-lab' }], maxInFlight: 1, connectTimeoutMs: 500, reconnectPeriodMs: 100, log })
    await assert.rejects(nobody.connect(), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_MQTT' && /1 of 1/.test(err.message))
  })

  test('the built-in broker needs a token per device', () => {
    assert.throws(() => new MqttFleet({ url, broker: { kind: 'iot-monitor' }, members: [{ device: lab, token: null }], maxInFlight: 1, log }),
      (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_CONFIG')
  })
})
