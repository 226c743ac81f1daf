// Device ingest throughput and latency: InfluxDB line protocol over HTTP, and MQTT QoS 1 through
// the built-in broker (aedes), into the embedded system (--no-simulator, --no-ml: no model
// training in the figures), PGlite in a temp folder (or a throwaway database on the server of
// --database-url / DATABASE_URL).
//
// The system under test runs in a child process (as in bench/live.ts): its CPU time is its own,
// not that of the 1,000 MQTT.js clients and the HTTP writers, which run in this process.
//
// Phases, one after the other on one system:
//  1. line protocol: `--batches` bodies of 5,000 lines (one field per line, so points = readings)
//     from several devices, `--writers` at once; points/s stored (from the first request to the
//     last reading stored) and points/s acknowledged (204) by the API.
//  2. MQTT QoS 1: `--clients` devices (one MQTT.js client and token each) publish `--messages`
//     messages each, all at once; messages/s from the first publish to the last stored.
//  3. MQTT QoS 1 at a steady `--rate` messages/s for `--seconds` s spread over the same clients:
//     publish → stored latency (the worker's `batch` event, after the transaction commits).
// "Stored" is when the worker's batch event (emitted after the commit) has counted them all;
// then SELECT count(*) FROM sensor_readings confirms the rows are there.
// INGEST_PROF=<dir>: the child runs with --cpu-prof into that folder (where the server's CPU goes).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'
import { pino } from 'pino'
import { startEmbedded } from '../src/app/index.ts'
import { loadConfig } from '../src/config/index.ts'
import { addDevice } from '../src/devices/index.ts'
import { type BatchOutcome } from '../src/pipeline/index.ts'
import { createServerDatabase } from '../test/helpers/databases.ts'

export interface IngestBenchOptions {
  /** Line-protocol bodies of LINES_PER_BATCH lines. */
  batches: number
  /** HTTP writers at once. */
  writers: number
  /** MQTT devices (clients) of phases 2 and 3. */
  clients: number
  /** Messages each MQTT device publishes in phase 2. */
  messages: number
  /** Steady publish rate of phase 3 (messages/s over all clients). */
  rate: number
  /** Length of phase 3. */
  seconds: number
  /** PostgreSQL server to create a throwaway database on; null: PGlite in a temp folder. */
  databaseUrl: string | null
}

const LINES_PER_BATCH = 5000
/** Devices the line-protocol batches come from (batch b from device b mod HTTP_DEVICES). */
const HTTP_DEVICES = 8
/** MQTT connections opened at once while connecting. */
const CONNECT_CONCURRENCY = 100
const TARGETS = { linePointsPerS: 50_000, mqttMessagesPerS: 20_000, p99Ms: 1000 }

const out = (s: string): void => { process.stdout.write(s + '\n') }
/** Wall time in ms with sub-ms precision, comparable between the two processes (same system clock). */
const wallNow = (): number => performance.timeOrigin + performance.now()
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

// ---- IPC between the bench (parent) and the system under test (child) ----

interface ServerStats {
  /** Readings stored (worker batch events), late, duplicates and dead letters since start. */
  stored: number
  late: number
  duplicates: number
  deadLetters: number
  batches: number
  /** process.cpuUsage() user + system, microseconds. */
  cpuMicros: number
  rss: number
  maxRss: number
  /** MemoryBus readings waiting for the worker. */
  busHeld: number
}

type Request =
  | { type: 'devices', prefix: string, count: number }
  | { type: 'stats' }
  | { type: 'waitStored', target: number, timeoutMs: number }
  | { type: 'count', like: string }
  | { type: 'record', on: boolean }
  | { type: 'stop' }

type Reply =
  | { type: 'devices', tokens: string[] }
  | { type: 'stats', stats: ServerStats }
  /** `at`: wall time of the batch event that reached the target (null: timed out). */
  | { type: 'waitStored', at: number | null, stats: ServerStats }
  | { type: 'count', n: number }
  /** Stored while recording: [sensorId, ts, wall time of the batch event]. */
  | { type: 'record', stored: Array<[string, number, number]> }
  | { type: 'stop' }

type FromChild = { type: 'ready', base: string, mqtt: string, database: string } | { id: number, reply: Reply } | { type: 'failed', message: string }

// ---- the child: the system under test ----

/** Runs the embedded system (API and MQTT broker on 127.0.0.1, ephemeral ports) until the parent says stop. */
export async function serveIngest (): Promise<void> {
  const url = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === '' ? null : process.env.DATABASE_URL
  const dir = mkdtempSync(join(tmpdir(), 'iot-bench-ingest-'))
  const server = url === null ? null : await createServerDatabase(url)
  const send = (m: FromChild): void => { process.send?.(m) }
  try {
    const { config } = loadConfig(['start', '--data-dir', dir, '--port', '0', '--no-simulator', '--no-ml', '--mqtt-port', '0',
      ...(server === null ? [] : ['--database-url', server.url])], {})
    config.statusIntervalMs = 0
    const sys = await startEmbedded(config, pino({ level: 'warn' }, pino.destination(2)))
    const { app, worker, db } = sys
    if (app === null || worker === null || db === null || sys.mqtt === null) throw new Error('the embedded system lacks its API, worker, database or MQTT broker')
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const s = { stored: 0, late: 0, duplicates: 0, deadLetters: 0, batches: 0 }
    let recording: Array<[string, number, number]> | null = null
    const waiters: Array<{ target: number, resolve: (at: number) => void }> = []
    worker.on('batch', (b: BatchOutcome) => {
      const at = wallNow()
      s.stored += b.stored.length
      s.late += b.late.length
      s.duplicates += b.duplicates
      s.deadLetters += b.deadLetters.length
      s.batches++
      if (recording !== null) for (const r of b.stored) recording.push([r.reading.sensorId, r.reading.ts, at])
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i]!
        if (s.stored >= w.target) { waiters.splice(i, 1); w.resolve(at) }
      }
    })
    const bus = sys.bus as { held?: number } | null
    const stats = (): ServerStats => {
      const cpu = process.cpuUsage()
      return { ...s, cpuMicros: cpu.user + cpu.system, rss: process.memoryUsage().rss, maxRss: process.resourceUsage().maxRSS * 1024, busHeld: bus?.held ?? 0 }
    }
    const handle = async (r: Request): Promise<Reply> => {
      switch (r.type) {
        case 'devices': {
          const tokens: string[] = []
          for (let i = 0; i < r.count; i++) {
            tokens.push((await addDevice(db, { id: `${r.prefix}-${i}`, name: `bench ${r.prefix} ${i}`, location: 'Bench' }, Date.now())).token)
          }
          return { type: 'devices', tokens }
        }
        case 'stats': return { type: 'stats', stats: stats() }
        case 'waitStored': {
          if (s.stored >= r.target) return { type: 'waitStored', at: wallNow(), stats: stats() }
          const at = await new Promise<number | null>(resolve => {
            const w = { target: r.target, resolve }
            waiters.push(w)
            setTimeout(() => {
              const i = waiters.indexOf(w)
              if (i !== -1) { waiters.splice(i, 1); resolve(null) }
            }, r.timeoutMs)
          })
          return { type: 'waitStored', at, stats: stats() }
        }
        case 'count': {
          const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sensor_readings WHERE sensor_id LIKE $1', [r.like])
          return { type: 'count', n: rows[0]?.n ?? 0 }
        }
        case 'record': {
          const stored = recording ?? []
          recording = r.on ? [] : null
          return { type: 'record', stored }
        }
        case 'stop':
          await sys.stop()
          return { type: 'stop' }
      }
    }
    process.on('message', (m: { id: number, request: Request }) => {
      handle(m.request).then(reply => {
        send({ id: m.id, reply })
        if (reply.type === 'stop') process.disconnect()
      }, (err: unknown) => { send({ type: 'failed', message: String(err) }) })
    })
    send({ type: 'ready', base, mqtt: sys.mqtt, database: server === null ? 'PGlite in a temp folder' : 'PostgreSQL (a throwaway database on DATABASE_URL\'s server)' })
    await once(process, 'disconnect')
  } finally {
    await server?.drop()
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---- the parent: the clients ----

class Server {
  readonly child: ChildProcess
  readonly #waiting = new Map<number, (r: Reply) => void>()
  #id = 0

  constructor (child: ChildProcess) {
    this.child = child
    child.on('message', (m: FromChild) => {
      if ('id' in m) {
        this.#waiting.get(m.id)?.(m.reply)
        this.#waiting.delete(m.id)
      } else if (m.type === 'failed') {
        process.stderr.write(`the system under test failed: ${m.message}\n`)
      }
    })
  }

  async ask<T extends Reply['type']> (request: Request & { type: T }): Promise<Extract<Reply, { type: T }>> {
    const id = ++this.#id
    return await new Promise(resolve => {
      this.#waiting.set(id, r => { resolve(r as Extract<Reply, { type: T }>) })
      this.child.send({ id, request })
    })
  }

  async stats (): Promise<ServerStats> {
    return (await this.ask({ type: 'stats' })).stats
  }
}

function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
}

function table (header: string[], rows: string[][]): void {
  out(`| ${header.join(' | ')} |`)
  out(`|${header.map(() => '---').join('|')}|`)
  for (const r of rows) out(`| ${r.join(' | ')} |`)
}

/** CPU of both processes over a phase, per 100,000 readings. */
interface Cpu { serverS: number, clientS: number }
const clientCpu = (): number => { const c = process.cpuUsage(); return (c.user + c.system) / 1e6 }

interface PhaseResult {
  name: string
  readings: number
  /** From the first send to the last reading stored. */
  storedSeconds: number
  /** From the first send to the last acknowledgement (HTTP 204 / PUBACK). */
  ackedSeconds: number
  cpu: Cpu
  /** Worker batches (transactions) the phase's readings took. */
  batches: number
  target: string
  verdict: boolean
  note: string
}

async function waitStored (server: Server, target: number, what: string): Promise<{ at: number, stats: ServerStats }> {
  const r = await server.ask({ type: 'waitStored', target, timeoutMs: 300_000 })
  if (r.at === null) throw new Error(`${what}: ${r.stats.stored} of ${target} readings stored after 300 s (late ${r.stats.late}, duplicates ${r.stats.duplicates}, dead letters ${r.stats.deadLetters})`)
  return { at: r.at, stats: r.stats }
}

/** Phase 1: line protocol, `batches` bodies of 5,000 lines, `writers` at once. */
async function lineProtocol (server: Server, base: string, o: IngestBenchOptions, tokens: string[], storedBefore: number): Promise<PhaseResult> {
  const points = o.batches * LINES_PER_BATCH
  // Event times: the last minute, 1 ms apart per device (distinct per sensor), within the far-off limits and
  // a span that keeps every reading on time for the windows (watermark 10 s behind, 60 s lateness).
  const t0 = Date.now() - 60_000
  const bodies: Array<{ token: string, body: string }> = []
  for (let b = 0; b < o.batches; b++) {
    const device = b % HTTP_DEVICES
    const first = Math.floor(b / HTTP_DEVICES) * LINES_PER_BATCH
    const lines: string[] = new Array(LINES_PER_BATCH)
    for (let i = 0; i < LINES_PER_BATCH; i++) {
      // ns from integer ms as BigInt: a double above 2^53 would round.
      const ns = BigInt(t0 + first + i) * 1_000_000n
      lines[i] = `environment temperature=${(20 + ((first + i) % 1000) / 100).toFixed(2)} ${ns}`
    }
    bodies.push({ token: tokens[device]!, body: lines.join('\n') })
  }
  const bytes = bodies.reduce((n, b) => n + Buffer.byteLength(b.body), 0)
  const url = `${base}/api/v2/write?org=bench&bucket=bench&precision=ns`
  const statuses = new Map<number, number>()
  let next = 0
  const s0 = await server.stats(); const c0 = clientCpu()
  const start = wallNow()
  let ackedAt = 0
  await Promise.all(Array.from({ length: o.writers }, async () => {
    while (next < bodies.length) {
      const b = bodies[next++]!
      const res = await fetch(url, { method: 'POST', headers: { authorization: `Token ${b.token}`, 'content-type': 'text/plain; charset=utf-8' }, body: b.body })
      await res.arrayBuffer()
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    }
    ackedAt = Math.max(ackedAt, wallNow())
  }))
  const bad = [...statuses].filter(([st]) => st !== 204)
  if (bad.length > 0) throw new Error(`line protocol: answers other than 204: ${bad.map(([st, n]) => `${n}× ${st}`).join(', ')}`)
  const done = await waitStored(server, storedBefore + points, 'line protocol')
  const c1 = clientCpu()
  const counted = (await server.ask({ type: 'count', like: 'bench-http-%.temperature' })).n
  const storedSeconds = (done.at - start) / 1000
  const rate = points / storedSeconds
  return {
    name: `HTTP line protocol: ${o.batches} × ${fmt(LINES_PER_BATCH)} lines (${(bytes / 1048576).toFixed(1)} MB), ${o.writers} writers, ${HTTP_DEVICES} devices`,
    readings: points,
    storedSeconds,
    ackedSeconds: (ackedAt - start) / 1000,
    cpu: { serverS: (done.stats.cpuMicros - s0.cpuMicros) / 1e6, clientS: c1 - c0 },
    batches: done.stats.batches - s0.batches,
    target: `>= ${fmt(TARGETS.linePointsPerS)} points/s`,
    verdict: rate >= TARGETS.linePointsPerS,
    note: `SELECT count(*) FROM sensor_readings: ${fmt(counted)} rows of ${fmt(points)}` + (counted === points ? '' : ' (MISMATCH)')
  }
}

interface Device { id: string, client: MqttClient }

async function connectAll (url: string, tokens: string[], prefix: string): Promise<{ devices: Device[], failures: string[], seconds: number }> {
  const devices: Device[] = []
  const failures: string[] = []
  const t0 = performance.now()
  for (let i = 0; i < tokens.length; i += CONNECT_CONCURRENCY) {
    const part = tokens.slice(i, i + CONNECT_CONCURRENCY)
    const got = await Promise.allSettled(part.map(async (token, j) => {
      const id = `${prefix}-${i + j}`
      const client = await mqtt.connectAsync(url, { username: token, clientId: id, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 120 })
      return { id, client }
    }))
    for (const g of got) {
      if (g.status === 'fulfilled') devices.push(g.value)
      else failures.push(String(g.reason))
    }
  }
  return { devices, failures, seconds: (performance.now() - t0) / 1000 }
}

/** Phase 2: every client publishes `messages` QoS 1 messages at once. */
async function mqttBurst (server: Server, devices: Device[], o: IngestBenchOptions, storedBefore: number): Promise<PhaseResult> {
  const total = devices.length * o.messages
  // 10 ms apart per device, in the last seconds: distinct per sensor, on time for the windows.
  const t0 = Date.now() - 2000 - o.messages * 10
  const payloads = Array.from({ length: o.messages }, (_, k) => JSON.stringify({ ts: t0 + k * 10, values: { temperature: 20 + (k % 100) / 10 } }))
  const s0 = await server.stats(); const c0 = clientCpu()
  const start = wallNow()
  let ackedAt = 0
  let failed = 0
  await Promise.all(devices.map(async d => {
    const sent = await Promise.allSettled(payloads.map(async p => await d.client.publishAsync('v1/devices/me/telemetry', p, { qos: 1 })))
    failed += sent.filter(x => x.status === 'rejected').length
    ackedAt = Math.max(ackedAt, wallNow())
  }))
  if (failed > 0) throw new Error(`MQTT burst: ${failed} publishes failed`)
  const done = await waitStored(server, storedBefore + total, 'MQTT burst')
  const c1 = clientCpu()
  const counted = (await server.ask({ type: 'count', like: 'bench-mqtt-%' })).n
  const storedSeconds = (done.at - start) / 1000
  const rate = total / storedSeconds
  return {
    name: `MQTT QoS 1: ${fmt(devices.length)} clients × ${o.messages} messages, all at once`,
    readings: total,
    storedSeconds,
    ackedSeconds: (ackedAt - start) / 1000,
    cpu: { serverS: (done.stats.cpuMicros - s0.cpuMicros) / 1e6, clientS: c1 - c0 },
    batches: done.stats.batches - s0.batches,
    target: `>= ${fmt(TARGETS.mqttMessagesPerS)} messages/s`,
    verdict: rate >= TARGETS.mqttMessagesPerS,
    note: `SELECT count(*) FROM sensor_readings: ${fmt(counted)} rows of ${fmt(total)}` + (counted === total ? '' : ' (MISMATCH)')
  }
}

interface LatencyResult {
  phase: PhaseResult
  sent: number
  /** Achieved publish rate. */
  rate: number
  storedMs: number[]
  ackMs: number[]
  missing: number
  /** Publishes sent more than 100 ms after their slot (the client process falling behind). */
  lateSends: number
}

/** Phase 3: `rate` messages/s for `seconds` s, round-robin over the clients; publish → stored latency. */
async function mqttSteady (server: Server, devices: Device[], o: IngestBenchOptions, storedBefore: number): Promise<LatencyResult> {
  const total = Math.round(o.rate * o.seconds)
  const sentAt = new Map<string, number>()
  const ackMs: number[] = []
  await server.ask({ type: 'record', on: true })
  const s0 = await server.stats(); const c0 = clientCpu()
  const start = wallNow()
  // Event time = the slot's wall time, made distinct by the message number (1 ms per message at 1,000/s).
  const tsBase = Math.floor(start)
  let seq = 0
  let lateSends = 0
  const acks: Array<Promise<void>> = []
  let failed = 0
  while (seq < total) {
    const now = wallNow()
    const due = Math.min(total, Math.floor((now - start) * o.rate / 1000) + 1)
    for (; seq < due; seq++) {
      const slot = start + seq * 1000 / o.rate
      if (now - slot > 100) lateSends++
      const d = devices[seq % devices.length]!
      const ts = tsBase + Math.round(seq * 1000 / o.rate)
      const at = wallNow()
      sentAt.set(`${d.id}.temperature|${ts}`, at)
      acks.push(d.client.publishAsync('v1/devices/me/telemetry', JSON.stringify({ ts, values: { temperature: 21.5 + (seq % 50) / 10 } }), { qos: 1 })
        .then(() => { ackMs.push(wallNow() - at) }, () => { failed++ }))
    }
    await sleep(2)
  }
  const sendSeconds = (wallNow() - start) / 1000
  await Promise.all(acks)
  const ackedAt = wallNow()
  const done = await waitStored(server, storedBefore + total, 'MQTT steady')
  const c1 = clientCpu()
  const { stored } = await server.ask({ type: 'record', on: false })
  const storedMs: number[] = []
  for (const [sensorId, ts, at] of stored) {
    const t = sentAt.get(`${sensorId}|${ts}`)
    if (t === undefined) continue
    storedMs.push(at - t)
    sentAt.delete(`${sensorId}|${ts}`)
  }
  storedMs.sort((a, b) => a - b)
  ackMs.sort((a, b) => a - b)
  const p99 = percentile(storedMs, 0.99)
  return {
    phase: {
      name: `MQTT QoS 1 steady: ${fmt(o.rate)} messages/s for ${o.seconds} s over ${fmt(devices.length)} clients`,
      readings: total,
      storedSeconds: (done.at - start) / 1000,
      ackedSeconds: (ackedAt - start) / 1000,
      cpu: { serverS: (done.stats.cpuMicros - s0.cpuMicros) / 1e6, clientS: c1 - c0 },
      batches: done.stats.batches - s0.batches,
      target: `p99 < ${fmt(TARGETS.p99Ms)} ms`,
      verdict: p99 < TARGETS.p99Ms && sentAt.size === 0 && failed === 0,
      note: failed > 0 ? `${failed} publishes failed` : ''
    },
    sent: total,
    rate: total / sendSeconds,
    storedMs,
    ackMs,
    missing: sentAt.size,
    lateSends
  }
}

export async function runIngest (o: IngestBenchOptions): Promise<void> {
  const env = { ...process.env, DATABASE_URL: o.databaseUrl ?? '' }
  const child = spawn(process.execPath, [...(process.env.INGEST_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', process.env.INGEST_PROF]), '--import', 'tsx', fileURLToPath(new URL('./index.ts', import.meta.url)), 'ingest-server'],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env })
  const [ready] = await Promise.race([
    once(child, 'message') as Promise<[FromChild]>,
    once(child, 'exit').then(([code]) => { throw new Error(`the system under test exited with ${String(code)} before it was ready`) })
  ])
  if (!('type' in ready) || ready.type !== 'ready') throw new Error('unexpected first message from the system under test')
  const server = new Server(child)
  out(`Ingest benchmark: the embedded system (--no-simulator, --no-ml: no model training in the figures; memory bus, ${ready.database}) ` +
    `in a child process, API ${ready.base}, MQTT ${ready.mqtt}. The clients (fetch, MQTT.js) run in this process: "server CPU" is the child's ` +
    'alone (API, broker, bus, worker, database), "client CPU" this process\'s.')
  const all: Device[] = []
  try {
    const httpTokens = (await server.ask({ type: 'devices', prefix: 'bench-http', count: HTTP_DEVICES })).tokens
    // Warm-up (JIT, token cache, partitions of today): one body, not counted.
    const warm = await fetch(`${ready.base}/api/v2/write?precision=ms`, {
      method: 'POST',
      headers: { authorization: `Token ${httpTokens[0]!}` },
      body: Array.from({ length: 1000 }, (_, i) => `warmup value=${i} ${Date.now() - 120_000 + i}`).join('\n')
    })
    if (warm.status !== 204) throw new Error(`warm-up write answered ${warm.status}: ${await warm.text()}`)
    let stored = (await waitStored(server, 1000, 'warm-up')).stats.stored

    const results: PhaseResult[] = []
    const line = await lineProtocol(server, ready.base, o, httpTokens, stored)
    results.push(line)
    stored += line.readings

    const t0 = performance.now()
    const mqttTokens = (await server.ask({ type: 'devices', prefix: 'bench-mqtt', count: o.clients })).tokens
    const addSeconds = (performance.now() - t0) / 1000
    const beforeConnect = await server.stats(); const cc0 = clientCpu()
    const conn = await connectAll(ready.mqtt, mqttTokens, 'bench-mqtt')
    const afterConnect = await server.stats(); const cc1 = clientCpu()
    all.push(...conn.devices)
    out(`\nMQTT: ${fmt(o.clients)} devices added in ${addSeconds.toFixed(1)} s; ${fmt(conn.devices.length)} clients connected in ${conn.seconds.toFixed(1)} s ` +
      `(${CONNECT_CONCURRENCY} at a time; server CPU ${((afterConnect.cpuMicros - beforeConnect.cpuMicros) / 1e6).toFixed(2)} s, client CPU ${(cc1 - cc0).toFixed(2)} s; ` +
      `server RSS ${(afterConnect.rss / 1048576).toFixed(0)} MB)` + (conn.failures.length > 0 ? `; ${conn.failures.length} failed: ${[...new Set(conn.failures)].slice(0, 3).join('; ')}` : ''))
    if (conn.devices.length === 0) throw new Error('no MQTT client connected')

    const burst = await mqttBurst(server, conn.devices, o, stored)
    results.push(burst)
    stored += burst.readings
    // Let the per-device rate-limit buckets refill (burst 100, 50 messages/s) before the steady phase.
    await sleep(3000)
    const steady = await mqttSteady(server, conn.devices, o, stored)
    results.push(steady.phase)
    const end = await server.stats()

    out('')
    table(['phase', 'readings', 'stored in s', 'stored /s', 'acked in s', 'acked /s', 'worker batches (readings each)', 'target', 'met', 'server CPU s / 100k', 'client CPU s / 100k'], results.map(r => [
      r.name, fmt(r.readings), r.storedSeconds.toFixed(2), fmt(r.readings / r.storedSeconds), r.ackedSeconds.toFixed(2), fmt(r.readings / r.ackedSeconds),
      `${fmt(r.batches)} (${fmt(r.readings / Math.max(1, r.batches))})`, r.target, r.verdict ? 'yes' : 'NO', (r.cpu.serverS / r.readings * 1e5).toFixed(2), (r.cpu.clientS / r.readings * 1e5).toFixed(2)
    ]))
    for (const r of results) if (r.note !== '') out(`- ${r.name}: ${r.note}`)
    out('')
    const s = steady.storedMs; const a = steady.ackMs
    table(['publish → (ms)', 'messages', 'p50', 'p90', 'p99', 'max', 'target'], [
      ['stored (batch committed)', fmt(s.length), percentile(s, 0.5).toFixed(1), percentile(s, 0.9).toFixed(1), percentile(s, 0.99).toFixed(1), (s.at(-1) ?? NaN).toFixed(1), `p99 < ${TARGETS.p99Ms} ms: ${percentile(s, 0.99) < TARGETS.p99Ms ? 'yes' : 'NO'}`],
      ['PUBACK (on the bus)', fmt(a.length), percentile(a, 0.5).toFixed(1), percentile(a, 0.9).toFixed(1), percentile(a, 0.99).toFixed(1), (a.at(-1) ?? NaN).toFixed(1), '-']
    ])
    out(`Steady phase: ${fmt(steady.sent)} sent at ${fmt(steady.rate)} messages/s achieved; ${steady.lateSends} sent > 100 ms after their slot; ` +
      `${steady.missing} not matched to a stored reading.`)
    out(`\nOver the run (worker batch events): ${fmt(end.stored)} stored in ${fmt(end.batches)} batches, late ${end.late}, duplicates ${end.duplicates}, ` +
      `dead letters ${end.deadLetters}; bus held now ${end.busHeld}. Server RSS now ${(end.rss / 1048576).toFixed(0)} MB, peak ${(end.maxRss / 1048576).toFixed(0)} MB.`)
    out('CPU is user + system of each whole process (all threads: PGlite runs on the server\'s main thread). Machine: ' +
      `${cpus().length} cores; both processes share them.`)
  } finally {
    await Promise.allSettled(all.map(async d => { await d.client.endAsync(true) }))
    if (child.exitCode === null) {
      const exited = once(child, 'exit')
      await server.ask({ type: 'stop' })
      await exited
    }
  }
}
