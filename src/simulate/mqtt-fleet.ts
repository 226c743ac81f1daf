// The simulated devices on the wire: one MQTT.js connection per device, QoS 1 telemetry, an
// availability topic with a Last Will, and a bounded number of unacknowledged messages per device.
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import { type Logger } from 'pino'
import { IotError } from '../domain/index.ts'
import { TELEMETRY_TOPIC, statusTopic } from '../sources/index.ts'
import { type SimulatedDevice } from './fleet-devices.ts'
import { MAX_VALUES_PER_MESSAGE, type Measured, telemetryPayload } from './payload.ts'

/**
 * Which broker the devices talk to:
 * - `iot-monitor`: the built-in broker of `iot-monitor start`. The device token is the MQTT
 *   username (ThingsBoard); telemetry on `v1/devices/me/telemetry`, status on `devices/<id>/status`.
 * - `external`: a broker iot-monitor subscribes to (`start --mqtt-url`): telemetry on
 *   `<prefix>/<id>/telemetry`, status on `<prefix>/<id>/status`; the login, if any, is the URL's
 *   `user:password@`, the same for every device.
 */
export type FleetBroker = { kind: 'iot-monitor' } | { kind: 'external', topicPrefix: string }

export interface FleetMember {
  device: SimulatedDevice
  /** The device's access token: the MQTT username on the built-in broker; null on an external one. */
  token: string | null
}

export interface MqttFleetOptions {
  /** mqtt://host:port or mqtts://host:port (TLS, verified against the system's CAs). */
  url: string
  broker: FleetBroker
  members: readonly FleetMember[]
  /**
   * QoS 1 messages of one device sent and not acknowledged yet (PUBACK), queued by MQTT.js while
   * disconnected included. A device at this limit takes no more readings until one is
   * acknowledged: the fleet waits (see `offer`), nothing is dropped.
   */
  maxInFlight: number
  /** A device publishes at most once per this much wall time (its readings meanwhile go in one message), unless it has a full message. */
  publishIntervalMs?: number
  /** How long `connect()` waits for every device's first connection. */
  connectTimeoutMs?: number
  /** Wall time between reconnection attempts of a device that lost its connection. */
  reconnectPeriodMs?: number
  log: Logger
  wallClock?: () => number
}

export const mqttFleetDefaults = { publishIntervalMs: 100, connectTimeoutMs: 15_000, reconnectPeriodMs: 1000 } as const

export interface MqttFleetStats {
  devices: number
  /** Devices connected now. */
  connected: number
  /** Accepted connections (CONNACK 0) so far, reconnections included. */
  connections: number
  /** Readings handed to MQTT.js in telemetry messages. */
  published: number
  /** Telemetry messages handed to MQTT.js. */
  messages: number
  /** Readings whose message the broker acknowledged (PUBACK). */
  acknowledged: number
  /** Readings whose message MQTT.js gave up on (connection ended before the PUBACK). */
  failed: number
  /** Telemetry messages sent and not acknowledged yet, all devices. */
  inFlight: number
  /** Readings taken and not yet in a message. */
  buffered: number
  /** Times the fleet had to wait because a reading's device was at its in-flight limit with a full message. */
  waits: number
}

/** CONNACK return codes that a retry cannot fix: protocol version, client id, credentials, authorization. */
const FATAL_CONNACK = new Set([1, 2, 4, 5])
/** How long a stop waits for a device's `offline` status and DISCONNECT before it drops the connection. */
const CLOSE_GRACE_MS = 3000

class Link {
  readonly device: SimulatedDevice
  readonly telemetryTopic: string
  readonly statusTopic: string
  client: MqttClient | null = null
  connected = false
  connectedOnce = false
  buffer: Measured[] = []
  inFlight = 0
  lastPublishAt = Number.NEGATIVE_INFINITY
  timer: NodeJS.Timeout | null = null

  constructor (device: SimulatedDevice, broker: FleetBroker) {
    this.device = device
    if (broker.kind === 'external') {
      this.telemetryTopic = `${broker.topicPrefix}/${device.id}/telemetry`
      this.statusTopic = `${broker.topicPrefix}/${device.id}/status`
    } else {
      this.telemetryTopic = TELEMETRY_TOPIC
      this.statusTopic = statusTopic(device.id)
    }
  }
}

/**
 * The fleet's connections. Readings go in with `offer(device, value)`; each device gathers what it
 * was offered and publishes it as one ThingsBoard JSON message (QoS 1) at most every
 * `publishIntervalMs` (at once when idle for that long, so at real time a reading leaves as it is
 * made), or as soon as it holds MAX_VALUES_PER_MESSAGE values.
 *
 * Memory is bounded: a device holds at most one message being gathered and `maxInFlight` messages
 * awaiting their PUBACK (MQTT.js keeps unacknowledged QoS 1 messages, also those published while
 * the connection is down, and sends them again after reconnecting). Past that, `offer` refuses
 * the reading and the caller waits for `room()`: the fleet waits for a slow or absent broker, it
 * does not drop (counted in `waits`).
 *
 * On connect a device publishes `online` (retained, QoS 1) to its status topic, with `offline` as
 * its Last Will; `close()` publishes `offline` itself before a clean DISCONNECT (a broker sends the
 * will only when a connection dies). A CONNACK that retrying cannot fix (bad credentials, not
 * authorized: a wrong or revoked token) ends the fleet with IOT_ERR_MQTT (see `failure`); a
 * broker that is away or unavailable (CONNACK 3) is retried every `reconnectPeriodMs`.
 */
export class MqttFleet {
  /** Rejects with IOT_ERR_MQTT when a device is refused by the broker for good; never resolves. */
  readonly failure: Promise<never>
  readonly #options: Required<Omit<MqttFleetOptions, 'members' | 'wallClock'>>
  readonly #links: Link[]
  readonly #tokens: ReadonlyArray<string | null>
  readonly #log: Logger
  readonly #wall: () => number
  readonly #stats = { connections: 0, published: 0, messages: 0, acknowledged: 0, failed: 0, waits: 0 }
  #fail: (err: IotError) => void = () => {}
  #failed: IotError | null = null
  #closed = false
  /** > 0 while a flush runs: devices publish what they hold without waiting for their interval. */
  #flushing = 0
  #roomWaiters: Array<() => void> = []
  #idleWaiters: Array<() => void> = []
  /** The last offer was refused: the caller is waiting for room. */
  #waiting = false
  /** Whether the loss of a connection was logged at warn since all devices were last connected. */
  #outageLogged = false

  constructor (options: MqttFleetOptions) {
    const { members, wallClock, ...rest } = options
    if (!/^mqtts?:\/\/[^\s/]+/.test(rest.url)) {
      throw new IotError('IOT_ERR_CONFIG', `the MQTT broker URL must be mqtt://host:port or mqtts://host:port, got ${rest.url}`)
    }
    if (!Number.isSafeInteger(rest.maxInFlight) || rest.maxInFlight < 1) {
      throw new IotError('IOT_ERR_CONFIG', `maxInFlight must be a positive integer, got ${rest.maxInFlight}`)
    }
    if (rest.broker.kind === 'iot-monitor') {
      const without = members.find(m => m.token === null)
      if (without !== undefined) throw new IotError('IOT_ERR_CONFIG', `device ${without.device.id} has no token: the built-in broker takes the device token as the MQTT username`)
    }
    this.#options = { ...mqttFleetDefaults, ...rest }
    this.#links = members.map(m => new Link(m.device, rest.broker))
    this.#tokens = members.map(m => m.token)
    this.#log = options.log.child({ component: 'mqtt-fleet' })
    this.#wall = wallClock ?? Date.now
    this.failure = new Promise<never>((_resolve, reject) => { this.#fail = reject })
    this.failure.catch(() => {})
  }

  get devices (): readonly SimulatedDevice[] {
    return this.#links.map(l => l.device)
  }

  stats (): MqttFleetStats {
    let connected = 0
    let inFlight = 0
    let buffered = 0
    for (const l of this.#links) {
      if (l.connected) connected++
      inFlight += l.inFlight
      buffered += l.buffer.length
    }
    return { devices: this.#links.length, connected, inFlight, buffered, ...this.#stats }
  }

  /** Readings taken and not acknowledged yet: gathered, in flight, or failed. */
  get unacknowledged (): number {
    const s = this.stats()
    return s.buffered + s.published - s.acknowledged
  }

  /**
   * Opens every device's connection; resolves once each has been accepted once. Rejects with
   * IOT_ERR_MQTT (and closes the connections) when one is refused for good or when not all are up
   * within `connectTimeoutMs`.
   */
  async connect (): Promise<void> {
    for (let i = 0; i < this.#links.length; i++) this.#open(this.#links[i]!, this.#tokens[i] ?? null)
    let timer: NodeJS.Timeout | undefined
    let poll: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        this.failure,
        new Promise<void>(resolve => {
          const check = (): void => {
            if (this.#links.every(l => l.connectedOnce)) resolve()
            else poll = setTimeout(check, 20)
          }
          check()
        }),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => {
            const down = this.#links.filter(l => !l.connectedOnce)
            reject(new IotError('IOT_ERR_MQTT', `${down.length} of ${this.#links.length} simulated devices could not connect to ${redact(this.#options.url)} ` +
              `within ${this.#options.connectTimeoutMs / 1000} s (${down[0]?.device.id ?? ''} first): is the broker running there?`))
          }, this.#options.connectTimeoutMs)
        })
      ])
    } catch (err) {
      await this.close({ graceMs: 0 })
      throw err
    } finally {
      clearTimeout(timer)
      clearTimeout(poll)
    }
    this.#log.info({ devices: this.#links.length, url: redact(this.#options.url) }, 'Simulated devices connected.')
  }

  /**
   * Takes one reading of device `index` (see groupFleet's routes). False when the device already
   * holds a full message and `maxInFlight` unacknowledged ones, or the fleet is closed: wait for
   * `room()` and offer it again.
   */
  offer (index: number, value: Measured): boolean {
    const link = this.#links[index]
    if (link === undefined) throw new IotError('IOT_ERR_VALIDATION', `no simulated device number ${index}`)
    if (this.#closed) return false
    if (link.buffer.length >= MAX_VALUES_PER_MESSAGE) {
      this.#pump(link)
      if (link.buffer.length >= MAX_VALUES_PER_MESSAGE) {
        // Counted once per wait, not per retry after each wake-up.
        if (!this.#waiting) this.#stats.waits++
        this.#waiting = true
        return false
      }
    }
    this.#waiting = false
    link.buffer.push(value)
    this.#pump(link)
    return true
  }

  /** Resolves when a device may have room again (a message was acknowledged), or the fleet closed. */
  async room (): Promise<void> {
    if (this.#closed) return
    await new Promise<void>(resolve => { this.#roomWaiters.push(resolve) })
  }

  /** Publishes what every device holds and resolves once all of it is acknowledged (or the fleet closed). */
  async flush (): Promise<void> {
    this.#flushing++
    try {
      for (const l of this.#links) this.#pump(l)
      while (!this.#closed && !this.#idle()) await new Promise<void>(resolve => { this.#idleWaiters.push(resolve) })
    } finally {
      this.#flushing--
    }
  }

  /**
   * Ends every connection: a connected device publishes `offline` (retained, QoS 1) and
   * disconnects cleanly once its messages are acknowledged, for at most `graceMs`; then the
   * connection is dropped. Readings still gathered are not sent (see `stats().buffered`); waiting
   * `room()` and `flush()` calls return.
   */
  async close ({ graceMs = CLOSE_GRACE_MS }: { graceMs?: number } = {}): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      for (const l of this.#links) {
        if (l.timer !== null) clearTimeout(l.timer)
        l.timer = null
      }
      this.#wake()
    }
    await Promise.all(this.#links.map(async l => { await this.#end(l, graceMs) }))
  }

  #open (link: Link, token: string | null): void {
    const o = this.#options
    const options: IClientOptions = {
      clientId: link.device.id,
      clean: true,
      protocolVersion: 4,
      keepalive: 30,
      connectTimeout: 10_000,
      reconnectPeriod: o.reconnectPeriodMs,
      // CONNACK 3 (server unavailable) is worth retrying; the refusals that are not end the fleet below.
      reconnectOnConnackError: true,
      will: { topic: link.statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true }
    }
    if (token !== null) options.username = token
    const client = connect(o.url, options)
    link.client = client
    client.on('connect', () => {
      link.connected = true
      link.connectedOnce = true
      this.#stats.connections++
      // Availability, Home Assistant style: `online` now, the will says `offline` if the connection dies.
      client.publish(link.statusTopic, 'online', { qos: 1, retain: true }, () => {})
      if (this.#outageLogged && this.#links.every(l => l.connected)) {
        this.#outageLogged = false
        this.#log.info('All simulated devices are connected again.')
      }
    })
    client.on('close', () => {
      const was = link.connected
      link.connected = false
      if (!was || this.#closed) return
      if (!this.#outageLogged) {
        this.#outageLogged = true
        this.#log.warn({ device: link.device.id }, 'A simulated device lost its MQTT connection; it reconnects (messages not acknowledged are sent again). Further losses are logged at debug.')
      } else {
        this.#log.debug({ device: link.device.id }, 'Simulated device disconnected.')
      }
    })
    client.on('error', (err: Error & { code?: unknown }) => {
      if (typeof err.code === 'number' && FATAL_CONNACK.has(err.code)) {
        client.end(true)
        const refused = new IotError('IOT_ERR_MQTT', `the broker at ${redact(o.url)} refused simulated device ${link.device.id}: ${err.message}` +
          (o.broker.kind === 'iot-monitor' ? ' (a wrong or revoked device token, or not the built-in broker of iot-monitor: for another broker give --external-broker)' : ''), { cause: err })
        if (this.#failed === null) {
          this.#failed = refused
          this.#log.error({ device: link.device.id, code: err.code }, 'A simulated device was refused by the MQTT broker; stopping.')
          this.#fail(refused)
        }
        return
      }
      this.#log.debug({ device: link.device.id, err: err.message }, 'Simulated device connection error.')
    })
  }

  /** Publishes what the device holds if it may: room in flight, and its interval passed (or a full message, or a flush). */
  #pump (link: Link): void {
    if (this.#closed || link.buffer.length === 0 || link.inFlight >= this.#options.maxInFlight) return
    const now = this.#wall()
    const due = link.lastPublishAt + this.#options.publishIntervalMs
    if (now >= due || this.#flushing > 0 || link.buffer.length >= MAX_VALUES_PER_MESSAGE) {
      this.#publish(link, now)
    } else if (link.timer === null) {
      link.timer = setTimeout(() => {
        link.timer = null
        this.#pump(link)
      }, Math.max(1, due - now))
    }
  }

  #publish (link: Link, now: number): void {
    const client = link.client
    if (client === null) return
    if (link.timer !== null) clearTimeout(link.timer)
    link.timer = null
    const values = link.buffer
    link.buffer = []
    link.lastPublishAt = now
    link.inFlight++
    this.#stats.messages++
    this.#stats.published += values.length
    client.publish(link.telemetryTopic, telemetryPayload(values), { qos: 1 }, (err) => {
      link.inFlight--
      // MQTT.js calls back with null on a PUBACK.
      if (err == null) this.#stats.acknowledged += values.length
      else this.#stats.failed += values.length
      this.#pump(link)
      this.#wake()
    })
    // A room is free for this device's next readings.
    this.#wake()
  }

  #idle (): boolean {
    return this.#links.every(l => l.buffer.length === 0 && l.inFlight === 0)
  }

  #wake (): void {
    const room = this.#roomWaiters
    this.#roomWaiters = []
    for (const resolve of room) resolve()
    if (this.#idleWaiters.length > 0 && (this.#closed || this.#idle())) {
      const idle = this.#idleWaiters
      this.#idleWaiters = []
      for (const resolve of idle) resolve()
    }
  }

  async #end (link: Link, graceMs: number): Promise<void> {
    const client = link.client
    if (client === null) return
    link.client = null
    if (!link.connected || graceMs <= 0) {
      client.end(true)
      return
    }
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { client.stream.destroy(); resolve() }, graceMs)
      client.publish(link.statusTopic, 'offline', { qos: 1, retain: true }, () => {})
      // end(false) waits until every QoS 1 message is acknowledged, then sends DISCONNECT.
      client.end(false, () => { clearTimeout(timer); resolve() })
    })
  }
}

/** The URL without its password, for logs and messages. */
export function redact (url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
}
