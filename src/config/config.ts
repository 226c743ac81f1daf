import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { IotError, defaultValidationOptions, parseTimestamp, type ValidationOptions } from '../domain/index.ts'
import { defaultWindowingOptions, type WindowingOptions } from '../windowing/index.ts'
import { defaultRuleConfig, validateRuleConfig, type RuleConfig } from '../anomaly/index.ts'
import { defaultAlarmRules, parseAlarmRules, type AlarmRules } from '../alarms/index.ts'
import { burstFor, defaultDeviceRateLimit, type DeviceRateLimit } from '../ingest/index.ts'
import { parseDuration } from './duration.ts'

export interface SimulatorConfig {
  enabled: boolean
  sensors: number
  /** Readings per second of event time, per sensor. */
  rate: number
  /** Event time runs this many times faster than the wall clock. */
  speedup: number
  seed: number
  /** Event time to simulate before a clean exit; null runs until stopped. */
  durationMs: number | null
  /** First event time (epoch ms); null: now, or where the previous run stopped. */
  startMs: number | null
}

export interface KafkaConfig {
  /** host:port of the brokers; null runs embedded (memory bus). */
  brokers: string[] | null
  /** A worker silent this long leaves the group and its partitions move to the others. */
  sessionTimeoutMs: number
  /** Publish window results, anomalies and dead letters to Kafka topics. */
  events: boolean
  aggregatesTopic: string
  anomaliesTopic: string
}

export interface DetectionConfig {
  /** Rule thresholds (from --rules FILE, else the defaults). */
  rules: RuleConfig
  /** Run the Isolation Forest. */
  ml: boolean
  /** One model per sensor type (the original design) or per sensor. */
  mlScope: 'type' | 'sensor'
  /**
   * The device-level detector (a multivariate forest per device over its measurements): for
   * connected devices' sensors (`<device>.<measurement>`), also for the simulator's co-located
   * sensors (`all`), or off.
   */
  devices: 'devices' | 'all' | 'off'
}

/** When the process is not ready (GET /ready answers 503). */
export interface ReadinessConfig {
  /** Failed attempts in a row of the worker from which it is not ready. */
  maxFailures: number
  /** Readings waiting and nothing stored for longer than this: not ready. */
  stallMs: number
}

/** Devices over MQTT: the built-in broker, or an external broker to subscribe to. */
export interface MqttConfig {
  /** Run the built-in broker (when no external URL is given). */
  enabled: boolean
  host: string
  port: number
  /** The port was given (--mqtt-port): a port in use is then an error, not a broker left off. */
  portGiven: boolean
  tls: { keyPath: string, certPath: string } | null
  /** mqtt://host:port of an external broker to subscribe to instead (Mosquitto, EMQX, HiveMQ). */
  url: string | null
  /** Topics read on the external broker: <prefix>/<device id>/telemetry and .../status. */
  topicPrefix: string
}

/** Alarm notifications (src/notify): the webhooks and Alertmanager's timings. */
export interface NotifyConfig {
  /** Receivers, each posted every notification; none: notifications wait in the outbox. */
  webhooks: { url: string, format: 'alertmanager' | 'slack' }[]
  /** Labels that make a group (Alertmanager's group_by). */
  groupBy: string[]
  groupWaitMs: number
  groupIntervalMs: number
  repeatIntervalMs: number
  /** A failed delivery is retried after this, doubling each time (jittered) up to `retryMaxWaitMs`. */
  retryWaitMs: number
  retryMaxWaitMs: number
  /** A webhook request not answered within this failed (and is retried). */
  timeoutMs: number
  /** The dashboard's address for links in notifications; null: http://<host>:<port>. */
  externalUrl: string | null
}

/** Alarms (src/alarms): evaluated by the worker on each batch, and on the wall clock for offline. */
export interface AlarmsConfig {
  /** --no-alarms turns evaluation off (the bench compares). */
  enabled: boolean
  /** From --alarm-rules FILE (merged over the defaults), else the defaults. */
  rules: AlarmRules
}

/** The live stream's clients (GET /api/live): past either cap a new client gets 503. */
export interface LiveConfig {
  maxClients: number
  maxClientsPerAddress: number
}

export interface Config {
  databaseUrl: string | null
  dataDir: string
  host: string
  port: number
  topic: string
  partitions: number
  group: string
  logLevel: string
  /** Seconds between status lines; 0 turns them off. */
  statusIntervalMs: number
  /** A stop (SIGINT, SIGTERM) that has not finished storing what was accepted after this long exits anyway, saying what it left. */
  shutdownTimeoutMs: number
  simulator: SimulatorConfig
  windowing: WindowingOptions
  validation: ValidationOptions
  busCapacity: number
  maxBatch: number
  /**
   * Drop daily partitions of raw readings (and late readings and dead letters) older than this
   * behind the watermark; null keeps all. Unless told, the embedded database keeps EMBEDDED_RETENTION_MS
   * and a PostgreSQL server everything.
   */
  retentionMs: number | null
  kafka: KafkaConfig
  detection: DetectionConfig
  readiness: ReadinessConfig
  live: LiveConfig
  /**
   * The bearer token of the admin API (/api/admin/…: managing devices); null disables it (403).
   * Compared as a whole, in constant time.
   */
  adminToken: string | null
  /**
   * The bearer token for reading the API (/api/..., the live stream, /metrics); the admin token
   * reads too. Given, reading needs a token wherever the API listens. See readRequiresToken.
   */
  viewerToken: string | null
  /** --allow-anonymous-read: beyond loopback, reading needs no token (a trusted network). */
  allowAnonymousRead: boolean
  /** Writes per device (HTTP requests: 429 past it; MQTT messages: delayed past it); null: no limit. */
  deviceRateLimit: DeviceRateLimit | null
  mqtt: MqttConfig
  alarms: AlarmsConfig
  notify: NotifyConfig
}

/** Raw readings the embedded database (PGlite) keeps by default: a week (windows and roll-ups stay). */
const EMBEDDED_RETENTION_MS = 7 * 86_400_000

export const defaultConfig: Config = {
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
  windowing: defaultWindowingOptions,
  validation: defaultValidationOptions,
  busCapacity: 100_000,
  maxBatch: 10_000,
  retentionMs: EMBEDDED_RETENTION_MS,
  kafka: { brokers: null, sessionTimeoutMs: 10_000, events: true, aggregatesTopic: 'iot_aggregates', anomaliesTopic: 'iot_anomalies' },
  detection: { rules: defaultRuleConfig, ml: true, mlScope: 'type', devices: 'devices' },
  readiness: { maxFailures: 3, stallMs: 60_000 },
  live: { maxClients: 500, maxClientsPerAddress: 50 },
  adminToken: null,
  viewerToken: null,
  allowAnonymousRead: false,
  deviceRateLimit: { ...defaultDeviceRateLimit },
  alarms: { enabled: true, rules: defaultAlarmRules },
  mqtt: { enabled: true, host: '127.0.0.1', port: 1883, portGiven: false, tls: null, url: null, topicPrefix: 'iot' },
  notify: { webhooks: [], groupBy: ['alertname', 'location'], groupWaitMs: 30_000, groupIntervalMs: 300_000, repeatIntervalMs: 4 * 3_600_000, retryWaitMs: 10_000, retryMaxWaitMs: 600_000, timeoutMs: 10_000, externalUrl: null }
}

/** An admin or viewer token shorter than this is refused: it would be guessable. */
const MIN_TOKEN_LENGTH = 16

const options = {
  config: { type: 'string' },
  'database-url': { type: 'string' },
  'data-dir': { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  topic: { type: 'string' },
  partitions: { type: 'string' },
  group: { type: 'string' },
  'log-level': { type: 'string' },
  status: { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  'ready-failures': { type: 'string' },
  'ready-stall': { type: 'string' },
  'live-max-clients': { type: 'string' },
  'live-max-per-address': { type: 'string' },
  'no-mqtt': { type: 'boolean' },
  'mqtt-host': { type: 'string' },
  'mqtt-port': { type: 'string' },
  'mqtt-tls-key': { type: 'string' },
  'mqtt-tls-cert': { type: 'string' },
  'mqtt-url': { type: 'string' },
  'mqtt-topic-prefix': { type: 'string' },
  'admin-token': { type: 'string' },
  'viewer-token': { type: 'string' },
  'allow-anonymous-read': { type: 'boolean' },
  'device-rate-limit': { type: 'string' },
  sensors: { type: 'string' },
  rate: { type: 'string' },
  speedup: { type: 'string' },
  seed: { type: 'string' },
  duration: { type: 'string' },
  start: { type: 'string' },
  'no-simulator': { type: 'boolean' },
  window: { type: 'string' },
  'out-of-orderness': { type: 'string' },
  'allowed-lateness': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'max-past': { type: 'string' },
  'max-future': { type: 'string' },
  'bus-capacity': { type: 'string' },
  'max-batch': { type: 'string' },
  retention: { type: 'string' },
  'kafka-brokers': { type: 'string' },
  'session-timeout': { type: 'string' },
  'aggregates-topic': { type: 'string' },
  'anomalies-topic': { type: 'string' },
  'no-events': { type: 'boolean' },
  rules: { type: 'string' },
  'alarm-rules': { type: 'string' },
  'no-alarms': { type: 'boolean' },
  'ml-scope': { type: 'string' },
  'no-ml': { type: 'boolean' },
  'device-detection': { type: 'string' },
  'webhook-url': { type: 'string', multiple: true },
  'webhook-format': { type: 'string' },
  'group-by': { type: 'string' },
  'group-wait': { type: 'string' },
  'group-interval': { type: 'string' },
  'retry-wait': { type: 'string' },
  'retry-max-wait': { type: 'string' },
  'webhook-timeout': { type: 'string' },
  'repeat-interval': { type: 'string' },
  'external-url': { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const

export const usage = `Usage: iot-monitor <command> [flags]

Commands:
  start     simulator + worker + API in one process (embedded: memory bus, PGlite;
            with --kafka-brokers: the same three roles through Kafka)
  ingest    simulator -> Kafka (with --duration: flush and exit)
  worker    Kafka -> detection, windows -> database; run several in one group to scale out
  api       the HTTP API over the database
  migrate   create or update the database schema and exit
  replay    run the detectors over a recorded CSV series (iot-monitor replay --help)
  devices   add, list, rotate or revoke the devices that send readings (iot-monitor devices --help)
  simulate  the simulated fleet as MQTT devices of a running iot-monitor (iot-monitor simulate --help)
  flink     the window aggregates from the Flink SQL job instead, to compare (iot-monitor flink --help)

Flags (env in brackets; a JSON file given by --config may set any of them by name):
  --database-url URL      PostgreSQL server [DATABASE_URL]; default: embedded PGlite
  --data-dir DIR          PGlite data folder [IOT_DATA_DIR] (default ./data)
  --host HOST, --port N   API address [HOST, PORT] (default 127.0.0.1:8080)
  --sensors N             simulated sensors (default 25: 5 locations x 5 types)
  --rate R                readings per second of event time, per sensor (default 1)
  --speedup X             event time runs X times faster than the wall clock (default 1;
                          max: as fast as the pipeline takes it)
  --seed N                simulator seed (default 42)
  --duration D            simulate D of event time (e.g. 2h), flush, and exit
  --start TIME            first event time (ISO 8601; default now or where the last run stopped)
  --no-simulator          run without the built-in simulator
  --partitions N          partitions of the readings topic (default 4)
  --window D              window size (default 60s)
  --out-of-orderness D    watermark delay (default 10s)
  --allowed-lateness D    revisions accepted after a window's end (default 60s)
  --idle-timeout D        wall time after which a silent partition stops holding windows (default 30s)
  --max-past D, --max-future D   reject timestamps that far from the ingest clock (default 7d, 5m; "off")
  --retention D|off       drop raw readings, late readings and dead letters older than D behind
                          the watermark (whole days; windows and roll-ups stay); default: 7d on the
                          embedded database, keep all on PostgreSQL
  --max-batch N           records per batch and transaction (default 10000)
  --bus-capacity N        records the embedded bus holds before producers wait (default 100000)
  --rules FILE            rule thresholds per sensor type and location (JSON; see
                          config/rules.example.json; default: built-in thresholds)
  --ml-scope type|sensor  one Isolation Forest per sensor type (default) or per sensor
  --no-ml                 run without the Isolation Forest
  --device-detection devices|all|off
                          the device-level (multivariate) detector: on connected devices (default),
                          also on the simulator's co-located sensors, or off
  --alarm-rules FILE      alarm conditions per sensor type and location, merged over the built-in
                          ones (JSON; see "Alarms" in docs/ARCHITECTURE.md) [IOT_ALARM_RULES]
  --no-alarms             evaluate no alarms
  --status D              interval of the status line (default 5s; 0 = off)
  --shutdown-timeout D    on SIGINT/SIGTERM, store what was accepted for at most D, then exit
                          saying what was left (default 30s)
  --log-level LEVEL       trace, debug, info, warn, error (default info) [LOG_LEVEL]
  --ready-failures N      GET /ready fails after N failed batches in a row (default 3); it also
                          fails while the database is unreachable
  --ready-stall D         GET /ready fails when readings wait and nothing was stored for D (default 60s)
  --live-max-clients N    live-stream (dashboard) clients at once; more get 503 (default 500)
  --live-max-per-address N   the same from one address (default 50)

Devices (see "Connect your sensors" in the README; devices and their tokens: iot-monitor devices):
  --mqtt-port N           port of the built-in MQTT broker (default 1883; when 1883 is taken and
                          no port was given, the broker stays off and says so)
  --mqtt-host H           interface of the built-in broker (default 127.0.0.1)
  --mqtt-tls-key F, --mqtt-tls-cert F   serve MQTT over TLS with this key and certificate (PEM)
  --no-mqtt               no MQTT at all
  --mqtt-url URL          subscribe to an external broker (mqtt://host:port, mqtts://) instead of
                          running one: topics <prefix>/<device id>/telemetry and .../status [MQTT_URL];
                          the only MQTT of \`ingest\` (on Kafka; needs --database-url for the devices)
  --mqtt-topic-prefix P   that prefix (default iot)
  --admin-token TOKEN     the admin API (/api/admin/...: devices) answers requests that send
                          "Authorization: Bearer TOKEN" [IOT_ADMIN_TOKEN: better than the flag,
                          which ps shows]; at least 16 characters (\`openssl rand -base64 32\`);
                          default: none, the admin API answers 403
  --device-rate-limit R|off   writes per second per device (default 50, bursts of twice that):
                          HTTP requests past it get 429 with Retry-After, MQTT messages are delayed

Access (see "Running beyond localhost" in the README):
  --viewer-token TOKEN    reading the API (/api/..., the live stream, /metrics) needs
                          "Authorization: Bearer TOKEN" or the admin token; the dashboard asks for
                          it [IOT_VIEWER_TOKEN]; at least 16 characters, not the admin token.
                          Given, it is required on every address, loopback too. A --host beyond
                          loopback (not 127.0.0.0/8, ::1, localhost) always needs a token for
                          reading, the viewer's or the admin's: with neither, the API refuses to
                          start. /health and /ready stay open; devices keep their device tokens
  --allow-anonymous-read  beyond loopback, reading needs no token (a trusted network only)

Alarm notifications (see "Notifications" in docs/ARCHITECTURE.md; sent by the process running the worker):
  --webhook-url URL       post each alarm transition to URL (repeat the flag or give a comma list);
                          none: notifications wait in the database [IOT_WEBHOOK_URL]
  --webhook-format F      alertmanager (Alertmanager's webhook JSON, default) or slack (an incoming webhook)
  --group-by LIST         labels that group notifications (default alertname,location)
  --group-wait D          a new group waits D for alarms raised with it (default 30s)
  --group-interval D      a group's next notification waits D after its last (default 5m)
  --repeat-interval D     an active alarm nobody acknowledged is notified again after D (default 4h)
  --retry-wait D          a failed delivery is tried again after D, doubling (jittered) up to
  --retry-max-wait D      (defaults 10s and 10m)
  --webhook-timeout D     a request not answered within D failed (default 10s); a process that died
                          mid-request leaves its notifications to others for 2 D + 5 s
  --external-url URL      the dashboard's address in notification links (default http://HOST:PORT)

Kafka (distributed mode):
  --kafka-brokers LIST    host:port[,host:port...] [KAFKA_BROKERS]; default: embedded memory bus
  --topic NAME            readings topic (default iot_sensors; dead letters also go to NAME.dlq)
  --partitions N          partitions when the topic is created (existing topics keep theirs)
  --group NAME            consumer group of the workers (default iot-monitor)
  --session-timeout D     a worker silent this long loses its partitions (default 10s)
  --aggregates-topic T, --anomalies-topic T   event topics (default iot_aggregates, iot_anomalies)
  --no-events             do not publish window results, anomalies and dead letters to Kafka
`

function int (v: string, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = v.trim() === '' ? Number.NaN : Number(v)
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new IotError('IOT_ERR_CONFIG', `--${name}: expected an integer from ${min} to ${max}, got "${v}"`)
  }
  return n
}

function positive (v: string, name: string): number {
  const n = v.trim() === '' ? Number.NaN : Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new IotError('IOT_ERR_CONFIG', `--${name}: expected a positive number, got "${v}"`)
  return n
}

/** A bearer token (admin, viewer): absent or empty is none; a short one, or one with spaces, is refused. */
function token (v: string | undefined, name: string): string | null {
  if (v === undefined || v === '') return null
  if (v.length < MIN_TOKEN_LENGTH || /\s/.test(v)) {
    throw new IotError('IOT_ERR_CONFIG', `--${name}: expected at least ${MIN_TOKEN_LENGTH} characters without spaces (e.g. from \`openssl rand -base64 32\`), got ${v.length} characters`)
  }
  return v
}

function limit (v: string, name: string): number | null {
  return v === 'off' ? null : parseDuration(v, `--${name}`)
}

export interface ParsedCommand {
  command: string
  /** The positional arguments after the command (`devices add ID`: ['add', 'ID']). */
  args: string[]
  config: Config
  help: boolean
}

/** Reads configuration from flags, then environment, then an optional JSON file, then defaults. */
export function loadConfig (argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParsedCommand {
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new IotError('IOT_ERR_CONFIG', (err as Error).message)
  }
  // --webhook-url may be repeated: the one flag whose value is a list.
  const flags: Record<string, string | boolean | string[] | undefined> = { ...parsed.values }
  const file: Record<string, string | boolean> = {}
  if (flags.config !== undefined) {
    let content: unknown
    try {
      content = JSON.parse(readFileSync(String(flags.config), 'utf8'))
    } catch (err) {
      throw new IotError('IOT_ERR_CONFIG', `--config: ${(err as Error).message}`)
    }
    if (typeof content !== 'object' || content === null || Array.isArray(content)) {
      throw new IotError('IOT_ERR_CONFIG', '--config: the file must hold a JSON object of settings')
    }
    for (const [k, v] of Object.entries(content)) {
      if (!Object.hasOwn(options, k) || k === 'config') throw new IotError('IOT_ERR_CONFIG', `--config: unknown setting "${k}"`)
      file[k] = typeof v === 'boolean' ? v : String(v)
    }
  }
  // Flags, then the environment, then the file, then the defaults.
  const get = (name: string, envName?: string): string | undefined => {
    const f = flags[name]
    if (typeof f === 'string') return f
    const e = envName === undefined ? undefined : env[envName]
    if (e !== undefined) return e
    const v = file[name]
    return typeof v === 'string' ? v : undefined
  }
  const c: Config = structuredClone(defaultConfig)
  const d = get('database-url', 'DATABASE_URL'); if (d !== undefined && d !== '') c.databaseUrl = d
  const dir = get('data-dir', 'IOT_DATA_DIR'); if (dir !== undefined) c.dataDir = dir
  const host = get('host', 'HOST'); if (host !== undefined) c.host = host
  const port = get('port', 'PORT'); if (port !== undefined) c.port = int(port, 'port', 0, 65_535)
  const topic = get('topic'); if (topic !== undefined) c.topic = topic
  const parts = get('partitions'); if (parts !== undefined) c.partitions = int(parts, 'partitions', 1)
  const group = get('group'); if (group !== undefined) c.group = group
  const level = get('log-level', 'LOG_LEVEL'); if (level !== undefined) c.logLevel = level
  const status = get('status'); if (status !== undefined) c.statusIntervalMs = parseDuration(status, '--status')
  const shutdown = get('shutdown-timeout'); if (shutdown !== undefined) c.shutdownTimeoutMs = parseDuration(shutdown, '--shutdown-timeout')
  const readyFailures = get('ready-failures'); if (readyFailures !== undefined) c.readiness.maxFailures = int(readyFailures, 'ready-failures', 1)
  const stall = get('ready-stall'); if (stall !== undefined) c.readiness.stallMs = parseDuration(stall, '--ready-stall')
  const liveMax = get('live-max-clients'); if (liveMax !== undefined) c.live.maxClients = int(liveMax, 'live-max-clients', 1)
  const livePer = get('live-max-per-address'); if (livePer !== undefined) c.live.maxClientsPerAddress = int(livePer, 'live-max-per-address', 1)
  c.adminToken = token(get('admin-token', 'IOT_ADMIN_TOKEN'), 'admin-token')
  c.viewerToken = token(get('viewer-token', 'IOT_VIEWER_TOKEN'), 'viewer-token')
  if (c.viewerToken !== null && c.viewerToken === c.adminToken) {
    throw new IotError('IOT_ERR_CONFIG', '--viewer-token: must differ from --admin-token (the admin token reads as well; a viewer token is one that cannot manage devices)')
  }
  if (flags['allow-anonymous-read'] === true || file['allow-anonymous-read'] === true) c.allowAnonymousRead = true
  if (c.allowAnonymousRead && c.viewerToken !== null) {
    throw new IotError('IOT_ERR_CONFIG', '--allow-anonymous-read and --viewer-token (IOT_VIEWER_TOKEN) contradict each other: give one of them')
  }
  const rateLimit = get('device-rate-limit')
  if (rateLimit !== undefined) {
    const perSecond = rateLimit === 'off' ? null : Number(rateLimit)
    if (perSecond !== null && !(Number.isFinite(perSecond) && perSecond > 0 && rateLimit.trim() !== '')) {
      throw new IotError('IOT_ERR_CONFIG', `--device-rate-limit: expected writes per second (a positive number) or "off", got "${rateLimit}"`)
    }
    c.deviceRateLimit = perSecond === null ? null : { perSecond, burst: burstFor(perSecond) }
  }
  const m = c.mqtt
  if (flags['no-mqtt'] === true || file['no-mqtt'] === true) m.enabled = false
  const mqttHost = get('mqtt-host'); if (mqttHost !== undefined) m.host = mqttHost
  const mqttPort = get('mqtt-port')
  if (mqttPort !== undefined) {
    m.port = int(mqttPort, 'mqtt-port', 0, 65_535)
    m.portGiven = true
  }
  const tlsKey = get('mqtt-tls-key')
  const tlsCert = get('mqtt-tls-cert')
  if ((tlsKey === undefined) !== (tlsCert === undefined)) throw new IotError('IOT_ERR_CONFIG', '--mqtt-tls-key and --mqtt-tls-cert go together')
  if (tlsKey !== undefined && tlsCert !== undefined) m.tls = { keyPath: tlsKey, certPath: tlsCert }
  const mqttUrl = get('mqtt-url', 'MQTT_URL')
  if (mqttUrl !== undefined && mqttUrl !== '') {
    if (!/^mqtts?:\/\/[^\s/]+/.test(mqttUrl)) throw new IotError('IOT_ERR_CONFIG', `--mqtt-url: expected mqtt://host:port or mqtts://host:port, got "${mqttUrl}"`)
    m.url = mqttUrl
  }
  const prefix = get('mqtt-topic-prefix'); if (prefix !== undefined) m.topicPrefix = prefix
  const s = c.simulator
  const sensors = get('sensors'); if (sensors !== undefined) s.sensors = int(sensors, 'sensors', 1)
  const rate = get('rate'); if (rate !== undefined) s.rate = positive(rate, 'rate')
  const speedup = get('speedup'); if (speedup !== undefined) s.speedup = speedup === 'max' ? Infinity : positive(speedup, 'speedup')
  const seed = get('seed'); if (seed !== undefined) s.seed = int(seed, 'seed', 0)
  const duration = get('duration'); if (duration !== undefined) s.durationMs = parseDuration(duration, '--duration')
  const start = get('start')
  if (start !== undefined) {
    const t = parseTimestamp(start)
    if (Number.isNaN(t)) throw new IotError('IOT_ERR_CONFIG', `--start: not an ISO 8601 date-time (no zone = UTC): "${start}"`)
    s.startMs = t
  }
  if (flags['no-simulator'] === true || file['no-simulator'] === true) s.enabled = false
  const w = c.windowing
  const size = get('window'); if (size !== undefined) w.sizeMs = parseDuration(size, '--window')
  const ooo = get('out-of-orderness'); if (ooo !== undefined) w.maxOutOfOrdernessMs = parseDuration(ooo, '--out-of-orderness')
  const late = get('allowed-lateness'); if (late !== undefined) w.allowedLatenessMs = parseDuration(late, '--allowed-lateness')
  const idle = get('idle-timeout'); if (idle !== undefined) w.idleTimeoutMs = parseDuration(idle, '--idle-timeout')
  const past = get('max-past'); if (past !== undefined) c.validation.maxPastMs = limit(past, 'max-past')
  const future = get('max-future'); if (future !== undefined) c.validation.maxFutureMs = limit(future, 'max-future')
  const cap = get('bus-capacity'); if (cap !== undefined) c.busCapacity = int(cap, 'bus-capacity', 1)
  const batch = get('max-batch'); if (batch !== undefined) c.maxBatch = int(batch, 'max-batch', 1)
  const retention = get('retention')
  if (retention !== undefined) c.retentionMs = limit(retention, 'retention')
  else if (c.databaseUrl !== null) c.retentionMs = null
  const k = c.kafka
  const brokers = get('kafka-brokers', 'KAFKA_BROKERS')
  if (brokers !== undefined && brokers.trim() !== '') {
    k.brokers = brokers.split(',').map(b => b.trim()).filter(b => b !== '')
    for (const b of k.brokers) {
      if (!/^[^\s:/]+:\d{1,5}$/.test(b)) throw new IotError('IOT_ERR_CONFIG', `--kafka-brokers: expected host:port[,host:port...], got "${b}"`)
    }
  }
  const session = get('session-timeout'); if (session !== undefined) k.sessionTimeoutMs = parseDuration(session, '--session-timeout')
  const agg = get('aggregates-topic'); if (agg !== undefined) k.aggregatesTopic = agg
  const anom = get('anomalies-topic'); if (anom !== undefined) k.anomaliesTopic = anom
  if (flags['no-events'] === true || file['no-events'] === true) k.events = false
  for (const [flag, name] of [['topic', c.topic], ['aggregates-topic', k.aggregatesTopic], ['anomalies-topic', k.anomaliesTopic]] as const) {
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(name)) throw new IotError('IOT_ERR_CONFIG', `--${flag}: a Kafka topic name is 1-200 of [A-Za-z0-9._-], got "${name}"`)
  }
  const det = c.detection
  const rules = get('rules')
  if (rules !== undefined) {
    try {
      det.rules = validateRuleConfig(JSON.parse(readFileSync(rules, 'utf8')))
    } catch (err) {
      throw new IotError('IOT_ERR_CONFIG', `--rules ${rules}: ${(err as Error).message}`, { cause: err })
    }
  }
  const scope = get('ml-scope')
  if (scope !== undefined) {
    if (scope !== 'type' && scope !== 'sensor') throw new IotError('IOT_ERR_CONFIG', `--ml-scope: expected "type" or "sensor", got "${scope}"`)
    det.mlScope = scope
  }
  if (flags['no-ml'] === true || file['no-ml'] === true) det.ml = false
  const devices = get('device-detection')
  if (devices !== undefined) {
    if (devices !== 'devices' && devices !== 'all' && devices !== 'off') throw new IotError('IOT_ERR_CONFIG', `--device-detection: expected "devices", "all" or "off", got "${devices}"`)
    det.devices = devices
  }
  const alarmRules = get('alarm-rules', 'IOT_ALARM_RULES')
  if (alarmRules !== undefined && alarmRules !== '') {
    try {
      c.alarms.rules = parseAlarmRules(JSON.parse(readFileSync(alarmRules, 'utf8')))
    } catch (err) {
      throw new IotError('IOT_ERR_CONFIG', `--alarm-rules ${alarmRules}: ${(err as Error).message}`, { cause: err })
    }
  }
  if (flags['no-alarms'] === true || file['no-alarms'] === true) c.alarms.enabled = false
  const n = c.notify
  const hookFlags = flags['webhook-url']
  const hooks = Array.isArray(hookFlags) && hookFlags.length > 0 ? hookFlags.join(',') : get('webhook-url', 'IOT_WEBHOOK_URL')
  const format = get('webhook-format') ?? 'alertmanager'
  if (format !== 'alertmanager' && format !== 'slack') throw new IotError('IOT_ERR_CONFIG', `--webhook-format: expected "alertmanager" or "slack", got "${format}"`)
  if (hooks !== undefined) {
    for (const url of hooks.split(',').map(u => u.trim()).filter(u => u !== '')) {
      if (!/^https?:\/\/[^\s/]+/.test(url)) throw new IotError('IOT_ERR_CONFIG', `--webhook-url: expected an http:// or https:// URL, got "${url.replace(/\/\/[^@/]*@/, '//***@')}"`)
      n.webhooks.push({ url, format })
    }
  }
  const groupBy = get('group-by')
  if (groupBy !== undefined) {
    n.groupBy = groupBy.split(',').map(l => l.trim()).filter(l => l !== '')
    for (const l of n.groupBy) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(l)) throw new IotError('IOT_ERR_CONFIG', `--group-by: "${l}" is not a label name`)
  }
  const groupWait = get('group-wait'); if (groupWait !== undefined) n.groupWaitMs = parseDuration(groupWait, '--group-wait')
  const groupInterval = get('group-interval'); if (groupInterval !== undefined) n.groupIntervalMs = parseDuration(groupInterval, '--group-interval')
  const repeat = get('repeat-interval'); if (repeat !== undefined) n.repeatIntervalMs = parseDuration(repeat, '--repeat-interval')
  if (n.repeatIntervalMs <= 0) throw new IotError('IOT_ERR_CONFIG', '--repeat-interval must be positive')
  const retryWait = get('retry-wait'); if (retryWait !== undefined) n.retryWaitMs = parseDuration(retryWait, '--retry-wait')
  const retryMax = get('retry-max-wait'); if (retryMax !== undefined) n.retryMaxWaitMs = parseDuration(retryMax, '--retry-max-wait')
  if (!(n.retryWaitMs > 0) || n.retryMaxWaitMs < n.retryWaitMs) throw new IotError('IOT_ERR_CONFIG', '--retry-wait must be positive and at most --retry-max-wait')
  const timeout = get('webhook-timeout'); if (timeout !== undefined) n.timeoutMs = parseDuration(timeout, '--webhook-timeout')
  if (!(n.timeoutMs > 0)) throw new IotError('IOT_ERR_CONFIG', '--webhook-timeout must be positive')
  const external = get('external-url')
  if (external !== undefined && external !== '') {
    if (!/^https?:\/\/[^\s/]+/.test(external)) throw new IotError('IOT_ERR_CONFIG', `--external-url: expected an http:// or https:// URL, got "${external}"`)
    n.externalUrl = external
  }
  if (w.sizeMs <= 0) throw new IotError('IOT_ERR_CONFIG', '--window must be positive')
  return { command: parsed.positionals[0] ?? 'start', args: parsed.positionals.slice(1), config: c, help: flags.help === true }
}
