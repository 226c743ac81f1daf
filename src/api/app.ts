// buildApp: the HTTP API as one Fastify instance with a route plugin per area (routes/). The live hub
// and the readings/s sampler, which several plugins use, are made here and handed to them.
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { Counter } from 'prom-client'
import { IotError } from '../domain/index.ts'
import { isUnavailable } from '../storage/index.ts'
import { defaultWindowingOptions } from '../windowing/index.ts'
import { guardReads } from './access.ts'
import { type ApiDeps } from './deps.ts'
import { LiveHub } from './live.ts'
import { API_REFUSED, INGEST_REFUSED, counterIn } from './metrics.ts'
import { PipelineSampler } from './pipeline-sampler.ts'
import {
  alarmRoutes, detectionRoutes, deviceRoutes, healthRoutes, ingestRoutes, liveRoutes, pipelineRoutes, recordRoutes, sessionRoutes, viewRoutes, webRoutes
} from './routes/index.ts'
import { SessionCookies } from './session.ts'
import { ApiTokens } from './tokens.ts'

export type { ApiDeps, DeviceIngest, ReadinessCheck } from './deps.ts'

/** The name of the Prometheus counter of answered requests. */
export const HTTP_REQUESTS = 'iot_http_requests_total'

/** Seconds a client is asked to wait (Retry-After) while the database is unreachable. */
const RETRY_AFTER_S = 5

const unavailableBody = { error: 'unavailable', code: 'IOT_ERR_DB_UNAVAILABLE', message: 'the database is unreachable; retry later' }

/** The built dashboard (npm run build:web). */
const defaultWebRoot = fileURLToPath(new URL('../../web/dist', import.meta.url))

/** The HTTP API: JSON endpoints over the stored data, /health and Prometheus /metrics. Never listens itself. */
export async function buildApp (deps: ApiDeps): Promise<FastifyInstance> {
  // Requests are logged at info: the API's logger starts at warn, so only problems are logged, never each request.
  const logger: FastifyBaseLogger = deps.logger?.child({ component: 'api' }, { level: 'warn' }) ?? pino({ level: 'silent' })
  // Unknown query parameters are errors (Fastify's default would silently drop them: a typo would filter nothing).
  const app = Fastify({ loggerInstance: logger, ajv: { customOptions: { removeAdditional: false } } })

  // Set before the plugins are registered, so that every plugin's routes inherit it.
  app.setErrorHandler((err: { code?: string, statusCode?: number, message: string, validation?: unknown }, _req, reply) => {
    if (err.validation !== undefined || err.code === 'IOT_ERR_VALIDATION') {
      return reply.code(400).send({ error: 'bad_request', code: 'IOT_ERR_VALIDATION', message: err.message })
    }
    // Fastify's own refusals of a request (a body over the route's limit, broken JSON, an unknown content type).
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: 'payload_too_large', code: 'IOT_ERR_TOO_LARGE', message: 'the request body is larger than this endpoint takes' })
    }
    if (err.code?.startsWith('FST_') === true && err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: 'bad_request', code: 'IOT_ERR_VALIDATION', message: err.message })
    }
    if (isUnavailable(err)) {
      // An outage is reported once where the database is watched, not for each request.
      app.log.debug({ err }, 'Request failed: the database is unreachable.')
      return reply.code(503).header('retry-after', String(RETRY_AFTER_S)).send(unavailableBody)
    }
    app.log.error({ err }, 'Request failed.')
    // Internals (database messages and codes) stay in the log.
    return reply.code(500).send({ error: 'internal', code: 'IOT_ERR_INTERNAL', message: 'internal error; see the server log' })
  })

  const { db, registry, status } = deps
  const now = deps.now ?? Date.now
  // Who may read (./access.ts): checked before anything else a request does.
  const tokens = new ApiTokens({ viewerToken: deps.viewerToken ?? null, adminToken: deps.adminToken ?? null })
  const readRequiresToken = deps.readRequiresToken ?? false
  if (readRequiresToken && !tokens.any) throw new IotError('IOT_ERR_CONFIG', 'reading needs a token, and neither a viewer nor an admin token is configured')
  const apiRefused = counterIn(registry, API_REFUSED, ['scope', 'reason'])
  const sessions = new SessionCookies(tokens.sessionKey)
  if (readRequiresToken) guardReads(app, { tokens, sessions, now, refused: apiRefused })
  // Requests served (the status line of an api process shows their rate).
  const requests = registry.getSingleMetric(HTTP_REQUESTS) as Counter | undefined ??
    new Counter({ name: HTTP_REQUESTS, help: 'HTTP requests answered.', registers: [registry] })
  app.addHook('onResponse', async () => { requests.inc() })
  // While the database is known to be away, its endpoints answer at once instead of waiting for a connection.
  const reachable = deps.databaseReachable
  if (reachable !== undefined) {
    app.addHook('onRequest', async (req, reply) => {
      // Device ingest (/api/v1/…, /api/v2/write) goes to the bus, not the database; the live stream waits by itself.
      if (!reachable() && req.url.startsWith('/api/') && !/^\/api\/(live|v1\/|v2\/)/.test(req.url)) {
        return await reply.code(503).header('retry-after', String(RETRY_AFTER_S)).send(unavailableBody)
      }
    })
  }
  const windowing = deps.windowing ?? defaultWindowingOptions
  const hub = deps.live ?? new LiveHub()
  const sampler = new PipelineSampler({ db, status, hub, now, log: app.log, databaseReachable: deps.databaseReachable })
  // No worker here: what the workers store is read back while dashboards are connected.
  const tail = (deps.tailDatabase ?? deps.live === undefined) ? { db, openSpanMs: windowing.sizeMs + windowing.maxOutOfOrdernessMs + windowing.allowedLatenessMs } : null

  await app.register(healthRoutes, { db, registry, status, readiness: deps.readiness })
  await app.register(recordRoutes, { db })
  await app.register(detectionRoutes, { db })
  await app.register(viewRoutes, { db, windowMs: windowing.sizeMs, allowedLatenessMs: windowing.allowedLatenessMs, now, watermark: () => status().watermark })
  await app.register(pipelineRoutes, { db, status, sampler })
  await app.register(liveRoutes, { hub, tail, sampler })
  if (deps.ingest !== undefined) await app.register(ingestRoutes, { ingest: deps.ingest, now, refused: counterIn(registry, INGEST_REFUSED, ['reason']) })
  await app.register(sessionRoutes, { tokens, sessions, readRequiresToken, now, refused: apiRefused })
  await app.register(deviceRoutes, { db, tokens, refused: apiRefused, now, registry: deps.deviceRegistry })
  await app.register(alarmRoutes, { db, tokens, refused: apiRefused, now, hub, registry, log: deps.logger, ...(deps.alarmPollMs === undefined ? {} : { pollMs: deps.alarmPollMs }) })
  await app.register(webRoutes, { webRoot: deps.webRoot === undefined ? defaultWebRoot : deps.webRoot })
  return app
}
