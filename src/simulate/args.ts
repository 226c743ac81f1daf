// `iot-monitor simulate …`: its own flags are taken out here; the rest (the simulator's, the
// database's, the MQTT address, --admin-token, --config) is read by loadConfig like every command's.
import { type Config, type SimulatorConfig, takeOwnFlags } from '../config/index.ts'
import { IotError } from '../domain/index.ts'
import { DEFAULT_DEVICE_PREFIX } from './fleet-devices.ts'
import { type FleetBroker } from './mqtt-fleet.ts'
import { type TokenSource } from './provision.ts'

export const simulateUsage = `Usage: iot-monitor simulate [flags]

Runs the simulated fleet as real devices: one device per location and number (the first 25
sensors are 5 devices of 5 sensors), each with its own MQTT connection, publishing ThingsBoard
telemetry JSON with QoS 1 and an online/offline status with a Last Will, at the simulator's rate
and speed (real time by default). Watch the readings arrive in a running iot-monitor.

Where to publish:
  --mqtt-url URL          the broker (default mqtt://127.0.0.1:1883, or --mqtt-host/--mqtt-port)
                          [MQTT_URL]. iot-monitor's built-in broker: each device logs in with its
                          token as username and publishes to v1/devices/me/telemetry.
  --external-broker       a broker iot-monitor subscribes to (start --mqtt-url): publish to
                          <prefix>/<device id>/telemetry and .../status; the login, if any, is the
                          URL's user:password@. Implied by a user in the URL or by --mqtt-topic-prefix.
  --mqtt-topic-prefix P   that prefix (default iot)

Devices and tokens (devices <prefix><location>-<NN>, sensors <device>.<type>):
  --admin-token T         register the devices through the admin API of the running iot-monitor
                          [IOT_ADMIN_TOKEN] at --api URL (default http://127.0.0.1:8080, or
                          --host/--port): the way while it runs on the embedded database
  --api URL               that API
  (without --admin-token) register them directly in the database: --database-url URL
                          [DATABASE_URL], else the embedded one in --data-dir DIR (default ./data),
                          which a running iot-monitor holds (then use the admin API)
  --device-prefix P       device id prefix (default ${DEFAULT_DEVICE_PREFIX})
  A device that is not registered is added; a registered one (same location) gets a new token
  for the built-in broker and is left as it is for an external one.

The simulation (as for start):
  --sensors N, --rate R, --seed N, --speedup X|max
  --duration D            simulate D of event time, publish everything, wait for the broker's
                          acknowledgements, and exit
  --start TIME            first event time (default now; with --speedup above 1 and --duration,
                          now minus the duration, so the run ends at the present: iot-monitor
                          refuses readings more than 5 minutes ahead of its clock and more than
                          7 days behind it unless started with --max-future/--max-past off)

Flow control:
  --max-in-flight N       QoS 1 messages a device may have unacknowledged (default 16). A device at
                          the limit makes the whole fleet wait (its clock stands still): nothing is
                          dropped and memory stays bounded.
  --status D              status line interval (default 5s; 0 = off)
  --shutdown-timeout D    on Ctrl-C / SIGTERM, wait at most D for acknowledgements (default 30s)
  --log-level LEVEL       pino logs on stderr

On Ctrl-C or SIGTERM each device publishes what it holds and "offline", then disconnects; the last
line says how many readings were published, acknowledged and failed. Exit code 0 when every
published reading was acknowledged, 1 otherwise.
`

export interface SimulateFlags {
  api?: string
  externalBroker: boolean
  devicePrefix?: string
  maxInFlight?: number
  /** --mqtt-topic-prefix was on the command line (left there for loadConfig): an external broker. */
  topicPrefixGiven: boolean
}

/** The simulator's settings (its `startMs` null: see `startOf`), and where its devices publish. */
export interface SimulateOptions extends Omit<SimulatorConfig, 'enabled'> {
  /** The broker the devices connect to. */
  url: string
  broker: FleetBroker
  devicePrefix: string
  maxInFlight: number
  tokens: TokenSource
  statusIntervalMs: number
  shutdownTimeoutMs: number
}

export const DEFAULT_MAX_IN_FLIGHT = 16

const usageError = (message: string): IotError => new IotError('IOT_ERR_CONFIG', `simulate: ${message} (iot-monitor simulate --help)`)

/** Takes --api, --external-broker, --device-prefix and --max-in-flight out of the arguments; the rest goes to loadConfig. */
export function takeSimulateFlags (argv: readonly string[]): { flags: SimulateFlags, rest: string[] } {
  const { values, switches, rest } = takeOwnFlags(argv, ['api', 'device-prefix', 'max-in-flight'], ['external-broker'], usageError)
  const end = rest.indexOf('--')
  const flags: SimulateFlags = {
    externalBroker: switches.has('external-broker'),
    topicPrefixGiven: (end === -1 ? rest : rest.slice(0, end)).some(a => /^--mqtt-topic-prefix(=|$)/.test(a))
  }
  const api = values.get('api')
  if (api !== undefined) flags.api = api
  const prefix = values.get('device-prefix')
  if (prefix !== undefined) flags.devicePrefix = prefix
  const inFlight = values.get('max-in-flight')
  if (inFlight !== undefined) {
    const n = inFlight.trim() === '' ? Number.NaN : Number(inFlight)
    if (!Number.isInteger(n) || n < 1 || n > 65_535) throw usageError(`--max-in-flight: expected an integer from 1 to 65535, got "${inFlight}"`)
    flags.maxInFlight = n
  }
  return { flags, rest }
}

/** The options of a simulate run from the configuration (loadConfig of the rest) and the flags taken out. */
export function simulateOptions (config: Config, flags: SimulateFlags): SimulateOptions {
  const m = config.mqtt
  const url = m.url ?? `mqtt://${m.host.includes(':') ? `[${m.host}]` : m.host}:${m.port}`
  // The built-in broker's MQTT username is a device token: a user in the URL is another broker's login.
  const external = flags.externalBroker || flags.topicPrefixGiven || /^mqtts?:\/\/[^/@]+@/.test(url)
  let tokens: TokenSource
  if (config.adminToken !== null) {
    tokens = { kind: 'api', url: flags.api ?? `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`, adminToken: config.adminToken }
  } else {
    if (flags.api !== undefined) throw usageError('--api needs --admin-token (or IOT_ADMIN_TOKEN): the admin API answers only with it')
    tokens = { kind: 'database', databaseUrl: config.databaseUrl, dataDir: config.dataDir }
  }
  const s = config.simulator
  return {
    url,
    broker: external ? { kind: 'external', topicPrefix: m.topicPrefix } : { kind: 'iot-monitor' },
    devicePrefix: flags.devicePrefix ?? DEFAULT_DEVICE_PREFIX,
    maxInFlight: flags.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
    tokens,
    sensors: s.sensors,
    rate: s.rate,
    speedup: s.speedup,
    seed: s.seed,
    durationMs: s.durationMs,
    startMs: s.startMs,
    statusIntervalMs: config.statusIntervalMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs
  }
}

/**
 * The first event time: --start, else now; an accelerated bounded run (speedup above 1 with a
 * duration) starts the duration before now, so that its readings end at the present instead of
 * running into the future, which iot-monitor refuses past 5 minutes (--max-future).
 */
export function startOf (o: Pick<SimulateOptions, 'startMs' | 'speedup' | 'durationMs'>, now: number): number {
  if (o.startMs !== null) return o.startMs
  if (o.speedup > 1 && o.durationMs !== null) return now - o.durationMs
  return now
}
