// The stored records as lists, newest first: readings, anomalies, windows, late readings and dead letters.
import { type FastifyPluginAsync } from 'fastify'
import { Type } from '@sinclair/typebox'
import { type Queryable, recentAggregates, recentAnomalies, recentDeadLetters, recentLateReadings, recentReadings } from '../../storage/index.ts'
import { iso, readingJson, windowJson } from '../json.ts'
import { DEFAULT_LIMIT, FilterSchema, LimitSchema, filterOf, listLimit, querySchema, rangeFields } from '../query.ts'
import { listRoute } from './list.ts'

export interface RecordRoutesOptions {
  db: Queryable
}

const detectors = ['any', 'rule', 'zscore', 'ml', 'stuck', 'drift', 'combined'] as const
const AnomalyQuery = querySchema({
  ...rangeFields,
  limit: listLimit,
  detector: Type.Optional(Type.Union(detectors.map(d => Type.Literal(d))))
})

export const recordRoutes: FastifyPluginAsync<RecordRoutesOptions> = async (app, { db }) => {
  listRoute(app, '/api/readings', FilterSchema, 'readings', q => recentReadings(db, filterOf(q)), readingJson)

  listRoute(app, '/api/anomalies', AnomalyQuery, 'anomalies', q => recentAnomalies(db, filterOf(q), q.detector ?? 'any'), readingJson)

  listRoute(app, '/api/aggregates', FilterSchema, 'aggregates', q => recentAggregates(db, filterOf(q)), windowJson)

  listRoute(app, '/api/late-readings', FilterSchema, 'late_readings', q => recentLateReadings(db, filterOf(q)), r => ({
    sensor_id: r.sensorId,
    location: r.location,
    sensor_type: r.sensorType,
    value: r.value,
    timestamp: iso(r.timestamp),
    window_start: iso(r.windowStart),
    lateness_ms: r.latenessMs
  }))

  listRoute(app, '/api/dead-letters', LimitSchema, 'dead_letters', q => recentDeadLetters(db, q.limit ?? DEFAULT_LIMIT),
    d => ({ id: d.id, received_at: iso(d.receivedAt), source: d.source, reason: d.reason, detail: d.detail, raw: d.raw }))
}
