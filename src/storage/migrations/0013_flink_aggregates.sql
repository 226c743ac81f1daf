-- The Flink alternative's windows (deploy/flink/src/main/resources/job.sql; docs/ARCHITECTURE.md,
-- "Flink alternative"): the columns of sensor_aggregates that a window of raw readings gives, with
-- the same names, types and key, in a table of their own so both processors can run side by side
-- on one database and be compared. The detector counts (anomaly_count, z_score_anomalies,
-- ml_anomaly_count, combined_anomaly_count) are the worker's own and not here; a Flink window is
-- written once, when the watermark passes its end (is_final true, revision 1; a restart may write
-- the same row again).
CREATE TABLE flink_sensor_aggregates (
  window_start        timestamptz      NOT NULL,
  window_end          timestamptz      NOT NULL,
  location            text             NOT NULL,
  sensor_type         text             NOT NULL,
  avg_value           double precision NOT NULL,
  min_value           double precision NOT NULL,
  max_value           double precision NOT NULL,
  stddev_value        double precision NOT NULL,   -- population standard deviation
  count_readings      integer          NOT NULL,
  label_anomaly_count integer          NOT NULL,   -- readings labelled anomalous by their source
  revision            integer          NOT NULL DEFAULT 1,
  is_final            boolean          NOT NULL DEFAULT true,
  updated_at          timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (location, sensor_type, window_start)
);
CREATE INDEX flink_sensor_aggregates_start ON flink_sensor_aggregates (window_start DESC);
