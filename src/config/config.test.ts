import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultRuleConfig } from '../anomaly/index.ts'
import { defaultAlarmRules } from '../alarms/index.ts'
import { defaultValidationOptions } from '../domain/index.ts'
import { defaultWindowingOptions } from '../windowing/index.ts'
import { defaultConfig, loadConfig, parseDuration, type Config } from './index.ts'

const CONFIG_ERROR = { name: 'IotError', code: 'IOT_ERR_CONFIG' }

/** Exact defaults, written out so a change to any of them is a visible decision. */
const DEFAULTS: Config = {
  databaseUrl: null,
  dataDir: './data',
  host: '127.0.0.1',
  port: 8080,
  topic: 'iot_sensors',
  partitions: 4,
  group: 'iot-monitor',
  logLevel: 'info',
  statusIntervalMs: 5000,
  shutdownTimeoutMs: 30_000,
  simulator: { enabled: true, sensors: 25, rate: 1, speedup: 1, seed: 42, durationMs: null, startMs: null },
  windowing: { sizeMs: 60_000, maxOutOfOrdernessMs: 10_000, allowedLatenessMs: 60_000, idleTimeoutMs: 30_000 },
  validation: { maxBytes: 16_384, maxPastMs: 7 * 86_400_000, maxFutureMs: 300_000 },
  busCapacity: 100_000,
  maxBatch: 10_000,
  retentionMs: 7 * 86_400_000,
  kafka: { brokers: null, sessionTimeoutMs: 10_000, events: true, aggregatesTopic: 'iot_aggregates', anomaliesTopic: 'iot_anomalies' },
  detection: { rules: defaultRuleConfig, ml: true, mlScope: 'type', devices: 'devices' },
  readiness: { maxFailures: 3, stallMs: 60_000 },
  live: { maxClients: 500, maxClientsPerAddress: 50 },
  adminToken: null,
  viewerToken: null,
  allowAnonymousRead: false,
  deviceRateLimit: { perSecond: 50, burst: 100 },
  mqtt: { enabled: true, host: '127.0.0.1', port: 1883, portGiven: false, tls: null, url: null, topicPrefix: 'iot' },
  alarms: { enabled: true, rules: defaultAlarmRules },
  notify: { webhooks: [], groupBy: ['alertname', 'location'], groupWaitMs: 30_000, groupIntervalMs: 300_000, repeatIntervalMs: 4 * 3_600_000, retryWaitMs: 10_000, retryMaxWaitMs: 600_000, timeoutMs: 10_000, externalUrl: null }
}

let dir = ''
before(() => { dir = mkdtempSync(join(tmpdir(), 'iot-config-test-')) })
/** A rule file with one default and one override. */
function rulesFile (): string {
  const path = join(dir, 'rules.json')
  writeFileSync(path, JSON.stringify({ defaults: { co2: { max: 1000 } }, overrides: { 'co2@Lab': { max: 800, maxRatePerSec: 50 } } }))
  return path
}
after(() => { rmSync(dir, { recursive: true, force: true }) })

let files = 0
/** Writes a config file (an object as JSON, or raw text) and returns its path. */
function configFile (content: unknown): string {
  const path = join(dir, `config-${files++}.json`)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}

/** loadConfig with an isolated (empty unless given) environment. */
function load (argv: string[], env: NodeJS.ProcessEnv = {}): Config {
  return loadConfig(argv, env).config
}

describe('parseDuration', () => {
  test('units ms, s, m, h, d', () => {
    assert.equal(parseDuration('500ms'), 500)
    assert.equal(parseDuration('30s'), 30_000)
    assert.equal(parseDuration('5m'), 300_000)
    assert.equal(parseDuration('24h'), 86_400_000)
    assert.equal(parseDuration('7d'), 604_800_000)
    assert.equal(parseDuration('0s'), 0)
    assert.equal(parseDuration('1ms'), 1)
  })

  test('compound durations add up', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000)
    assert.equal(parseDuration('1d12h'), 129_600_000)
    assert.equal(parseDuration('2m30s500ms'), 150_500)
    assert.equal(parseDuration('1m1m'), 120_000)
  })

  test('a plain number is seconds', () => {
    assert.equal(parseDuration('90'), 90_000)
    assert.equal(parseDuration('0'), 0)
    assert.equal(parseDuration('1.5'), 1500)
    assert.equal(parseDuration('0.001'), 1)
  })

  test('decimal amounts, rounded to whole ms', () => {
    assert.equal(parseDuration('1.5h'), 5_400_000)
    assert.equal(parseDuration('0.5s'), 500)
    assert.equal(parseDuration('2.5d'), 216_000_000)
    assert.equal(parseDuration('1.5ms'), 2)
    assert.equal(parseDuration('0.4ms'), 0)
  })

  test('surrounding whitespace is ignored', () => {
    assert.equal(parseDuration('  30s '), 30_000)
    assert.equal(parseDuration(' 90\n'), 90_000)
  })

  test('unreadable text throws IOT_ERR_CONFIG', () => {
    for (const text of ['', ' ', '5x', 'm5', '1h 30m', '1h30', 'h', '-5s', '-5', '+5s', '1.s', '.5s', '5 s', '5S', '5min', '1e3', '1,5h', 'off', 'infinity', '1h-30m']) {
      assert.throws(() => parseDuration(text), CONFIG_ERROR, JSON.stringify(text))
    }
  })

  test('the error names what was being read', () => {
    assert.throws(() => parseDuration('5x', '--window'), (err: Error) => err.message.includes('--window'))
  })
})

describe('loadConfig - defaults', () => {
  test('no flags, no environment: exact default values, command start, no help', () => {
    const parsed = loadConfig([], {})
    assert.equal(parsed.command, 'start')
    assert.equal(parsed.help, false)
    assert.deepEqual(parsed.config, DEFAULTS)
    assert.deepEqual(defaultConfig, DEFAULTS)
  })

  test('defaults match the validation and windowing defaults of their modules', () => {
    const c = load([])
    assert.deepEqual(c.validation, defaultValidationOptions)
    assert.deepEqual(c.windowing, defaultWindowingOptions)
  })

  test('every call returns a fresh copy: overriding never changes the shared defaults', () => {
    const a = load(['--max-past', 'off', '--window', '10s', '--sensors', '3', '--no-simulator'])
    assert.equal(a.validation.maxPastMs, null)
    assert.equal(a.windowing.sizeMs, 10_000)
    assert.deepEqual(defaultConfig, DEFAULTS)
    assert.equal(defaultValidationOptions.maxPastMs, 7 * 86_400_000)
    assert.equal(defaultWindowingOptions.sizeMs, 60_000)
    const b = load([])
    assert.deepEqual(b, DEFAULTS)
    assert.notEqual(a.validation, b.validation)
    b.simulator.sensors = 99
    assert.equal(load([]).simulator.sensors, 25)
  })
})

describe('loadConfig - command and help', () => {
  test('the first positional is the command, default start', () => {
    assert.equal(loadConfig([], {}).command, 'start')
    assert.equal(loadConfig(['migrate'], {}).command, 'migrate')
    assert.equal(loadConfig(['worker', 'extra'], {}).command, 'worker')
    assert.equal(loadConfig(['--port', '9000', 'api'], {}).command, 'api')
    assert.equal(loadConfig(['api', '--port', '9000'], {}).config.port, 9000)
    assert.equal(loadConfig(['--', '--port'], {}).command, '--port', 'after --, everything is positional')
  })

  test('the positionals after the command are its args', () => {
    assert.deepEqual(loadConfig([], {}).args, [])
    assert.deepEqual(loadConfig(['devices', '--data-dir', '/tmp/x', 'add', 'dev-1'], {}).args, ['add', 'dev-1'])
    assert.deepEqual(loadConfig(['devices', 'revoke', '--', '-odd'], {}).args, ['revoke', '-odd'])
  })

  test('-h and --help', () => {
    assert.equal(loadConfig(['-h'], {}).help, true)
    assert.equal(loadConfig(['migrate', '--help'], {}).help, true)
    assert.equal(loadConfig(['migrate', '--help'], {}).command, 'migrate')
  })
})

describe('loadConfig - flags', () => {
  test('every flag sets its field', () => {
    const c = load([
      '--database-url', 'postgres://u:p@db:5432/iot',
      '--data-dir', '/var/lib/iot',
      '--host', '0.0.0.0',
      '--port', '9090',
      '--topic', 'readings',
      '--partitions', '12',
      '--group', 'workers',
      '--log-level', 'debug',
      '--status', '10s',
      '--sensors', '100',
      '--rate', '2.5',
      '--speedup', '60',
      '--seed', '7',
      '--duration', '2h',
      '--start', '2025-01-01T00:00:00Z',
      '--window', '5m',
      '--out-of-orderness', '30s',
      '--allowed-lateness', '2m',
      '--idle-timeout', '1m',
      '--max-past', '30d',
      '--max-future', '1h',
      '--bus-capacity', '5000',
      '--max-batch', '250',
      '--retention', '30d',
      '--kafka-brokers', 'kafka:9092',
      '--session-timeout', '20s',
      '--aggregates-topic', 'windows',
      '--anomalies-topic', 'alerts',
      '--no-events',
      '--rules', rulesFile(),
      '--ml-scope', 'sensor',
      '--no-ml',
      '--device-detection', 'off',
      '--ready-failures', '5',
      '--ready-stall', '2m',
      '--live-max-clients', '800',
      '--live-max-per-address', '10',
      '--no-mqtt',
      '--mqtt-host', '0.0.0.0',
      '--mqtt-port', '8883',
      '--mqtt-tls-key', 'k.pem',
      '--mqtt-tls-cert', 'c.pem',
      '--mqtt-url', 'mqtt://broker:1883',
      '--mqtt-topic-prefix', 'site1',
      '--admin-token', 'admin-token-of-the-test-0123',
      '--viewer-token', 'viewer-token-of-the-test-0123',
      '--device-rate-limit', '2.5',
      '--no-alarms'
    ])
    // The validated rules are frozen null-prototype maps: compare their JSON.
    c.detection.rules = JSON.parse(JSON.stringify(c.detection.rules)) as typeof c.detection.rules
    assert.deepEqual(c, {
      databaseUrl: 'postgres://u:p@db:5432/iot',
      dataDir: '/var/lib/iot',
      host: '0.0.0.0',
      port: 9090,
      topic: 'readings',
      partitions: 12,
      group: 'workers',
      logLevel: 'debug',
      statusIntervalMs: 10_000,
      shutdownTimeoutMs: 30_000,
      simulator: { enabled: true, sensors: 100, rate: 2.5, speedup: 60, seed: 7, durationMs: 7_200_000, startMs: Date.UTC(2025, 0, 1) },
      windowing: { sizeMs: 300_000, maxOutOfOrdernessMs: 30_000, allowedLatenessMs: 120_000, idleTimeoutMs: 60_000 },
      validation: { maxBytes: 16_384, maxPastMs: 30 * 86_400_000, maxFutureMs: 3_600_000 },
      busCapacity: 5000,
      maxBatch: 250,
      retentionMs: 30 * 86_400_000,
      kafka: { brokers: ['kafka:9092'], sessionTimeoutMs: 20_000, events: false, aggregatesTopic: 'windows', anomaliesTopic: 'alerts' },
      detection: { rules: { defaults: { co2: { max: 1000 } }, overrides: { 'co2@Lab': { max: 800, maxRatePerSec: 50 } } }, ml: false, mlScope: 'sensor', devices: 'off' },
      readiness: { maxFailures: 5, stallMs: 120_000 },
      live: { maxClients: 800, maxClientsPerAddress: 10 },
      adminToken: 'admin-token-of-the-test-0123',
      viewerToken: 'viewer-token-of-the-test-0123',
      allowAnonymousRead: false,
      deviceRateLimit: { perSecond: 2.5, burst: 5 },
      mqtt: { enabled: false, host: '0.0.0.0', port: 8883, portGiven: true, tls: { keyPath: 'k.pem', certPath: 'c.pem' }, url: 'mqtt://broker:1883', topicPrefix: 'site1' },
      alarms: { enabled: false, rules: DEFAULTS.alarms.rules },
      notify: DEFAULTS.notify
    })
  })

  test('--admin-token [IOT_ADMIN_TOKEN]: the flag over the env; empty is none; shorter than 16 characters or with a space is IOT_ERR_CONFIG', () => {
    assert.equal(load([], { IOT_ADMIN_TOKEN: 'from-the-environment' }).adminToken, 'from-the-environment')
    assert.equal(load(['--admin-token', 'from-the-flag-0123'], { IOT_ADMIN_TOKEN: 'from-the-environment' }).adminToken, 'from-the-flag-0123')
    assert.equal(load([], { IOT_ADMIN_TOKEN: '' }).adminToken, null)
    assert.equal(load(['--admin-token', '0123456789abcdef']).adminToken, '0123456789abcdef', '16 characters')
    assert.throws(() => load(['--admin-token', '0123456789abcde']), {
      code: 'IOT_ERR_CONFIG',
      message: '--admin-token: expected at least 16 characters without spaces (e.g. from `openssl rand -base64 32`), got 15 characters'
    })
    assert.throws(() => load([], { IOT_ADMIN_TOKEN: 'a token with spaces in it' }), CONFIG_ERROR)
  })

  test('--viewer-token [IOT_VIEWER_TOKEN]: the admin token\'s rules; not the admin token; not with --allow-anonymous-read', () => {
    assert.equal(load([], { IOT_VIEWER_TOKEN: 'viewer-from-the-environment' }).viewerToken, 'viewer-from-the-environment')
    assert.equal(load(['--viewer-token', 'viewer-from-the-flag-01'], { IOT_VIEWER_TOKEN: 'viewer-from-the-environment' }).viewerToken, 'viewer-from-the-flag-01')
    assert.equal(load([], { IOT_VIEWER_TOKEN: '' }).viewerToken, null)
    assert.throws(() => load(['--viewer-token', 'short']), {
      code: 'IOT_ERR_CONFIG',
      message: '--viewer-token: expected at least 16 characters without spaces (e.g. from `openssl rand -base64 32`), got 5 characters'
    })
    assert.throws(() => load([], { IOT_VIEWER_TOKEN: 'a viewer token with spaces' }), CONFIG_ERROR)
    assert.throws(() => load([], { IOT_VIEWER_TOKEN: 'the-same-token-0123', IOT_ADMIN_TOKEN: 'the-same-token-0123' }), {
      code: 'IOT_ERR_CONFIG',
      message: '--viewer-token: must differ from --admin-token (the admin token reads as well; a viewer token is one that cannot manage devices)'
    })
    assert.equal(load(['--allow-anonymous-read']).allowAnonymousRead, true)
    assert.equal(load(['--config', configFile({ 'allow-anonymous-read': true })]).allowAnonymousRead, true)
    assert.throws(() => load(['--allow-anonymous-read'], { IOT_VIEWER_TOKEN: 'viewer-from-the-environment' }), {
      code: 'IOT_ERR_CONFIG',
      message: '--allow-anonymous-read and --viewer-token (IOT_VIEWER_TOKEN) contradict each other: give one of them'
    })
  })

  test('--device-rate-limit: writes per second with a burst of two seconds of them (at least 1); off; anything else is IOT_ERR_CONFIG', () => {
    assert.deepEqual(load(['--device-rate-limit', '10']).deviceRateLimit, { perSecond: 10, burst: 20 })
    assert.deepEqual(load(['--device-rate-limit', '0.25']).deviceRateLimit, { perSecond: 0.25, burst: 1 })
    assert.equal(load(['--device-rate-limit', 'off']).deviceRateLimit, null)
    for (const bad of ['0', '-1', 'fast', '', 'Infinity']) {
      assert.throws(() => load([`--device-rate-limit=${bad}`]), {
        code: 'IOT_ERR_CONFIG', message: `--device-rate-limit: expected writes per second (a positive number) or "off", got "${bad}"`
      })
    }
  })

  test('--rules: a bad file is IOT_ERR_CONFIG naming the file and the field; --ml-scope takes type or sensor', () => {
    const bad = join(dir, 'bad-rules.json')
    writeFileSync(bad, JSON.stringify({ defaults: { co2: { max: 1000, min: 2000 } } }))
    assert.throws(() => load(['--rules', bad]), { code: 'IOT_ERR_CONFIG', message: `--rules ${bad}: defaults.co2: min (2000) must be < max (1000)` })
    assert.throws(() => load(['--rules', join(dir, 'none.json')]), CONFIG_ERROR)
    writeFileSync(bad, '{ "defaults": ')
    assert.throws(() => load(['--rules', bad]), CONFIG_ERROR)
    assert.throws(() => load(['--ml-scope', 'site']), { code: 'IOT_ERR_CONFIG', message: '--ml-scope: expected "type" or "sensor", got "site"' })
    assert.equal(load(['--ml-scope', 'type']).detection.mlScope, 'type')
    assert.throws(() => load(['--device-detection', 'yes']), { code: 'IOT_ERR_CONFIG', message: '--device-detection: expected "devices", "all" or "off", got "yes"' })
    assert.equal(load(['--device-detection', 'all']).detection.devices, 'all')
  })

  test('--flag=value form', () => {
    const c = load(['--port=7000', '--speedup=0.5', '--window=30s'])
    assert.equal(c.port, 7000)
    assert.equal(c.simulator.speedup, 0.5)
    assert.equal(c.windowing.sizeMs, 30_000)
  })

  test('--speedup max is Infinity', () => {
    assert.equal(load(['--speedup', 'max']).simulator.speedup, Infinity)
  })

  test('--max-past off and --max-future off are null (limit disabled)', () => {
    const c = load(['--max-past', 'off', '--max-future', 'off'])
    assert.equal(c.validation.maxPastMs, null)
    assert.equal(c.validation.maxFutureMs, null)
    assert.equal(c.validation.maxBytes, 16_384)
  })

  test('--no-simulator turns the simulator off and leaves the rest', () => {
    const c = load(['--no-simulator'])
    assert.equal(c.simulator.enabled, false)
    assert.deepEqual({ ...c.simulator, enabled: true }, DEFAULTS.simulator)
  })

  test('--status 0 turns the status line off; --port 0 asks for any free port', () => {
    assert.equal(load(['--status', '0']).statusIntervalMs, 0)
    assert.equal(load(['--port', '0']).port, 0)
  })

  test('retention: a week on the embedded database unless told, all kept on PostgreSQL; --retention off keeps all', () => {
    assert.equal(load([]).retentionMs, 7 * 86_400_000)
    assert.equal(load(['--retention', 'off']).retentionMs, null)
    assert.equal(load(['--retention', '2d']).retentionMs, 2 * 86_400_000)
    assert.equal(load(['--database-url', 'postgres://db/iot']).retentionMs, null)
    assert.equal(load(['--database-url', 'postgres://db/iot', '--retention', '30d']).retentionMs, 30 * 86_400_000)
  })

  test('MQTT: a key without a certificate and a URL that is not mqtt:// are IOT_ERR_CONFIG', () => {
    assert.throws(() => load(['--mqtt-tls-key', 'k.pem']), { code: 'IOT_ERR_CONFIG', message: '--mqtt-tls-key and --mqtt-tls-cert go together' })
    assert.throws(() => load(['--mqtt-url', 'http://broker']), CONFIG_ERROR)
    assert.equal(load([], { MQTT_URL: 'mqtts://broker:8883' }).mqtt.url, 'mqtts://broker:8883')
  })

  test('readiness and live-stream limits take positive integers', () => {
    assert.throws(() => load(['--live-max-clients', '0']), { code: 'IOT_ERR_CONFIG', message: '--live-max-clients: expected an integer from 1 to 9007199254740991, got "0"' })
    assert.throws(() => load(['--ready-failures', '2.5']), CONFIG_ERROR)
  })

  test('--shutdown-timeout sets how long a stop may store before exiting anyway', () => {
    assert.equal(load(['--shutdown-timeout', '5s']).shutdownTimeoutMs, 5000)
  })

  test('a plain number for a duration flag is seconds', () => {
    assert.equal(load(['--duration', '90']).simulator.durationMs, 90_000)
  })

  test('--start with an offset', () => {
    assert.equal(load(['--start', '2025-06-01T02:00:00+02:00']).simulator.startMs, Date.UTC(2025, 5, 1))
  })

  test('the last occurrence of a repeated flag wins', () => {
    assert.equal(load(['--port', '1', '--port', '2']).port, 2)
  })
})

describe('loadConfig - environment', () => {
  test('DATABASE_URL, IOT_DATA_DIR, HOST, PORT, LOG_LEVEL', () => {
    const c = load([], {
      DATABASE_URL: 'postgres://localhost/iot',
      IOT_DATA_DIR: '/tmp/iot',
      HOST: '::1',
      PORT: '3000',
      LOG_LEVEL: 'warn'
    })
    assert.equal(c.databaseUrl, 'postgres://localhost/iot')
    assert.equal(c.dataDir, '/tmp/iot')
    assert.equal(c.host, '::1')
    assert.equal(c.port, 3000)
    assert.equal(c.logLevel, 'warn')
  })

  test('an empty DATABASE_URL means embedded (null)', () => {
    assert.equal(load([], { DATABASE_URL: '' }).databaseUrl, null)
  })

  test('flags override the environment', () => {
    const c = load(['--database-url', 'postgres://flag/db', '--port', '4000', '--log-level', 'error', '--host', 'h', '--data-dir', 'd'], {
      DATABASE_URL: 'postgres://env/db', PORT: '3000', LOG_LEVEL: 'warn', HOST: 'envhost', IOT_DATA_DIR: 'envdir'
    })
    assert.equal(c.databaseUrl, 'postgres://flag/db')
    assert.equal(c.port, 4000)
    assert.equal(c.logLevel, 'error')
    assert.equal(c.host, 'h')
    assert.equal(c.dataDir, 'd')
  })

  test('other environment variables are not read (only the documented ones)', () => {
    const c = load([], { TOPIC: 'x', SENSORS: '3', SPEEDUP: '10', IOT_PORT: '1' })
    assert.deepEqual(c, DEFAULTS)
  })

  test('a bad PORT in the environment is IOT_ERR_CONFIG', () => {
    assert.throws(() => load([], { PORT: 'http' }), CONFIG_ERROR)
  })
})

describe('loadConfig - config file', () => {
  test('sets any flag by name, with JSON numbers, strings and booleans', () => {
    const path = configFile({
      port: 9000,
      sensors: 10,
      rate: 0.5,
      speedup: 'max',
      'max-past': 'off',
      window: '30s',
      'no-simulator': true,
      'database-url': 'postgres://file/db',
      'log-level': 'debug'
    })
    const c = load(['--config', path])
    assert.equal(c.port, 9000)
    assert.equal(c.simulator.sensors, 10)
    assert.equal(c.simulator.rate, 0.5)
    assert.equal(c.simulator.speedup, Infinity)
    assert.equal(c.validation.maxPastMs, null)
    assert.equal(c.windowing.sizeMs, 30_000)
    assert.equal(c.simulator.enabled, false)
    assert.equal(c.databaseUrl, 'postgres://file/db')
    assert.equal(c.logLevel, 'debug')
    assert.equal(c.partitions, 4, 'unset keys keep their defaults')
  })

  test('an empty object changes nothing', () => {
    assert.deepEqual(load(['--config', configFile({})]), DEFAULTS)
  })

  test('flags override the file', () => {
    const path = configFile({ port: 9000, sensors: 10, speedup: 'max' })
    const c = load(['--port', '9100', '--config', path, '--speedup', '2'])
    assert.equal(c.port, 9100)
    assert.equal(c.simulator.speedup, 2)
    assert.equal(c.simulator.sensors, 10)
  })

  test('the environment fills what the file leaves unset', () => {
    const c = load(['--config', configFile({ sensors: 10 })], { PORT: '7000' })
    assert.equal(c.port, 7000)
    assert.equal(c.simulator.sensors, 10)
  })

  test('the environment overrides the file (flags > env > file > defaults)', () => {
    const path = configFile({ port: 9000, 'log-level': 'debug', 'database-url': 'postgres://file/db' })
    const env = { PORT: '7000', LOG_LEVEL: 'warn', DATABASE_URL: 'postgres://env/db' }
    const c = load(['--config', path], env)
    assert.equal(c.port, 7000)
    assert.equal(c.logLevel, 'warn')
    assert.equal(c.databaseUrl, 'postgres://env/db')
    assert.equal(load(['--config', path, '--port', '1'], env).port, 1)
  })

  test('an unknown key is IOT_ERR_CONFIG', () => {
    assert.throws(() => load(['--config', configFile({ prot: 8080 })]), CONFIG_ERROR)
    assert.throws(() => load(['--config', configFile({ port: 8080, databaseUrl: 'x' })]), CONFIG_ERROR, 'camelCase is not a flag name')
  })

  test('an unknown key named like an Object.prototype member is IOT_ERR_CONFIG too', () => {
    for (const key of ['constructor', 'toString', 'hasOwnProperty']) {
      assert.throws(() => load(['--config', configFile({ [key]: 1 })]), CONFIG_ERROR, key)
    }
    assert.throws(() => load(['--config', configFile('{"__proto__": {"port": "1"}}')]), CONFIG_ERROR, '__proto__')
  })

  test('a bad value in the file is IOT_ERR_CONFIG', () => {
    assert.throws(() => load(['--config', configFile({ port: 'http' })]), CONFIG_ERROR)
    assert.throws(() => load(['--config', configFile({ window: '5x' })]), CONFIG_ERROR)
    assert.throws(() => load(['--config', configFile({ sensors: 0 })]), CONFIG_ERROR)
  })

  test('a missing file, broken JSON or a JSON array is IOT_ERR_CONFIG', () => {
    assert.throws(() => load(['--config', join(dir, 'does-not-exist.json')]), CONFIG_ERROR)
    assert.throws(() => load(['--config', configFile('{"port": 8080,')]), CONFIG_ERROR)
    assert.throws(() => load(['--config', configFile('port = 8080')]), CONFIG_ERROR)
    assert.throws(() => load(['--config', configFile('[1, 2]')]), CONFIG_ERROR)
    assert.throws(() => load(['--config', dir]), CONFIG_ERROR, 'a directory')
  })

  test('a file holding null (or another non-object) is IOT_ERR_CONFIG', () => {
    assert.throws(() => load(['--config', configFile('null')]), CONFIG_ERROR)
    assert.throws(() => load(['--config', configFile('42')]), CONFIG_ERROR)
  })
})

describe('loadConfig - errors', () => {
  test('bad numbers are IOT_ERR_CONFIG', () => {
    const cases: string[][] = [
      ['--port', 'abc'],
      ['--port=-1'],
      ['--port', '80.5'],
      ['--partitions', '0'],
      ['--partitions', '1.5'],
      ['--sensors', '0'],
      ['--sensors', 'many'],
      ['--rate', '0'],
      ['--rate=-1'],
      ['--rate', 'fast'],
      ['--rate', 'Infinity'],
      ['--speedup', '0'],
      ['--speedup=-2'],
      ['--speedup', 'fast'],
      ['--speedup', 'NaN'],
      ['--seed=-1'],
      ['--seed', '4.2'],
      ['--bus-capacity', '0'],
      ['--bus-capacity', '1e400'],
      ['--max-batch', '0'],
      ['--max-batch', 'all']
    ]
    for (const argv of cases) assert.throws(() => load(argv), CONFIG_ERROR, argv.join(' '))
  })

  test('bad durations are IOT_ERR_CONFIG', () => {
    const cases: string[][] = [
      ['--window', '5x'],
      ['--window', '0'],
      ['--window', '0s'],
      ['--duration', '1h 30m'],
      ['--out-of-orderness', 'm5'],
      ['--allowed-lateness', ''],
      ['--idle-timeout', 'soon'],
      ['--max-past', 'never'],
      ['--max-future', 'OFF'],
      ['--status', 'often']
    ]
    for (const argv of cases) assert.throws(() => load(argv), CONFIG_ERROR, argv.join(' '))
  })

  test('a bad --start is IOT_ERR_CONFIG', () => {
    assert.throws(() => load(['--start', 'yesterday']), CONFIG_ERROR)
    assert.throws(() => load(['--start', '']), CONFIG_ERROR)
  })

  test('unknown flags, missing values and values for boolean flags are IOT_ERR_CONFIG', () => {
    for (const argv of [['--nope'], ['-x'], ['--Port', '1'], ['--port'], ['start', '--sensors'], ['--no-simulator=yes'], ['--help=1'], ['--simulator']]) {
      assert.throws(() => loadConfig(argv, {}), CONFIG_ERROR, argv.join(' '))
    }
  })

  test('empty numeric values are IOT_ERR_CONFIG, not 0', () => {
    assert.throws(() => load(['--port=']), CONFIG_ERROR)
    assert.throws(() => load(['--seed=']), CONFIG_ERROR)
    assert.throws(() => load(['--port', ' ']), CONFIG_ERROR)
    assert.throws(() => load([], { PORT: '' }), CONFIG_ERROR)
  })

  test('a port above 65535 is IOT_ERR_CONFIG', () => {
    assert.equal(load(['--port', '65535']).port, 65535)
    assert.throws(() => load(['--port', '65536']), CONFIG_ERROR)
    assert.throws(() => load(['--port', '70000']), CONFIG_ERROR)
  })

  test('--start reads ISO 8601 like the wire: naive is UTC, impossible dates are rejected', () => {
    const tz = process.env.TZ
    process.env.TZ = 'America/New_York'
    try {
      assert.equal(load(['--start', '2025-01-01T00:00:00']).simulator.startMs, Date.UTC(2025, 0, 1))
    } finally {
      if (tz === undefined) delete process.env.TZ
      else process.env.TZ = tz
    }
    assert.throws(() => load(['--start', '2025-02-30T00:00:00Z']), CONFIG_ERROR)
    assert.throws(() => load(['--start', '1']), CONFIG_ERROR)
  })

  test('Kafka: brokers from --kafka-brokers or KAFKA_BROKERS, topics and timeouts', () => {
    const c = load(['--kafka-brokers', 'k1:9092, k2:19092', '--session-timeout', '6s', '--aggregates-topic', 'aggs',
      '--anomalies-topic', 'anoms.v1', '--no-events', '--topic', 'readings_x'])
    assert.deepEqual(c.kafka, { brokers: ['k1:9092', 'k2:19092'], sessionTimeoutMs: 6000, events: false, aggregatesTopic: 'aggs', anomaliesTopic: 'anoms.v1' })
    assert.equal(c.topic, 'readings_x')
    assert.deepEqual(load([], { KAFKA_BROKERS: '127.0.0.1:59092' }).kafka.brokers, ['127.0.0.1:59092'])
    assert.equal(load([], { KAFKA_BROKERS: '' }).kafka.brokers, null, 'empty means embedded')
    assert.deepEqual(load(['--kafka-brokers', 'flag:1'], { KAFKA_BROKERS: 'env:2' }).kafka.brokers, ['flag:1'])
  })

  test('Kafka: a broker without a port or a bad topic name is IOT_ERR_CONFIG', () => {
    for (const argv of [['--kafka-brokers', 'localhost'], ['--kafka-brokers', 'kafka://h:1'], ['--kafka-brokers', 'h:1,h2'],
      ['--topic', 'bad topic'], ['--aggregates-topic', 'a/b'], ['--anomalies-topic', ''], ['--session-timeout', 'soon']]) {
      assert.throws(() => load(argv), CONFIG_ERROR, argv.join(' '))
    }
  })
})

test('notifications - webhooks repeated or as a comma list, format, timings; bad values refused', () => {
  const c = loadConfig(['start', '--webhook-url', 'http://a.example/hook', '--webhook-url', 'https://b.example/x,http://c.example', '--webhook-format', 'slack',
    '--group-by', 'alertname,sensor_id', '--group-wait', '1s', '--group-interval', '2m', '--repeat-interval', '1h', '--retry-wait', '2s', '--retry-max-wait', '1m', '--webhook-timeout', '3s',
    '--external-url', 'https://iot.example'], {}).config
  assert.deepEqual(c.notify, {
    webhooks: [{ url: 'http://a.example/hook', format: 'slack' }, { url: 'https://b.example/x', format: 'slack' }, { url: 'http://c.example', format: 'slack' }],
    groupBy: ['alertname', 'sensor_id'],
    groupWaitMs: 1000,
    groupIntervalMs: 120_000,
    repeatIntervalMs: 3_600_000,
    retryWaitMs: 2000,
    retryMaxWaitMs: 60_000,
    timeoutMs: 3000,
    externalUrl: 'https://iot.example'
  })
  assert.deepEqual(loadConfig(['start'], { IOT_WEBHOOK_URL: 'http://env.example/h' }).config.notify.webhooks, [{ url: 'http://env.example/h', format: 'alertmanager' }])
  assert.throws(() => loadConfig(['start', '--webhook-url', 'ftp://x'], {}), CONFIG_ERROR)
  assert.throws(() => loadConfig(['start', '--webhook-format', 'teams'], {}), CONFIG_ERROR)
  assert.throws(() => loadConfig(['start', '--group-by', 'a-b'], {}), CONFIG_ERROR)
  assert.throws(() => loadConfig(['start', '--repeat-interval', '0s'], {}), CONFIG_ERROR)
  assert.throws(() => loadConfig(['start', '--retry-wait', '0s'], {}), CONFIG_ERROR)
  assert.throws(() => loadConfig(['start', '--retry-wait', '2m', '--retry-max-wait', '1m'], {}), CONFIG_ERROR)
  assert.throws(() => loadConfig(['start', '--webhook-timeout', '0s'], {}), CONFIG_ERROR)
})

test('loadConfig - alarms: --alarm-rules (or IOT_ALARM_RULES) merges a file over the built-in rules; --no-alarms turns them off', () => {
  const file = join(dir, 'alarm-rules.json')
  writeFileSync(file, JSON.stringify({ anomalyBurst: { count: 3 }, thresholds: [{ name: 'co2_high', sensorType: 'co2', above: 1500, clearBelow: 1100, for: '2m' }] }))
  for (const c of [loadConfig(['start', '--alarm-rules', file], {}).config, loadConfig(['start'], { IOT_ALARM_RULES: file }).config]) {
    assert.equal(c.alarms.enabled, true)
    assert.equal(c.alarms.rules.anomalyBurst?.count, 3)
    assert.deepEqual(c.alarms.rules.thresholds.find(t => t.name === 'co2_high')?.levels, [{ severity: 'warning', value: 1500, forMs: 120_000 }])
  }
  assert.equal(loadConfig(['start', '--no-alarms'], {}).config.alarms.enabled, false)
  writeFileSync(file, JSON.stringify({ stuck: { clearAfter: 'later' } }))
  assert.throws(() => loadConfig(['start', '--alarm-rules', file], {}), CONFIG_ERROR)
  assert.throws(() => loadConfig(['start', '--alarm-rules', join(dir, 'missing.json')], {}), CONFIG_ERROR)
})
