// Queries behind the dashboard. Anything over a time range reads windows and hourly roll-ups, never
// raw readings (except a chart over a span short enough to hold few raw rows), so each answers in
// milliseconds whatever the size of the raw readings.
import { timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'
import { keyConds, param, tsParam } from './filter-sql.ts'
import { type WindowStats } from '../windowing/index.ts'
import { FLAG, readingsWithSensor } from './readings.ts'

const HOUR_MS = 3_600_000

export interface RangeFilter {
  location?: string | undefined
  sensorType?: string | undefined
  /** Inclusive lower bound on event time (epoch ms). */
  from: number
  /** Exclusive upper bound on event time (epoch ms). */
  to: number
}

export interface Meta {
  locations: string[]
  sensorTypes: { sensorType: string, unit: string }[]
  sensors: number
  oldest: number | null
  newest: number | null
}

/** The sensor types seen and their unit, by name. */
export async function sensorUnits (db: Queryable): Promise<{ sensorType: string, unit: string }[]> {
  const rows = await db.query<{ sensorType: string, unit: string }>('SELECT sensor_type AS "sensorType", min(unit) AS unit FROM sensors GROUP BY 1 ORDER BY 1')
  return rows.map(t => ({ sensorType: t.sensorType, unit: t.unit }))
}

/** What the filters offer, from the sensors table (one row per sensor, and per place it has been). */
export async function loadMeta (db: Queryable): Promise<Meta> {
  const [types, locations, span] = await Promise.all([
    sensorUnits(db),
    db.query<{ location: string }>('SELECT DISTINCT location FROM sensors ORDER BY 1'),
    db.query<{ n: number, oldest: number | null, newest: number | null }>(`SELECT count(DISTINCT sensor_id)::int AS n,
      ${timestampToMs('min(first_seen)')} AS oldest, ${timestampToMs('max(last_seen)')} AS newest FROM sensors`)
  ])
  const s = span[0]
  return { locations: locations.map(l => l.location), sensorTypes: types, sensors: s?.n ?? 0, oldest: s?.oldest ?? null, newest: s?.newest ?? null }
}

/** Event time of the newest stored reading (null when none). */
export async function newestReadingTime (db: Queryable): Promise<number | null> {
  const [r] = await db.query<{ t: number | null }>(`SELECT ${timestampToMs('max(last_seen)')} AS t FROM sensors`)
  return r?.t ?? null
}

/** Window statistics merged over a range, per location and sensor type (`readings` is the windows' count summed). */
export interface RangeStats extends Omit<WindowStats, 'count'> {
  location: string
  sensorType: string
  readings: number
  windows: number
}

/**
 * Statistics of the windows that start in [from, to), per location and sensor type: whole hours
 * inside the range come from the hourly roll-ups, the edges from the windows (exact when the window
 * size divides an hour, as 60 s does). At most (2 h of windows + the hours) rows per series.
 */
export async function rangeStats (db: Queryable, f: RangeFilter): Promise<RangeStats[]> {
  let h1 = Math.ceil(f.from / HOUR_MS) * HOUR_MS
  let h2 = Math.floor(f.to / HOUR_MS) * HOUR_MS
  if (h1 >= h2) h1 = h2 = f.to
  const p: unknown[] = []
  const keys = keyConds(f, p)
  const k = keys.length > 0 ? ` AND ${keys.join(' AND ')}` : ''
  const from = tsParam(p, f.from); const to = tsParam(p, f.to); const a = tsParam(p, h1); const b = tsParam(p, h2)
  return await db.query<RangeStats>(`
    WITH parts AS (
      SELECT location, sensor_type, count_readings::float8 AS n, avg_value AS av, m2, min_value AS mn, max_value AS mx,
             anomaly_count AS ra, label_anomaly_count AS la, z_score_anomalies AS za, ml_anomaly_count AS ma,
             combined_anomaly_count AS ca, 1 AS w
      FROM sensor_aggregates
      WHERE ((window_start >= ${from} AND window_start < ${a}) OR (window_start >= ${b} AND window_start < ${to}))${k}
      UNION ALL
      SELECT location, sensor_type, count_readings::float8, avg_value, m2, min_value, max_value, anomaly_count, label_anomaly_count,
             z_score_anomalies, ml_anomaly_count, combined_anomaly_count, windows
      FROM sensor_aggregates_hourly WHERE hour_start >= ${a} AND hour_start < ${b}${k})
    SELECT location, sensor_type AS "sensorType", sum(n) AS readings, sum(n * av) / sum(n) AS avg, min(mn) AS min, max(mx) AS max,
           sqrt(greatest(0, sum(m2) + sum(n * av * av) - sum(n * av) ^ 2 / sum(n)) / sum(n)) AS stddev,
           sum(ra)::float8 AS "ruleAnomalies", sum(la)::float8 AS "labelAnomalies", sum(za)::float8 AS "zAnomalies",
           sum(ma)::float8 AS "mlAnomalies", sum(ca)::float8 AS "combinedAnomalies", sum(w)::float8 AS windows
    FROM parts WHERE n > 0 GROUP BY 1, 2 ORDER BY 1, 2`, p)
}

/**
 * Windows not final yet in the range. Windows that start before `openSince` are final (the caller
 * knows the watermark): the scan starts there, not at the beginning of a long range.
 */
export async function openWindows (db: Queryable, f: RangeFilter, openSince = -Infinity): Promise<number> {
  const p: unknown[] = []
  const from = Number.isFinite(openSince) ? Math.max(f.from, openSince) : f.from
  if (from >= f.to) return 0
  const conds = [...keyConds(f, p), 'NOT is_final', `window_start >= ${tsParam(p, from)}`, `window_start < ${tsParam(p, f.to)}`]
  const [r] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM sensor_aggregates WHERE ${conds.join(' AND ')}`, p)
  return r?.n ?? 0
}

export interface SensorCounts {
  sensors: number
  active: number
  locations: number
}

/** Sensors matching the filter, those with a reading at or after `activeSince`, and their locations. */
export async function sensorCounts (db: Queryable, f: { location?: string | undefined, sensorType?: string | undefined }, activeSince: number): Promise<SensorCounts> {
  const p: unknown[] = []
  const conds = keyConds(f, p)
  const since = tsParam(p, activeSince)
  const [r] = await db.query<SensorCounts>(`SELECT count(DISTINCT sensor_id)::int AS sensors,
    count(DISTINCT sensor_id) FILTER (WHERE last_seen >= ${since})::int AS active,
    count(DISTINCT location)::int AS locations FROM sensors ${conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : ''}`, p)
  return r ?? { sensors: 0, active: 0, locations: 0 }
}

export type Resolution = 'raw' | 'window' | 'hour'

export interface SeriesOptions {
  maxPoints: number
  groupBy: 'location' | 'sensor_type'
  windowMs: number
  /** Raw rows a chart may read at most; beyond that it reads windows. */
  rawLimit?: number
  /** Window rows a chart may read at most; beyond that it reads hourly roll-ups. */
  windowLimit?: number
  /** Points over all series at most: with many series, each gets fewer than maxPoints. */
  totalPoints?: number
  /** The finest source to read (`window`: never raw readings, e.g. for a view of the windows). */
  minResolution?: Resolution
  /** Leave out the readings the combined verdict flagged (bands and lines of normal behaviour). */
  withoutAnomalies?: boolean
}

export interface SeriesBucket {
  sensorType: string
  name: string
  t: number
  avg: number
  min: number
  max: number
  n: number
}

export interface SeriesResult {
  resolution: Resolution
  bucketMs: number
  rowsRead: number
  buckets: SeriesBucket[]
}

/** The smallest multiple of `unit` that splits `span` into at most `maxPoints` buckets. */
export function bucketSize (span: number, maxPoints: number, unit: number): number {
  return Math.max(1, Math.ceil(span / maxPoints / unit)) * unit
}

/**
 * Time series of avg/min/max per sensor type and location (or per sensor type alone) in at most
 * `maxPoints` buckets per series, and at most `totalPoints` over all series (default 3000). Reads raw readings when the range holds at most `rawLimit` of
 * them and buckets finer than a window are wanted, else windows when at most `windowLimit` window
 * rows, else hourly roll-ups; the answer says which and how many rows it read.
 */
export async function series (db: Queryable, f: RangeFilter, o: SeriesOptions): Promise<SeriesResult> {
  const span = Math.max(1, f.to - f.from)
  const stats = await rangeStats(db, f)
  const raw = stats.reduce((s, x) => s + x.readings, 0)
  const windowRows = stats.reduce((s, x) => s + x.windows, 0)
  const seriesCount = o.groupBy === 'location' ? stats.length : new Set(stats.map(x => x.sensorType)).size
  const maxPoints = Math.min(o.maxPoints, Math.max(10, Math.floor((o.totalPoints ?? 3000) / Math.max(1, seriesCount))))
  let resolution: Resolution
  let bucketMs: number
  const finest = o.minResolution ?? 'raw'
  if (finest === 'raw' && raw <= (o.rawLimit ?? 20_000) && span / maxPoints < o.windowMs) {
    resolution = 'raw'
    bucketMs = bucketSize(span, maxPoints, 1000)
  } else if (finest !== 'hour' && windowRows <= (o.windowLimit ?? 40_000) && span / maxPoints < HOUR_MS) {
    resolution = 'window'
    bucketMs = bucketSize(span, maxPoints, o.windowMs)
  } else {
    resolution = 'hour'
    bucketMs = bucketSize(span, maxPoints, HOUR_MS)
  }
  const p: unknown[] = []
  const keys = keyConds(f, p)
  const name = o.groupBy === 'location' ? 'location' : 'sensor_type'
  const normal = o.withoutAnomalies === true
  const table = resolution === 'raw'
    // Written as an inequality: the planner takes "= 0" of an expression as 0.5% of the rows (the
    // grouping then sorted on disk), "<>" as nearly all, which a reading not flagged is.
    ? { from: readingsWithSensor, time: 'r.ts', n: '1::float8', avg: 'value', min: 'value', max: 'value', only: normal ? `r.flags & ${FLAG.combined} <> ${FLAG.combined}` : null }
    : {
        from: resolution === 'window' ? 'sensor_aggregates' : 'sensor_aggregates_hourly',
        time: resolution === 'window' ? 'window_start' : 'hour_start',
        ...(normal
          ? { n: 'normal_count::float8', avg: 'normal_avg', min: 'normal_min', max: 'normal_max', only: 'normal_count > 0' }
          : { n: 'count_readings::float8', avg: 'avg_value', min: 'min_value', max: 'max_value', only: null })
      }
  // Buckets by date_bin on the timestamp (cheap per row), aligned to the epoch; converted to ms once per bucket.
  const bin = `date_bin(${param(p, bucketMs)}::float8 * interval '1 millisecond', ${table.time}, to_timestamp(0))`
  const conds = [...keys, `${table.time} >= ${tsParam(p, f.from)}`, `${table.time} < ${tsParam(p, f.to)}`, ...(table.only === null ? [] : [table.only])]
  const rows = await db.query<SeriesBucket & { rows: number }>(`
    SELECT "sensorType", name, ${timestampToMs('b')} AS t, avg, min, max, n, rows FROM (
      SELECT sensor_type AS "sensorType", ${name} AS name, ${bin} AS b,
             sum(${table.n} * ${table.avg}) / sum(${table.n}) AS avg, min(${table.min}) AS min, max(${table.max}) AS max,
             sum(${table.n}) AS n, count(*)::int AS rows
      FROM ${table.from} WHERE ${conds.join(' AND ')}
      GROUP BY 1, 2, 3) g`, p)
  let rowsRead = 0
  const buckets = rows.map(({ rows: r, ...bucket }) => { rowsRead += r; return bucket })
  // Sorted here rather than in SQL: a sort on text keys under the database's collation costs more than the grouping.
  buckets.sort((a, b) => a.sensorType < b.sensorType ? -1 : a.sensorType > b.sensorType ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : a.t - b.t)
  return { resolution, bucketMs, rowsRead, buckets }
}

export interface Correlation {
  resolution: Resolution
  sensorTypes: string[]
  /** Pearson r per pair (null with fewer than 3 aligned pairs or no variance). */
  matrix: (number | null)[][]
  pairs: number[][]
}

/**
 * Correlation between sensor types of their window (or hourly) means, aligned on location and
 * window start and centred per location and type, so that rooms at different levels do not pose
 * as correlation. Windows for spans up to `windowSpanLimitMs`, hourly roll-ups beyond. One pass:
 * the windows are pivoted to one row per (location, start) with a column per type, and every
 * pair's corr() is computed in the same aggregate.
 */
export async function correlation (db: Queryable, f: Omit<RangeFilter, 'sensorType'>, windowSpanLimitMs = 2 * 86_400_000): Promise<Correlation> {
  const resolution: Resolution = f.to - f.from <= windowSpanLimitMs ? 'window' : 'hour'
  const known = (await sensorUnits(db)).map(u => u.sensorType)
  if (known.length === 0) return { resolution, sensorTypes: [], matrix: [], pairs: [] }
  const table = resolution === 'window' ? { from: 'sensor_aggregates', time: 'window_start' } : { from: 'sensor_aggregates_hourly', time: 'hour_start' }
  const p: unknown[] = []
  const conds = [...keyConds(f, p), `${table.time} >= ${tsParam(p, f.from)}`, `${table.time} < ${tsParam(p, f.to)}`]
  const pivot = known.map((t, i) => `max(avg_value) FILTER (WHERE sensor_type = ${param(p, t)}) AS x${i}`)
  const centred = known.map((_, i) => `x${i} - avg(x${i}) OVER (PARTITION BY location) AS x${i}`)
  const pairs: [number, number][] = []
  for (let i = 0; i < known.length; i++) for (let j = i; j < known.length; j++) pairs.push([i, j])
  const [row] = await db.query<Record<string, number | null>>(`
    WITH p AS (SELECT location, ${pivot.join(', ')} FROM ${table.from} WHERE ${conds.join(' AND ')} GROUP BY location, ${table.time}),
         c AS (SELECT ${centred.join(', ')} FROM p)
    SELECT ${pairs.map(([i, j]) => `corr(x${i}, x${j}) AS r${i}_${j}, count(x${i} * x${j})::int AS n${i}_${j}`).join(', ')} FROM c`, p)
  // Types without a window in the range are left out.
  const present = known.map((_, i) => i).filter(i => (row?.[`n${i}_${i}`] ?? 0) > 0)
  const matrix = present.map(() => present.map((): number | null => null))
  const counts = present.map(() => present.map(() => 0))
  present.forEach((i, a) => present.forEach((j, b) => {
    const [lo, hi] = i <= j ? [i, j] : [j, i]
    const n = row?.[`n${lo}_${hi}`] ?? 0
    const r = row?.[`r${lo}_${hi}`] ?? null
    counts[a]![b] = n
    // Rounding can put corr() a hair outside [-1, 1]; the diagonal is 1 by definition where defined.
    matrix[a]![b] = n < 3 || r === null ? null : i === j ? 1 : Math.max(-1, Math.min(1, r))
  }))
  return { resolution, sensorTypes: present.map(i => known[i]!), matrix, pairs: counts }
}

export interface ScoreBin {
  from: number
  to: number
  normal: number
  anomalous: number
}

/**
 * Histogram of the Isolation Forest scores (20 bins over [0, 1]) of the given scored readings,
 * split by the combined verdict.
 */
export function scoreBins (readings: readonly { mlScore: number | null, combinedAnomaly: boolean }[], bins = 20): ScoreBin[] {
  const out = Array.from({ length: bins }, (_, i) => ({ from: i / bins, to: (i + 1) / bins, normal: 0, anomalous: 0 }))
  for (const r of readings) {
    if (r.mlScore === null || !Number.isFinite(r.mlScore)) continue
    const bin = out[Math.min(bins - 1, Math.max(0, Math.floor(r.mlScore * bins)))]!
    if (r.combinedAnomaly) bin.anomalous++
    else bin.normal++
  }
  return out
}

/** Readings stored, from detection_counts (a few hundred rows, whatever the readings): sampled every second for the rate. */
export async function storedReadingsTotal (db: Queryable): Promise<number> {
  const [r] = await db.query<{ n: number }>('SELECT coalesce(sum(readings), 0)::float8 AS n FROM detection_counts')
  return r?.n ?? 0
}

/** Late readings and dead letters kept, for the health strip (counted when asked, not sampled). */
export async function keptAsideCounts (db: Queryable): Promise<{ lateReadings: number, deadLetters: number }> {
  const [r] = await db.query<{ lateReadings: number, deadLetters: number }>(`SELECT
    (SELECT count(*)::float8 FROM late_readings) AS "lateReadings",
    (SELECT count(*)::float8 FROM dead_letters) AS "deadLetters"`)
  return r ?? { lateReadings: 0, deadLetters: 0 }
}
