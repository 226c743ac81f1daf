import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { type Registry } from 'prom-client'
import { pino, type Logger } from 'pino'
import {
  type Queryable, type QueryFilter, loadDetectionCounts, recentAggregates, recentAnomalies, recentDeadLetters, recentLateReadings,
  recentModels, recentReadings
} from '../storage/index.ts'
import { detectionQuality } from '../anomaly/index.ts'
import { IotError, parseTimestamp } from '../domain/index.ts'

export interface ApiDeps {
  db: Queryable & { readonly kind: string }
  registry: Registry
  /** Pipeline state for /health. */
  status: () => { watermark: number, lag: number | null }
  logger?: Logger
}

const TimeParam = Type.Union([Type.String({ minLength: 1, maxLength: 40 }), Type.Integer()])
const FilterSchema = Type.Object({
  location: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  sensor_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  from: Type.Optional(TimeParam),
  to: Type.Optional(TimeParam),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 100 }))
}, { additionalProperties: false })
type Filter = Static<typeof FilterSchema>

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

const iso = (ms: number): string => new Date(ms).toISOString()
/** JSON has no Infinity: a z-score of ±Infinity (a change after a flat baseline) is sent as a string. */
const num = (x: number | null): number | string | null => x === null || Number.isFinite(x) ? x : String(x)

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

  const readingJson = (r: Awaited<ReturnType<typeof recentReadings>>[number]): Record<string, unknown> => ({
    sensor_id: r.sensorId,
    sensor_type: r.sensorType,
    location: r.location,
    value: r.value,
    unit: r.unit,
    timestamp: iso(r.timestamp),
    anomaly: r.anomaly,
    anomaly_type: r.anomalyType,
    rule_anomaly: r.ruleAnomaly,
    z_score: num(r.zScore),
    z_anomaly: r.zAnomaly,
    ml_score: r.mlScore,
    ml_anomaly: r.mlAnomaly,
    model_version: r.modelVersion,
    combined_anomaly: r.combinedAnomaly,
    severity: r.severity,
    explanation: r.explanation
  })

  app.get<{ Querystring: Filter }>('/api/readings', { schema: { querystring: FilterSchema } }, async (req) => {
    const rows = await recentReadings(deps.db, filterOf(req.query))
    return { count: rows.length, readings: rows.map(readingJson) }
  })

  app.get<{ Querystring: Filter }>('/api/anomalies', { schema: { querystring: FilterSchema } }, async (req) => {
    const rows = await recentAnomalies(deps.db, filterOf(req.query))
    return { count: rows.length, anomalies: rows.map(readingJson) }
  })

  app.get<{ Querystring: Filter }>('/api/aggregates', { schema: { querystring: FilterSchema } }, async (req) => {
    const rows = await recentAggregates(deps.db, filterOf(req.query))
    return {
      count: rows.length,
      aggregates: rows.map(a => ({
        window_start: iso(a.windowStart),
        window_end: iso(a.windowEnd),
        location: a.location,
        sensor_type: a.sensorType,
        avg_value: a.avg,
        min_value: a.min,
        max_value: a.max,
        stddev_value: a.stddev,
        count_readings: a.count,
        anomaly_count: a.anomalyCount,
        label_anomaly_count: a.labelAnomalyCount,
        z_score_anomalies: a.zScoreAnomalies,
        ml_anomaly_count: a.mlAnomalyCount,
        revision: a.revision,
        is_final: a.isFinal
      }))
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
    return {
      count: rows.length,
      models: rows.map(m => ({ version: m.version, key: m.key, sequence: m.sequence, trained_at: iso(m.trainedAt), samples: m.samples, created_at: iso(m.createdAt) }))
    }
  })

  return app
}
