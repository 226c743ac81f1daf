// The live stream behind GET /api/live: what each stored batch changed, pushed to every connected
// dashboard as Server-Sent Events, filtered per client and coalesced so that a fast pipeline never
// floods a browser (at most one message of each kind per flush interval, each bounded in size).
//
// Clients are bounded (in total and per address) and cheap: clients with the same filter share one
// channel, whose queues are filled once per batch and serialised once per flush; every client of
// the channel is written the same string.
import { IotError, type ScoredReading, type WindowAggregate } from '../domain/index.ts'
import { readingJson, storedOf, windowJson } from './json.ts'

/** What the hub needs of a stored batch (the worker's BatchOutcome has this shape). */
export interface LiveBatch {
  stored: readonly ScoredReading[]
  revised: readonly WindowAggregate[]
  finalized: readonly WindowAggregate[]
}

export interface LiveFilter {
  location?: string | undefined
  sensorType?: string | undefined
}

/**
 * Writes one chunk to the client; false when its socket is backed up (the chunk was not written).
 * Every client of a channel is given the same string object, one after the other.
 */
export type LiveWrite = (chunk: string) => boolean

/** The cap that turned a client away: all clients together, or those of its address. */
export type LiveCap = 'total' | 'address'

export interface LiveHubOptions {
  flushMs: number
  /** Readings, anomalies and windows kept per filter between flushes (the newest). */
  maxItems: number
  /**
   * Clients connected at once; more are refused (503). Each costs a socket, a few small objects and
   * its writes at every flush (the serialising is shared): measured with npm run bench -- live on
   * 2 cores, 500 streams receiving events add about 10 MB of RSS and keep /health p95 under 10 ms,
   * and 500 dashboards is many control rooms. Without a cap, connections pile up until the process
   * is slow for everyone (1,800 uncapped streams: /health p50 near 500 ms, RSS up 300 MB).
   */
  maxClients: number
  /**
   * Clients connected at once from one address (req.ip). A browser opens at most 6 HTTP/1.1
   * connections to a host, so one person has a few streams; 50 leaves room for an office behind one
   * NAT while no single host (a runaway script, a reconnect loop) takes more than a tenth of
   * maxClients. Behind a reverse proxy every client has the proxy's address unless Fastify is told
   * to trust it (trustProxy): raise this to maxClients there.
   */
  maxClientsPerAddress: number
  /** Seconds a refused client is told to wait (the Retry-After header of the 503). */
  retryAfterSeconds: number
  /** A comment line to every client this often, so that proxies do not close a quiet stream. */
  pingMs: number
}

export const defaultLiveHubOptions: Readonly<LiveHubOptions> = {
  flushMs: 250,
  maxItems: 200,
  maxClients: 500,
  maxClientsPerAddress: 50,
  retryAfterSeconds: 10,
  pingMs: 15_000
}

/** Clients with one filter: what is queued for them, serialised once per flush. */
interface Channel {
  readonly key: string
  readonly filter: LiveFilter
  readonly clients: Set<Client>
  readings: ScoredReading[]
  anomalies: ScoredReading[]
  readonly windows: Map<string, WindowAggregate>
}

interface Client {
  readonly channel: Channel
  readonly address: string
  readonly write: LiveWrite
  /** Messages skipped while its socket was backed up. */
  dropped: number
}

const matches = (f: LiveFilter, location: string, sensorType: string): boolean =>
  (f.location === undefined || f.location === location) && (f.sensorType === undefined || f.sensorType === sensorType)

const flagged = ({ verdict: v }: ScoredReading): boolean => v.ruleAnomaly || v.zAnomaly || v.mlAnomaly === true

/** Keeps the newest `max` items of `buf` after appending `item`. */
function pushBounded<T> (buf: T[], item: T, max: number): void {
  buf.push(item)
  if (buf.length > 2 * max) buf.splice(0, buf.length - max)
}

export function sseMessage (event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/** An SSE message whose data is a JSON array of already serialised items. */
const sseArray = (event: string, items: readonly string[]): string => `event: ${event}\ndata: [${items.join(',')}]\n\n`

const PING = ': ping\n\n'

function checkCount (name: keyof LiveHubOptions, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) throw new IotError('IOT_ERR_CONFIG', `live hub ${name}: expected an integer >= ${min}, got ${value}`)
}

export class LiveHub {
  readonly options: Readonly<LiveHubOptions>
  readonly #clients = new Set<Client>()
  /** By filter; a channel goes when its last client does. */
  readonly #channels = new Map<string, Channel>()
  /** Clients per address; an address goes when its last client does. */
  readonly #perAddress = new Map<string, number>()
  #rejected = 0
  /** The last message of each broadcast event, with when it was sent (for clients that join after). */
  readonly #lastBroadcast = new Map<string, { msg: string, at: number }>()
  #timer: NodeJS.Timeout | null = null
  #lastPing = 0

  constructor (options: Partial<LiveHubOptions> = {}) {
    this.options = { ...defaultLiveHubOptions, ...options }
    checkCount('maxClients', this.options.maxClients, 0)
    checkCount('maxClientsPerAddress', this.options.maxClientsPerAddress, 0)
    checkCount('retryAfterSeconds', this.options.retryAfterSeconds, 1)
    checkCount('maxItems', this.options.maxItems, 1)
  }

  /** Clients connected now. */
  get clients (): number {
    return this.#clients.size
  }

  /** Clients refused since the hub was made (a cap was reached). */
  get rejected (): number {
    return this.#rejected
  }

  /** Clients connected now from `address`. */
  clientsFrom (address: string): number {
    return this.#perAddress.get(address) ?? 0
  }

  /** The cap a new client from `address` would pass now; null when it would be accepted. */
  capReached (address: string): LiveCap | null {
    if (this.#clients.size >= this.options.maxClients) return 'total'
    if (this.clientsFrom(address) >= this.options.maxClientsPerAddress) return 'address'
    return null
  }

  /** Takes a stored batch: queued for each filter it matches, sent at the next flush. */
  publish (batch: LiveBatch): void {
    const max = this.options.maxItems
    for (const ch of this.#channels.values()) {
      const f = ch.filter
      const all = f.location === undefined && f.sensorType === undefined
      for (const s of batch.stored) {
        if (!all && !matches(f, s.reading.location, s.reading.sensorType)) continue
        pushBounded(ch.readings, s, max)
        if (flagged(s)) pushBounded(ch.anomalies, s, max)
      }
      for (const windows of [batch.revised, batch.finalized]) {
        for (const w of windows) {
          if (!matches(f, w.location, w.sensorType)) continue
          const key = `${w.location}\u0000${w.sensorType}\u0000${w.windowStart}`
          ch.windows.delete(key)
          ch.windows.set(key, w)
          if (ch.windows.size > max) ch.windows.delete(ch.windows.keys().next().value!)
        }
      }
    }
  }

  /** Sends an event to every client now (the pipeline tick). */
  broadcast (event: string, data: unknown): void {
    if (this.#clients.size === 0) return
    const msg = sseMessage(event, data)
    this.#lastBroadcast.set(event, { msg, at: Date.now() })
    for (const c of this.#clients) this.#write(c, msg)
  }

  /** The message last broadcast as `event` if that was at most `maxAgeMs` ago (for a client that just joined), else null. */
  recentBroadcast (event: string, maxAgeMs: number): string | null {
    const last = this.#lastBroadcast.get(event)
    return last !== undefined && Date.now() - last.at <= maxAgeMs ? last.msg : null
  }

  /**
   * Adds a client from `address` (the remote address, for the per-address cap), unless a cap is
   * reached: then nothing is added and null is returned (and counted in `rejected`). Otherwise
   * returns the function that removes it; calling that again does nothing.
   */
  subscribe (filter: LiveFilter, write: LiveWrite, address = ''): (() => void) | null {
    if (this.capReached(address) !== null) {
      this.#rejected++
      return null
    }
    const key = JSON.stringify([filter.location ?? null, filter.sensorType ?? null])
    let channel = this.#channels.get(key)
    if (channel === undefined) {
      channel = { key, filter: { location: filter.location, sensorType: filter.sensorType }, clients: new Set(), readings: [], anomalies: [], windows: new Map() }
      this.#channels.set(key, channel)
    }
    const c: Client = { channel, address, write, dropped: 0 }
    channel.clients.add(c)
    this.#clients.add(c)
    this.#perAddress.set(address, this.clientsFrom(address) + 1)
    if (this.#timer === null) {
      this.#lastPing = Date.now()
      this.#timer = setInterval(() => { this.#tick() }, this.options.flushMs)
      this.#timer.unref()
    }
    return () => { this.#remove(c) }
  }

  #remove (c: Client): void {
    // Only a client still here is counted down: removing twice (the stream's close after a server close) changes nothing.
    if (!this.#clients.delete(c)) return
    const n = this.clientsFrom(c.address) - 1
    if (n > 0) this.#perAddress.set(c.address, n)
    else this.#perAddress.delete(c.address)
    const ch = c.channel
    ch.clients.delete(c)
    if (ch.clients.size === 0) this.#channels.delete(ch.key)
    if (this.#clients.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer)
      this.#timer = null
    }
  }

  #tick (): void {
    this.flush()
    const now = Date.now()
    if (now - this.#lastPing >= this.options.pingMs) {
      this.#lastPing = now
      for (const c of this.#clients) this.#write(c, PING)
    }
  }

  /**
   * Sends what is queued for each filter (called every flushMs while clients are connected): each
   * message serialised once per channel (each reading and window once for all channels).
   */
  flush (): void {
    const max = this.options.maxItems
    const readingText = new Map<ScoredReading, string>()
    const readingJsonText = (s: ScoredReading): string => {
      let t = readingText.get(s)
      if (t === undefined) readingText.set(s, t = JSON.stringify(readingJson(storedOf(s))))
      return t
    }
    const windowText = new Map<WindowAggregate, string>()
    const windowJsonText = (w: WindowAggregate): string => {
      let t = windowText.get(w)
      if (t === undefined) windowText.set(w, t = JSON.stringify(windowJson(w)))
      return t
    }
    for (const ch of this.#channels.values()) {
      if (ch.readings.length > 0) {
        this.#send(ch, sseArray('readings', ch.readings.slice(-max).map(readingJsonText)))
        ch.readings = []
      }
      if (ch.anomalies.length > 0) {
        this.#send(ch, sseArray('anomalies', ch.anomalies.slice(-max).map(readingJsonText)))
        ch.anomalies = []
      }
      if (ch.windows.size > 0) {
        this.#send(ch, sseArray('windows', [...ch.windows.values()].map(windowJsonText)))
        ch.windows.clear()
      }
    }
  }

  #send (ch: Channel, msg: string): void {
    for (const c of ch.clients) this.#write(c, msg)
  }

  #write (c: Client, msg: string): void {
    // A client that does not keep up misses messages rather than holding memory here.
    if (!c.write(msg)) c.dropped++
  }

  /** Forgets every client (their removal functions then do nothing) and stops the timer. */
  close (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#clients.clear()
    this.#channels.clear()
    this.#perAddress.clear()
    this.#lastBroadcast.clear()
  }
}
