import { readFile } from 'node:fs/promises'
import { connect, type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient, type Packet } from 'mqtt'
import { type Logger } from 'pino'
import { IotError } from '../../domain/index.ts'
import { type Source } from '../source.ts'
import { parseStatus, type MqttDevice, type StatusHandler, type TelemetryHandler } from './types.ts'
import { SourceEnd } from '../source-end.ts'

export interface ExternalMqttSettings {
  /** The broker: mqtt://host:port, or mqtts:// for TLS; user:password@ in it are the credentials. */
  url: string
  /**
   * Fixed client id of the persistent session (clean session off): the broker keeps the
   * subscriptions and queues QoS 1 messages while we are away, and sends them when this id
   * connects again. Two processes must not share it (the broker would drop one for the other).
   */
  clientId: string
  /** Topics read: `<prefix>/<device-id>/telemetry` and `<prefix>/<device-id>/status`. */
  topicPrefix: string
  username: string | null
  password: string | null
  /** PEM file of the CA that signed the broker's certificate (mqtts:// with a private CA). */
  caPath: string | null
  keepaliveSeconds: number
  connectTimeoutMs: number
  /** Reconnect backoff: first delay, doubled after each failed attempt up to the maximum (with jitter). */
  reconnectMinMs: number
  reconnectMaxMs: number
  /**
   * After a message that could not be taken (the bus or the device registry failing), the source
   * reconnects so that the broker sends it again: first after `reconnectMinMs`, doubled for each
   * further failure in a row up to this (with jitter), so an outage costs a reconnect every few
   * seconds, and its end is noticed within them.
   */
  messageRetryMaxMs: number
}

export const externalMqttDefaults: Omit<ExternalMqttSettings, 'url'> = {
  clientId: 'iot-monitor',
  topicPrefix: 'iot',
  username: null,
  password: null,
  caPath: null,
  keepaliveSeconds: 30,
  connectTimeoutMs: 10_000,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  messageRetryMaxMs: 5_000
}

export interface ExternalMqttHooks {
  /**
   * The registered device with this id (the topic's device level), or null when there is none
   * (the message is acknowledged and dropped). Reject when it cannot be told now (the database
   * away): the message is then not acknowledged and comes again.
   */
  resolveDevice: (deviceId: string) => Promise<MqttDevice | null>
  onTelemetry: TelemetryHandler
  onStatus: StatusHandler
}

export interface ExternalMqttSourceOptions extends Partial<Omit<ExternalMqttSettings, 'url'>>, ExternalMqttHooks {
  url: string
  log: Logger
  /** Wall clock (ms) for `now()` and the receive time of messages, injected for tests. */
  wallClock?: () => number
}

export interface ExternalMqttStats {
  connected: boolean
  /** Connected with our subscriptions in place (granted now, or kept by a resumed session). */
  subscribed: boolean
  /** Successful connections (CONNACK 0) so far. */
  connections: number
  /** CONNACKs refusing us (bad credentials, not authorized...). */
  refusedConnections: number
  /** Telemetry messages `onTelemetry` took. */
  acceptedMessages: number
  /** Availability messages passed to `onStatus`. */
  statusMessages: number
  /** Messages for a device id `resolveDevice` does not know (acknowledged and dropped). */
  unknownDevices: number
  /** Messages on a topic outside the layout, or a status payload other than online/offline (acknowledged and dropped). */
  rejectedMessages: number
  /**
   * Retained telemetry handed out on subscribe (acknowledged and dropped): a stored copy of an old
   * message, not a new one; without its own timestamp it would become a reading stamped now, again
   * after every resubscription.
   */
  retainedTelemetryDropped: number
  /** Messages not acknowledged because `resolveDevice` or `onTelemetry` failed (they come again after a reconnect). */
  failedMessages: number
  /** Failures in a row now (0 once a message is taken again). */
  failingInARow: number
}

/**
 * Reads devices' telemetry and availability from an existing MQTT broker (mosquitto, EMQX, ...):
 * one subscription per kind with a `+` for the device, QoS 1, on a persistent session, so
 * messages published while we are disconnected or restarting wait for us at the broker.
 *
 * At least once: MQTT.js sends a QoS 1 PUBACK only after `handleMessage` calls back (its
 * lib/handlers/publish.js: `client.handleMessage(packet, (err) => { ... _sendPacket({ cmd:
 * 'puback' }) })`, and no PUBACK when it calls back with an error), and it hands the next
 * message over only then. So this source calls back after `onTelemetry` resolved. (The
 * `customHandleAcks` option only picks an MQTT 5 reason code, before the message is handled.)
 *
 * Reconnects by itself: MQTT.js' own reconnect runs at a fixed period, so it is off
 * (reconnectPeriod 0) and this source calls `reconnect()` with an exponential backoff.
 */
export class ExternalMqttSource implements Source {
  readonly name = 'mqtt'
  readonly finished = false
  readonly #settings: ExternalMqttSettings
  readonly #hooks: ExternalMqttHooks
  readonly #log: Logger
  readonly #wall: () => number
  readonly #stats: ExternalMqttStats = {
    connected: false,
    subscribed: false,
    connections: 0,
    refusedConnections: 0,
    acceptedMessages: 0,
    statusMessages: 0,
    unknownDevices: 0,
    rejectedMessages: 0,
    retainedTelemetryDropped: 0,
    failedMessages: 0,
    failingInARow: 0
  }

  /** Messages being handled: stop waits for them so their PUBACKs go out. */
  readonly #pending = new Set<Promise<void>>()
  #client: MqttClient | null = null
  #produced = 0
  #started = false
  #stopping = false
  #subscribedOnce = false
  #failedAttempts = 0
  /** Counts connections closed: tells whether a message's connection is still the current one. */
  #connection = 0
  #reconnectTimer: NodeJS.Timeout | null = null
  #stopped: Promise<void> | null = null
  readonly #end = new SourceEnd()

  constructor (options: ExternalMqttSourceOptions) {
    const { resolveDevice, onTelemetry, onStatus, log, wallClock, ...settings } = options
    this.#settings = { ...externalMqttDefaults, ...settings }
    if (!/^mqtts?:\/\/[^/]+/.test(this.#settings.url)) {
      throw new IotError('IOT_ERR_CONFIG', `the MQTT broker URL must be mqtt://host:port or mqtts://host:port, got ${this.#settings.url}`)
    }
    this.#hooks = { resolveDevice, onTelemetry, onStatus }
    this.#log = log.child({ component: 'mqtt-source' })
    this.#wall = wallClock ?? Date.now
  }

  get produced (): number {
    return this.#produced
  }

  stats (): ExternalMqttStats {
    return { ...this.#stats }
  }

  /** Live source: wall time. */
  now (): number {
    return this.#wall()
  }

  /** The topic filters subscribed to. */
  get topics (): { telemetry: string, status: string } {
    const prefix = this.#settings.topicPrefix
    return { telemetry: `${prefix}/+/telemetry`, status: `${prefix}/+/status` }
  }

  start (): void {
    if (this.#started) return
    this.#started = true
    this.#open().catch((err: unknown) => { this.#end.end(err) })
  }

  /** Resolves when stopped; rejects with IOT_ERR_MQTT when the source cannot start (CA file unreadable). */
  async done (): Promise<void> {
    await this.#end.promise
  }

  /**
   * Stops taking messages (one arriving now is not acknowledged: the broker keeps it for this
   * session), waits for those being handled so their PUBACKs go out, then disconnects. The
   * session stays at the broker, so whatever is published meanwhile waits for the next start.
   */
  async stop (): Promise<void> {
    this.#stopped ??= this.#shutdown()
    await this.#stopped
  }

  async #shutdown (): Promise<void> {
    this.#stopping = true
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = null
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending])
    const client = this.#client
    if (client !== null) {
      await new Promise<void>(resolve => {
        // A graceful end sends DISCONNECT after the PUBACKs just written; if the broker does not
        // let it finish, the connection is simply dropped.
        const timer = setTimeout(() => { client.stream.destroy(); resolve() }, 3000)
        client.end(!client.connected, () => { clearTimeout(timer); resolve() })
      })
    }
    this.#stats.connected = false
    this.#stats.subscribed = false
    this.#log.info({ produced: this.#produced }, 'MQTT source stopped.')
    this.#end.end()
  }

  async #open (): Promise<void> {
    const s = this.#settings
    let ca: Buffer | undefined
    if (s.caPath !== null) {
      try {
        ca = await readFile(s.caPath)
      } catch (cause) {
        throw new IotError('IOT_ERR_MQTT', `cannot read the MQTT CA certificate ${s.caPath}`, { cause })
      }
    }
    if (this.#stopping) return
    const options: IClientOptions = {
      clientId: s.clientId,
      clean: false,
      protocolVersion: 4,
      keepalive: s.keepaliveSeconds,
      connectTimeout: s.connectTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: false
    }
    if (s.username !== null) options.username = s.username
    if (s.password !== null) options.password = s.password
    if (ca !== undefined) options.ca = ca
    const client = connect(s.url, options)
    this.#client = client
    client.handleMessage = (packet: IPublishPacket, callback: (error?: Error) => void): void => {
      const connection = this.#connection
      const handled: Promise<void> = this.#handle(packet)
        .then(() => {
          this.#taken()
          // MQTT.js queues a PUBACK written while disconnected and sends it on the next
          // connection, where the broker may have given that packet id to another message by
          // then. A message whose connection is gone is not acknowledged: the broker sends it
          // again on the new connection (same readings, de-duplicated by the worker).
          if (connection === this.#connection) callback()
          else callback(new IotError('IOT_ERR_MQTT', 'the connection the message came on is gone'))
        }, (err: Error) => { callback(err) })
        .finally(() => { this.#pending.delete(handled) })
      this.#pending.add(handled)
    }
    client.on('connect', (connack: IConnackPacket) => { this.#onConnect(client, connack) })
    client.on('close', () => { this.#onClose(client) })
    client.on('packetreceive', (packet: Packet) => {
      if (packet.cmd === 'connack' && (packet.returnCode ?? 0) !== 0) this.#stats.refusedConnections++
    })
    // Connection errors come with a 'close' that reconnects; without a listener they would throw.
    // Logged at warn once per outage (a refused CONNACK, the broker down), then at debug.
    client.on('error', (err: Error) => {
      if (this.#failedAttempts === 0) this.#log.warn({ err: err.message }, 'MQTT connection error.')
      else this.#log.debug({ err: err.message }, 'MQTT connection error.')
    })
  }

  #onConnect (client: MqttClient, connack: IConnackPacket): void {
    this.#failedAttempts = 0
    this.#stats.connected = true
    this.#stats.connections++
    this.#log.info({ url: redact(this.#settings.url), sessionPresent: connack.sessionPresent }, 'MQTT source connected.')
    // A resumed session still holds our subscriptions; subscribing again would make the broker
    // send the retained messages again. The first connection of this process subscribes anyway,
    // in case the topics changed since the session was made.
    if (this.#subscribedOnce && connack.sessionPresent) {
      this.#stats.subscribed = true
      return
    }
    const { telemetry, status } = this.topics
    client.subscribe({ [telemetry]: { qos: 1 }, [status]: { qos: 1 } }, (err, granted) => {
      if (err !== null) {
        // The connection dropped before the SUBACK: the next connect subscribes again.
        this.#log.warn({ err: err.message }, 'MQTT subscribe failed.')
        return
      }
      const refused = (granted ?? []).filter(g => g.qos === 128).map(g => g.topic)
      if (refused.length > 0) {
        this.#log.error({ topics: refused }, 'The MQTT broker refused our subscriptions.')
        return
      }
      this.#subscribedOnce = true
      this.#stats.subscribed = client.connected
    })
  }

  #onClose (client: MqttClient): void {
    this.#connection++
    if (this.#stats.connected && !this.#stopping) {
      // Closed by us after a message that could not be taken: said once per run of failures (above).
      if (this.#stats.failingInARow > 0) this.#log.debug('MQTT source disconnected to have the message sent again; reconnecting.')
      else this.#log.warn('MQTT source disconnected; reconnecting.')
    }
    this.#stats.connected = false
    this.#stats.subscribed = false
    if (this.#stopping || this.#reconnectTimer !== null) return
    const s = this.#settings
    const connecting = Math.min(s.reconnectMaxMs, s.reconnectMinMs * 2 ** Math.min(this.#failedAttempts, 20))
    // Closed after a message that could not be taken: wait longer with each such failure in a row.
    const failing = this.#stats.failingInARow
    const retrying = failing === 0 ? 0 : Math.min(s.messageRetryMaxMs, s.reconnectMinMs * 2 ** Math.min(failing - 1, 20))
    const backoff = Math.max(connecting, retrying)
    this.#failedAttempts++
    // Jitter: many sources behind one restarted broker should not come back in step.
    const delay = Math.round(backoff * (0.75 + Math.random() * 0.25))
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null
      if (!this.#stopping) client.reconnect()
    }, delay)
  }

  /** Resolves when the message may be acknowledged; rejects when it must come again. */
  async #handle (packet: IPublishPacket): Promise<void> {
    if (this.#stopping) throw new IotError('IOT_ERR_MQTT', 'the MQTT source is stopping')
    const receivedAt = this.#wall()
    const route = this.#route(packet.topic)
    if (route === null) {
      this.#stats.rejectedMessages++
      return
    }
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    // On a delivery the RETAIN flag means "stored copy handed out on subscribe" (MQTT-3.3.1-9:
    // messages forwarded to an established subscription carry RETAIN 0).
    const retained = packet.retain
    if (route.kind === 'telemetry' && retained) {
      this.#stats.retainedTelemetryDropped++
      return
    }
    try {
      const device = await this.#hooks.resolveDevice(route.deviceId)
      if (device === null) {
        this.#stats.unknownDevices++
        return
      }
      if (route.kind === 'status') {
        const status = parseStatus(payload)
        if (status === null) {
          this.#stats.rejectedMessages++
          return
        }
        this.#stats.statusMessages++
        try {
          this.#hooks.onStatus(device, status, retained)
        } catch (err) {
          this.#log.warn({ err, deviceId: device.id }, 'MQTT status handler failed.')
        }
        return
      }
      const readings = await this.#hooks.onTelemetry(device, payload, receivedAt)
      this.#produced += readings
      this.#stats.acceptedMessages++
    } catch (cause) {
      this.#stats.failedMessages++
      // Logged once per run of failures (an outage), not per message.
      if (this.#stats.failingInARow++ === 0) {
        this.#log.warn({ err: cause, topic: packet.topic }, 'MQTT message not taken: it stays unacknowledged at the broker, which sends it again after a reconnect; retrying with backoff.')
      } else {
        this.#log.debug({ err: cause, topic: packet.topic, failingInARow: this.#stats.failingInARow }, 'MQTT message not taken again.')
      }
      // Not acknowledged: a broker resends unacknowledged messages only on a new connection.
      this.#client?.stream.destroy()
      throw new IotError('IOT_ERR_MQTT', 'MQTT message not taken', { cause })
    }
  }

  /** A message was handled (taken or dropped): a run of failures ends. */
  #taken (): void {
    if (this.#stats.failingInARow === 0) return
    this.#log.info({ failedAttempts: this.#stats.failingInARow }, 'MQTT messages are taken again.')
    this.#stats.failingInARow = 0
  }

  #route (topic: string): { kind: 'telemetry' | 'status', deviceId: string } | null {
    const prefix = this.#settings.topicPrefix + '/'
    if (!topic.startsWith(prefix)) return null
    const levels = topic.slice(prefix.length).split('/')
    if (levels.length !== 2 || levels[0] === '') return null
    const [deviceId, kind] = levels as [string, string]
    return kind === 'telemetry' || kind === 'status' ? { kind, deviceId } : null
  }
}

/** The URL without its password, for logs. */
function redact (url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
}
