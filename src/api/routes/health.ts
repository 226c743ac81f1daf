// GET /health (liveness: the process answers; the pipeline's watermark and lag), GET /ready
// (readiness: the database answers and the pipeline stores; 503 with the reasons when not) and
// GET /metrics (Prometheus text).
import { type FastifyPluginAsync } from 'fastify'
import { type Registry } from 'prom-client'
import { answersWithin } from '../../storage/index.ts'
import { type ApiDb, type PipelineStatus, type ReadinessCheck } from '../deps.ts'
import { iso } from '../json.ts'

export interface HealthRoutesOptions {
  db: ApiDb
  registry: Registry
  status: PipelineStatus
  readiness: ReadinessCheck | undefined
}

/** Without a readiness check of the process: ready when the database answers within this. */
const PROBE_TIMEOUT_MS = 3000

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { db, registry, status, readiness }) => {
  // Liveness never touches the database: an orchestrator restarting the process would not bring it back.
  app.get('/health', async () => {
    const s = status()
    return { status: 'ok', database: db.kind, watermark: Number.isFinite(s.watermark) ? iso(s.watermark) : null, lag: s.lag }
  })

  const probe = async (): Promise<{ ready: boolean, reasons: string[] }> => {
    try {
      await answersWithin(db, PROBE_TIMEOUT_MS)
      return { ready: true, reasons: [] }
    } catch (err) {
      return { ready: false, reasons: [`the database does not answer: ${(err as Error).message}`] }
    }
  }

  app.get('/ready', async (_req, reply) => {
    const r = readiness === undefined ? await probe() : readiness()
    if (r.ready) return { status: 'ready' }
    return await reply.code(503).send({ status: 'not ready', reasons: r.reasons })
  })

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', registry.contentType)
    return await registry.metrics()
  })
}
