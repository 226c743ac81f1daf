// Live-stream (Server-Sent Events) clients against the caps of GET /api/live. The real system
// (simulator → memory bus → worker → PGlite in a temp folder, and the API) runs in a child process,
// so that the RSS measured is the API's own and not that of the 2,000 client sockets of this
// process. Its live hub has the defaults of LiveHubOptions (what `npm start` runs with).
//
// Phases: warm-up (one address opens more streams than its cap, which also checks the per-address
// cap); RSS at start; /health latency; `--clients` streams at once, spread over local addresses
// 127.0.0.2.. so that no address passes its own cap and only the total cap applies; /health
// latency while they stay connected and receive events; every stream closed; RSS after a wait,
// then after a forced GC (the child runs with --expose-gc). The verdict is on the RSS after the
// wait, without the forced GC: what an operator sees.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { type LiveHub } from '../src/api/index.ts'
import { startEmbedded } from '../src/app/index.ts'
import { defaultConfig, type Config } from '../src/config/index.ts'

export interface LiveBenchOptions {
  /** Streams opened at once. */
  clients: number
  /** How long the streams stay connected (receiving events) before they are closed. */
  holdMs: number
  /** Wait after the last stream is gone before the RSS is read again. */
  settleMs: number
  /** The streams read nothing (slow dashboards): what waits in the API for them is what is measured. */
  paused: boolean
}

/** RSS may end this much above where it started (the "done when" of the task). */
const MAX_RSS_GROWTH = 0.2
/** /health calls per latency measurement (one at a time, keep-alive). */
const HEALTH_CALLS = 50
/** Streams the warm-up opens from one address (more than the per-address cap). */
const WARMUP_STREAMS = 60

interface MemorySample {
  rss: number
  heapUsed: number
  heapTotal: number
  external: number
  arrayBuffers: number
  /** Peak RSS of the child's life (getrusage). */
  maxRss: number
  clients: number
  rejected: number
  /** CPU time of the process so far (user + system), and when it was read. */
  cpuMicros: number
  at: number
}

type ToChild = { type: 'memory', id: number, gc: boolean } | { type: 'stop', id: number }
type FromChild = { type: 'ready', port: number, options: LiveHub['options'] } | { type: 'memory', id: number, sample: MemorySample } | { type: 'stopped', id: number }

const out = (s: string): void => { process.stdout.write(s + '\n') }
const mb = (bytes: number): string => (bytes / 1048576).toFixed(1)
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

// ---- the child: the system under test ----

/** Runs the embedded system with its API on 127.0.0.1 until the parent says stop; answers memory questions over IPC. */
export async function serveLive (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iot-bench-live-'))
  const config: Config = structuredClone(defaultConfig)
  config.dataDir = dir
  config.statusIntervalMs = 0
  // No Isolation Forest: its training (a thread, models in memory) would move RSS during the run for reasons of its own.
  config.detection.ml = false
  // 100 sensors at 1 Hz in real time: about 100 readings/s, so every flush (250 ms) has events for each stream.
  config.simulator = { ...config.simulator, sensors: 100, rate: 1, speedup: 1, durationMs: null, startMs: null }
  // Logs to stderr (the parent's terminal); stdout is the parent's table.
  const sys = await startEmbedded(config, pino({ level: 'warn' }, pino.destination(2)))
  const app = sys.app
  const hub = sys.live
  if (app === null || hub === null) throw new Error('the embedded system serves no API')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('the API did not listen on a TCP port')
  const send = (m: FromChild): void => { process.send?.(m) }
  // global.gc exists with --expose-gc.
  const gc = (globalThis as { gc?: () => void }).gc
  process.on('message', (m: ToChild) => {
    if (m.type === 'memory') {
      if (m.gc && gc !== undefined) { gc(); gc() }
      const u = process.memoryUsage()
      const cpu = process.cpuUsage()
      send({
        type: 'memory',
        id: m.id,
        sample: { rss: u.rss, heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external, arrayBuffers: u.arrayBuffers, maxRss: process.resourceUsage().maxRSS * 1024, cpuMicros: cpu.user + cpu.system, at: performance.now(), clients: hub.clients, rejected: hub.rejected }
      })
    } else {
      sys.stop()
        .finally(() => {
          rmSync(dir, { recursive: true, force: true })
          send({ type: 'stopped', id: m.id })
          process.disconnect()
        })
        .catch((err: unknown) => { process.stderr.write(`stopping the system failed: ${String(err)}\n`) })
    }
  })
  send({ type: 'ready', port: address.port, options: hub.options })
}

// ---- the parent: the clients ----

class Server {
  readonly #child: ChildProcess
  readonly #waiting = new Map<number, (m: FromChild) => void>()
  #id = 0

  constructor (child: ChildProcess) {
    this.#child = child
    child.on('message', (m: FromChild) => {
      if (m.type === 'ready') return
      this.#waiting.get(m.id)?.(m)
      this.#waiting.delete(m.id)
    })
  }

  async #ask (m: ToChild): Promise<FromChild> {
    return await new Promise(resolve => {
      this.#waiting.set(m.id, resolve)
      this.#child.send(m)
    })
  }

  async memory (gc = false): Promise<MemorySample> {
    const r = await this.#ask({ type: 'memory', id: ++this.#id, gc })
    if (r.type !== 'memory') throw new Error(`unexpected answer ${r.type}`)
    return r.sample
  }

  async stop (): Promise<void> {
    const exited = once(this.#child, 'exit')
    await this.#ask({ type: 'stop', id: ++this.#id })
    await exited
  }
}

interface Stream {
  status: number
  retryAfter: string | null
  code: string | null
  error: string | null
  bytes: number
  events: number
  close: () => void
}

/** Opens GET /api/live from `localAddress`; resolves once the status is known (a 200 stays open and counts what arrives). */
async function openStream (port: number, localAddress: string, agent: http.Agent, paused: boolean): Promise<Stream> {
  return await new Promise(resolve => {
    const s: Stream = { status: 0, retryAfter: null, code: null, error: null, bytes: 0, events: 0, close: () => { req.destroy() } }
    const req = http.get({ host: '127.0.0.1', port, path: '/api/live', localAddress, agent, headers: { accept: 'text/event-stream' } }, res => {
      s.status = res.statusCode ?? 0
      if (s.status === 200 && paused) {
        // Nothing read: the socket's receive buffer fills, then the API's send side.
        res.pause()
        resolve(s)
        return
      }
      if (s.status === 200) {
        res.on('data', (chunk: Buffer) => {
          s.bytes += chunk.length
          // Approximate (a name split across chunks is missed): counting only.
          for (let i = chunk.indexOf('event: '); i !== -1; i = chunk.indexOf('event: ', i + 7)) s.events++
        })
        res.on('error', () => {})
        resolve(s)
        return
      }
      const header = res.headers['retry-after']
      s.retryAfter = typeof header === 'string' ? header : null
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => {
        try {
          s.code = (JSON.parse(body) as { code?: string }).code ?? null
        } catch {
          s.error = `not JSON: ${body.slice(0, 80)}`
        }
        resolve(s)
      })
    })
    req.on('error', err => {
      // After the status is known, an error is the stream being closed by us.
      if (s.status === 0) {
        s.error = err.message
        resolve(s)
      }
    })
  })
}

async function openStreams (port: number, count: number, addresses: number, firstAddress: number, paused = false): Promise<Stream[]> {
  // No pooling limit: every stream its own connection, all at once.
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity })
  return await Promise.all(Array.from({ length: count }, (_, i) => openStream(port, `127.0.0.${firstAddress + (i % addresses)}`, agent, paused)))
}

function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

/** `HEALTH_CALLS` calls of /health one at a time: [p50, p95, max] in ms. */
async function healthLatency (port: number): Promise<[number, number, number]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const ms: number[] = []
  for (let i = 0; i < HEALTH_CALLS; i++) {
    const t0 = performance.now()
    const status = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/health', agent }, res => {
        res.resume()
        res.on('end', () => { resolve(res.statusCode ?? 0) })
      }).on('error', reject)
    })
    if (status !== 200) throw new Error(`/health answered ${status}`)
    ms.push(performance.now() - t0)
  }
  agent.destroy()
  ms.sort((a, b) => a - b)
  return [percentile(ms, 0.5), percentile(ms, 0.95), ms.at(-1)!]
}

function tally (streams: readonly Stream[]): { ok: number, full: number, fullWellFormed: boolean, other: string[] } {
  const full = streams.filter(s => s.status === 503)
  const other = streams.filter(s => s.status !== 200 && s.status !== 503).map(s => `${s.status} ${s.error ?? ''}`)
  return {
    ok: streams.filter(s => s.status === 200).length,
    full: full.length,
    fullWellFormed: full.every(s => s.retryAfter !== null && Number(s.retryAfter) > 0 && s.code === 'IOT_ERR_LIVE_FULL'),
    other
  }
}

async function untilNoClients (server: Server, timeoutMs: number): Promise<number> {
  const t0 = performance.now()
  for (;;) {
    const m = await server.memory()
    if (m.clients === 0) return performance.now() - t0
    if (performance.now() - t0 > timeoutMs) throw new Error(`${m.clients} live clients left ${timeoutMs} ms after every stream closed`)
    await sleep(50)
  }
}

function table (header: string[], rows: string[][]): void {
  out(`| ${header.join(' | ')} |`)
  out(`|${header.map(() => '---').join('|')}|`)
  for (const r of rows) out(`| ${r.join(' | ')} |`)
}

export async function runLive (o: LiveBenchOptions): Promise<void> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(new URL('./index.ts', import.meta.url)), 'live-server'],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [ready] = await Promise.race([
    once(child, 'message') as Promise<[FromChild]>,
    once(child, 'exit').then(([code]) => { throw new Error(`the API process exited with ${String(code)} before listening`) })
  ])
  if (ready.type !== 'ready') throw new Error(`unexpected first message ${ready.type}`)
  const { port, options } = ready
  const server = new Server(child)
  const maxTotal = options.maxClients
  const perAddress = options.maxClientsPerAddress
  // Enough addresses that none of them reaches its cap: only the total cap turns streams away.
  const addresses = Math.max(1, Math.ceil(o.clients / perAddress))
  if (addresses > 250) throw new Error(`--clients ${o.clients}: more than 250 local addresses would be needed at ${perAddress} per address`)
  out(`Live-stream benchmark: the embedded system (100 sensors at 1 Hz, no ML) with its API on 127.0.0.1:${port}; ` +
    `live hub caps ${maxTotal} in total, ${perAddress} per address. ${o.clients} streams from ${addresses} local addresses.`)
  try {
    // Warm-up: the code paths (and the per-address cap) before RSS is read.
    await sleep(2000)
    await healthLatency(port)
    const warm = await openStreams(port, WARMUP_STREAMS, 1, 250)
    const warmTally = tally(warm)
    await sleep(1000)
    for (const s of warm) s.close()
    await untilNoClients(server, 10_000)
    await sleep(2000)

    const start = await server.memory()
    const healthBefore = await healthLatency(port)

    const t0 = performance.now()
    const streams = await openStreams(port, o.clients, addresses, 2, o.paused)
    const openMs = performance.now() - t0
    const opened = tally(streams)
    const connected = await server.memory()

    // Held open: events flow; /health measured meanwhile; RSS sampled for its peak.
    let peak = connected
    const sampling = { on: true }
    const sampler = (async () => {
      while (sampling.on) {
        const m = await server.memory()
        if (m.rss > peak.rss) peak = m
        await sleep(250)
      }
    })()
    const healthDuring = await healthLatency(port)
    const held = performance.now()
    await sleep(Math.max(0, o.holdMs - (held - t0)))
    sampling.on = false
    await sampler
    const heldEnd = await server.memory()
    const cpuShare = (heldEnd.cpuMicros - connected.cpuMicros) / 1000 / (heldEnd.at - connected.at)
    const accepted = streams.filter(s => s.status === 200)
    const events = accepted.map(s => s.events).sort((a, b) => a - b)
    const bytes = accepted.reduce((n, s) => n + s.bytes, 0)
    const holdS = (performance.now() - t0) / 1000

    for (const s of streams) s.close()
    const drainMs = await untilNoClients(server, 10_000)
    await sleep(o.settleMs)
    const after = await server.memory()
    const afterGc = await server.memory(true)

    out('')
    table(['streams', 'opened', '200', '503', 'other', '503 has Retry-After and IOT_ERR_LIVE_FULL', 'time to all statuses'], [
      [`warm-up, one address (cap ${perAddress})`, String(WARMUP_STREAMS), String(warmTally.ok), String(warmTally.full), String(warmTally.other.length), warmTally.fullWellFormed ? 'yes' : 'NO', '-'],
      [`main, ${addresses} addresses (cap ${maxTotal})`, String(o.clients), String(opened.ok), String(opened.full), String(opened.other.length), opened.fullWellFormed ? 'yes' : 'NO', `${(openMs / 1000).toFixed(2)} s`]
    ])
    if (opened.other.length > 0) out(`other answers: ${[...new Set(opened.other)].slice(0, 5).join('; ')}`)
    out(`\nAccepted streams received over ${holdS.toFixed(1)} s: ${(bytes / 1048576).toFixed(1)} MB, events per stream p50 ${percentile(events, 0.5)}, min ${events[0] ?? 0}. ` +
      `All gone from the hub ${drainMs.toFixed(0)} ms after the last close.`)
    out(`API process CPU while they were connected: ${(100 * cpuShare).toFixed(0)} % of one core (from all streams open to their close).\n`)
    table(['/health (ms)', 'p50', 'p95', 'max'], [
      ['before', ...healthBefore.map(x => x.toFixed(2))],
      [`${opened.ok} streams connected`, ...healthDuring.map(x => x.toFixed(2))]
    ])
    out('')
    const row = (label: string, m: MemorySample): string[] =>
      [label, mb(m.rss), mb(m.heapUsed), mb(m.heapTotal), mb(m.external), mb(m.arrayBuffers), String(m.clients)]
    table(['API process', 'RSS MB', 'heapUsed MB', 'heapTotal MB', 'external MB', 'arrayBuffers MB', 'live clients'], [
      row('start', start),
      row('all streams open', connected),
      row('peak RSS sampled', peak),
      row(`after (${(o.settleMs / 1000).toFixed(0)} s after the last left)`, after),
      row('after a forced GC', afterGc)
    ])
    const ratio = after.rss / start.rss
    out(`\nRSS start ${mb(start.rss)} MB, peak ${mb(Math.max(peak.rss, after.maxRss))} MB (getrusage max over the process life), ` +
      `after ${mb(after.rss)} MB: after/start ${ratio.toFixed(2)} (${ratio <= 1 + MAX_RSS_GROWTH ? 'within' : 'OVER'} ${100 * MAX_RSS_GROWTH} %); after a forced GC ${(afterGc.rss / start.rss).toFixed(2)}.`)
    out(`Streams turned away over the run (hub.rejected): ${after.rejected}.`)
  } finally {
    if (child.exitCode === null) await server.stop()
  }
}
