// Dashboard API latency over a stored data set (DESIGN.md section 7: every dashboard call p95 < 50 ms
// over 50 million readings). Loads the data set when missing (api-load.ts), starts the real API
// (buildApp on PostgreSQL) on 127.0.0.1, and issues the calls the dashboard makes over real HTTP
// with keep-alive, one at a time, after one warm-up round: per endpoint a mix of time ranges (15 min
// to 30 days before the newest reading), filters and limits. Times are wall time from sending the
// request to the last byte of the body; "server" is Fastify's time from the request's arrival to
// the response written (queries, JSON, write). Client and server share this process, and the
// database and other work share the machine: compare ratios within a run.
import { buildApp } from '../src/api/index.ts'
import { PipelineMetrics } from '../src/pipeline/index.ts'
import { locations, sensorTypes } from '../src/sources/index.ts'
import { newestEventTime, openPostgres } from '../src/storage/index.ts'
import { BenchSetupError, loadDataset } from './api-load.ts'

const TARGET_MS = 50

export interface ApiBenchOptions {
  readings: number
  seed: number
  reload: boolean
  /** Requests per endpoint (at least one per parameter combination). */
  requests: number
}

/** One request: the path with its query, and the time range it asks for ('newest': none, the newest rows; '-': not ranged). */
interface Probe {
  path: string
  range: string
}

interface Endpoint {
  name: string
  probes: Probe[]
  /** Rows or points in a response body (null: not a list). */
  rows: (body: unknown) => number | null
  /** A call the dashboard makes (counts in the verdict). */
  dashboard: boolean
}

interface Sample {
  ms: number
  /** The part spent in the server (routing, queries, serialization, writing). */
  serverMs: number
  status: number
  /** Response body size. */
  bytes: number
  range: string
  path: string
  rows: number | null
  /** /api/series: resolution and bucket the server chose, rows it read. */
  series: { resolution: string, bucketMs: number, rowsRead: number } | null
  error: string | null
}

const out = (s: string): void => { process.stdout.write(s + '\n') }

function field (o: unknown, key: string): unknown {
  return typeof o === 'object' && o !== null && !Array.isArray(o) ? (o as Record<string, unknown>)[key] : undefined
}

function lengthOf (key: string): (body: unknown) => number | null {
  return body => {
    const v = field(body, key)
    return Array.isArray(v) ? v.length : null
  }
}

/** Points over all series of /api/series. */
function seriesPoints (body: unknown): number | null {
  const series = field(body, 'series')
  if (!Array.isArray(series)) return null
  let n = 0
  for (const s of series) {
    const p = field(s, 'points')
    if (Array.isArray(p)) n += p.length
  }
  return n
}

/** A number field of the body (e.g. the readings behind a histogram). */
function numberField (key: string): (body: unknown) => number | null {
  return body => {
    const v = field(body, key)
    return typeof v === 'number' ? v : null
  }
}

function matrixCells (body: unknown): number | null {
  const m = field(body, 'matrix')
  return Array.isArray(m) ? m.length * m.length : null
}

const none = (): null => null

function query (params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v))
  const s = q.toString()
  return s === '' ? '' : `?${s}`
}

/** The dashboard's time ranges (web/src/url-state.ts), ending at the newest reading. */
const RANGES: [string, number][] = [
  ['15m', 15 * 60_000], ['1h', 3_600_000], ['6h', 6 * 3_600_000], ['24h', 86_400_000], ['7d', 7 * 86_400_000], ['30d', 30 * 86_400_000]
]
/** "Records to load" of the dashboard (web/src/url-state.ts RECORDS). */
const RECORDS = [100, 500, 2000]

/**
 * The calls the dashboard makes (web/src/api.ts and its callers), with the limits this benchmark is
 * asked for, then /health, late readings and dead letters, and (`dashboard: false`, outside the
 * verdict) list calls with a time range, which the API takes but the dashboard never sends.
 */
function endpoints (newest: number): Endpoint[] {
  const to = new Date(newest + 1).toISOString()
  const ranged = (span: number): { from: string, to: string } => ({ from: new Date(newest + 1 - span).toISOString(), to })
  // Filters: none, a location, a sensor type, both (rotating through the fleet, so caches do not see one key only).
  let turn = 0
  const filters = (): Record<string, string | undefined>[] => {
    turn++
    return [
      {},
      { location: locations[turn % locations.length] },
      { sensor_type: sensorTypes[turn % sensorTypes.length] },
      { location: locations[(turn + 2) % locations.length], sensor_type: sensorTypes[(turn + 3) % sensorTypes.length] }
    ]
  }
  /** Each filter, the newest rows (no range). */
  const newestRows = (path: string, extra: Record<string, string | number> = {}): Probe[] =>
    filters().map(f => ({ path: path + query({ ...f, ...extra }), range: 'newest' }))
  /** Each range with each filter. */
  const inRanges = (path: string, fs: () => Record<string, string | undefined>[], extra: Record<string, string | number> = {}): Probe[] =>
    RANGES.flatMap(([label, span]) => fs().map(f => ({ path: path + query({ ...f, ...ranged(span), ...extra }), range: label })))
  const fixed = (...paths: string[]): Probe[] => paths.map(path => ({ path, range: '-' }))
  const byLocation = (): Record<string, string | undefined>[] => [{}, { location: locations[turn++ % locations.length] }]

  const e = (name: string, probes: Probe[], rows: (body: unknown) => number | null, dashboard = true): Endpoint => ({ name, probes, rows, dashboard })
  return [
    e('/api/meta', fixed('/api/meta'), none),
    e('/api/pipeline', fixed('/api/pipeline'), lengthOf('models')),
    e('/api/overview', inRanges('/api/overview', filters), none),
    // As the dashboard asks: anomalies left out of the charts by default.
    e('/api/series?group_by=location&max_points=300&anomalies=exclude', inRanges('/api/series', filters, { group_by: 'location', max_points: 300, anomalies: 'exclude' }), seriesPoints),
    e('/api/series?group_by=location&max_points=300', inRanges('/api/series', filters, { group_by: 'location', max_points: 300 }), seriesPoints),
    e('/api/series?group_by=sensor_type&max_points=200&min_resolution=window&anomalies=exclude', inRanges('/api/series', filters, { group_by: 'sensor_type', max_points: 200, min_resolution: 'window', anomalies: 'exclude' }), seriesPoints),
    e('/api/readings?limit=15', newestRows('/api/readings', { limit: 15 }), lengthOf('readings')),
    e('/api/readings?limit=2000', newestRows('/api/readings', { limit: 2000 }), lengthOf('readings')),
    e('/api/anomalies?limit=15', newestRows('/api/anomalies', { limit: 15 }), lengthOf('anomalies')),
    e('/api/anomalies?detector=ml&limit=100|500|2000', RECORDS.flatMap(n => newestRows('/api/anomalies', { detector: 'ml', limit: n })), lengthOf('anomalies')),
    e('/api/aggregates?limit=100', newestRows('/api/aggregates', { limit: 100 }), lengthOf('aggregates')),
    e('/api/aggregates?limit=2000', newestRows('/api/aggregates', { limit: 2000 }), lengthOf('aggregates')),
    e('/api/detection/quality', fixed('/api/detection/quality', ...sensorTypes.map(t => `/api/detection/quality?sensor_type=${t}`)), none),
    e('/api/detection/scores?limit=1000', newestRows('/api/detection/scores', { limit: 1000 }), numberField('readings')),
    e('/api/detection/models?limit=50', fixed('/api/detection/models?limit=50'), lengthOf('models')),
    e('/api/analytics/correlation', inRanges('/api/analytics/correlation', byLocation), matrixCells),
    e('/api/analytics/stats', inRanges('/api/analytics/stats', filters), lengthOf('rows')),
    e('/api/late-readings', [...newestRows('/api/late-readings'), ...newestRows('/api/late-readings', { limit: 1000 })], lengthOf('late_readings')),
    e('/api/dead-letters', fixed('/api/dead-letters', '/api/dead-letters?limit=1000'), lengthOf('dead_letters')),
    e('/health', fixed('/health'), none),
    // Not made by the dashboard (its lists show the newest rows whatever the range):
    e('/api/readings?limit=2000&from&to', inRanges('/api/readings', filters, { limit: 2000 }), lengthOf('readings'), false),
    e('/api/anomalies?limit=100&from&to', inRanges('/api/anomalies', filters, { limit: 100 }), lengthOf('anomalies'), false),
    e('/api/aggregates?limit=2000&from&to', inRanges('/api/aggregates', filters, { limit: 2000 }), lengthOf('aggregates'), false)
  ]
}

/** Server-side time per request (Fastify's reply.elapsedTime at onResponse), by the id the client sends. */
const serverTimes = new Map<string, number>()
let requestId = 0

async function call (base: string, endpoint: Endpoint, probe: Probe): Promise<Sample> {
  const id = String(++requestId)
  const t0 = performance.now()
  let status = 0
  let text = ''
  let error: string | null = null
  try {
    const res = await fetch(base + probe.path, { headers: { 'x-bench-id': id } })
    status = res.status
    text = await res.text()
  } catch (err) {
    error = (err as Error).message
  }
  const ms = performance.now() - t0
  let body: unknown = null
  try {
    body = JSON.parse(text) as unknown
  } catch {
    if (error === null && status >= 200 && status < 300) error = 'response is not JSON'
  }
  if (error === null && (status < 200 || status >= 300)) {
    const message = field(body, 'message')
    error = typeof message === 'string' ? message : text.slice(0, 160)
  }
  const resolution = field(body, 'resolution')
  const series = endpoint.name.startsWith('/api/series') && typeof resolution === 'string'
    ? { resolution, bucketMs: Number(field(body, 'bucket_ms')), rowsRead: Number(field(body, 'rows_read')) }
    : null
  // onResponse runs once the response is written: usually before the client has read it, at worst just after.
  if (!serverTimes.has(id)) await new Promise(resolve => setImmediate(resolve))
  const serverMs = serverTimes.get(id) ?? NaN
  serverTimes.delete(id)
  return { ms, serverMs, status, bytes: Buffer.byteLength(text), range: probe.range, path: probe.path, rows: error === null ? endpoint.rows(body) : null, series, error }
}

function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number
}

const median = (xs: readonly number[]): number => percentile([...xs].sort((a, b) => a - b), 0.5)
const fmtKb = (bytes: number): string => bytes < 10_240 ? (bytes / 1024).toFixed(1) : String(Math.round(bytes / 1024))
const fmtMs = (x: number): string => Number.isNaN(x) ? '-' : x < 10 ? x.toFixed(2) : x.toFixed(1)

function fmtSpan (ms: number): string {
  if (!Number.isFinite(ms)) return '?'
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} d`
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`
  if (ms % 60_000 === 0) return `${ms / 60_000} min`
  if (ms % 1000 === 0) return `${ms / 1000} s`
  return `${ms} ms`
}

function table (header: string[], rows: string[][]): void {
  out(`| ${header.join(' | ')} |`)
  out(`|${header.map(() => '---').join('|')}|`)
  for (const r of rows) out(`| ${r.join(' | ')} |`)
}

/** Starts the API on the data set at `url` and measures every endpoint; returns whether all p95 are under the target. */
export async function measureApi (url: string, requests: number): Promise<boolean> {
  const db = await openPostgres(url)
  const newest = await newestEventTime(db)
  if (newest === null) {
    await db.close()
    throw new Error('The bench database has no stream_offsets row: load the data set first (npm run bench -- api-load).')
  }
  const metrics = new PipelineMetrics()
  const app = await buildApp({ db, registry: metrics.registry, status: () => ({ watermark: newest, lag: null, latency: null }), webRoot: null })
  try {
    app.addHook('onResponse', async (req, reply) => {
      const id = req.headers['x-bench-id']
      if (typeof id === 'string') serverTimes.set(id, reply.elapsedTime)
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    if (address === null || typeof address === 'string') throw new Error('the API did not listen on a TCP port')
    const base = `http://127.0.0.1:${address.port}`
    const list = endpoints(newest)
    out(`API on ${base}, newest reading ${new Date(newest).toISOString()}; ${list.length} endpoints, ` +
      `${list.reduce((n, e) => n + e.probes.length, 0)} parameter combinations, >= ${requests} requests each, one at a time.`)
    // Warm-up: every request once (connections, plans, caches), not counted.
    const tw = performance.now()
    for (const e of list) for (const p of e.probes) await call(base, e, p)
    out(`Warm-up round: ${((performance.now() - tw) / 1000).toFixed(1)} s.`)
    const results = new Map<Endpoint, Sample[]>()
    const t0 = performance.now()
    for (const e of list) {
      const rounds = Math.max(1, Math.ceil(requests / e.probes.length))
      const samples: Sample[] = []
      for (let r = 0; r < rounds; r++) for (const p of e.probes) samples.push(await call(base, e, p))
      results.set(e, samples)
    }
    out(`Measured in ${((performance.now() - t0) / 1000).toFixed(1)} s.\n`)
    return report(results)
  } finally {
    await app.close()
    await db.close()
  }
}

interface Failure { endpoint: string, status: number, error: string, path: string, count: number }

function summaryRows (results: [Endpoint, Sample[]][]): { rows: string[][], over: number, failures: Failure[] } {
  const rows: string[][] = []
  const failures: Failure[] = []
  let over = 0
  for (const [e, samples] of results) {
    const ok = samples.filter(s => s.error === null)
    const ms = ok.map(s => s.ms).sort((a, b) => a - b)
    const p95 = percentile(ms, 0.95)
    const counts = ok.map(s => s.rows).filter((n): n is number => n !== null)
    const failed = samples.length - ok.length
    const notes: string[] = []
    if (p95 >= TARGET_MS) notes.push('**OVER**')
    if (failed > 0) notes.push(`${failed} failed`)
    if (p95 >= TARGET_MS) over++
    const server = ok.map(s => s.serverMs).filter(x => !Number.isNaN(x)).sort((a, b) => a - b)
    rows.push([e.name, String(samples.length), fmtMs(percentile(ms, 0.5)), fmtMs(p95), fmtMs(ms[ms.length - 1] ?? NaN), fmtMs(percentile(server, 0.95)),
      counts.length === 0 ? '-' : String(median(counts)), ok.length === 0 ? '-' : fmtKb(median(ok.map(s => s.bytes))), notes.join(', ')])
    const byKind = new Map<string, Failure>()
    for (const s of samples) {
      if (s.error === null) continue
      const key = `${s.status} ${s.error}`
      const f = byKind.get(key)
      if (f !== undefined) f.count++
      else byKind.set(key, { endpoint: e.name, status: s.status, error: s.error, path: s.path, count: 1 })
    }
    failures.push(...byKind.values())
  }
  return { rows, over, failures }
}

const HEADER = ['endpoint', 'requests', 'p50 ms', 'p95 ms', 'max ms', 'server p95 ms', 'rows/points (median)', 'KB (median)', 'note']

function report (results: Map<Endpoint, Sample[]>): boolean {
  const dashboard = [...results].filter(([e]) => e.dashboard)
  const others = [...results].filter(([e]) => !e.dashboard)
  const main = summaryRows(dashboard)
  table(HEADER, main.rows)

  // p95 per range, for the endpoints that take one.
  const rangeLabels = RANGES.map(([l]) => l)
  const byRange: string[][] = []
  for (const [e, samples] of results) {
    if (!samples.some(s => rangeLabels.includes(s.range))) continue
    byRange.push([e.name, ...rangeLabels.map(l => {
      const p = percentile(samples.filter(s => s.range === l && s.error === null).map(s => s.ms).sort((a, b) => a - b), 0.95)
      return p >= TARGET_MS ? `**${fmtMs(p)}**` : fmtMs(p)
    })])
  }
  if (byRange.length > 0) {
    out('\np95 ms by time range (ending at the newest reading; every filter combination):\n')
    table(['endpoint', ...rangeLabels], byRange)
  }

  for (const [e, samples] of dashboard) {
    if (!samples.some(s => s.series !== null)) continue
    out(`\n${e.name}: what the server chose per range (over the filter combinations):\n`)
    table(['range', 'resolution', 'bucket', 'rows read (median)', 'points (median)', 'p95 ms'], RANGES.map(([label]) => {
      const ss = samples.filter(s => s.range === label && s.series !== null)
      const tally = (xs: string[]): string => {
        const m = new Map<string, number>()
        for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1)
        return m.size === 1 ? [...m.keys()][0] ?? '' : [...m].map(([k, n]) => `${k} (${n})`).join(', ')
      }
      const ms = ss.map(s => s.ms).sort((a, b) => a - b)
      return [label, tally(ss.map(s => s.series?.resolution ?? '?')), tally(ss.map(s => fmtSpan(s.series?.bucketMs ?? NaN))),
        String(median(ss.map(s => s.series?.rowsRead ?? NaN))), String(median(ss.map(s => s.rows ?? NaN))), fmtMs(percentile(ms, 0.95))]
    }))
  }

  const rest = summaryRows(others)
  if (others.length > 0) {
    out('\nOther API calls (a time range on the list endpoints: the dashboard never sends one; not in the verdict):\n')
    table(HEADER, rest.rows)
  }

  const failures = [...main.failures, ...rest.failures]
  if (failures.length > 0) {
    out('\nFailures (non-2xx or unreadable responses):\n')
    table(['endpoint', 'status', 'count', 'message', 'example'], failures.map(f =>
      [f.endpoint, String(f.status), String(f.count), f.error.replaceAll('|', '\\|').slice(0, 120), `\`${f.path}\``]))
  }
  const failing = dashboard.filter(([, s]) => s.some(x => x.error !== null)).length
  const yes = main.over === 0 && failing === 0
  out(`\nall p95 < ${TARGET_MS} ms: ${yes ? 'yes' : 'no'}` +
    (main.over > 0 ? ` (${main.over} of ${dashboard.length} dashboard calls over)` : '') +
    (failing > 0 ? ` (${failing} answered non-2xx: see Failures)` : ''))
  return yes
}

export async function runApi (o: ApiBenchOptions): Promise<void> {
  if (!Number.isSafeInteger(o.requests) || o.requests < 1) throw new BenchSetupError(`--requests must be a positive integer, got ${o.requests}`)
  const dataset = await loadDataset(o)
  out(`Dashboard API benchmark: ${dataset.readings.toLocaleString('en-US')} readings, target p95 < ${TARGET_MS} ms per endpoint (DESIGN.md section 7).`)
  await measureApi(dataset.url, o.requests)
}
