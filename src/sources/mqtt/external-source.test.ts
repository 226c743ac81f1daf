import { afterEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectAsync } from 'mqtt'
import pino from 'pino'
import { IotError } from '../../domain/index.ts'
import { ExternalMqttSource, type ExternalMqttSourceOptions } from './external-source.ts'
import { devices, StatusRecorder, TelemetryRecorder, until } from './hooks.fixture.ts'
import { Mosquitto, mosquittoSkip } from '../../../test/helpers/mosquitto.ts'

const log = pino({ level: process.env.TEST_LOG ?? 'silent' })
const WALL = 1_767_225_600_000

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function startMosquitto (opts: { persistence?: boolean } = {}): Promise<Mosquitto> {
  const broker = await Mosquitto.start(opts)
  cleanups.push(async () => { await broker.stop() })
  return broker
}

interface Rig {
  source: ExternalMqttSource
  telemetry: TelemetryRecorder
  status: StatusRecorder
}

/** A source on `broker`, started and subscribed. */
async function startSource (broker: Mosquitto, overrides: Partial<ExternalMqttSourceOptions> = {}, recorders?: Omit<Rig, 'source'>): Promise<Rig> {
  const telemetry = recorders?.telemetry ?? new TelemetryRecorder()
  const status = recorders?.status ?? new StatusRecorder()
  const source = new ExternalMqttSource({
    url: broker.url,
    clientId: 'iot-monitor-test',
    log,
    wallClock: () => WALL,
    reconnectMinMs: 100,
    reconnectMaxMs: 1000,
    resolveDevice: async (id) => devices[id] ?? null,
    onTelemetry: telemetry.handler,
    onStatus: status.handler,
    ...overrides
  })
  source.start()
  cleanups.push(async () => {
    telemetry.releaseAll() // a failed test may leave calls held, which stop would wait for
    await source.stop()
  })
  await until(() => source.stats().subscribed, 'the source subscribed')
  return { source, telemetry, status }
}

describe('ExternalMqttSource (against a mosquitto of its own)', { skip: mosquittoSkip, timeout: 30_000 }, () => {
  test('telemetry published with mosquitto_pub -q 1 and with MQTT.js reaches onTelemetry with the device of its topic; unknown devices are dropped', async () => {
    const broker = await startMosquitto()
    const { source, telemetry } = await startSource(broker)
    assert.deepEqual(source.topics, { telemetry: 'iot/+/telemetry', status: 'iot/+/status' })
    await broker.publish('iot/dev-1/telemetry', '{"temperature":22.5}', { qos: 1 })
    const publisher = await connectAsync(broker.url, { clientId: 'a-gateway' })
    cleanups.push(async () => { await publisher.endAsync(true) })
    await publisher.publishAsync('iot/dev-2/telemetry', '{"ts":1767225600000,"values":{"humidity":41}}', { qos: 1 })
    await broker.publish('iot/no-such-device/telemetry', '{"temperature":1}', { qos: 1 })
    await until(() => source.stats().unknownDevices === 1, 'the unknown device counted')
    assert.deepEqual(telemetry.calls, [
      { device: devices['dev-1'], payload: '{"temperature":22.5}', receivedAtMs: WALL },
      { device: devices['dev-2'], payload: '{"ts":1767225600000,"values":{"humidity":41}}', receivedAtMs: WALL }
    ])
    assert.equal(source.produced, 2)
    assert.equal(source.now(), WALL)
    const stats = source.stats()
    assert.equal(stats.acceptedMessages, 2)
    assert.equal(stats.connections, 1)
  })

  test('status: a retained value handed out on subscribe is flagged retained, a live one is not; retained telemetry is dropped', async () => {
    const broker = await startMosquitto()
    // Stored before the source subscribes: the broker hands them out on SUBSCRIBE with RETAIN set.
    await broker.publish('iot/dev-1/status', 'online', { qos: 1, retain: true })
    await broker.publish('iot/dev-1/telemetry', '{"temperature":18}', { qos: 1, retain: true })
    const { source, telemetry, status } = await startSource(broker)
    await until(() => status.calls.length === 1 && source.stats().retainedTelemetryDropped === 1, 'the retained messages')
    assert.deepEqual(status.calls, [{ deviceId: 'dev-1', status: 'online', retained: true }])
    // A retained publish while subscribed is forwarded live (RETAIN 0 on delivery, MQTT-3.3.1-9).
    await broker.publish('iot/dev-1/status', 'offline', { qos: 1, retain: true })
    await broker.publish('iot/dev-1/telemetry', '{"temperature":19}', { qos: 1, retain: true })
    await until(() => status.calls.length === 2 && telemetry.calls.length === 1, 'the live messages')
    assert.deepEqual(status.calls[1], { deviceId: 'dev-1', status: 'offline', retained: false })
    assert.deepEqual(telemetry.payloads(), ['{"temperature":19}'])
    await broker.publish('iot/dev-1/status', 'sleeping', { qos: 1 })
    await until(() => source.stats().rejectedMessages === 1, 'the bad status payload counted')
    assert.equal(source.stats().statusMessages, 2)
  })

  test('a message onTelemetry failed on is not acknowledged: the source reconnects and the broker sends it again', async () => {
    const broker = await startMosquitto()
    const telemetry = new TelemetryRecorder()
    telemetry.failNext = 1
    const { source } = await startSource(broker, {}, { telemetry, status: new StatusRecorder() })
    await broker.publish('iot/dev-1/telemetry', '{"temperature":20}', { qos: 1 })
    await until(() => source.stats().acceptedMessages === 1, 'the message taken on the second delivery')
    assert.deepEqual(telemetry.payloads(), ['{"temperature":20}', '{"temperature":20}'])
    assert.equal(source.stats().failedMessages, 1)
    assert.equal(source.stats().connections, 2)
  })

  test('failures in a row (the registry or the bus away): the message comes again after reconnects that wait longer each time, up to messageRetryMaxMs', async () => {
    const broker = await startMosquitto()
    let lookups = 0
    const failFor = 3
    const { source, telemetry } = await startSource(broker, {
      reconnectMinMs: 100,
      messageRetryMaxMs: 200,
      resolveDevice: async (id) => {
        if (++lookups <= failFor) throw new IotError('IOT_ERR_DB_UNAVAILABLE', 'the database is unreachable')
        return devices[id] ?? null
      }
    })
    const t = performance.now()
    await broker.publish('iot/dev-1/telemetry', '{"temperature":20}', { qos: 1 })
    await until(() => source.stats().failingInARow === failFor, 'three failures in a row', 10_000)
    await until(() => source.stats().acceptedMessages === 1, 'the message taken on the fourth delivery', 10_000)
    const elapsed = performance.now() - t
    // Waits of 100, 200 and 200 ms (jittered down by at most a quarter) before the redeliveries.
    assert.ok(elapsed >= 375, `reconnects backed off (${elapsed.toFixed(0)} ms)`)
    assert.deepEqual(telemetry.payloads(), ['{"temperature":20}'])
    const stats = source.stats()
    assert.deepEqual([stats.failedMessages, stats.failingInARow, stats.connections], [3, 0, 4])
  })

  test('stop waits for the message in flight; a restarted source (same client id) gets what was published while it was stopped', async () => {
    const broker = await startMosquitto()
    const first = await startSource(broker)
    first.telemetry.holding = true
    await broker.publish('iot/dev-1/telemetry', '{"n":1}', { qos: 1 })
    await until(() => first.telemetry.held === 1, 'onTelemetry called')
    let stopped = false
    const stopping = first.source.stop().then(() => { stopped = true })
    await sleep(100)
    assert.equal(stopped, false, 'stop waits for the message in flight')
    first.telemetry.releaseAll()
    await stopping
    await first.source.done()

    await broker.publish('iot/dev-1/telemetry', '{"n":2}', { qos: 1 })
    await broker.publish('iot/dev-2/telemetry', '{"n":3}', { qos: 1 })
    const second = await startSource(broker)
    await until(() => second.telemetry.calls.length === 2, 'the messages queued for the session')
    // {"n":1} was acknowledged before the first source stopped, so it does not come again.
    assert.deepEqual(second.telemetry.payloads(), ['{"n":2}', '{"n":3}'])
  })

  test('no PUBACK before onTelemetry resolved: a message held when the connection drops comes again after the reconnect, and is acknowledged once taken', async () => {
    const broker = await startMosquitto({ persistence: true })
    const first = await startSource(broker)
    first.telemetry.holding = true
    await broker.publish('iot/dev-1/telemetry', '{"n":1}', { qos: 1 })
    await until(() => first.telemetry.held === 1, 'onTelemetry called')
    await broker.restart('SIGTERM') // the session, with the unacknowledged message, survives
    await until(() => first.telemetry.calls.length === 2, 'the message again after the reconnect', 10_000)
    first.telemetry.releaseAll()
    await until(() => first.source.stats().acceptedMessages === 2, 'both deliveries taken')
    assert.deepEqual(first.telemetry.payloads(), ['{"n":1}', '{"n":1}'])
    await first.source.stop()

    // Acknowledged: a new source on the session gets only what comes after.
    await broker.publish('iot/dev-1/telemetry', '{"n":2}', { qos: 1 })
    const second = await startSource(broker)
    await until(() => second.telemetry.calls.length === 1, 'the next message')
    await sleep(200)
    assert.deepEqual(second.telemetry.payloads(), ['{"n":2}'])
  })

  test('mosquitto killed and restarted: the source reconnects by itself, subscribes again and takes what is published after', async () => {
    const broker = await startMosquitto()
    const { source, telemetry } = await startSource(broker)
    await broker.publish('iot/dev-1/telemetry', '{"n":1}', { qos: 1 })
    await until(() => telemetry.calls.length === 1, 'the first message')
    await broker.kill('SIGKILL')
    await until(() => !source.stats().connected, 'the source notices')
    await broker.restart()
    // Without persistence the broker lost the session: the source must subscribe again.
    await until(() => source.stats().subscribed, 'subscribed again', 10_000)
    await broker.publish('iot/dev-1/telemetry', '{"n":2}', { qos: 1 })
    await until(() => telemetry.calls.length === 2, 'the message after the restart')
    assert.deepEqual(telemetry.payloads(), ['{"n":1}', '{"n":2}'])
    assert.equal(source.stats().connections, 2)
  })

  test('mosquitto restarted with persistence: QoS 1 messages queued for the session while the source was away arrive after it reconnects', async () => {
    const broker = await startMosquitto({ persistence: true })
    // Slow to come back, so the message below is published while the source is away.
    const { source, telemetry } = await startSource(broker, { reconnectMinMs: 3000, reconnectMaxMs: 3000 })
    await broker.restart('SIGTERM') // a clean shutdown saves the session
    await broker.publish('iot/dev-2/telemetry', '{"n":1}', { qos: 1 })
    assert.equal(source.stats().connected, false, 'published while the source was away')
    await until(() => telemetry.calls.length === 1, 'the queued message', 10_000)
    assert.deepEqual(telemetry.calls, [{ device: devices['dev-2'], payload: '{"n":1}', receivedAtMs: WALL }])
  })
})

describe('ExternalMqttSource without a broker', () => {
  test('a URL that is not mqtt:// or mqtts:// fails with IOT_ERR_CONFIG', () => {
    assert.throws(() => new ExternalMqttSource({
      url: 'http://localhost:1883',
      log,
      resolveDevice: async () => null,
      onTelemetry: async () => 0,
      onStatus: () => {}
    }), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_CONFIG')
  })

  test('an unreadable CA file fails done() with IOT_ERR_MQTT', async () => {
    const source = new ExternalMqttSource({
      url: 'mqtts://127.0.0.1:8883',
      caPath: '/nonexistent/ca.pem',
      log,
      resolveDevice: async () => null,
      onTelemetry: async () => 0,
      onStatus: () => {}
    })
    source.start()
    await assert.rejects(source.done(), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_MQTT')
    await source.stop()
  })
})
