import { afterEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect, ErrorWithSubackPacket, type IClientOptions, type MqttClient, type Packet } from 'mqtt'
import pino from 'pino'
import { IotError } from '../../domain/index.ts'
import { ConnackCode, MqttBrokerSource, type MqttBrokerSourceOptions, statusTopic, TELEMETRY_TOPIC } from './broker-source.ts'
import { StatusRecorder, TelemetryRecorder, tokens, until } from './hooks.fixture.ts'

const log = pino({ level: process.env.TEST_LOG ?? 'silent' })
/** The injected wall clock: it stands still, so receive times are exact. */
const WALL = 1_767_225_600_000

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface Rig {
  broker: MqttBrokerSource
  port: number
  telemetry: TelemetryRecorder
  status: StatusRecorder
  /** Tokens the broker asked the registry about. */
  asked: string[]
}

async function startBroker (overrides: Partial<MqttBrokerSourceOptions> = {}): Promise<Rig> {
  const telemetry = new TelemetryRecorder()
  const status = new StatusRecorder()
  const asked: string[] = []
  const broker = new MqttBrokerSource({
    port: 0,
    log,
    wallClock: () => WALL,
    authenticate: async (token) => {
      asked.push(token)
      return tokens[token] ?? null
    },
    onTelemetry: telemetry.handler,
    onStatus: status.handler,
    ...overrides
  })
  broker.start()
  cleanups.push(async () => {
    telemetry.releaseAll() // a failed test may leave calls held, which stop would wait for
    await broker.stop()
  })
  const { port } = await broker.listening()
  return { broker, port, telemetry, status, asked }
}

/** An MQTT.js device connected to the broker (MQTT 3.1.1). */
async function connectDevice (port: number, token: string, opts: IClientOptions = {}, scheme = 'mqtt'): Promise<MqttClient> {
  const client = connect(`${scheme}://127.0.0.1:${port}`, { username: token, reconnectPeriod: 0, ...opts })
  cleanups.push(async () => { await client.endAsync(true) })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => { resolve() })
    client.once('error', reject)
  })
  return client
}

/** The return code of the CONNACK a client gets for this token (none: no username). */
async function connackCode (port: number, token: string | null): Promise<number> {
  const client = connect(`mqtt://127.0.0.1:${port}`, token === null ? { reconnectPeriod: 0 } : { username: token, reconnectPeriod: 0 })
  cleanups.push(async () => { await client.endAsync(true) })
  client.on('error', () => {})
  return await new Promise<number>((resolve, reject) => {
    client.on('packetreceive', (packet: Packet) => {
      if (packet.cmd === 'connack') resolve(packet.returnCode ?? -1)
    })
    client.once('close', () => { reject(new Error('closed without a CONNACK')) })
  })
}

async function closed (client: MqttClient): Promise<void> {
  await new Promise<void>(resolve => { client.once('close', () => { resolve() }) })
}

describe('MqttBrokerSource', { timeout: 15000 }, () => {
  test('a device with a good token connects; its QoS 0 and QoS 1 telemetry reach onTelemetry with its device and payload', async () => {
    const { broker, port, telemetry, asked } = await startBroker()
    const client = await connectDevice(port, 'token-1')
    await client.publishAsync(TELEMETRY_TOPIC, '{"temperature":22.5}', { qos: 0 })
    await client.publishAsync(TELEMETRY_TOPIC, '{"ts":1767225600000,"values":{"humidity":41}}', { qos: 1 })
    await until(() => telemetry.calls.length === 2, 'two messages')
    assert.deepEqual(asked, ['token-1'])
    assert.deepEqual(telemetry.calls, [
      { device: tokens['token-1'], payload: '{"temperature":22.5}', receivedAtMs: WALL },
      { device: tokens['token-1'], payload: '{"ts":1767225600000,"values":{"humidity":41}}', receivedAtMs: WALL }
    ])
    assert.equal(broker.produced, 2)
    assert.equal(broker.now(), WALL)
    const stats = broker.stats()
    assert.equal(stats.connections, 1)
    assert.equal(stats.acceptedConnections, 1)
    assert.equal(stats.acceptedMessages, 2)
  })

  test('a wrong or missing token gets CONNACK 5 (not authorized); a failing registry gets CONNACK 3 (server unavailable)', async () => {
    const { broker, port, asked } = await startBroker()
    assert.equal(await connackCode(port, 'wrong-token'), ConnackCode.NOT_AUTHORIZED)
    assert.equal(await connackCode(port, null), ConnackCode.NOT_AUTHORIZED)
    assert.deepEqual(asked, ['wrong-token'], 'no username: the registry is not asked')
    assert.equal(broker.stats().refusedConnections, 2)
    assert.equal(broker.stats().connections, 0)

    const failing = await startBroker({ authenticate: async () => { throw new Error('registry down') } })
    assert.equal(await connackCode(failing.port, 'token-1'), ConnackCode.SERVER_UNAVAILABLE)
    assert.equal(failing.broker.stats().unavailableConnections, 1)
    assert.equal(failing.broker.stats().refusedConnections, 0)
  })

  test('a publish to a topic the device may not use closes its connection and is not taken; subscriptions are refused', async () => {
    const { broker, port, telemetry, status } = await startBroker()
    const forbidden: Array<[string, string]> = [
      [statusTopic('dev-2'), 'offline'], // another device's status
      ['v1/devices/me/attributes', '{"fw":"1.0"}'],
      ['$SYS/broker/clients', 'x'],
      [statusTopic('dev-1'), 'maybe'] // its own status topic, but not online/offline
    ]
    for (const [topic, payload] of forbidden) {
      const client = await connectDevice(port, 'token-1')
      const gone = closed(client)
      client.publish(topic, payload, { qos: 1 })
      await gone
    }
    assert.deepEqual(telemetry.calls, [])
    assert.deepEqual(status.calls, [])
    assert.equal(broker.stats().rejectedMessages, 4)

    const client = await connectDevice(port, 'token-1')
    // MQTT.js turns a SUBACK failure (0x80) into an error carrying the packet.
    await assert.rejects(client.subscribeAsync(TELEMETRY_TOPIC, { qos: 1 }), (err: unknown) => {
      assert.ok(err instanceof ErrorWithSubackPacket)
      assert.deepEqual(err.packet?.granted, [128])
      return true
    })
    assert.equal(broker.stats().refusedSubscriptions, 1)
    assert.equal(client.connected, true, 'a refused subscription keeps the connection')
  })

  test('a QoS 1 PUBACK is sent only after onTelemetry resolved', async () => {
    const { port, telemetry } = await startBroker()
    const client = await connectDevice(port, 'token-1')
    telemetry.holding = true
    let acknowledged = false
    const published = client.publishAsync(TELEMETRY_TOPIC, '{"temperature":21}', { qos: 1 }).then(() => { acknowledged = true })
    await until(() => telemetry.held === 1, 'onTelemetry called')
    await sleep(150)
    assert.equal(acknowledged, false, 'no PUBACK while the bus has not taken the readings')
    telemetry.releaseAll()
    await published
    assert.equal(acknowledged, true)
  })

  test('a message whose PUBACK was lost with the connection comes again after the device reconnects (clean: false) and is taken again', async () => {
    const { broker, port, telemetry } = await startBroker()
    const client = await connectDevice(port, 'token-1', { clean: false, clientId: 'dev-1-session', reconnectPeriod: 50 })
    telemetry.holding = true
    const published = client.publishAsync(TELEMETRY_TOPIC, '{"ts":1767225600000,"values":{"temperature":20}}', { qos: 1 })
    await until(() => telemetry.held === 1, 'onTelemetry called')
    client.stream.destroy() // the connection is lost before the PUBACK
    // (MQTT.js emits 'connect' only once the messages it resends are acknowledged: not waited for.)
    await until(() => telemetry.calls.length === 2, 'the message again after the reconnect')
    telemetry.releaseAll()
    await published
    assert.deepEqual(telemetry.payloads(), [
      '{"ts":1767225600000,"values":{"temperature":20}}',
      '{"ts":1767225600000,"values":{"temperature":20}}'
    ])
    assert.equal(broker.stats().acceptedMessages, 2)
  })

  test('status: what the device publishes is live (retained false, even with RETAIN set); its Last Will reports it offline when the connection dies', async () => {
    const { broker, port, status } = await startBroker()
    const will = { topic: statusTopic('dev-1'), payload: Buffer.from('offline'), qos: 1 as const, retain: true }
    const client = await connectDevice(port, 'token-1', { will })
    await client.publishAsync(statusTopic('dev-1'), 'online', { qos: 1, retain: true })
    assert.deepEqual(status.calls, [{ deviceId: 'dev-1', status: 'online', retained: false }])
    client.stream.destroy() // no DISCONNECT: the broker publishes the will
    await until(() => status.calls.length === 2, 'the Last Will')
    assert.deepEqual(status.calls[1], { deviceId: 'dev-1', status: 'offline', retained: false })

    // A connection reset (RST, no FIN) as well.
    const reset = await connectDevice(port, 'token-2', { will: { ...will, topic: statusTopic('dev-2') } })
    ;(reset.stream as Socket).resetAndDestroy()
    await until(() => status.calls.length === 3, 'the Last Will after a reset')
    assert.deepEqual(status.calls[2], { deviceId: 'dev-2', status: 'offline', retained: false })

    // A clean DISCONNECT discards the will.
    const polite = await connectDevice(port, 'token-2', { will: { ...will, topic: statusTopic('dev-2') } })
    await polite.endAsync()
    await sleep(100)
    assert.equal(status.calls.length, 3)
    assert.equal(broker.stats().statusMessages, 3)
  })

  test('a packet over maxMessageBytes closes the connection as soon as its header arrives; one at the limit is taken', async () => {
    const { broker, port, telemetry } = await startBroker({ maxMessageBytes: 1024 })
    // A QoS 0 PUBLISH body: 2 bytes of topic length, the topic, the payload.
    const atLimit = 1024 - 2 - TELEMETRY_TOPIC.length
    const client = await connectDevice(port, 'token-1')
    await client.publishAsync(TELEMETRY_TOPIC, 'a'.repeat(atLimit), { qos: 0 })
    await until(() => telemetry.calls.length === 1, 'the message at the limit')
    const gone = closed(client)
    client.publish(TELEMETRY_TOPIC, 'b'.repeat(atLimit + 1), { qos: 0 })
    await gone
    assert.deepEqual(telemetry.calls.map(c => c.payload.length), [atLimit])
    assert.equal(broker.stats().oversizeMessages, 1)
  })

  test('the per-device rate limit delays telemetry beyond the burst, in order', async () => {
    const handledAt: Array<[string, number]> = []
    const { broker, port } = await startBroker({
      rateLimit: { messagesPerSecond: 10, burst: 2 },
      onTelemetry: async (_device, payload) => {
        handledAt.push([payload.toString(), Date.now()])
        return 1
      }
    })
    const client = await connectDevice(port, 'token-1')
    const start = Date.now()
    for (const n of ['1', '2', '3', '4']) client.publish(TELEMETRY_TOPIC, n, { qos: 0 })
    await until(() => handledAt.length === 4, 'four messages')
    assert.deepEqual(handledAt.map(h => h[0]), ['1', '2', '3', '4'])
    // The clock stands still, so the bucket does not refill: 3 waits 100 ms, 4 waits 200 ms.
    assert.ok(handledAt[3]![1] - start >= 190, `the 4th came after ${handledAt[3]![1] - start} ms`)
    assert.equal(broker.stats().throttledMessages, 2)
    assert.equal(broker.stats().acceptedMessages, 4)
  })

  test('at most maxInFlightPerClient messages of one connection are in onTelemetry at once', async () => {
    const { port, telemetry } = await startBroker({ maxInFlightPerClient: 2 })
    const client = await connectDevice(port, 'token-1')
    telemetry.holding = true
    // One write, so the broker reads all five at once.
    client.stream.cork()
    const acks = ['1', '2', '3', '4', '5'].map(n => client.publishAsync(TELEMETRY_TOPIC, n, { qos: 1 }))
    process.nextTick(() => { client.stream.uncork() })
    await until(() => telemetry.held === 2, 'two in flight')
    await sleep(100)
    assert.equal(telemetry.calls.length, 2)
    telemetry.releaseOne()
    await until(() => telemetry.calls.length === 3, 'the third once a slot is free')
    telemetry.releaseAll()
    await Promise.all(acks)
    assert.deepEqual(telemetry.payloads(), ['1', '2', '3', '4', '5'])
  })

  test('at maxConnections the next device gets CONNACK 3 until a connection closes', async () => {
    const { broker, port } = await startBroker({ maxConnections: 1 })
    const first = await connectDevice(port, 'token-1')
    assert.equal(await connackCode(port, 'token-2'), ConnackCode.SERVER_UNAVAILABLE)
    assert.equal(broker.stats().unavailableConnections, 1)
    await first.endAsync()
    await until(() => broker.stats().connections === 0, 'the first connection gone')
    await connectDevice(port, 'token-2')
    assert.equal(broker.stats().connections, 1)
  })

  test('onTelemetry rejecting: the message is not acknowledged, the device is disconnected and sends it again', async () => {
    const { broker, port, telemetry } = await startBroker()
    telemetry.failNext = 1
    const client = await connectDevice(port, 'token-1', { clean: false, clientId: 'dev-1-retry', reconnectPeriod: 50 })
    await client.publishAsync(TELEMETRY_TOPIC, '{"temperature":19}', { qos: 1 })
    assert.deepEqual(telemetry.payloads(), ['{"temperature":19}', '{"temperature":19}'])
    assert.equal(broker.stats().failedMessages, 1)
    assert.equal(broker.stats().acceptedMessages, 1)
    assert.equal(broker.produced, 1)
  })

  test('stop waits for onTelemetry in flight and sends its PUBACK, refuses what arrives meanwhile, and reports no device offline', async () => {
    const { broker, port, telemetry, status } = await startBroker()
    const will1 = { topic: statusTopic('dev-1'), payload: Buffer.from('offline'), qos: 1 as const, retain: false }
    const will2 = { topic: statusTopic('dev-2'), payload: Buffer.from('offline'), qos: 1 as const, retain: false }
    const device1 = await connectDevice(port, 'token-1', { will: will1 })
    const device2 = await connectDevice(port, 'token-2', { will: will2 })
    telemetry.holding = true
    let acknowledged = false
    const published = device1.publishAsync(TELEMETRY_TOPIC, 'in flight', { qos: 1 }).then(() => { acknowledged = true })
    await until(() => telemetry.held === 1, 'onTelemetry called')
    let stopped = false
    const stopping = broker.stop().then(() => { stopped = true })
    const refused = closed(device2)
    device2.publish(TELEMETRY_TOPIC, 'too late', { qos: 1 })
    await refused
    await sleep(100)
    assert.equal(stopped, false, 'stop waits for the message in flight')
    telemetry.releaseAll()
    await stopping
    await published
    assert.equal(acknowledged, true)
    assert.deepEqual(telemetry.payloads(), ['in flight'])
    assert.deepEqual(status.calls, [])
    assert.equal(broker.stats().failedMessages, 1)
    await broker.done()
  })

  test('listening on a port already in use fails with IOT_ERR_MQTT, from listening() and done()', async () => {
    const { port } = await startBroker()
    const second = new MqttBrokerSource({
      port,
      log,
      authenticate: async () => null,
      onTelemetry: async () => 0,
      onStatus: () => {}
    })
    second.start()
    const isMqttError = (err: unknown): boolean => err instanceof IotError && err.code === 'IOT_ERR_MQTT'
    await assert.rejects(second.listening(), isMqttError)
    await assert.rejects(second.done(), isMqttError)
    await second.stop()
  })

  const openssl = spawnSync('openssl', ['version']).status === 0
  test('TLS: a device connects over mqtts with the broker certificate; unreadable key files fail with IOT_ERR_MQTT', { skip: openssl ? false : 'openssl is not installed' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iot-mqtt-tls-'))
    cleanups.push(async () => { rmSync(dir, { recursive: true, force: true }) })
    const keyPath = join(dir, 'key.pem')
    const certPath = join(dir, 'cert.pem')
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath,
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' })
    assert.equal(made.status, 0, made.stderr)
    const { port, telemetry } = await startBroker({ tls: { keyPath, certPath } })
    const client = await connectDevice(port, 'token-1', { ca: readFileSync(certPath) }, 'mqtts')
    await client.publishAsync(TELEMETRY_TOPIC, '{"temperature":23}', { qos: 1 })
    assert.deepEqual(telemetry.payloads(), ['{"temperature":23}'])

    const broken = new MqttBrokerSource({
      port: 0,
      tls: { keyPath: join(dir, 'missing.pem'), certPath },
      log,
      authenticate: async () => null,
      onTelemetry: async () => 0,
      onStatus: () => {}
    })
    broken.start()
    await assert.rejects(broken.listening(), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_MQTT')
    await broken.stop()
  })
})
