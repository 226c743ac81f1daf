// `iot-monitor simulate` end to end: the simulated fleet as MQTT devices of a running system, and
// what lands in sensor_readings: every simulated reading, under its device's sensor id and
// location, with the simulator's exact value and time.
// (a) the built-in broker of an embedded system (PGlite), devices registered through its admin API:
//     in process for a bounded run and a Ctrl-C, then `iot-monitor simulate` as a child process;
// (b) Debian's mosquitto with the external-broker source on PostgreSQL, devices registered
//     directly in the database.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import { startEmbedded, type RunningSystem } from '../../src/app/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { addDevice } from '../../src/devices/index.ts'
import { runSimulation, simulateOptions, takeSimulateFlags, type SimulateIo, type SimulationResult } from '../../src/simulate/index.ts'
import { Simulator } from '../../src/sources/index.ts'
import { spawnCli, waitExit } from '../helpers/cli-process.ts'
import { createServerDatabase, serverUrl } from '../helpers/databases.ts'
import { Mosquitto, mosquittoSkip } from '../helpers/mosquitto.ts'

const log = pino({ level: process.env.TEST_LOG ?? 'silent' })
const ADMIN_TOKEN = 'simulate-test-admin-token-0123456789'

interface Row { sensor_id: string, sensor_type: string, location: string, value: number, ms: number }

/**
 * What the simulator makes for these options, as iot-monitor should store it: sensor
 * `<type>-<node>` is measurement `<type>` of device `<prefix><node>` at the sensor's location.
 * `count` cuts it to the first readings (a run stopped early).
 */
function expectedRows (o: { sensors: number, rate: number, start: number, durationMs?: number, count?: number, prefix?: string }): Row[] {
  const sim = new Simulator({ sensors: o.sensors, ratePerSensor: o.rate, seed: 42, startTs: o.start })
  const rows: Row[] = []
  const end = o.durationMs === undefined ? Infinity : o.start + o.durationMs
  while (sim.nextTs < end && rows.length < (o.count ?? Infinity)) {
    const r = sim.next()
    const device = (o.prefix ?? 'sim-') + r.sensorId.slice(r.sensorType.length + 1)
    rows.push({ sensor_id: `${device}.${r.sensorType}`, sensor_type: r.sensorType, location: r.location, value: r.value, ms: r.ts })
  }
  return rows.sort((a, b) => a.ms - b.ms || a.sensor_id.localeCompare(b.sensor_id))
}

async function until (what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!await ok()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
    await sleep(100)
  }
}

async function storedRows (sys: RunningSystem, fromMs = 0): Promise<Row[]> {
  const rows = await sys.db!.query<Row>(`
    SELECT sensor_id, sensor_type, location, value, (extract(epoch FROM timestamp) * 1000)::float8 AS ms
    FROM sensor_readings WHERE timestamp >= to_timestamp($1::float8 / 1000) ORDER BY timestamp, sensor_id`, [fromMs])
  // The same order as expectedRows (the database's collation may order ids differently).
  return [...rows].sort((a, b) => a.ms - b.ms || a.sensor_id.localeCompare(b.sensor_id))
}

const count = async (sys: RunningSystem): Promise<number> => (await sys.db!.query<{ n: number }>('SELECT count(*)::int AS n FROM sensor_readings'))[0]!.n

async function devicesOf (sys: RunningSystem, prefix: string): Promise<Array<{ id: string, name: string, location: string, connection: string | null }>> {
  return [...await sys.db!.query<{ id: string, name: string, location: string, connection: string | null }>('SELECT device_id AS id, name, location, connection FROM devices WHERE device_id LIKE $1 ORDER BY device_id', [`${prefix}%`])]
}

/** Runs `simulate` in process with these flags (parsed as the command line parses them); `stopAfterMs` plays Ctrl-C. */
async function simulate (args: string[], stopAfterMs?: number): Promise<{ result: SimulationResult, output: string }> {
  const { flags, rest } = takeSimulateFlags(args)
  const { config } = loadConfig(['simulate', '--status', '0', ...rest], {})
  let output = ''
  const io: SimulateIo = {
    log,
    write: (text) => { output += text },
    stopRequested: stopAfterMs === undefined ? new Promise(() => {}) : sleep(stopAfterMs).then(() => 'SIGINT')
  }
  return { result: await runSimulation(simulateOptions(config, flags), io), output }
}

/** A start time on a whole second, `ago` ms before now. */
const startAgo = (ago: number): number => Math.floor((Date.now() - ago) / 1000) * 1000

describe('simulate: the fleet on the built-in broker of a running system (embedded, devices through the admin API)', () => {
  let sys: RunningSystem
  let dir = ''
  let api = ''
  let broker = ''
  const s1 = startAgo(5 * 60_000)
  const s2 = s1 + 20_000

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iot-simulate-'))
    const { config } = loadConfig(['start', '--data-dir', dir, '--port', '0', '--mqtt-port', '0', '--no-simulator', '--no-ml', '--admin-token', ADMIN_TOKEN], {})
    sys = await startEmbedded(config, log)
    api = await sys.app!.listen({ host: '127.0.0.1', port: 0 })
    broker = sys.mqtt!
  })
  after(async () => {
    await sys.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('a bounded run (--duration, --speedup max): 2 devices register, every reading lands once with its device, location, type, value and time', async () => {
    const { result, output } = await simulate(['--mqtt-url', broker, '--admin-token', ADMIN_TOKEN, '--api', api,
      '--sensors', '10', '--rate', '2', '--speedup', 'max', '--duration', '20s', '--start', new Date(s1).toISOString()])
    // 10 sensors × 2 readings/s × 20 s.
    assert.equal(result.produced, 400)
    assert.deepEqual([result.stats.devices, result.stats.published, result.stats.acknowledged, result.stats.failed, result.stats.buffered], [2, 400, 400, 0, 0])
    assert.equal(result.clean, true)
    assert.equal(result.reason, 'end of the simulated duration')
    assert.match(output, new RegExp(`^Registered 2 simulated devices through the admin API at ${api}: 2 added, 0 given a new token\\.$`, 'm'))
    assert.match(output, /^2 simulated devices published 400 readings in \d+ messages: 400 acknowledged, 0 failed\.$/m)

    await until('400 stored', async () => await count(sys) >= 400)
    await sleep(300)
    const rows = await storedRows(sys)
    assert.equal(rows.length, 400)
    assert.deepEqual(rows, expectedRows({ sensors: 10, rate: 2, start: s1, durationMs: 20_000 }))
    await until('both offline', async () => (await devicesOf(sys, 'sim-')).every(d => d.connection === 'offline'))
    assert.deepEqual(await devicesOf(sys, 'sim-'), [
      { id: 'sim-office-floor-3-01', name: 'Simulated Office Floor 3 01', location: 'Office Floor 3', connection: 'offline' },
      { id: 'sim-server-room-01', name: 'Simulated Server Room 01', location: 'Server Room', connection: 'offline' }
    ])
  })

  test('`iot-monitor simulate` as a user runs it: the registered devices get new tokens, the next 5 s land, exit code 0', async () => {
    const cli = spawnCli('simulate', ['simulate', '--mqtt-url', broker, '--admin-token', ADMIN_TOKEN, '--api', api,
      '--sensors', '10', '--rate', '2', '--speedup', 'max', '--duration', '5s', '--start', new Date(s2).toISOString()], '0')
    const exit = await waitExit(cli, 60_000)
    assert.equal(exit.code, 0, cli.output())
    assert.match(cli.output(), /Registered 2 simulated devices through the admin API at .*: 0 added, 2 given a new token\./)
    assert.match(cli.output(), /^2 simulated devices published 100 readings in \d+ messages: 100 acknowledged, 0 failed\.$/m)
    await until('500 stored', async () => await count(sys) >= 500)
    await sleep(300)
    assert.deepEqual(await storedRows(sys, s2), expectedRows({ sensors: 10, rate: 2, start: s2, durationMs: 5000 }))
  })

  test('Ctrl-C at real time: what was made is published and acknowledged, the devices say offline, and exactly that lands', async () => {
    const { result, output } = await simulate(['--mqtt-url', broker, '--admin-token', ADMIN_TOKEN, '--api', api, '--sensors', '10', '--rate', '2'], 1500)
    assert.equal(result.reason, 'SIGINT')
    assert.equal(result.clean, true)
    // About 1.5 s of 20 readings/s, all of them published and acknowledged.
    assert.ok(result.produced >= 10 && result.produced <= 60, `produced ${result.produced}`)
    assert.deepEqual([result.stats.published, result.stats.acknowledged, result.stats.buffered], [result.produced, result.produced, 0])
    assert.match(output, /^Stopping \(SIGINT\): publishing what the devices hold/m)
    await until('stored', async () => (await storedRows(sys, result.start)).length >= result.produced)
    await sleep(300)
    assert.deepEqual(await storedRows(sys, result.start), expectedRows({ sensors: 10, rate: 2, start: result.start, count: result.produced }))
    await until('both offline', async () => (await devicesOf(sys, 'sim-')).every(d => d.connection === 'offline'))
  })

  test('a wrong admin token is refused before anything connects', async () => {
    await assert.rejects(simulate(['--mqtt-url', broker, '--admin-token', 'not-the-admin-token-at-all', '--api', api, '--sensors', '5', '--duration', '1s']),
      (err: unknown) => (err as { code?: string }).code === 'IOT_ERR_UNAUTHORIZED')
  })
})

describe('simulate: the fleet on an external broker (mosquitto) that a system on PostgreSQL subscribes to, devices registered in the database',
  { skip: mosquittoSkip !== false ? mosquittoSkip : serverUrl === null ? 'DATABASE_URL is not set' : false }, () => {
    let sys: RunningSystem
    let broker: Mosquitto
    let database: { url: string, drop(): Promise<void> }

    before(async () => {
      broker = await Mosquitto.start()
      database = await createServerDatabase(serverUrl!)
      const { config } = loadConfig(['start', '--database-url', database.url, '--port', '0', '--mqtt-url', broker.url, '--mqtt-topic-prefix', 'site', '--no-simulator', '--no-ml'], {})
      sys = await startEmbedded(config, log)
      // The source subscribes once connected: a probe device's status shows when it reads.
      await addDevice(sys.db!, { id: 'probe', name: 'probe', location: 'Lab' }, Date.now())
      await until('the external source reads', async () => {
        await broker.publish('site/probe/status', 'online')
        return (await sys.db!.query<{ c: string | null }>("SELECT connection AS c FROM devices WHERE device_id = 'probe'"))[0]!.c === 'online'
      })
    })
    after(async () => {
      await sys.stop()
      await database.drop()
      await broker.stop()
    })

    test('--mqtt-topic-prefix site: devices publish to site/<id>/telemetry; every reading lands with its device, location, type, value and time', async () => {
      const start = startAgo(10 * 60_000)
      const { result, output } = await simulate(['--mqtt-url', broker.url, '--mqtt-topic-prefix', 'site', '--database-url', database.url,
        '--device-prefix', 'ext-', '--sensors', '5', '--rate', '1', '--speedup', 'max', '--duration', '30s', '--start', new Date(start).toISOString()])
      assert.deepEqual([result.produced, result.stats.devices, result.stats.published, result.stats.acknowledged, result.clean], [150, 1, 150, 150, true])
      assert.match(output, /^Registered 1 simulated device through PostgreSQL: 1 added, 0 already there\.$/m)
      assert.match(output, /an external broker: site\/<device id>\/telemetry/)
      await until('150 stored', async () => await count(sys) >= 150)
      await sleep(300)
      assert.deepEqual(await storedRows(sys), expectedRows({ sensors: 5, rate: 1, start, durationMs: 30_000, prefix: 'ext-' }))
      await until('offline', async () => (await devicesOf(sys, 'ext-'))[0]?.connection === 'offline')
      assert.deepEqual(await devicesOf(sys, 'ext-'), [{ id: 'ext-server-room-01', name: 'Simulated Server Room 01', location: 'Server Room', connection: 'offline' }])
    })
  })
