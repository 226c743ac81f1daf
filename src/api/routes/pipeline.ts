// GET /api/pipeline: the pipeline's health for the dashboard's header strip. The readings/s sampler
// lives as long as the app: it samples from the moment the app is ready (so the first answer already
// has a rate) until the app closes.
import { type FastifyPluginAsync } from 'fastify'
import { keptAsideCounts, newestModels, newestReadingTime } from '../../storage/index.ts'
import { type PipelineJson } from '../contract.ts'
import { type ApiDb, type PipelineStatus } from '../deps.ts'
import { isoOrNull, modelJson } from '../json.ts'
import { type PipelineSampler } from '../pipeline-sampler.ts'

export interface PipelineRoutesOptions {
  db: ApiDb
  status: PipelineStatus
  sampler: PipelineSampler
}

export const pipelineRoutes: FastifyPluginAsync<PipelineRoutesOptions> = async (app, { db, status, sampler }) => {
  app.addHook('onReady', async () => { await sampler.start() })
  app.addHook('onClose', async () => { await sampler.stop() })

  app.get('/api/pipeline', async (): Promise<PipelineJson> => {
    const [s, kept, models, newest] = await Promise.all([sampler.sample(), keptAsideCounts(db), newestModels(db), newestReadingTime(db)])
    const st = status()
    return {
      database: db.kind,
      readings_per_s: s.rate,
      readings_total: s.readingsTotal,
      latency_ms: st.latency,
      watermark: isoOrNull(st.watermark),
      newest_event: isoOrNull(newest),
      late_readings: kept.lateReadings,
      dead_letters: kept.deadLetters,
      consumer_lag: st.lag,
      models: models.map(modelJson)
    }
  })
}
