import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '../config/index.ts'
import { IotError } from '../domain/index.ts'
import { type SimulateOptions, simulateOptions, startOf, takeSimulateFlags } from './args.ts'

const options = (argv: string[], env: NodeJS.ProcessEnv = {}): SimulateOptions => {
  const { flags, rest } = takeSimulateFlags(argv)
  return simulateOptions(loadConfig(['simulate', ...rest], env).config, flags)
}
const isConfig = (err: unknown): boolean => err instanceof IotError && err.code === 'IOT_ERR_CONFIG'

test('simulate args - defaults: the built-in broker on 127.0.0.1:1883, devices in the embedded database, real time', () => {
  const o = options([])
  assert.equal(o.url, 'mqtt://127.0.0.1:1883')
  assert.deepEqual(o.broker, { kind: 'iot-monitor' })
  assert.deepEqual(o.tokens, { kind: 'database', databaseUrl: null, dataDir: './data' })
  assert.equal(o.devicePrefix, 'sim-')
  assert.equal(o.maxInFlight, 16)
  assert.deepEqual([o.sensors, o.rate, o.speedup, o.seed, o.durationMs, o.startMs], [25, 1, 1, 42, null, null])
})

test('simulate args - its own flags, the admin API with --admin-token, the rest through loadConfig', () => {
  const token = 'x'.repeat(20)
  const o = options(['--mqtt-url', 'mqtt://broker:1884', '--admin-token', token, '--api=http://10.0.0.5:8080/', '--device-prefix', 'demo-',
    '--max-in-flight', '4', '--sensors', '10', '--rate', '2', '--speedup', 'max', '--duration', '30s'])
  assert.equal(o.url, 'mqtt://broker:1884')
  assert.deepEqual(o.tokens, { kind: 'api', url: 'http://10.0.0.5:8080/', adminToken: token })
  assert.deepEqual([o.devicePrefix, o.maxInFlight, o.sensors, o.rate, o.speedup, o.durationMs], ['demo-', 4, 10, 2, Infinity, 30_000])
  // The API of --host/--port without --api; the broker of --mqtt-host/--mqtt-port without --mqtt-url.
  const p = options(['--port', '8081', '--mqtt-port', '1999'], { IOT_ADMIN_TOKEN: token, DATABASE_URL: 'postgres://db/iot' })
  assert.deepEqual(p.tokens, { kind: 'api', url: 'http://127.0.0.1:8081', adminToken: token })
  assert.equal(p.url, 'mqtt://127.0.0.1:1999')
  assert.deepEqual(options([], { DATABASE_URL: 'postgres://db/iot' }).tokens, { kind: 'database', databaseUrl: 'postgres://db/iot', dataDir: './data' })
})

test('simulate args - an external broker: by flag, by a login in the URL, or by a topic prefix', () => {
  assert.deepEqual(options(['--external-broker']).broker, { kind: 'external', topicPrefix: 'iot' })
  assert.deepEqual(options(['--mqtt-url', 'mqtt://user:pw@broker:1883']).broker, { kind: 'external', topicPrefix: 'iot' })
  assert.deepEqual(options(['--mqtt-topic-prefix=site']).broker, { kind: 'external', topicPrefix: 'site' })
  assert.deepEqual(options(['--mqtt-url', 'mqtt://broker:1883']).broker, { kind: 'iot-monitor' })
})

test('simulate args - usage errors', () => {
  assert.throws(() => options(['--api', 'http://x:8080']), isConfig, '--api without an admin token')
  assert.throws(() => options(['--max-in-flight', '0']), isConfig)
  assert.throws(() => options(['--max-in-flight']), isConfig)
  assert.throws(() => options(['--device-prefix', 'a', '--device-prefix', 'b']), isConfig)
  assert.throws(() => options(['--no-such-flag']), isConfig)
})

test('simulate args - start: --start, else now; an accelerated bounded run ends at the present', () => {
  const now = 1_765_000_000_000
  assert.equal(startOf({ startMs: 5, speedup: 60, durationMs: 3_600_000 }, now), 5)
  assert.equal(startOf({ startMs: null, speedup: 1, durationMs: 3_600_000 }, now), now)
  assert.equal(startOf({ startMs: null, speedup: 60, durationMs: null }, now), now)
  assert.equal(startOf({ startMs: null, speedup: 60, durationMs: 3_600_000 }, now), now - 3_600_000)
  assert.equal(startOf({ startMs: null, speedup: Infinity, durationMs: 60_000 }, now), now - 60_000)
})
