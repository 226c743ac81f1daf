import { type EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes'
import { type Logger } from 'pino'
import { IotError } from '../../domain/index.ts'
import { TokenBucket } from '../../ingest/index.ts'
import { type Source } from '../source.ts'
import { FrameLimitedConnection } from './frame-limit.ts'
import { parseStatus, type MqttDevice, type StatusHandler, type TelemetryHandler } from './types.ts'
import { SourceEnd } from '../source-end.ts'

/** ThingsBoard's device telemetry topic: the device is known from its token, not from the topic. */
export const TELEMETRY_TOPIC = 'v1/devices/me/telemetry'

/** A device's availability topic (Home Assistant style: `online`, and `offline` as its Last Will). */
export function statusTopic (deviceId: string): string {
  return `devices/${deviceId}/status`
}

/** CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3) that the broker sends. */
export const ConnackCode = {
  SERVER_UNAVAILABLE: 3,
  NOT_AUTHORIZED: 5
} as const

export interface MqttBrokerSettings {
  /** Interface to listen on; 127.0.0.1 keeps the broker local until it is meant to be reached. */
  host: string
  /** 1883 by convention (8883 with TLS); 0 takes any free port (see `listening()`). */
  port: number
  /** TLS (node:tls) with this key and certificate (PEM files), else plain TCP. */
  tls: { keyPath: string, certPath: string } | null
  /**
   * The largest MQTT packet body (the Remaining Length: topic, packet id and payload) a client may
   * send. A bigger packet closes the connection as soon as its header arrives (counted).
   */
  maxMessageBytes: number
  /** Authenticated connections at once; the next CONNECT gets CONNACK 3 (server unavailable). */
  maxConnections: number
  /**
   * Telemetry publishes of one connection handed to `onTelemetry` at once; more wait their turn.
   * aedes reads a connection's next bytes only once every packet of the last read is handled, so
   * the wait reaches the device as TCP flow control. Also aedes' cap on QoS 2 messages awaiting PUBREL.
   */
  maxInFlightPerClient: number
  /**
   * Telemetry messages per device: a token bucket per connected device. A message beyond it is
   * delayed (throttled, counted), not dropped: dropping a QoS 1 message would mean acknowledging
   * data we threw away, and disconnecting makes the device reconnect and authenticate in a loop.
   * null: no limit.
   */
  rateLimit: { messagesPerSecond: number, burst: number } | null
  /** A connection that sends no CONNECT within this time is closed. */
  connectTimeoutMs: number
}

export const mqttBrokerDefaults: MqttBrokerSettings = {
  host: '127.0.0.1',
  port: 1883,
  tls: null,
  maxMessageBytes: 65_536, // ThingsBoard's default limit on an MQTT payload
  maxConnections: 10_000,
  maxInFlightPerClient: 16,
  rateLimit: { messagesPerSecond: 50, burst: 100 },
  connectTimeoutMs: 10_000
}

export interface MqttBrokerHooks {
  /** The device a token (the MQTT username) belongs to, or null for an unknown or revoked token. */
  authenticate: (token: string) => Promise<MqttDevice | null>
  onTelemetry: TelemetryHandler
  onStatus: StatusHandler
}

export interface MqttBrokerSourceOptions extends Partial<MqttBrokerSettings>, MqttBrokerHooks {
  log: Logger
  /** Wall clock (ms) for `now()` and the receive time of messages, injected for tests. */
  wallClock?: () => number
}

/** What the broker has seen since it started (counters only grow, except `connections`). */
export interface MqttBrokerStats {
  /** Authenticated connections open now. */
  connections: number
  acceptedConnections: number
  /** CONNECT without a known token: CONNACK 5 (not authorized). */
  refusedConnections: number
  /** CONNECT refused with CONNACK 3: at `maxConnections`, stopping, or `authenticate` failed. */
  unavailableConnections: number
  /** Telemetry messages `onTelemetry` took. */
  acceptedMessages: number
  /** Publishes refused (connection closed): a topic the device may not use, or a status payload other than online/offline. */
  rejectedMessages: number
  /** Packets over `maxMessageBytes` (connection closed). */
  oversizeMessages: number
  /** Telemetry messages delayed by the per-device rate limit. */
  throttledMessages: number
  /** Telemetry messages `onTelemetry` rejected, or refused while stopping (connection closed, not acknowledged). */
  failedMessages: number
  /** Status messages and Last Wills taken. */
  statusMessages: number
  /** SUBSCRIBE requests refused (SUBACK 0x80): devices only publish here. */
  refusedSubscriptions: number
}

interface ConnectionState {
  device: MqttDevice | null
  inFlight: number
  /** Publishes waiting for one of the connection's `maxInFlightPerClient` slots, in arrival order. */
  waiting: Array<() => void>
}

interface DeviceRate {
  bucket: TokenBucket
  connections: number
}

/**
 * The built-in MQTT broker (aedes, MQTT 3.1 and 3.1.1) as a Source. Devices connect with their
 * access token as the MQTT username (ThingsBoard's convention) and publish telemetry to
 * `v1/devices/me/telemetry`, their availability to `devices/<id>/status`. Nothing else is allowed:
 * a publish to any other topic closes the connection (MQTT 3.1.1 has no way to refuse one
 * publish, aedes closes on an authorizePublish error), and every SUBSCRIBE is refused.
 *
 * At least once: a QoS 1 PUBLISH is acknowledged only after `onTelemetry` resolved, i.e. after
 * the bus took its readings. aedes runs `authorizePublish` before it writes the PUBACK
 * (lib/handlers/publish.js: `publishActions = [authorizePublish, enqueuePublish]`, and
 * enqueuePublish writes the PubAck for QoS 1), so the hook hands the message to `onTelemetry`
 * and calls aedes back only when that settles. A message that comes again after a lost PUBACK
 * (the client resends on reconnect) produces the same readings, which the worker de-duplicates.
 */
export class MqttBrokerSource implements Source {
  readonly name = 'mqtt'
  readonly finished = false
  readonly #settings: MqttBrokerSettings
  readonly #hooks: MqttBrokerHooks
  readonly #log: Logger
  readonly #wall: () => number
  readonly #aedes: Aedes
  readonly #connections = new Map<FrameLimitedConnection, ConnectionState>()
  /**
   * The state of each authenticated aedes client. Kept apart from #connections, which forgets a
   * connection as soon as it closes: aedes publishes the Last Will after that.
   */
  readonly #clients = new WeakMap<Client, ConnectionState>()
  readonly #rates = new Map<string, DeviceRate>()
  /** Telemetry messages being handled: stop waits for them so their PUBACKs go out. */
  readonly #pending = new Set<Promise<void>>()
  /** Ends the rate-limit waits when stopping. */
  readonly #stopSignal = new AbortController()
  readonly #stats: MqttBrokerStats = {
    connections: 0,
    acceptedConnections: 0,
    refusedConnections: 0,
    unavailableConnections: 0,
    acceptedMessages: 0,
    rejectedMessages: 0,
    oversizeMessages: 0,
    throttledMessages: 0,
    failedMessages: 0,
    statusMessages: 0,
    refusedSubscriptions: 0
  }

  #server: Server | null = null
  #listening: Promise<AddressInfo> | null = null
  #produced = 0
  #stopping = false
  #stopped: Promise<void> | null = null
  readonly #end = new SourceEnd()

  constructor (options: MqttBrokerSourceOptions) {
    const { authenticate, onTelemetry, onStatus, log, wallClock, ...settings } = options
    this.#settings = { ...mqttBrokerDefaults, ...settings }
    this.#hooks = { authenticate, onTelemetry, onStatus }
    this.#log = log.child({ component: 'mqtt-broker' })
    this.#wall = wallClock ?? Date.now
    this.#aedes = new Aedes({
      connectTimeout: this.#settings.connectTimeoutMs,
      maxInflightInbound: this.#settings.maxInFlightPerClient,
      authenticate: (client, username, _password, done) => { this.#authenticateClient(client, username, done) },
      authorizePublish: (client, packet, done) => { this.#authorizePublish(client, packet, done) },
      authorizeSubscribe: (_client, _subscription, done) => {
        this.#stats.refusedSubscriptions++
        done(null, null)
      }
    })
    // aedes emits 'error' when publishing stored wills fails; unhandled it would end the process.
    // Its typings leave that event out, hence the view as a plain EventEmitter.
    const emitter: EventEmitter = this.#aedes
    emitter.on('error', (err: Error) => { this.#log.warn({ err }, 'MQTT broker error.') })
    this.#aedes.on('clientError', (client: Client, err: Error) => {
      this.#log.debug({ clientId: client.id, err: err.message }, 'MQTT client closed on error.')
    })
  }

  get produced (): number {
    return this.#produced
  }

  /** A snapshot of the counters. */
  stats (): MqttBrokerStats {
    return { ...this.#stats }
  }

  /** Live source: wall time. */
  now (): number {
    return this.#wall()
  }

  start (): void {
    if (this.#listening !== null) return
    this.#listening = this.#listen()
    this.#listening.catch((err: unknown) => { this.#end.end(err) })
  }

  /**
   * Resolves with the address the broker listens on once it does (the port chosen, for port 0);
   * rejects with IOT_ERR_MQTT when it cannot (TLS files unreadable, address in use).
   */
  async listening (): Promise<{ host: string, port: number }> {
    if (this.#listening === null) throw new IotError('IOT_ERR_MQTT', 'the MQTT broker was not started')
    const address = await this.#listening
    return { host: address.address, port: address.port }
  }

  /** Resolves when stopped; rejects with IOT_ERR_MQTT when the broker could not listen. */
  async done (): Promise<void> {
    await this.#end.promise
  }

  /**
   * Stops taking connections and messages (a publish arriving now is refused, so its device sends
   * it again to the next broker), waits for the messages `onTelemetry` is handling so their
   * PUBACKs go out, then closes every connection and the listener. Closing a connection here does
   * not report the device offline: the devices did not go away, we did.
   */
  async stop (): Promise<void> {
    this.#stopped ??= this.#shutdown()
    await this.#stopped
  }

  async #shutdown (): Promise<void> {
    this.#stopping = true
    this.#stopSignal.abort()
    const server = this.#server
    const serverClosed = server === null
      ? Promise.resolve()
      : new Promise<void>(resolve => { server.close(() => { resolve() }) })
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending])
    // The PUBACKs just written may still be corked in the connection (mqtt-packet uncorks on the
    // next tick) and aedes destroys connections, which discards what is buffered: end them first,
    // which writes out what they hold.
    for (const connection of this.#connections.keys()) connection.end()
    await new Promise<void>(resolve => { this.#aedes.close(() => { resolve() }) })
    // Connections that never sent CONNECT are not aedes clients yet: close them too.
    for (const connection of this.#connections.keys()) connection.destroy()
    await serverClosed
    this.#log.info({ produced: this.#produced }, 'MQTT broker stopped.')
    this.#end.end()
  }

  async #listen (): Promise<AddressInfo> {
    const { host, port, tls } = this.#settings
    await this.#aedes.listen()
    const accept = (socket: Socket): void => { this.#accept(socket) }
    let server: Server
    if (tls === null) {
      server = createTcpServer(accept)
    } else {
      let key: Buffer, cert: Buffer
      try {
        [key, cert] = await Promise.all([readFile(tls.keyPath), readFile(tls.certPath)])
      } catch (cause) {
        throw new IotError('IOT_ERR_MQTT', `cannot read the MQTT TLS key ${tls.keyPath} or certificate ${tls.certPath}`, { cause })
      }
      const tlsServer = createTlsServer({ key, cert }, accept)
      tlsServer.on('tlsClientError', (err: Error) => { this.#log.debug({ err: err.message }, 'MQTT TLS handshake failed.') })
      server = tlsServer
    }
    // Sockets that never send CONNECT are closed after connectTimeoutMs; this bounds how many can
    // wait at once besides the authenticated ones.
    server.maxConnections = this.#settings.maxConnections * 2
    if (this.#stopping) throw new IotError('IOT_ERR_MQTT', 'the MQTT broker was stopped before it listened')
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
    } catch (cause) {
      throw new IotError('IOT_ERR_MQTT', `the MQTT broker cannot listen on ${host}:${port}`, { cause })
    }
    server.on('error', (err: Error) => { this.#log.error({ err }, 'MQTT listener error.') })
    this.#server = server
    if (this.#stopping) server.close()
    const address = server.address() as AddressInfo
    this.#log.info({ host: address.address, port: address.port, tls: tls !== null }, 'MQTT broker listening.')
    return address
  }

  #accept (socket: Socket): void {
    if (this.#stopping) {
      socket.destroy()
      return
    }
    const connection = new FrameLimitedConnection(socket, this.#settings.maxMessageBytes, (bodyBytes) => {
      this.#stats.oversizeMessages++
      this.#log.debug({ bodyBytes, limit: this.#settings.maxMessageBytes }, 'MQTT packet over the size limit: connection closed.')
    })
    const state: ConnectionState = { device: null, inFlight: 0, waiting: [] }
    this.#connections.set(connection, state)
    connection.on('close', () => {
      this.#connections.delete(connection)
      if (state.device !== null) {
        this.#stats.connections--
        this.#releaseRate(state.device.id)
      }
    })
    // aedes closes the connection on protocol errors itself; a socket error only needs a listener.
    connection.on('error', () => {})
    this.#aedes.handle(connection)
  }

  #authenticateClient (client: Client, username: string | undefined, done: (error: AuthenticateError | null, success: boolean | null) => void): void {
    // Every connection aedes handles is one of ours (see #accept).
    const connection = client.conn as FrameLimitedConnection
    const state = this.#connections.get(connection)
    const refuse = (returnCode: number, why: string): void => {
      if (returnCode === ConnackCode.NOT_AUTHORIZED) this.#stats.refusedConnections++
      else this.#stats.unavailableConnections++
      this.#log.debug({ clientId: client.id, returnCode, why }, 'MQTT connection refused.')
      done(connackRefusal(returnCode, why), null)
    }
    if (state === undefined || this.#stopping) return refuse(ConnackCode.SERVER_UNAVAILABLE, 'stopping')
    const token = username ?? ''
    if (token === '') return refuse(ConnackCode.NOT_AUTHORIZED, 'no token')
    if (this.#stats.connections >= this.#settings.maxConnections) return refuse(ConnackCode.SERVER_UNAVAILABLE, 'too many connections')
    this.#hooks.authenticate(token).then((device) => {
      if (device === null) return refuse(ConnackCode.NOT_AUTHORIZED, 'unknown token')
      // Checked again: other connections may have been authenticated meanwhile.
      if (this.#stats.connections >= this.#settings.maxConnections) return refuse(ConnackCode.SERVER_UNAVAILABLE, 'too many connections')
      if (this.#stopping) return refuse(ConnackCode.SERVER_UNAVAILABLE, 'stopping')
      // The connection may have closed while the registry was asked (aedes then ignores the answer).
      if (!this.#connections.has(connection)) return done(connackRefusal(ConnackCode.SERVER_UNAVAILABLE, 'connection closed'), null)
      state.device = device
      this.#clients.set(client, state)
      this.#stats.connections++
      this.#holdRate(device.id)
      this.#stats.acceptedConnections++
      done(null, true)
    }, (err: unknown) => {
      // The registry failed, not the device: "server unavailable" makes it retry, where "not
      // authorized" makes some firmware give up.
      this.#log.warn({ err }, 'MQTT device authentication failed.')
      refuse(ConnackCode.SERVER_UNAVAILABLE, 'authentication failed')
    })
  }

  #authorizePublish (client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void): void {
    // client is null only for the stored wills of another broker of a cluster; there is none.
    const state = client === null ? undefined : this.#clients.get(client)
    const device = state?.device ?? null
    if (client === null || state === undefined || device === null) return done(new IotError('IOT_ERR_MQTT', 'publish without an authenticated device'))
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    // Nobody may subscribe here, so a retained copy would only take memory.
    packet.retain = false
    if (packet.topic === statusTopic(device.id)) {
      const status = parseStatus(payload)
      if (status === null) {
        this.#stats.rejectedMessages++
        return done(new IotError('IOT_ERR_MQTT', `status payload must be online or offline on ${packet.topic}`))
      }
      this.#stats.statusMessages++
      // The Last Will of every connection we close ourselves when stopping is not news.
      if (!this.#stopping) this.#reportStatus(device, status)
      return done(null)
    }
    // aedes publishes a Last Will from close(), after it marked the client closed: a will may
    // only announce the device's status, not carry telemetry.
    if (packet.topic === TELEMETRY_TOPIC && !client.closed) {
      // Tracked until aedes has been called back: that call writes the PUBACK, which must happen
      // before a stop closes the connections.
      const handling: Promise<void> = this.#takeTelemetry(state, device, payload)
        .then(() => { done(null) }, (err: Error) => { done(err) })
        .finally(() => { this.#pending.delete(handling) })
      this.#pending.add(handling)
      return
    }
    this.#stats.rejectedMessages++
    done(new IotError('IOT_ERR_MQTT', `device ${device.id} may not publish to ${packet.topic}`))
  }

  #reportStatus (device: MqttDevice, status: 'online' | 'offline'): void {
    try {
      this.#hooks.onStatus(device, status, false)
    } catch (err) {
      this.#log.warn({ err, deviceId: device.id }, 'MQTT status handler failed.')
    }
  }

  /** Hands one telemetry message to onTelemetry; resolves when it may be acknowledged. */
  async #takeTelemetry (state: ConnectionState, device: MqttDevice, payload: Buffer): Promise<void> {
    const receivedAt = this.#wall()
    await this.#acquireSlot(state)
    try {
      const waitMs = this.#rates.get(device.id)?.bucket.take(this.#wall()) ?? 0
      if (waitMs > 0) {
        this.#stats.throttledMessages++
        await sleep(waitMs, undefined, { signal: this.#stopSignal.signal }).catch(() => {})
      }
      if (this.#stopping) {
        this.#stats.failedMessages++
        throw new IotError('IOT_ERR_MQTT', 'the MQTT broker is stopping')
      }
      try {
        const readings = await this.#hooks.onTelemetry(device, payload, receivedAt)
        this.#produced += readings
        this.#stats.acceptedMessages++
      } catch (cause) {
        this.#stats.failedMessages++
        this.#log.warn({ err: cause, deviceId: device.id }, 'MQTT telemetry not taken: the device is disconnected and sends it again.')
        throw new IotError('IOT_ERR_MQTT', 'telemetry handler failed', { cause })
      }
    } finally {
      this.#releaseSlot(state)
    }
  }

  async #acquireSlot (state: ConnectionState): Promise<void> {
    if (state.inFlight < this.#settings.maxInFlightPerClient) {
      state.inFlight++
      return
    }
    // The slot is handed over by #releaseSlot: inFlight stays as it is.
    await new Promise<void>(resolve => { state.waiting.push(resolve) })
  }

  #releaseSlot (state: ConnectionState): void {
    const next = state.waiting.shift()
    if (next !== undefined) next()
    else state.inFlight--
  }

  #holdRate (deviceId: string): void {
    const limit = this.#settings.rateLimit
    if (limit === null) return
    const rate = this.#rates.get(deviceId)
    if (rate !== undefined) rate.connections++
    else this.#rates.set(deviceId, { bucket: new TokenBucket(limit.messagesPerSecond, limit.burst, this.#wall()), connections: 1 })
  }

  #releaseRate (deviceId: string): void {
    const rate = this.#rates.get(deviceId)
    if (rate === undefined) return
    if (--rate.connections === 0) this.#rates.delete(deviceId)
  }
}

function connackRefusal (returnCode: number, why: string): AuthenticateError {
  // aedes sends error.returnCode (2-5) in the CONNACK; its type is a const enum that
  // isolatedModules cannot import, hence the cast from a plain number.
  return Object.assign(new IotError('IOT_ERR_MQTT', `MQTT connection refused: ${why}`), { returnCode }) as AuthenticateError
}
