// sensor_aggregates (event-time windows) and sensor_aggregates_hourly (their roll-ups): deltas merge
// exactly (mergeable accumulators, Chan's formula in SQL); windows become final under the watermark.
import { type WindowAggregate } from '../domain/index.ts'
import { type WindowDelta, rollUp, rollUpKey } from '../windowing/index.ts'
import { msToTimestamp, numberArray, textArray, timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'
import { type QueryFilter, whereFilter } from './filter-sql.ts'

const HOUR_MS = 3_600_000

export const aggregateColumns = `
  ${timestampToMs('window_start')} AS "windowStart", ${timestampToMs('window_end')} AS "windowEnd",
  location, sensor_type AS "sensorType", avg_value AS avg, min_value AS min, max_value AS max,
  stddev_value AS stddev, count_readings AS count, anomaly_count AS "anomalyCount",
  label_anomaly_count AS "labelAnomalyCount", z_score_anomalies AS "zScoreAnomalies",
  ml_anomaly_count AS "mlAnomalyCount", combined_anomaly_count AS "combinedAnomalyCount", revision, is_final AS "isFinal"`

// Chan's merge of a stored row `a` with the incoming delta `excluded`, in SQL.
const mergedN = 'a.count_readings::float8 + excluded.count_readings'
const meanDiff = '(excluded.avg_value - a.avg_value)'
const mergedM2 = `a.m2 + excluded.m2 + ${meanDiff} * ${meanDiff} * (a.count_readings::float8 * excluded.count_readings / (${mergedN}))`
const mergeSet = `
      count_readings = a.count_readings + excluded.count_readings,
      avg_value = a.avg_value + ${meanDiff} * (excluded.count_readings / (${mergedN})),
      m2 = ${mergedM2},
      stddev_value = sqrt(greatest(0, ${mergedM2}) / (${mergedN})),
      min_value = least(a.min_value, excluded.min_value),
      max_value = greatest(a.max_value, excluded.max_value),
      anomaly_count = a.anomaly_count + excluded.anomaly_count,
      label_anomaly_count = a.label_anomaly_count + excluded.label_anomaly_count,
      z_score_anomalies = a.z_score_anomalies + excluded.z_score_anomalies,
      ml_anomaly_count = a.ml_anomaly_count + excluded.ml_anomaly_count,
      combined_anomaly_count = a.combined_anomaly_count + excluded.combined_anomaly_count,
      normal_count = a.normal_count + excluded.normal_count,
      normal_avg = CASE WHEN excluded.normal_count = 0 THEN a.normal_avg WHEN a.normal_count = 0 THEN excluded.normal_avg
        ELSE a.normal_avg + (excluded.normal_avg - a.normal_avg) * (excluded.normal_count::float8 / (a.normal_count + excluded.normal_count)) END,
      normal_min = least(a.normal_min, excluded.normal_min),
      normal_max = greatest(a.normal_max, excluded.normal_max)`

/** The readings the combined verdict did not flag, as four array parameters (count, mean, min, max; null when none). */
function normalParams (deltas: readonly WindowDelta[]): string[] {
  const none = (d: WindowDelta): boolean => d.acc.normalCount === 0
  return [numberArray(deltas.map(d => d.acc.normalCount)), numberArray(deltas.map(d => none(d) ? null : d.acc.normalMean)),
    numberArray(deltas.map(d => none(d) ? null : d.acc.normalMin)), numberArray(deltas.map(d => none(d) ? null : d.acc.normalMax))]
}

/**
 * Merges window deltas into sensor_aggregates (Chan's formula, the same as the in-memory merge)
 * and returns the revised windows.
 */
export async function mergeWindowDeltas (tx: Queryable, deltas: readonly WindowDelta[]): Promise<WindowAggregate[]> {
  if (deltas.length === 0) return []
  return await tx.query<WindowAggregate>(`
    INSERT INTO sensor_aggregates AS a (window_start, window_end, location, sensor_type, avg_value, min_value, max_value,
      stddev_value, count_readings, anomaly_count, label_anomaly_count, z_score_anomalies, ml_anomaly_count, combined_anomaly_count, m2,
      normal_count, normal_avg, normal_min, normal_max)
    SELECT ${msToTimestamp('ws')}, ${msToTimestamp('we')}, l, t, mean, mn, mx, sqrt(greatest(m2, 0) / cnt), cnt, ra, la, za, ma, ca, m2, nc, na, nmn, nmx
    FROM unnest($1::float8[], $2::float8[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[], $8::int4[],
      $9::int4[], $10::int4[], $11::int4[], $12::int4[], $13::float8[], $14::int4[], $15::int4[], $16::float8[], $17::float8[], $18::float8[])
      AS x(ws, we, l, t, mean, mn, mx, cnt, ra, la, za, ma, m2, ca, nc, na, nmn, nmx)
    ON CONFLICT (location, sensor_type, window_start) DO UPDATE SET${mergeSet},
      revision = a.revision + 1,
      updated_at = now()
    RETURNING ${aggregateColumns}`,
  [numberArray(deltas.map(x => x.start)), numberArray(deltas.map(x => x.end)), textArray(deltas.map(x => x.location)),
    textArray(deltas.map(x => x.sensorType)), numberArray(deltas.map(x => x.acc.mean)), numberArray(deltas.map(x => x.acc.min)),
    numberArray(deltas.map(x => x.acc.max)), numberArray(deltas.map(x => x.acc.count)), numberArray(deltas.map(x => x.acc.ruleAnomalies)),
    numberArray(deltas.map(x => x.acc.labelAnomalies)), numberArray(deltas.map(x => x.acc.zAnomalies)),
    numberArray(deltas.map(x => x.acc.mlAnomalies)), numberArray(deltas.map(x => x.acc.m2)),
    numberArray(deltas.map(x => x.acc.combinedAnomalies)), ...normalParams(deltas)])
}

/**
 * Merges a batch's window deltas into the hourly roll-ups (`deltas` as given to mergeWindowDeltas,
 * `merged` what it returned: windows at revision 1 are new and count in their hour's `windows`).
 * A window belongs to the hour its start falls in.
 */
export async function mergeHourlyRollups (tx: Queryable, deltas: readonly WindowDelta[], merged: readonly WindowAggregate[]): Promise<void> {
  if (deltas.length === 0) return
  const hours = rollUp(deltas, HOUR_MS)
  const created = new Map<string, number>()
  for (const w of merged) {
    if (w.revision !== 1) continue
    const key = rollUpKey(w.location, w.sensorType, Math.floor(w.windowStart / HOUR_MS) * HOUR_MS)
    created.set(key, (created.get(key) ?? 0) + 1)
  }
  await tx.query(`
    INSERT INTO sensor_aggregates_hourly AS a (hour_start, location, sensor_type, avg_value, min_value, max_value, stddev_value,
      count_readings, anomaly_count, label_anomaly_count, z_score_anomalies, ml_anomaly_count, combined_anomaly_count, m2, windows,
      normal_count, normal_avg, normal_min, normal_max)
    SELECT ${msToTimestamp('hs')}, l, t, mean, mn, mx, sqrt(greatest(m2, 0) / cnt), cnt, ra, la, za, ma, ca, m2, w, nc, na, nmn, nmx
    FROM unnest($1::float8[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::int8[], $8::int8[], $9::int8[],
      $10::int8[], $11::int8[], $12::int8[], $13::float8[], $14::int4[], $15::int8[], $16::float8[], $17::float8[], $18::float8[])
      AS x(hs, l, t, mean, mn, mx, cnt, ra, la, za, ma, ca, m2, w, nc, na, nmn, nmx)
    ON CONFLICT (location, sensor_type, hour_start) DO UPDATE SET${mergeSet},
      windows = a.windows + excluded.windows`,
  [numberArray(hours.map(x => x.start)), textArray(hours.map(x => x.location)), textArray(hours.map(x => x.sensorType)),
    numberArray(hours.map(x => x.acc.mean)), numberArray(hours.map(x => x.acc.min)), numberArray(hours.map(x => x.acc.max)),
    numberArray(hours.map(x => x.acc.count)), numberArray(hours.map(x => x.acc.ruleAnomalies)), numberArray(hours.map(x => x.acc.labelAnomalies)),
    numberArray(hours.map(x => x.acc.zAnomalies)), numberArray(hours.map(x => x.acc.mlAnomalies)),
    numberArray(hours.map(x => x.acc.combinedAnomalies)), numberArray(hours.map(x => x.acc.m2)),
    numberArray(hours.map(x => created.get(rollUpKey(x.location, x.sensorType, x.start)) ?? 0)), ...normalParams(hours)])
}

/**
 * Marks windows final whose end is at or before `endBoundary` (watermark − allowed lateness; Infinity
 * at the end of a bounded input). Windows that start before `openFrom` are final already (the
 * previous boundary minus a window): the start index bounds the scan, and finality is no index's
 * column, so the update stays on its page (HOT) and leaves no index entries behind.
 */
export async function finalizeWindows (tx: Queryable, endBoundary: number, openFrom = -Infinity): Promise<WindowAggregate[]> {
  if (Number.isNaN(endBoundary) || endBoundary === -Infinity) return []
  const conds = ['NOT is_final']
  const params: number[] = []
  if (endBoundary !== Infinity) conds.push(`window_end <= ${msToTimestamp(`$${params.push(endBoundary)}::float8`)}`)
  if (Number.isFinite(openFrom)) conds.push(`window_start >= ${msToTimestamp(`$${params.push(openFrom)}::float8`)}`)
  return await tx.query<WindowAggregate>(`UPDATE sensor_aggregates SET is_final = true, finalized_at = now()
    WHERE ${conds.join(' AND ')} RETURNING ${aggregateColumns}`, params)
}

export async function recentAggregates (db: Queryable, f: QueryFilter): Promise<WindowAggregate[]> {
  const w = whereFilter(f, 'window_start')
  return await db.query<WindowAggregate>(
    `SELECT ${aggregateColumns} FROM sensor_aggregates ${w.sql} ORDER BY window_start DESC, location, sensor_type LIMIT $${w.params.length}`, w.params)
}
