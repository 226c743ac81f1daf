// The detectors: their quality against the simulator's labels, the stored Isolation Forest models,
// a histogram of the newest scores, and the device-level detector's scores per device.
import { type FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { detectionQuality } from '../../anomaly/index.ts'
import { IotError } from '../../domain/index.ts'
import { type Queryable, deviceScores, listDeviceScoreSummaries, loadDetectionCounts, recentModels, recentScores, scoreBins } from '../../storage/index.ts'
import { type DeviceScoresJson, type DeviceScoresListJson, type ScoreHistogramJson } from '../contract.ts'
import { iso, modelJson } from '../json.ts'
import { DEFAULT_LIMIT, LimitSchema, filterOf, limitField, MAX_TIME, MIN_TIME, querySchema, rangeFields, toTime } from '../query.ts'
import { listRoute } from './list.ts'

export interface DetectionRoutesOptions {
  db: Queryable
}

const QualityQuery = querySchema({ sensor_type: rangeFields.sensor_type })
const ScoresQuery = querySchema({ ...rangeFields, limit: Type.Optional(limitField(100, 5000, 1000)) })
const DeviceParams = Type.Object({ device: Type.String({ minLength: 1, maxLength: 200 }) })
const DeviceScoresQuery = querySchema({ from: rangeFields.from, to: rangeFields.to, limit: Type.Optional(limitField(1, 5000, 600)) })
const DAY_MS = 86_400_000

export const detectionRoutes: FastifyPluginAsync<DetectionRoutesOptions> = async (app, { db }) => {
  app.get<{ Querystring: Static<typeof QualityQuery> }>('/api/detection/quality', { schema: { querystring: QualityQuery } }, async (req) => {
    return detectionQuality(await loadDetectionCounts(db, req.query.sensor_type))
  })

  listRoute(app, '/api/detection/models', LimitSchema, 'models', q => recentModels(db, q.limit ?? DEFAULT_LIMIT), modelJson)

  app.get<{ Querystring: Static<typeof ScoresQuery> }>('/api/detection/scores', { schema: { querystring: ScoresQuery } }, async (req): Promise<ScoreHistogramJson> => {
    const rows = await recentScores(db, filterOf({ ...req.query, limit: req.query.limit ?? 1000 }))
    return { readings: rows.length, bins: scoreBins(rows) }
  })

  app.get('/api/detection/devices', { schema: { querystring: querySchema({}) } }, async (): Promise<DeviceScoresListJson> => {
    const rows = await listDeviceScoreSummaries(db, DAY_MS)
    return {
      devices: rows.map(d => ({
        device: d.device,
        measurements: d.measurements,
        first_seen: iso(d.firstSeen),
        last_seen: iso(d.lastSeen),
        last_score: d.lastScore,
        last_anomaly: d.lastAnomaly,
        anomalies_24h: d.anomalies
      }))
    }
  })

  app.get<{ Params: Static<typeof DeviceParams>, Querystring: Static<typeof DeviceScoresQuery> }>('/api/detection/devices/:device/scores',
    { schema: { params: DeviceParams, querystring: DeviceScoresQuery } }, async (req): Promise<DeviceScoresJson> => {
      const { device } = req.params
      const from = toTime(req.query.from, 'from') ?? MIN_TIME
      const to = toTime(req.query.to, 'to') ?? MAX_TIME + 1
      if (from >= to) throw new IotError('IOT_ERR_VALIDATION', `from (${iso(from)}) must be before to (${iso(to)})`)
      const points = await deviceScores(db, device, from, to, req.query.limit ?? 600)
      return {
        device,
        scores: points.map(p => ({
          ts: iso(p.ts), measurements: p.measurements, score: p.score, row_score: p.rowScore, anomaly: p.anomaly, model_version: p.modelVersion, explanation: p.explanation
        }))
      }
    })
}
