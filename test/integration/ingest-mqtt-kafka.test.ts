// Devices through an external MQTT broker in Kafka mode, end to end on real services: a mosquitto
// of the test's own, `iot-monitor ingest --mqtt-url` producing to the shared Kafka, and
// `iot-monitor worker` storing into a fresh PostgreSQL database (a fresh topic and group per test).
// MQTT.js publishers send N QoS 1 readings with distinct timestamps; every case ends with exactly
// N of them in sensor_readings, none twice, and the windows equal to a recomputation:
// (a) messages delivered twice (published again, and resent by a client that reconnects with
//     clean: false) are stored once;
// (b) the worker SIGKILLed mid-stream and restarted: nothing lost, nothing doubled;
// (c) the ingest SIGKILLed mid-stream while the publisher goes on: the broker keeps the messages
//     the ingest had not acknowledged (and those published meanwhile) for its persistent session
//     and sends them to the restarted ingest; what was produced twice is de-duplicated.
import { afterEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import mqtt, { type MqttClient } from 'mqtt'
import { addDevice } from '../../src/devices/index.ts'
import { type Db, migrate, openPostgres } from '../../src/storage/index.ts'
import { type CliProcess, spawnCli, stopProc, until, waitExit } from '../helpers/cli-process.ts'
import { checkConsistency } from '../helpers/consistency.ts'
import { createServerDatabase, serverUrl } from '../helpers/databases.ts'
import { kafkaBrokers, kafkaSkip, uniqueTopic } from '../helpers/kafka.ts'
import { Mosquitto, mosquittoSkip } from '../helpers/mosquitto.ts'

const skip = mosquittoSkip !== false
  ? mosquittoSkip
  : kafkaSkip !== false
    ? kafkaSkip
    : serverUrl === null ? 'DATABASE_URL is not set (start a server: eval "$(npm run -s services:up)")' : false

const DEVICES = ['mk-1', 'mk-2', 'mk-3', 'mk-4']
/** Readings per case: one per message, 200 messages a second. */
const N = 800
const RATE = 200
const number = (s: string): number => Number(s.replaceAll(',', ''))

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch((err: unknown) => { console.error('cleanup failed', err) })
})

interface Rig {
  broker: Mosquitto
  db: Db
  procs: CliProcess[]
  databaseUrl: string
  ingestArgs: string[]
  workerArgs: string[]
  /** Event time of reading i (distinct per sensor: one reading a second of event time over all devices). */
  base: number
}

/** A mosquitto, a fresh database with the devices, a fresh topic and group: the processes' arguments. */
async function rig (): Promise<Rig> {
  const broker = await Mosquitto.start({ maxQueuedMessages: 100_000 })
  cleanups.push(async () => { await broker.stop() })
  const created = await createServerDatabase(serverUrl!)
  cleanups.push(async () => { await created.drop() })
  const db = await openPostgres(created.url)
  cleanups.push(async () => { await db.close() })
  await migrate(db)
  for (const id of DEVICES) await addDevice(db, { id, name: `Node ${id}`, location: 'Lab' }, Date.now())
  await addDevice(db, { id: 'probe', name: 'Probe', location: 'Probe room' }, Date.now())
  const procs: CliProcess[] = []
  cleanups.push(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
  })
  const topic = uniqueTopic('mqtt_kafka')
  const kafka = ['--kafka-brokers', (kafkaBrokers ?? []).join(','), '--topic', topic, '--partitions', '4']
  return {
    broker,
    db,
    procs,
    databaseUrl: created.url,
    ingestArgs: ['ingest', ...kafka, '--database-url', created.url, '--mqtt-url', broker.url, '--no-simulator'],
    workerArgs: ['worker', ...kafka, '--group', topic, '--database-url', created.url, '--no-ml', '--no-events', '--session-timeout', '6s', '--max-batch', '200'],
    // Event time N s long, ending a minute before now (within --max-past and --max-future).
    base: Date.now() - (N + 60) * 1000
  }
}

function spawn (r: Rig, name: string, args: string[]): CliProcess {
  const p = spawnCli(name, args)
  r.procs.push(p)
  return p
}

async function count (db: Db, where: string): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM sensor_readings WHERE ${where}`))[0]!.n
}
const devices = "sensor_id LIKE 'mk-%'"

/** Publishes to the probe device until a reading of it is stored: the ingest subscribed and the worker stores. */
async function pipelineReady (r: Rig): Promise<void> {
  const probe = await mqtt.connectAsync(r.broker.url, { clientId: 'probe-publisher', protocolVersion: 4 })
  try {
    let k = 0
    await until('a probe reading stored', async () => {
      // Long before the devices' readings: their windows stay apart, nothing is late.
      await probe.publishAsync('iot/probe/telemetry', JSON.stringify({ ts: r.base - 3_600_000 + k++ * 1000, values: { temperature: 20 } }), { qos: 1 })
      return await count(r.db, "sensor_id = 'probe.temperature'") > 0
    }, 90_000, r.procs)
  } finally {
    await probe.endAsync()
  }
}

interface LinkState { pairs: Set<[Socket, Socket]>, dropReplies: boolean, down: boolean }

/**
 * A TCP link to a server on 127.0.0.1 that fails the way networks do. `cut` stops passing the
 * server's answers for a moment, then drops the connections: for an MQTT publisher the PUBACKs
 * are lost, so it sends those QoS 1 messages again after it reconnects, and the broker forwards
 * each of them twice. `down` drops the connections and every new one until `up` (PostgreSQL gone
 * for the one process that reaches it through the link).
 */
class Link {
  readonly #server: Server
  readonly #state: LinkState
  readonly port: number

  private constructor (server: Server, state: LinkState, port: number) {
    this.#server = server
    this.#state = state
    this.port = port
  }

  static async start (targetPort: number): Promise<Link> {
    const state: LinkState = { pairs: new Set(), dropReplies: false, down: false }
    const server = createServer(client => {
      if (state.down) {
        client.destroy()
        return
      }
      const target = createConnection({ host: '127.0.0.1', port: targetPort })
      const pair: [Socket, Socket] = [client, target]
      state.pairs.add(pair)
      client.on('data', d => { target.write(d) })
      target.on('data', d => { if (!state.dropReplies) client.write(d) })
      for (const [a, b] of [[client, target], [target, client]] as const) {
        a.on('error', () => {})
        a.on('close', () => { b.destroy(); state.pairs.delete(pair) })
      }
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    assert.ok(address !== null && typeof address === 'object')
    const link = new Link(server, state, address.port)
    cleanups.push(async () => { await link.close() })
    return link
  }

  /** The server's answers stop for `ms`, then every connection is dropped. */
  async cut (ms = 50): Promise<void> {
    this.#state.dropReplies = true
    await sleep(ms)
    this.#dropAll()
    this.#state.dropReplies = false
  }

  down (): void {
    this.#state.down = true
    this.#dropAll()
  }

  up (): void {
    this.#state.down = false
  }

  async close (): Promise<void> {
    this.#dropAll()
    await new Promise<void>(resolve => this.#server.close(() => { resolve() }))
  }

  #dropAll (): void {
    for (const [a, b] of this.#state.pairs) {
      a.destroy()
      b.destroy()
    }
    this.#state.pairs.clear()
  }
}

function message (r: Rig, i: number): { topic: string, payload: string } {
  return {
    topic: `iot/${DEVICES[i % DEVICES.length]!}/telemetry`,
    payload: JSON.stringify({ ts: r.base + i * 1000, values: { temperature: 20 + (i % 50) / 10 } })
  }
}

/** A QoS 1 publisher on a persistent session (clean: false), reconnecting by itself. */
async function publisher (url: string, clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { clientId, clean: false, protocolVersion: 4, reconnectPeriod: 100 })
  cleanups.push(async () => { await client.endAsync(true) })
  return client
}

/**
 * Publishes readings `from` to `to` - 1 at RATE a second; `onSent(i)` runs after each ten. Resolves
 * once every message is acknowledged by the broker.
 */
async function publishRange (r: Rig, client: MqttClient, from: number, to: number, onSent?: (i: number) => void): Promise<void> {
  const acks: Array<Promise<unknown>> = []
  const started = performance.now()
  for (let i = from; i < to; i++) {
    const m = message(r, i)
    acks.push(client.publishAsync(m.topic, m.payload, { qos: 1 }))
    if ((i - from + 1) % 10 === 0) {
      onSent?.(i)
      const due = started + (i - from + 1) * 1000 / RATE
      await sleep(Math.max(0, due - performance.now()))
    }
  }
  await Promise.all(acks)
}

/** Exactly N device readings, none twice, windows equal to a recomputation, nothing late or dead-lettered. */
async function exactlyN (r: Rig): Promise<void> {
  assert.equal(await count(r.db, devices), N, 'every published reading stored once')
  const twice = await r.db.query<{ n: number }>('SELECT count(*)::int AS n FROM (SELECT 1 FROM sensor_readings GROUP BY sensor_id, timestamp HAVING count(*) > 1) d')
  assert.equal(twice[0]!.n, 0, 'no reading stored twice')
  const perDevice = await r.db.query<{ sensor_id: string, n: number, location: string }>(
    `SELECT sensor_id, location, count(*)::int AS n FROM sensor_readings WHERE ${devices} GROUP BY 1, 2 ORDER BY 1`)
  assert.deepEqual(perDevice.map(x => ({ ...x })), DEVICES.map(id => ({ sensor_id: `${id}.temperature`, location: 'Lab', n: N / DEVICES.length })))
  const other = await r.db.query<{ late: number, dead: number }>('SELECT (SELECT count(*)::int FROM late_readings) AS late, (SELECT count(*)::int FROM dead_letters) AS dead')
  assert.deepEqual({ ...other[0]! }, { late: 0, dead: 0 })
  const report = await checkConsistency(r.db)
  assert.deepEqual(report.mismatches, [], 'windows and roll-ups equal a recomputation from the raw readings')
  assert.equal(report.countedInWindows, report.readings, 'no reading counted twice in the windows')
}

/** The worker's last line: records consumed, stored, late, dead letters, duplicates. */
function workerSummary (p: CliProcess): { consumed: number, stored: number, late: number, dead: number, duplicates: number } {
  const m = /([\d,]+) records consumed: ([\d,]+) stored, ([\d,]+) late, ([\d,]+) dead letters, ([\d,]+) duplicates\./.exec(p.output())
  assert.ok(m !== null, p.output().slice(-3000))
  const [consumed, stored, late, dead, duplicates] = m.slice(1).map(number) as [number, number, number, number, number]
  return { consumed, stored, late, dead, duplicates }
}

describe('MQTT devices through an external broker into Kafka: ingest --mqtt-url and worker as processes (mosquitto, Kafka, PostgreSQL)', { skip, timeout: 180_000 }, () => {
  test('(a) QoS 1 messages delivered twice (published again; resent by a client reconnecting with clean: false) are stored once', async () => {
    const r = await rig()
    const ingest = spawn(r, 'ingest', r.ingestArgs)
    const worker = spawn(r, 'worker', r.workerArgs)
    await pipelineReady(r)

    // The first half over a link that loses the PUBACKs and drops the connection three times
    // mid-batch: the client sends its unacknowledged messages again after each reconnect.
    const link = await Link.start(r.broker.port)
    const client = await publisher(`mqtt://127.0.0.1:${link.port}`, 'device-gateway-a')
    const cuts: Array<Promise<void>> = []
    await publishRange(r, client, 0, N / 2, i => { if (i % 100 === 59 && cuts.length < 3) cuts.push(link.cut()) })
    await Promise.all(cuts)
    assert.equal(cuts.length, 3)
    await publishRange(r, client, N / 2, N)
    // And the first 40 published again by another client: the same payloads, so the same readings.
    const again = await publisher(r.broker.url, 'device-gateway-a2')
    await publishRange(r, again, 0, 40)

    await until(`${N} readings stored`, async () => await count(r.db, devices) >= N && worker.lastStored() > N, 60_000, r.procs)
    assert.equal(await stopProc(ingest), 0, ingest.output().slice(-3000))
    const produced = number(/([\d,]+) readings produced, all acknowledged by Kafka/.exec(ingest.output())?.[1] ?? 'NaN')
    await until('the worker consumed everything produced', () => {
      const m = [...worker.output().matchAll(/duplicates ([\d,]+)/g)].pop()
      return m !== undefined && worker.lastStored() + number(m[1]!) >= produced
    }, 30_000, r.procs)
    assert.equal(await stopProc(worker), 0, worker.output().slice(-3000))
    const s = workerSummary(worker)
    const probes = await count(r.db, "sensor_id = 'probe.temperature'")
    assert.deepEqual(s, { consumed: produced, stored: N + probes, late: 0, dead: 0, duplicates: produced - N - probes })
    assert.ok(s.duplicates > 40, `the re-published messages and the resends after the reconnects came through as duplicates (${s.duplicates})`)
    await exactlyN(r)
    console.log(`(a) ${N} readings: ${produced - probes} produced from ${N + 40} publishes and the resends after 3 lost connections; ${s.duplicates} duplicates dropped by the worker`)
  })

  test('(b) the worker SIGKILLed mid-stream and restarted: exactly N stored', async () => {
    const r = await rig()
    spawn(r, 'ingest', r.ingestArgs)
    const worker = spawn(r, 'worker', r.workerArgs)
    await pipelineReady(r)

    const client = await publisher(r.broker.url, 'device-gateway-b')
    const publishing = publishRange(r, client, 0, N)
    await until('a quarter stored', async () => await count(r.db, devices) >= N / 4, 30_000, r.procs)
    worker.child.kill('SIGKILL')
    assert.equal((await waitExit(worker, 10_000)).signal, 'SIGKILL')
    const atKill = await count(r.db, devices)
    assert.ok(atKill < N, `killed mid-stream (${atKill} of ${N} stored)`)
    const restarted = spawn(r, 'worker (restarted)', r.workerArgs)
    await publishing
    // The group hands the dead worker's partitions over once its session (6 s) expires.
    await until(`${N} readings stored`, async () => await count(r.db, devices) >= N, 60_000, r.procs)
    assert.equal(await stopProc(restarted), 0, restarted.output().slice(-3000))
    await exactlyN(r)
    console.log(`(b) worker killed with ${atKill} of ${N} stored; restarted: ${N} stored, ${workerSummary(restarted).duplicates} duplicates`)
  })

  test('(c) the ingest SIGKILLed mid-stream while the publisher goes on (persistent sessions, QoS 1): exactly N stored', async () => {
    const r = await rig()
    const ingest = spawn(r, 'ingest', r.ingestArgs)
    const worker = spawn(r, 'worker', r.workerArgs)
    await pipelineReady(r)

    const client = await publisher(r.broker.url, 'device-gateway-c')
    let sent = 0
    const publishing = publishRange(r, client, 0, N, i => { sent = i + 1 })
    await until('a quarter stored', async () => await count(r.db, devices) >= N / 4, 30_000, r.procs)
    ingest.child.kill('SIGKILL')
    assert.equal((await waitExit(ingest, 10_000)).signal, 'SIGKILL')
    const atKill = { stored: await count(r.db, devices), sent }
    assert.ok(atKill.sent < N, `killed while the publisher was sending (${atKill.sent} of ${N} sent)`)
    const restarted = spawn(r, 'ingest (restarted)', r.ingestArgs)
    await until('the ingest running again', () => /is running/.test(restarted.output()), 30_000, r.procs)
    assert.ok(sent > atKill.sent, `published while the ingest was away (${sent - atKill.sent})`)
    await publishing
    await until(`${N} readings stored`, async () => await count(r.db, devices) >= N, 60_000, r.procs)
    assert.equal(await stopProc(restarted), 0, restarted.output().slice(-3000))
    assert.equal(await stopProc(worker), 0, worker.output().slice(-3000))
    await exactlyN(r)
    const s = workerSummary(worker)
    console.log(`(c) ingest killed with ${atKill.sent} of ${N} sent and ${atKill.stored} stored; restarted: ${N} stored, ${s.duplicates} duplicates`)
  })
  test('(d) the ingest\'s PostgreSQL away at its start and mid-stream: devices looked up before go on (stale-if-error), a device never looked up waits unacknowledged at the broker; all stored once it answers', async () => {
    const r = await rig()
    await addDevice(r.db, { id: 'fresh-node', name: 'Fresh', location: 'Lab' }, Date.now())
    // The ingest reaches PostgreSQL through a link the test takes down; the worker directly.
    const pg = new URL(r.databaseUrl)
    const link = await Link.start(Number(pg.port === '' ? 5432 : pg.port))
    pg.host = `127.0.0.1:${link.port}`
    // Started while it cannot reach PostgreSQL: it does not wait for it, and connects once it can.
    link.down()
    const ingest = spawn(r, 'ingest', r.ingestArgs.map(a => a === r.databaseUrl ? pg.toString() : a))
    spawn(r, 'worker', r.workerArgs)
    await until('the ingest running without PostgreSQL', () => /is running/.test(ingest.output()), 30_000, r.procs)
    assert.match(ingest.output(), /PostgreSQL does not answer: starting without it/)
    link.up()
    await pipelineReady(r)

    // One reading per device: the ingest looks them up now, and trusts that for 5 s.
    const client = await publisher(r.broker.url, 'device-gateway-d')
    const lookedUp = Date.now()
    await publishRange(r, client, 0, DEVICES.length)
    await until('the first readings stored', async () => await count(r.db, devices) === DEVICES.length, 30_000, r.procs)
    link.down()
    const downAt = Date.now()
    await publishRange(r, client, DEVICES.length, N / 2)
    // Past the 5 s: the devices' entries have expired, and are served stale.
    await sleep(Math.max(0, lookedUp + 6000 - Date.now()))
    await publishRange(r, client, N / 2, N)
    await until(`${N} readings stored while the ingest cannot reach PostgreSQL`, async () => await count(r.db, devices) === N, 30_000, r.procs)
    assert.match(ingest.output(), /PostgreSQL is unreachable: devices looked up before are served from the cache/)

    // A device the ingest never looked up: its message is not acknowledged, and comes again.
    const fresh = count.bind(null, r.db, "sensor_id = 'fresh-node.temperature'")
    await client.publishAsync('iot/fresh-node/telemetry', JSON.stringify({ ts: r.base, values: { temperature: 21 } }), { qos: 1 })
    await sleep(1500)
    assert.equal(await fresh(), 0, 'held while PostgreSQL is away')
    assert.equal(ingest.child.exitCode, null)
    link.up()
    const upAt = Date.now()
    await until('the held message stored after PostgreSQL answers', async () => await fresh() === 1, 30_000, r.procs)
    const heldMs = Date.now() - upAt
    // What the ingest heard during the outage is written after it.
    await until('last seen written after the outage', async () => {
      const rows = await r.db.query<{ n: number }>('SELECT count(*)::int AS n FROM devices WHERE last_seen_at >= to_timestamp($1 / 1000.0)', [downAt])
      return rows[0]!.n === DEVICES.length + 1
    }, 30_000, r.procs)
    assert.equal(await stopProc(ingest), 0, ingest.output().slice(-3000))
    await exactlyN(r)
    assert.equal(await fresh(), 1)
    console.log(`(d) ${N} readings stored while the ingest's PostgreSQL was away; the never-seen device's message stored ${(heldMs / 1000).toFixed(1)} s after it answered`)
  })
})
