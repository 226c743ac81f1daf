// GET /health (the database answers; the pipeline's watermark and lag) and GET /metrics (Prometheus text).
import { type FastifyPluginAsync } from 'fastify'
import { type Registry } from 'prom-client'
import { type ApiDb, type PipelineStatus } from '../deps.ts'
import { iso } from '../json.ts'

export interface HealthRoutesOptions {
  db: ApiDb
  registry: Registry
  status: PipelineStatus
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { db, registry, status }) => {
  app.get('/health', async (_req, reply) => {
    const s = status()
    try {
      await db.query('SELECT 1')
    } catch (err) {
      return await reply.code(503).send({ status: 'unavailable', database: db.kind, error: (err as Error).message })
    }
    return { status: 'ok', database: db.kind, watermark: Number.isFinite(s.watermark) ? iso(s.watermark) : null, lag: s.lag }
  })

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', registry.contentType)
    return await registry.metrics()
  })
}
