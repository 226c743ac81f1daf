import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'
import { Type, type Static } from '@sinclair/typebox'
import { type Registry } from 'prom-client'
import { pino, type Logger } from 'pino'
import {
  type ModelInfo, type PipelineCounts, type Queryable, type QueryFilter, type RangeFilter, correlation, loadDetectionCounts, loadMeta, newestModels, newestReadingTime,
  openWindows, pipelineCounts, rangeStats, recentAggregates, recentAnomalies, recentDeadLetters, recentLateReadings, recentModels,
  recentReadings, recentScores, scoreBins, sensorCounts, sensorUnits, series
} from '../storage/index.ts'
import { detectionQuality } from '../anomaly/index.ts'
import { IotError, parseTimestamp } from '../domain/index.ts'
import { type WindowingOptions, defaultWindowingOptions } from '../windowing/index.ts'
import {
  type CorrelationJson, type CountByKey, type LivePipelineJson, type LocationStatsJson, type MetaJson, type ModelJson, type OverviewJson,
  type PipelineJson, type ScoreHistogramJson, type SeriesJson, type SeriesPoint
} from './contract.ts'
import { iso, isoOrNull, readingJson, windowJson } from './json.ts'
import { LiveHub } from './live.ts'
import { DbTail } from './tail.ts'

/** The built dashboard (npm run build:web). */
const defaultWebRoot = fileURLToPath(new URL('../../web/dist', import.meta.url))

export interface ApiDeps {
  db: Queryable & { readonly kind: string }
  registry: Registry
  /** Pipeline state for /health. */
  status: () => { watermark: number, lag: number | null }
  logger?: Logger
  /** Live feed of the batches stored by a worker in this process; without one, the database is tailed for changes. */
  live?: LiveHub
  /** The windowing of the stored windows (series resolution; how long windows change); defaults of the pipeline when absent. */
  windowing?: Pick<WindowingOptions, 'sizeMs' | 'maxOutOfOrdernessMs' | 'allowedLatenessMs'>
  /** Folder of the built dashboard served at / (null: no dashboard). */
  webRoot?: string | null
  /** Wall clock (readings/s). */
  now?: () => number
}

const TimeParam = Type.Union([Type.String({ minLength: 1, maxLength: 40 }), Type.Integer()])
const rangeFields = {
  location: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  sensor_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  from: Type.Optional(TimeParam),
  to: Type.Optional(TimeParam)
}
const limitField = (min: number, max: number, def: number): ReturnType<typeof Type.Integer> => Type.Integer({ minimum: min, maximum: max, default: def })
const FilterSchema = Type.Object({ ...rangeFields, limit: Type.Optional(limitField(1, 5000, 100)) }, { additionalProperties: false })
type Filter = Static<typeof FilterSchema>
const RangeSchema = Type.Object(rangeFields, { additionalProperties: false })
type Range = Static<typeof RangeSchema>
const detectors = ['any', 'rule', 'zscore', 'ml', 'combined'] as const
const AnomalyQuery = Type.Object({
  ...rangeFields,
  limit: Type.Optional(limitField(1, 5000, 100)),
  detector: Type.Optional(Type.Union(detectors.map(d => Type.Literal(d))))
}, { additionalProperties: false })
const SeriesQuery = Type.Object({
  ...rangeFields,
  max_points: Type.Optional(limitField(10, 2000, 300)),
  group_by: Type.Optional(Type.Union([Type.Literal('location'), Type.Literal('sensor_type')])),
  min_resolution: Type.Optional(Type.Union([Type.Literal('raw'), Type.Literal('window'), Type.Literal('hour')]))
}, { additionalProperties: false })
const ScoresQuery = Type.Object({ ...rangeFields, limit: Type.Optional(limitField(100, 5000, 1000)) }, { additionalProperties: false })
const LiveQuery = Type.Object({ location: rangeFields.location, sensor_type: rangeFields.sensor_type }, { additionalProperties: false })

const MINUTE = 60_000
const HOUR = 3_600_000
/** Sensors with a reading this close (event time) to the newest one count as active. */
const ACTIVE_SPAN_MS = 5 * MINUTE
/** Bytes a live stream may have waiting in its socket before messages to it are skipped. */
const MAX_BUFFERED = 2_000_000

const MIN_TIME = -62_135_596_800_000 // 0001-01-01
const MAX_TIME = 253_402_300_799_999 // 9999-12-31

/** from/to: ISO 8601 (no zone = UTC) or epoch milliseconds. */
function toTime (v: string | number | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  const t = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : parseTimestamp(v)
  if (Number.isNaN(t) || t < MIN_TIME || t > MAX_TIME) {
    throw new IotError('IOT_ERR_VALIDATION', `${name}: not an ISO 8601 date-time or epoch ms in years 1-9999: ${v}`)
  }
  return t
}

function filterOf (q: Filter): QueryFilter {
  return { location: q.location, sensorType: q.sensor_type, from: toTime(q.from, 'from'), to: toTime(q.to, 'to'), limit: q.limit ?? 100 }
}

const modelJson = (m: ModelInfo): ModelJson =>
  ({ version: m.version, key: m.key, sequence: m.sequence, trained_at: iso(m.trainedAt), samples: m.samples, created_at: iso(m.createdAt) })

const byKey = (rows: readonly { key: string, readings: number, anomalies: number }[]): CountByKey[] => {
  const m = new Map<string, CountByKey>()
  for (const r of rows) {
    const c = m.get(r.key) ?? { key: r.key, readings: 0, anomalies: 0 }
    c.readings += r.readings
    c.anomalies += r.anomalies
    m.set(r.key, c)
  }
  return [...m.values()].sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
}

/** The HTTP API: JSON endpoints over the stored data, /health and Prometheus /metrics. Never listens itself. */
export async function buildApp (deps: ApiDeps): Promise<FastifyInstance> {
  // Requests are logged at info: the API's logger starts at warn, so only problems are logged, never each request.
  const logger: FastifyBaseLogger = deps.logger?.child({ component: 'api' }, { level: 'warn' }) ?? pino({ level: 'silent' })
  // Unknown query parameters are errors (Fastify's default would silently drop them: a typo would filter nothing).
  const app = Fastify({ loggerInstance: logger, ajv: { customOptions: { removeAdditional: false } } })

  app.setErrorHandler((err: { code?: string, statusCode?: number, message: string, validation?: unknown }, _req, reply) => {
    if (err.validation !== undefined || err.code === 'IOT_ERR_VALIDATION') {
      return reply.code(400).send({ error: 'bad_request', code: 'IOT_ERR_VALIDATION', message: err.message })
    }
    app.log.error({ err }, 'Request failed.')
    // Internals (database messages and codes) stay in the log.
    return reply.code(500).send({ error: 'internal', code: 'IOT_ERR_INTERNAL', message: 'internal error; see the server log' })
  })

  app.get('/health', async (_req, reply) => {
    const s = deps.status()
    try {
      await deps.db.query('SELECT 1')
    } catch (err) {
      return await reply.code(503).send({ status: 'unavailable', database: deps.db.kind, error: (err as Error).message })
    }
    return { status: 'ok', database: deps.db.kind, watermark: Number.isFinite(s.watermark) ? iso(s.watermark) : null, lag: s.lag }
  })

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.registry.contentType)
    return await deps.registry.metrics()
  })

  app.get<{ Querystring: Filter }>('/api/readings', { schema: { querystring: FilterSchema } }, async (req) => {
    const rows = await recentReadings(deps.db, filterOf(req.query))
    return { count: rows.length, readings: rows.map(readingJson) }
  })

  app.get<{ Querystring: Static<typeof AnomalyQuery> }>('/api/anomalies', { schema: { querystring: AnomalyQuery } }, async (req) => {
    const rows = await recentAnomalies(deps.db, filterOf(req.query), req.query.detector ?? 'any')
    return { count: rows.length, anomalies: rows.map(readingJson) }
  })

  app.get<{ Querystring: Filter }>('/api/aggregates', { schema: { querystring: FilterSchema } }, async (req) => {
    const rows = await recentAggregates(deps.db, filterOf(req.query))
    return {
      count: rows.length,
      aggregates: rows.map(windowJson)
    }
  })

  app.get<{ Querystring: Filter }>('/api/late-readings', { schema: { querystring: FilterSchema } }, async (req) => {
    const rows = await recentLateReadings(deps.db, filterOf(req.query))
    return {
      count: rows.length,
      late_readings: rows.map(r => ({
        sensor_id: r.sensorId,
        location: r.location,
        sensor_type: r.sensorType,
        value: r.value,
        timestamp: iso(r.timestamp),
        window_start: iso(r.windowStart),
        lateness_ms: r.latenessMs
      }))
    }
  })

  const Limit = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 100 })) }, { additionalProperties: false })
  app.get<{ Querystring: Static<typeof Limit> }>('/api/dead-letters', { schema: { querystring: Limit } }, async (req) => {
    const rows = await recentDeadLetters(deps.db, req.query.limit ?? 100)
    return {
      count: rows.length,
      dead_letters: rows.map(d => ({ id: d.id, received_at: iso(d.receivedAt), source: d.source, reason: d.reason, detail: d.detail, raw: d.raw }))
    }
  })

  const QualityQuery = Type.Object({ sensor_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) }, { additionalProperties: false })
  app.get<{ Querystring: Static<typeof QualityQuery> }>('/api/detection/quality', { schema: { querystring: QualityQuery } }, async (req) => {
    return detectionQuality(await loadDetectionCounts(deps.db, req.query.sensor_type))
  })

  app.get<{ Querystring: Static<typeof Limit> }>('/api/detection/models', { schema: { querystring: Limit } }, async (req) => {
    const rows = await recentModels(deps.db, req.query.limit ?? 100)
    return { count: rows.length, models: rows.map(modelJson) }
  })

  // --- The dashboard's views. Ranges default to a span before the newest reading (event time may run ahead of the wall clock).
  const now = deps.now ?? Date.now
  const windowing = deps.windowing ?? defaultWindowingOptions
  const windowMs = windowing.sizeMs
  const rangeOf = async (q: Range, defaultSpan: number): Promise<RangeFilter & { newest: number | null }> => {
    const newest = await newestReadingTime(deps.db)
    const to = toTime(q.to, 'to') ?? (newest === null ? now() : newest + 1)
    const from = toTime(q.from, 'from') ?? to - defaultSpan
    if (from >= to) throw new IotError('IOT_ERR_VALIDATION', `from (${iso(from)}) must be before to (${iso(to)})`)
    return { location: q.location, sensorType: q.sensor_type, from, to, newest }
  }

  const unitsByType = async (): Promise<Map<string, string>> => new Map((await sensorUnits(deps.db)).map(t => [t.sensorType, t.unit]))

  app.get('/api/meta', async (): Promise<MetaJson> => {
    const m = await loadMeta(deps.db)
    return {
      locations: m.locations,
      sensor_types: m.sensorTypes.map(t => ({ sensor_type: t.sensorType, unit: t.unit })),
      sensors: m.sensors,
      oldest: isoOrNull(m.oldest),
      newest: isoOrNull(m.newest),
      window_ms: windowMs
    }
  })

  app.get<{ Querystring: Range }>('/api/overview', { schema: { querystring: RangeSchema } }, async (req): Promise<OverviewJson> => {
    const r = await rangeOf(req.query, HOUR)
    const [stats, open, sensors] = await Promise.all([
      rangeStats(deps.db, r),
      openWindows(deps.db, r),
      sensorCounts(deps.db, r, (r.newest ?? now()) - ACTIVE_SPAN_MS)
    ])
    const sum = (f: (x: (typeof stats)[number]) => number): number => stats.reduce((s, x) => s + f(x), 0)
    const readings = sum(x => x.readings)
    const windows = sum(x => x.windows)
    return {
      from: iso(r.from),
      to: iso(r.to),
      readings,
      anomalies: sum(x => x.combinedAnomalies),
      rule_anomalies: sum(x => x.ruleAnomalies),
      z_anomalies: sum(x => x.zAnomalies),
      ml_anomalies: sum(x => x.mlAnomalies),
      label_anomalies: sum(x => x.labelAnomalies),
      windows,
      final_windows: Math.max(0, windows - open),
      avg_readings_per_window: windows === 0 ? 0 : readings / windows,
      active_sensors: sensors.active,
      sensors: sensors.sensors,
      locations: sensors.locations,
      by_location: byKey(stats.map(x => ({ key: x.location, readings: x.readings, anomalies: x.combinedAnomalies }))),
      by_sensor_type: byKey(stats.map(x => ({ key: x.sensorType, readings: x.readings, anomalies: x.combinedAnomalies })))
    }
  })

  app.get<{ Querystring: Static<typeof SeriesQuery> }>('/api/series', { schema: { querystring: SeriesQuery } }, async (req): Promise<SeriesJson> => {
    const r = await rangeOf(req.query, HOUR)
    const [result, units] = await Promise.all([
      series(deps.db, r, { maxPoints: req.query.max_points ?? 300, groupBy: req.query.group_by ?? 'location', windowMs, minResolution: req.query.min_resolution ?? 'raw' }),
      unitsByType()
    ])
    const out = new Map<string, SeriesJson['series'][number]>()
    for (const b of result.buckets) {
      const key = `${b.sensorType}\u0000${b.name}`
      let s = out.get(key)
      if (s === undefined) {
        s = { sensor_type: b.sensorType, unit: units.get(b.sensorType) ?? '', name: b.name, points: [] }
        out.set(key, s)
      }
      const point: SeriesPoint = [b.t, b.avg, b.min, b.max, b.n]
      s.points.push(point)
    }
    return { from: iso(r.from), to: iso(r.to), resolution: result.resolution, bucket_ms: result.bucketMs, rows_read: result.rowsRead, series: [...out.values()] }
  })

  app.get<{ Querystring: Static<typeof ScoresQuery> }>('/api/detection/scores', { schema: { querystring: ScoresQuery } }, async (req): Promise<ScoreHistogramJson> => {
    const rows = await recentScores(deps.db, filterOf({ ...req.query, limit: req.query.limit ?? 1000 }))
    return { readings: rows.length, bins: scoreBins(rows) }
  })

  app.get<{ Querystring: Range }>('/api/analytics/correlation', { schema: { querystring: RangeSchema } }, async (req): Promise<CorrelationJson> => {
    const r = await rangeOf(req.query, 24 * HOUR)
    const c = await correlation(deps.db, { location: r.location, from: r.from, to: r.to })
    return { from: iso(r.from), to: iso(r.to), resolution: c.resolution, sensor_types: c.sensorTypes, matrix: c.matrix, pairs: c.pairs }
  })

  app.get<{ Querystring: Range }>('/api/analytics/stats', { schema: { querystring: RangeSchema } }, async (req): Promise<LocationStatsJson> => {
    const r = await rangeOf(req.query, 24 * HOUR)
    const [stats, units] = await Promise.all([rangeStats(deps.db, r), unitsByType()])
    return {
      from: iso(r.from),
      to: iso(r.to),
      rows: stats.map(x => ({
        location: x.location,
        sensor_type: x.sensorType,
        unit: units.get(x.sensorType) ?? '',
        readings: x.readings,
        avg: x.avg,
        min: x.min,
        max: x.max,
        stddev: x.stddev,
        anomalies: x.combinedAnomalies,
        anomaly_rate: x.readings === 0 ? 0 : x.combinedAnomalies / x.readings
      }))
    }
  })

  const live = deps.live ?? new LiveHub()
  // No worker here: what the workers store is read back while dashboards are connected.
  const tail = deps.live === undefined ? new DbTail(deps.db, live, { openSpanMs: windowMs + windowing.maxOutOfOrdernessMs + windowing.allowedLatenessMs }) : null
  // Stored readings per second, from the detection counts sampled once a second (whichever process stores them).
  const samples: [number, number][] = []
  let sampler: NodeJS.Timeout | null = null
  const sample = async (): Promise<PipelineCounts & { rate: number }> => {
    const counts = await pipelineCounts(deps.db)
    const t = now()
    samples.push([t, counts.readingsTotal])
    while (samples.length > 2 && samples[1]![0] <= t - 10_000) samples.shift()
    const [t0, n0] = samples[0]!
    return { ...counts, rate: t - t0 < 500 ? 0 : (counts.readingsTotal - n0) * 1000 / (t - t0) }
  }
  const tick = async (): Promise<void> => {
    if (live.clients === 0) return
    const s = await sample()
    const st = deps.status()
    const data: LivePipelineJson = { readings_per_s: s.rate, readings_total: s.readingsTotal, watermark: isoOrNull(st.watermark), consumer_lag: st.lag }
    live.broadcast('pipeline', data)
  }
  const startSampler = (): void => {
    sampler ??= setInterval(() => { tick().catch((err: unknown) => { app.log.warn({ err }, 'Pipeline sample failed.') }) }, 1000)
    sampler.unref()
  }

  app.get('/api/pipeline', async (): Promise<PipelineJson> => {
    startSampler()
    const [s, models, newest] = await Promise.all([sample(), newestModels(deps.db), newestReadingTime(deps.db)])
    const st = deps.status()
    return {
      database: deps.db.kind,
      readings_per_s: s.rate,
      readings_total: s.readingsTotal,
      latency_ms: deps.live === undefined ? null : live.latency(),
      watermark: isoOrNull(st.watermark),
      newest_event: isoOrNull(newest),
      late_readings: s.lateReadings,
      dead_letters: s.deadLetters,
      consumer_lag: st.lag,
      models: models.map(modelJson)
    }
  })

  // Server-Sent Events: the hub pushes what each stored batch changed; the browser's EventSource reconnects by itself.
  const streams = new Set<() => void>()
  app.get<{ Querystring: Static<typeof LiveQuery> }>('/api/live', { schema: { querystring: LiveQuery } }, (req, reply) => {
    const res = reply.raw
    reply.hijack()
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    res.write('retry: 2000\n: connected\n\n')
    // A client that does not read falls behind by at most MAX_BUFFERED bytes; then messages are skipped.
    const unsubscribe = live.subscribe({ location: req.query.location, sensorType: req.query.sensor_type }, chunk => {
      if (res.writableLength > MAX_BUFFERED) return false
      res.write(chunk)
      return true
    })
    const ping = setInterval(() => { res.write(': ping\n\n') }, 15_000)
    const end = (): void => {
      clearInterval(ping)
      unsubscribe()
      streams.delete(end)
      res.end()
    }
    streams.add(end)
    req.raw.on('close', end)
    tail?.start()
    startSampler()
    tick().catch(() => {})
  })
  app.addHook('preClose', async () => {
    if (sampler !== null) clearInterval(sampler)
    tail?.stop()
    for (const end of [...streams]) end()
  })

  // The dashboard: the built web app at /, its index for any other page path (client-side state lives in the query string).
  const webRoot = deps.webRoot === undefined ? defaultWebRoot : deps.webRoot
  if (webRoot !== null && existsSync(join(webRoot, 'index.html'))) {
    await app.register(fastifyStatic, { root: webRoot, wildcard: false })
    app.setNotFoundHandler((req, reply) => {
      if (req.method !== 'GET' || req.url.startsWith('/api/')) return reply.code(404).send({ error: 'not_found', code: 'IOT_ERR_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` })
      return reply.sendFile('index.html')
    })
  } else {
    app.get('/', async (_req, reply) => reply.type('text/html').send(
      '<!doctype html><title>iot-monitor</title><p>The dashboard is not built: run <code>npm run build:web</code> (npm start does it). The API is at <a href="/api/meta">/api/meta</a>.</p>'))
  }

  return app
}
