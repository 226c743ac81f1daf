-- The dashboard: what it needs to stay fast with months of readings behind it, without reading
-- raw rows for anything but the newest readings.

-- Readings the combined verdict calls anomalous, per window (the KPIs count these).
ALTER TABLE sensor_aggregates ADD COLUMN combined_anomaly_count integer NOT NULL DEFAULT 0;

-- Hourly roll-ups of the windows, per (location, sensor_type), merged from the same deltas in the
-- same transaction (mergeable accumulators: exact). `windows` counts the windows that started in
-- the hour. Charts over days and months read these: 24 rows per series and day.
CREATE TABLE sensor_aggregates_hourly (
  hour_start             timestamptz      NOT NULL,
  location               text             NOT NULL,
  sensor_type            text             NOT NULL,
  avg_value              double precision NOT NULL,
  min_value              double precision NOT NULL,
  max_value              double precision NOT NULL,
  stddev_value           double precision NOT NULL,   -- population standard deviation
  count_readings         bigint           NOT NULL,
  anomaly_count          bigint           NOT NULL,   -- rule-based
  label_anomaly_count    bigint           NOT NULL,
  z_score_anomalies      bigint           NOT NULL,
  ml_anomaly_count       bigint           NOT NULL,
  combined_anomaly_count bigint           NOT NULL,
  m2                     double precision NOT NULL,
  windows                integer          NOT NULL,
  PRIMARY KEY (location, sensor_type, hour_start)
);
CREATE INDEX sensor_aggregates_hourly_start ON sensor_aggregates_hourly (hour_start);

-- The sensors seen, with their first and newest event time (filters, active-sensor counts).
-- Upserted once per sensor and batch; min/max make a repeated delivery change nothing.
CREATE TABLE sensors (
  sensor_id   text        PRIMARY KEY,
  sensor_type text        NOT NULL,
  location    text        NOT NULL,
  unit        text        NOT NULL,
  first_seen  timestamptz NOT NULL,
  last_seen   timestamptz NOT NULL
);
CREATE INDEX sensors_last_seen ON sensors (last_seen);

-- Existing data (a database from before this migration): fill in what the worker keeps from now on.
UPDATE sensor_aggregates a SET combined_anomaly_count = r.n
FROM (SELECT location, sensor_type, window_start, count(*)::int AS n
      FROM sensor_readings r JOIN sensor_aggregates w USING (location, sensor_type)
      WHERE r.combined_anomaly AND r.timestamp >= w.window_start AND r.timestamp < w.window_end
      GROUP BY 1, 2, 3) r
WHERE a.location = r.location AND a.sensor_type = r.sensor_type AND a.window_start = r.window_start;

INSERT INTO sensor_aggregates_hourly
SELECT h, location, sensor_type, s / n, mn, mx, sqrt(greatest(m2, 0) / n), n, ra, la, za, ma, ca, greatest(m2, 0), w
FROM (SELECT to_timestamp(floor(extract(epoch FROM window_start) / 3600) * 3600) AS h, location, sensor_type,
             sum(count_readings)::float8 AS n, sum(count_readings * avg_value) AS s, min(min_value) AS mn, max(max_value) AS mx,
             sum(m2) + sum(count_readings * avg_value * avg_value) - sum(count_readings * avg_value) ^ 2 / sum(count_readings) AS m2,
             sum(anomaly_count) AS ra, sum(label_anomaly_count) AS la, sum(z_score_anomalies) AS za, sum(ml_anomaly_count) AS ma,
             sum(combined_anomaly_count) AS ca, count(*)::int AS w
      FROM sensor_aggregates GROUP BY 1, 2, 3) g;

INSERT INTO sensors
SELECT DISTINCT ON (sensor_id) sensor_id, sensor_type, location, unit,
       min(timestamp) OVER (PARTITION BY sensor_id), max(timestamp) OVER (PARTITION BY sensor_id)
FROM sensor_readings ORDER BY sensor_id, timestamp DESC;
