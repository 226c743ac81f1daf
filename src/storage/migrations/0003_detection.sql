-- Detection: the combined verdict of every reading, the Isolation Forest models, and the counts
-- behind precision, recall and F1.

-- The combined verdict (src/anomaly/detector.ts). Adding columns with constant defaults rewrites nothing.
ALTER TABLE sensor_readings ADD COLUMN combined_anomaly boolean NOT NULL DEFAULT false;
ALTER TABLE sensor_readings ADD COLUMN severity text;      -- minor, major, critical; null when no detector fired
ALTER TABLE sensor_readings ADD COLUMN explanation text;   -- which detectors fired and why

CREATE OR REPLACE VIEW ml_anomaly_predictions AS
SELECT sensor_id, sensor_type, location, value, timestamp,
       coalesce(ml_anomaly, false) AS is_anomaly,
       ml_score                    AS anomaly_score,
       rule_anomaly                AS rule_based_anomaly,
       z_score, z_anomaly, model_version,
       anomaly                     AS labelled_anomaly,
       anomaly_type,
       ingested_at                 AS created_at,
       combined_anomaly, severity, explanation
FROM sensor_readings;

-- Isolation Forest models as trained (newest kept per key; the worker restores the newest at start).
CREATE TABLE anomaly_models (
  version       text             PRIMARY KEY,   -- what verdicts carry in model_version
  model_key     text             NOT NULL,      -- the sensor type (or the sensor id with per-sensor models)
  sequence      integer          NOT NULL,      -- counts a key's models from 1
  trained_at    timestamptz      NOT NULL,      -- event time of the training
  samples       integer          NOT NULL,      -- training rows
  n_estimators  integer          NOT NULL,
  max_samples   integer          NOT NULL,
  score_offset  double precision NOT NULL,      -- scikit-learn's offset_
  model         bytea            NOT NULL,      -- gzip of the IsolationForestModel JSON
  created_at    timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX anomaly_models_key ON anomaly_models (model_key, trained_at DESC);

-- Readings stored, by sensor type, ground-truth label and what each detector said: precision,
-- recall, F1 and the rule-vs-ML confusion matrix come from here, not from scans of the raw table.
-- Written in the batch transaction, so it equals a GROUP BY over sensor_readings.
CREATE TABLE detection_counts (
  sensor_type      text     NOT NULL,
  label            text     NOT NULL,   -- normal, unlabelled, or the anomaly kind (spike, drift, stuck, dropout, anomaly)
  rule_anomaly     boolean  NOT NULL,
  z_anomaly        boolean  NOT NULL,
  ml_state         smallint NOT NULL,   -- -1 no model yet, 0 normal, 1 anomaly
  combined_anomaly boolean  NOT NULL,
  readings         bigint   NOT NULL,
  PRIMARY KEY (sensor_type, label, rule_anomaly, z_anomaly, ml_state, combined_anomaly)
);
