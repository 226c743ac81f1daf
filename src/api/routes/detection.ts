// The detectors: their quality against the simulator's labels, the stored Isolation Forest models and
// a histogram of the newest scores.
import { type FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { detectionQuality } from '../../anomaly/index.ts'
import { type Queryable, loadDetectionCounts, recentModels, recentScores, scoreBins } from '../../storage/index.ts'
import { type ScoreHistogramJson } from '../contract.ts'
import { modelJson } from '../json.ts'
import { DEFAULT_LIMIT, LimitSchema, filterOf, limitField, querySchema, rangeFields } from '../query.ts'
import { listRoute } from './list.ts'

export interface DetectionRoutesOptions {
  db: Queryable
}

const QualityQuery = querySchema({ sensor_type: rangeFields.sensor_type })
const ScoresQuery = querySchema({ ...rangeFields, limit: Type.Optional(limitField(100, 5000, 1000)) })

export const detectionRoutes: FastifyPluginAsync<DetectionRoutesOptions> = async (app, { db }) => {
  app.get<{ Querystring: Static<typeof QualityQuery> }>('/api/detection/quality', { schema: { querystring: QualityQuery } }, async (req) => {
    return detectionQuality(await loadDetectionCounts(db, req.query.sensor_type))
  })

  listRoute(app, '/api/detection/models', LimitSchema, 'models', q => recentModels(db, q.limit ?? DEFAULT_LIMIT), modelJson)

  app.get<{ Querystring: Static<typeof ScoresQuery> }>('/api/detection/scores', { schema: { querystring: ScoresQuery } }, async (req): Promise<ScoreHistogramJson> => {
    const rows = await recentScores(db, filterOf({ ...req.query, limit: req.query.limit ?? 1000 }))
    return { readings: rows.length, bins: scoreBins(rows) }
  })
}
