// The check every pipeline test ends with: each window in sensor_aggregates equals a batch
// recomputation from the raw readings (count, min, max exactly; avg and stddev to 1e-9 relative;
// for windows of identical values PostgreSQL's stddev_pop gives ~1e-15 × mean, we give exactly 0,
// so a stddev is compared relative to at least 1e-6 × |mean|),
// every raw reading is in a window, no key is both stored and late, and the detection counts
// equal a count of the raw readings by sensor type, label and verdicts; the hourly roll-ups equal
// the windows grouped by hour, and the sensors table the raw readings' sensors and time spans.
import { type Queryable } from '../../src/storage/index.ts'

export interface ConsistencyReport {
  windows: number
  finalWindows: number
  readings: number
  lateReadings: number
  /** Readings whose key is in both sensor_readings and late_readings (must be 0). */
  storedAndLate: number
  /** Sum of count_readings over all windows (must equal `readings`). */
  countedInWindows: number
  mismatches: string[]
}

export async function checkConsistency (db: Queryable, windowMs = 60_000): Promise<ConsistencyReport> {
  const mismatches = await db.query<{ location: string, sensor_type: string, ws: string, problem: string }>(`
    WITH r AS (
      SELECT location, sensor_type,
             to_timestamp(floor(extract(epoch FROM timestamp) * 1000 / $1) * $1 / 1000.0) AS ws,
             count(*)::int AS n, min(value) AS mn, max(value) AS mx, avg(value) AS av, stddev_pop(value) AS sd,
             count(*) FILTER (WHERE rule_anomaly)::int AS ra, count(*) FILTER (WHERE z_anomaly)::int AS za,
             count(*) FILTER (WHERE anomaly)::int AS la, count(*) FILTER (WHERE ml_anomaly)::int AS ma,
             count(*) FILTER (WHERE combined_anomaly)::int AS ca,
             count(*) FILTER (WHERE NOT combined_anomaly)::int AS nn, avg(value) FILTER (WHERE NOT combined_anomaly) AS nav,
             min(value) FILTER (WHERE NOT combined_anomaly) AS nmn, max(value) FILTER (WHERE NOT combined_anomaly) AS nmx
      FROM sensor_readings GROUP BY 1, 2, 3)
    SELECT coalesce(a.location, r.location) AS location, coalesce(a.sensor_type, r.sensor_type) AS sensor_type,
           coalesce(a.window_start, r.ws)::text AS ws,
           CASE WHEN a.window_start IS NULL THEN 'readings without a window'
                WHEN r.ws IS NULL THEN 'window without readings'
                ELSE format('count %s/%s min %s/%s max %s/%s avg %s/%s sd %s/%s anomalies %s/%s %s/%s %s/%s %s/%s %s/%s normal %s/%s %s/%s %s/%s %s/%s',
                  a.count_readings, r.n, a.min_value, r.mn, a.max_value, r.mx, a.avg_value, r.av, a.stddev_value, r.sd,
                  a.anomaly_count, r.ra, a.z_score_anomalies, r.za, a.label_anomaly_count, r.la, a.ml_anomaly_count, r.ma,
                  a.combined_anomaly_count, r.ca, a.normal_count, r.nn, a.normal_avg, r.nav, a.normal_min, r.nmn, a.normal_max, r.nmx)
           END AS problem
    FROM sensor_aggregates a
    FULL OUTER JOIN r ON a.location = r.location AND a.sensor_type = r.sensor_type AND a.window_start = r.ws
    WHERE a.window_start IS NULL OR r.ws IS NULL
       OR a.count_readings <> r.n OR a.min_value <> r.mn OR a.max_value <> r.mx
       OR abs(a.avg_value - r.av) > 1e-9 * greatest(abs(r.av), 1e-12)
       OR abs(a.stddev_value - r.sd) > 1e-9 * greatest(r.sd, abs(r.av) * 1e-6)
       OR a.anomaly_count <> r.ra OR a.z_score_anomalies <> r.za OR a.label_anomaly_count <> r.la OR a.ml_anomaly_count <> r.ma
       OR a.combined_anomaly_count <> r.ca OR a.normal_count <> r.nn
       OR a.normal_min IS DISTINCT FROM r.nmn OR a.normal_max IS DISTINCT FROM r.nmx
       OR (a.normal_avg IS NULL) <> (r.nav IS NULL) OR abs(a.normal_avg - r.nav) > 1e-9 * greatest(abs(r.nav), 1e-12)
    LIMIT 20`, [windowMs])
  // The hourly roll-ups equal the windows grouped by the hour they start in.
  const hourly = await db.query<{ key: string, problem: string }>(`
    -- The hour's stddev from its windows by the parallel formula around the hour's mean (sum of m2
    -- plus each window's n × (its mean - the hour's mean)²): the sum-of-squares form loses about
    -- sqrt(eps) × |mean| (1.5e-5 at 1014 hPa), which a flat hour of a stuck sensor shows as a mismatch.
    WITH a AS (
      SELECT *, to_timestamp(floor(extract(epoch FROM window_start) / 3600) * 3600) AS hs,
             sum(count_readings * avg_value) OVER h / sum(count_readings) OVER h AS hav
      FROM sensor_aggregates
      WINDOW h AS (PARTITION BY location, sensor_type, floor(extract(epoch FROM window_start) / 3600))),
    w AS (
      SELECT location, sensor_type, hs,
             sum(count_readings)::int AS n, min(min_value) AS mn, max(max_value) AS mx, min(hav) AS av,
             sqrt((sum(m2) + sum(count_readings * (avg_value - hav) ^ 2)) / sum(count_readings)) AS sd,
             sum(anomaly_count)::int AS ra, sum(label_anomaly_count)::int AS la, sum(z_score_anomalies)::int AS za,
             sum(ml_anomaly_count)::int AS ma, sum(combined_anomaly_count)::int AS ca, count(*)::int AS wn
      FROM a GROUP BY 1, 2, 3)
    SELECT concat_ws('/', coalesce(h.location, w.location), coalesce(h.sensor_type, w.sensor_type), coalesce(h.hour_start, w.hs)) AS key,
           format('count %s/%s min %s/%s max %s/%s avg %s/%s sd %s/%s anomalies %s/%s %s/%s %s/%s %s/%s %s/%s windows %s/%s',
             h.count_readings, w.n, h.min_value, w.mn, h.max_value, w.mx, h.avg_value, w.av, h.stddev_value, w.sd,
             h.anomaly_count, w.ra, h.label_anomaly_count, w.la, h.z_score_anomalies, w.za, h.ml_anomaly_count, w.ma,
             h.combined_anomaly_count, w.ca, h.windows, w.wn) AS problem
    FROM sensor_aggregates_hourly h
    FULL OUTER JOIN w ON h.location = w.location AND h.sensor_type = w.sensor_type AND h.hour_start = w.hs
    WHERE h.hour_start IS NULL OR w.hs IS NULL
       OR h.count_readings <> w.n OR h.min_value <> w.mn OR h.max_value <> w.mx
       OR abs(h.avg_value - w.av) > 1e-9 * greatest(abs(w.av), 1e-12)
       OR abs(h.stddev_value - w.sd) > 1e-9 * greatest(w.sd, abs(w.av) * 1e-6)
       OR h.anomaly_count <> w.ra OR h.label_anomaly_count <> w.la OR h.z_score_anomalies <> w.za OR h.ml_anomaly_count <> w.ma
       OR h.combined_anomaly_count <> w.ca OR h.windows <> w.wn
    LIMIT 20`)
  // The sensors table covers exactly the stored readings' sensors (each type, location and unit
  // they had) and event time spans; no reading is stored twice.
  const sensors = await db.query<{ sensor_id: string, problem: string }>(`
    WITH r AS (SELECT sensor_id, sensor_type, location, unit, min(timestamp) AS f, max(timestamp) AS l FROM sensor_readings GROUP BY 1, 2, 3, 4)
    SELECT coalesce(s.sensor_id, r.sensor_id) AS sensor_id, format('first %s/%s last %s/%s', s.first_seen, r.f, s.last_seen, r.l) AS problem
    FROM sensors s FULL OUTER JOIN r USING (sensor_id, sensor_type, location, unit)
    WHERE s.first_seen IS DISTINCT FROM r.f OR s.last_seen IS DISTINCT FROM r.l
    UNION ALL
    SELECT s.sensor_id, format('stored %s times at %s', n, ts) FROM (SELECT sensor_key, ts, count(*) AS n FROM readings GROUP BY 1, 2 HAVING count(*) > 1) d
    JOIN sensors s USING (sensor_key)
    LIMIT 20`)
  // detection_counts equals the same count over the raw readings.
  const detection = await db.query<{ cell: string, stored: number | null, counted: number | null }>(`
    WITH g AS (
      SELECT sensor_type,
             CASE WHEN anomaly THEN coalesce(anomaly_type, 'anomaly') WHEN NOT anomaly THEN 'normal' ELSE 'unlabelled' END AS label,
             rule_anomaly, z_anomaly, (CASE WHEN ml_anomaly IS NULL THEN -1 WHEN ml_anomaly THEN 1 ELSE 0 END)::int2 AS ml_state,
             stuck_anomaly, drift_anomaly, combined_anomaly, count(*)::int AS n
      FROM sensor_readings GROUP BY 1, 2, 3, 4, 5, 6, 7, 8)
    SELECT concat_ws('/', sensor_type, label, rule_anomaly, z_anomaly, ml_state, stuck_anomaly, drift_anomaly, combined_anomaly) AS cell,
           g.n AS stored, d.readings::int AS counted
    FROM g FULL OUTER JOIN detection_counts d USING (sensor_type, label, rule_anomaly, z_anomaly, ml_state, stuck_anomaly, drift_anomaly, combined_anomaly)
    WHERE g.n IS DISTINCT FROM d.readings::int LIMIT 20`)
  const [c] = await db.query<{ windows: number, finals: number, readings: number, late: number, both: number, counted: number }>(`
    SELECT (SELECT count(*)::int FROM sensor_aggregates) AS windows,
           (SELECT count(*)::int FROM sensor_aggregates WHERE is_final) AS finals,
           (SELECT count(*)::int FROM sensor_readings) AS readings,
           (SELECT count(*)::int FROM late_readings) AS late,
           (SELECT count(*)::int FROM late_readings l JOIN sensor_readings r USING (sensor_id, timestamp)) AS both,
           (SELECT coalesce(sum(count_readings), 0)::int FROM sensor_aggregates) AS counted`)
  return {
    windows: c!.windows,
    finalWindows: c!.finals,
    readings: c!.readings,
    lateReadings: c!.late,
    storedAndLate: c!.both,
    countedInWindows: c!.counted,
    mismatches: [
      ...mismatches.map(m => `${m.ws} ${m.location}/${m.sensor_type}: ${m.problem}`),
      ...detection.map(d => `detection_counts ${d.cell}: counted ${d.counted ?? 0}, stored readings ${d.stored ?? 0}`),
      ...hourly.map(h => `sensor_aggregates_hourly ${h.key}: ${h.problem}`),
      ...sensors.map(s => `sensors ${s.sensor_id}: ${s.problem}`)
    ]
  }
}
