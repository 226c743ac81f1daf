// Devices over MQTT into the embedded system: MQTT.js against the built-in broker (the device
// token as username, ThingsBoard's telemetry topic, QoS 0 and 1, the Last Will), and Debian's
// mosquitto as an external broker with mosquitto_pub. Readings end up in sensor_readings with the
// device's sensor ids, location, type and time; a wrong token is refused and stores nothing.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { pino } from 'pino'
import { startEmbedded, type RunningSystem } from '../../src/app/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { addDevice } from '../../src/devices/index.ts'
import { Mosquitto, mosquittoSkip } from '../helpers/mosquitto.ts'

const log = pino({ level: process.env.TEST_LOG ?? 'silent' })

async function until (what: string, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000
  while (!await ok()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

async function system (args: string[]): Promise<{ sys: RunningSystem, dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'iot-ingest-mqtt-'))
  const { config } = loadConfig(['start', '--data-dir', dir, '--port', '0', '--no-simulator', '--no-ml', ...args], {})
  return { sys: await startEmbedded(config, log), dir }
}

describe('MQTT device ingest: the built-in broker (MQTT.js)', () => {
  let sys: RunningSystem
  let dir = ''
  let token = ''
  const count = async (sql: string): Promise<number> => (await sys.db!.query<{ n: number }>(sql))[0]!.n

  before(async () => {
    ({ sys, dir } = await system(['--mqtt-port', '0']))
    token = (await addDevice(sys.db!, { id: 'shelly-3', name: 'Shelly plug', location: 'Office' }, Date.now())).token
  })
  after(async () => {
    await sys.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('QoS 0 and 1 telemetry with the token as username is stored as the device\'s sensors; the Last Will marks it offline', async () => {
    assert.match(sys.mqtt ?? '', /^mqtt:\/\/127\.0\.0\.1:\d+$/)
    const t0 = Date.now() - 10_000
    const client = await mqtt.connectAsync(sys.mqtt!, { username: token, clientId: 'shelly-3', will: { topic: 'devices/shelly-3/status', payload: Buffer.from('offline'), qos: 1, retain: true } })
    await client.publishAsync('devices/shelly-3/status', 'online', { qos: 1, retain: true })
    await client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ ts: t0, values: { temperature: 23.5, power: 41.2 } }), { qos: 0 })
    await client.publishAsync('v1/devices/me/telemetry', JSON.stringify([{ ts: t0 + 1000, values: { temperature: 23.75 } }]), { qos: 1 })
    await until('3 readings', async () => await count("SELECT count(*)::int AS n FROM sensor_readings WHERE sensor_id LIKE 'shelly-3.%'") === 3)
    const rows = await sys.db!.query<{ sensor_id: string, sensor_type: string, location: string, value: number, ms: number }>(`
      SELECT sensor_id, sensor_type, location, value, (extract(epoch FROM timestamp) * 1000)::float8 AS ms FROM sensor_readings ORDER BY timestamp, sensor_id`)
    assert.deepEqual(rows, [
      { sensor_id: 'shelly-3.power', sensor_type: 'power', location: 'Office', value: 41.2, ms: t0 },
      { sensor_id: 'shelly-3.temperature', sensor_type: 'temperature', location: 'Office', value: 23.5, ms: t0 },
      { sensor_id: 'shelly-3.temperature', sensor_type: 'temperature', location: 'Office', value: 23.75, ms: t0 + 1000 }
    ])
    const connection = async (): Promise<string | null> => (await sys.db!.query<{ c: string | null }>("SELECT connection AS c FROM devices WHERE device_id = 'shelly-3'"))[0]!.c
    await until('online', async () => await connection() === 'online')
    // An ungraceful end (the socket destroyed, no DISCONNECT): the broker publishes the will.
    client.stream.destroy()
    await until('offline by the Last Will', async () => await connection() === 'offline')
    await client.endAsync(true)
  })

  test('a wrong token gets CONNACK 5 (not authorized) and stores nothing', async () => {
    await assert.rejects(mqtt.connectAsync(sys.mqtt!, { username: 'iotd_' + 'C'.repeat(43), reconnectPeriod: 0 }), (err: { code?: number }) => err.code === 5)
    const metrics = await sys.metrics.registry.getSingleMetricAsString('iot_ingest_refused_total')
    assert.match(metrics, /iot_ingest_refused_total\{reason="unknown"\} 1/)
  })
})

describe('MQTT device ingest: an external broker (mosquitto, mosquitto_pub)', { skip: mosquittoSkip }, () => {
  let sys: RunningSystem
  let dir = ''
  let broker: Mosquitto

  before(async () => {
    broker = await Mosquitto.start()
    ;({ sys, dir } = await system(['--mqtt-url', broker.url, '--mqtt-topic-prefix', 'site']))
    await addDevice(sys.db!, { id: 'esp32-lab', name: 'Lab ESP32', location: 'Lab' }, Date.now())
  })
  after(async () => {
    await sys.stop()
    await broker.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('mosquitto_pub -q 1 to site/<device>/telemetry is stored as that device\'s reading; an unknown device is dropped', async () => {
    const t0 = Date.now() - 5000
    // The source subscribes after it connects: publish until the first message lands.
    await until('stored', async () => {
      await broker.publish('site/esp32-lab/telemetry', JSON.stringify({ ts: t0, values: { co2: 655 } }), { qos: 1 })
      await broker.publish('site/ghost/telemetry', JSON.stringify({ ts: t0, values: { co2: 1 } }), { qos: 1 })
      return (await sys.db!.query<{ n: number }>("SELECT count(*)::int AS n FROM sensor_readings WHERE sensor_id = 'esp32-lab.co2'"))[0]!.n === 1
    })
    const rows = await sys.db!.query('SELECT sensor_id, sensor_type, location, value FROM sensor_readings ORDER BY sensor_id')
    assert.deepEqual(rows, [{ sensor_id: 'esp32-lab.co2', sensor_type: 'co2', location: 'Lab', value: 655 }], 'repeats of one reading count once; the unknown device stores nothing')
  })
})
