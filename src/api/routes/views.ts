// The dashboard's views over a time range: what the filters offer, the KPIs, chart series, and the
// correlation and statistics per location and sensor type. Ranges default to a span before the
// newest reading (event time may run ahead of the wall clock).
import { type FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { type Queryable, correlation, loadMeta, openWindows, rangeStats, sensorCounts, sensorUnits, series } from '../../storage/index.ts'
import {
  type CorrelationJson, type CountByKey, type LocationStatsJson, type MetaJson, type OverviewJson, type SeriesJson, type SeriesPoint
} from '../contract.ts'
import { iso, isoOrNull } from '../json.ts'
import { type Range, RangeSchema, limitField, querySchema, rangeFields, rangeOf } from '../query.ts'

export interface ViewRoutesOptions {
  db: Queryable
  /** Size of the stored windows (the series resolution between raw readings and hours). */
  windowMs: number
  /** How long after its end a window stays open (it counts open windows only that far behind the watermark). */
  allowedLatenessMs: number
  /** The watermark known here (windows that end before it minus the lateness are final). */
  watermark: () => number
  /** Wall clock: ranges end at it while nothing is stored. */
  now: () => number
}

const SeriesQuery = querySchema({
  ...rangeFields,
  max_points: Type.Optional(limitField(10, 2000, 300)),
  group_by: Type.Optional(Type.Union([Type.Literal('location'), Type.Literal('sensor_type')])),
  min_resolution: Type.Optional(Type.Union([Type.Literal('raw'), Type.Literal('window'), Type.Literal('hour')])),
  // exclude: every point over the readings the combined verdict did not flag (bands of normal behaviour)
  anomalies: Type.Optional(Type.Union([Type.Literal('include'), Type.Literal('exclude')]))
})

const MINUTE = 60_000
const HOUR = 3_600_000
/** Sensors with a reading this close (event time) to the newest one count as active. */
const ACTIVE_SPAN_MS = 5 * MINUTE

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

export const viewRoutes: FastifyPluginAsync<ViewRoutesOptions> = async (app, { db, windowMs, allowedLatenessMs, now, watermark }) => {
  const unitsByType = async (): Promise<Map<string, string>> => new Map((await sensorUnits(db)).map(t => [t.sensorType, t.unit]))

  app.get('/api/meta', async (): Promise<MetaJson> => {
    const m = await loadMeta(db)
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
    const r = await rangeOf(db, req.query, HOUR, now)
    const [stats, open, sensors] = await Promise.all([
      rangeStats(db, r),
      // Only windows near the watermark can be open: that bound keeps the count to a few rows.
      openWindows(db, r, watermark() - allowedLatenessMs - windowMs),
      sensorCounts(db, r, (r.newest ?? now()) - ACTIVE_SPAN_MS)
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
    const r = await rangeOf(db, req.query, HOUR, now)
    const [result, units] = await Promise.all([
      series(db, r, {
        maxPoints: req.query.max_points ?? 300,
        groupBy: req.query.group_by ?? 'location',
        windowMs,
        minResolution: req.query.min_resolution ?? 'raw',
        withoutAnomalies: req.query.anomalies === 'exclude'
      }),
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

  app.get<{ Querystring: Range }>('/api/analytics/correlation', { schema: { querystring: RangeSchema } }, async (req): Promise<CorrelationJson> => {
    const r = await rangeOf(db, req.query, 24 * HOUR, now)
    const c = await correlation(db, { location: r.location, from: r.from, to: r.to })
    return { from: iso(r.from), to: iso(r.to), resolution: c.resolution, sensor_types: c.sensorTypes, matrix: c.matrix, pairs: c.pairs }
  })

  app.get<{ Querystring: Range }>('/api/analytics/stats', { schema: { querystring: RangeSchema } }, async (req): Promise<LocationStatsJson> => {
    const r = await rangeOf(db, req.query, 24 * HOUR, now)
    const [stats, units] = await Promise.all([rangeStats(db, r), unitsByType()])
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
}
