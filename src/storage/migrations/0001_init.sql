-- iot-monitor schema. Runs unchanged on PostgreSQL 15+ and PGlite.
-- Original names and columns are kept (sensor_readings, sensor_aggregates, ml_anomaly_predictions)
-- so the original design's queries still work; what the semantics need stands beside them.

-- Raw readings that count in windows, with their verdicts. Partitioned by day (UTC) so retention
-- drops whole partitions. The worker de-duplicates in memory (per-sensor keys of open windows) and
-- loads with COPY; the primary key is the safety net behind it and serves the rare look-ups of late
-- readings. BRIN on time serves time-range scans. Every further index costs ingest.
CREATE TABLE sensor_readings (
  sensor_id     text             NOT NULL,
  sensor_type   text             NOT NULL,
  location      text             NOT NULL,
  value         double precision NOT NULL,
  timestamp     timestamptz      NOT NULL,
  unit          text             NOT NULL DEFAULT '',
  anomaly       boolean,                       -- ground-truth label from the source (simulator), null if unknown
  anomaly_type  text,                          -- ground-truth kind: spike, drift, stuck, dropout
  seq           bigint,
  rule_anomaly  boolean          NOT NULL,
  z_score       double precision,
  z_anomaly     boolean          NOT NULL,
  ml_score      double precision,
  ml_anomaly    boolean,
  model_version text,
  ingested_at   timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (sensor_id, timestamp)
) PARTITION BY RANGE (timestamp);
-- autosummarize: PostgreSQL's autovacuum summarizes each block range once it is full, so time-range
-- scans skip old ranges (PGlite has no autovacuum: the worker summarizes, see summarizeTimeIndex).
CREATE INDEX sensor_readings_time_brin ON sensor_readings USING brin (timestamp) WITH (autosummarize = on);

-- The original ML table, as a view over the verdicts stored with each reading (no duplicated rows).
CREATE VIEW ml_anomaly_predictions AS
SELECT sensor_id, sensor_type, location, value, timestamp,
       coalesce(ml_anomaly, false) AS is_anomaly,
       ml_score                    AS anomaly_score,
       rule_anomaly                AS rule_based_anomaly,
       z_score, z_anomaly, model_version,
       anomaly                     AS labelled_anomaly,
       anomaly_type,
       ingested_at                 AS created_at
FROM sensor_readings;

-- Event-time tumbling windows per (location, sensor_type). Deltas from every worker merge here
-- exactly (count, mean, M2, min, max); revision counts merges; is_final once the watermark passed
-- window_end + allowed lateness.
CREATE TABLE sensor_aggregates (
  window_start        timestamptz      NOT NULL,
  window_end          timestamptz      NOT NULL,
  location            text             NOT NULL,
  sensor_type         text             NOT NULL,
  avg_value           double precision NOT NULL,
  min_value           double precision NOT NULL,
  max_value           double precision NOT NULL,
  stddev_value        double precision NOT NULL,   -- population standard deviation
  count_readings      integer          NOT NULL,
  anomaly_count       integer          NOT NULL,   -- rule-based anomalies (the original column)
  label_anomaly_count integer          NOT NULL,   -- readings labelled anomalous by their source
  z_score_anomalies   integer          NOT NULL,
  ml_anomaly_count    integer          NOT NULL,
  m2                  double precision NOT NULL,   -- sum of squared deviations, for exact merging
  revision            integer          NOT NULL DEFAULT 1,
  is_final            boolean          NOT NULL DEFAULT false,
  finalized_at        timestamptz,
  updated_at          timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (location, sensor_type, window_start)
);
CREATE INDEX sensor_aggregates_start ON sensor_aggregates (window_start DESC);
CREATE INDEX sensor_aggregates_open ON sensor_aggregates (window_end) WHERE NOT is_final;

-- Readings that arrived after their window was final: kept, never merged, never dropped.
CREATE TABLE late_readings (
  sensor_id    text             NOT NULL,
  sensor_type  text             NOT NULL,
  location     text             NOT NULL,
  value        double precision NOT NULL,
  timestamp    timestamptz      NOT NULL,
  unit         text             NOT NULL DEFAULT '',
  anomaly      boolean,
  anomaly_type text,
  seq          bigint,
  window_start timestamptz      NOT NULL,
  watermark    timestamptz      NOT NULL,   -- the watermark when it arrived
  lateness_ms  bigint           NOT NULL,   -- watermark - timestamp
  received_at  timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (sensor_id, timestamp)
);

-- Rejected messages with their raw text and a machine-readable reason.
CREATE TABLE dead_letters (
  id          bigserial   PRIMARY KEY,
  received_at timestamptz NOT NULL,
  source      text        NOT NULL,
  reason      text        NOT NULL,
  detail      text        NOT NULL,
  raw         text        NOT NULL
);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);

-- Consumed positions, written in the same transaction as the data they cover.
CREATE TABLE stream_offsets (
  consumer_group text        NOT NULL,
  topic          text        NOT NULL,
  partition      integer     NOT NULL,
  next_offset    bigint      NOT NULL,
  max_event_ms   bigint,                 -- highest event time seen on the partition
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic, partition)
);

-- The combined watermark (minimum over partitions, monotonic) that decided window finality.
CREATE TABLE stream_watermarks (
  consumer_group text        NOT NULL,
  topic          text        NOT NULL,
  watermark_ms   bigint      NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic)
);
