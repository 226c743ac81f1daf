-- Stuck (flat-line) and drift detection (src/anomaly/stuck.ts, drift.ts): two more verdict bits per
-- reading, two more detectors in the quality counts.

-- readings.flags: 512 stuck, 1024 drift (src/storage/readings.ts FLAG). The other bits are unchanged;
-- "flagged" (any detector: the predicate of the partial indexes on flagged readings) now takes them in.
DROP FUNCTION reading_flags (boolean, boolean, boolean, boolean, text, boolean, smallint);
CREATE FUNCTION reading_flags (rule boolean, z boolean, ml boolean, combined boolean, severity text, label boolean, kind_key smallint,
  stuck boolean DEFAULT false, drift boolean DEFAULT false)
RETURNS integer LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN rule THEN 1 ELSE 0 END | CASE WHEN z THEN 2 ELSE 0 END
    | CASE WHEN ml THEN 4 ELSE 0 END | CASE WHEN ml IS NOT NULL THEN 8 ELSE 0 END
    | CASE WHEN combined THEN 16 ELSE 0 END
    | CASE severity WHEN 'minor' THEN 32 WHEN 'major' THEN 64 WHEN 'critical' THEN 96 ELSE 0 END
    | CASE WHEN label IS NOT NULL THEN 128 ELSE 0 END | CASE WHEN label THEN 256 ELSE 0 END
    | CASE WHEN stuck THEN 512 ELSE 0 END | CASE WHEN drift THEN 1024 ELSE 0 END
    | (coalesce(kind_key::integer, 0) << 16)
$$;

-- A stuck or drifting reading is flagged by a detector like a rule, a z-score or a forest verdict.
DROP INDEX readings_flagged;
DROP INDEX readings_flagged_series;
CREATE INDEX readings_flagged ON readings (ts) WHERE flags & 1543 <> 0;
CREATE INDEX readings_flagged_series ON readings (sensor_key, ts) WHERE flags & 1543 <> 0;

-- The original columns' views get the two verdicts at their end.
CREATE OR REPLACE VIEW sensor_readings AS
SELECT s.sensor_id, s.sensor_type, s.location, r.value, r.ts AS timestamp, s.unit,
       CASE WHEN r.flags & 128 <> 0 THEN r.flags & 256 <> 0 END AS anomaly,
       k.name                                                   AS anomaly_type,
       r.flags & 1 <> 0                                         AS rule_anomaly,
       r.z_score::float8                                        AS z_score,
       r.flags & 2 <> 0                                         AS z_anomaly,
       r.ml_score::float8                                       AS ml_score,
       CASE WHEN r.flags & 8 <> 0 THEN r.flags & 4 <> 0 END     AS ml_anomaly,
       m.version                                                AS model_version,
       r.flags & 16 <> 0                                        AS combined_anomaly,
       (ARRAY['minor', 'major', 'critical'])[(r.flags >> 5) & 3] AS severity,
       r.explanation,
       r.flags & 512 <> 0                                       AS stuck_anomaly,
       r.flags & 1024 <> 0                                      AS drift_anomaly
FROM readings r
JOIN sensors s ON s.sensor_key = r.sensor_key
LEFT JOIN anomaly_kinds k ON k.kind_key = r.flags >> 16
LEFT JOIN model_versions m ON m.model_key = r.model_key;

CREATE OR REPLACE VIEW ml_anomaly_predictions AS
SELECT sensor_id, sensor_type, location, value, timestamp,
       coalesce(ml_anomaly, false) AS is_anomaly,
       ml_score                    AS anomaly_score,
       rule_anomaly                AS rule_based_anomaly,
       z_score, z_anomaly, model_version,
       anomaly                     AS labelled_anomaly,
       anomaly_type, combined_anomaly, severity, explanation,
       stuck_anomaly, drift_anomaly
FROM sensor_readings;

-- Quality counts per detector: stuck and drift beside rule, z-score and forest.
ALTER TABLE detection_counts ADD COLUMN stuck_anomaly boolean NOT NULL DEFAULT false;
ALTER TABLE detection_counts ADD COLUMN drift_anomaly boolean NOT NULL DEFAULT false;
ALTER TABLE detection_counts DROP CONSTRAINT detection_counts_pkey;
ALTER TABLE detection_counts ADD PRIMARY KEY (sensor_type, label, rule_anomaly, z_anomaly, ml_state, stuck_anomaly, drift_anomaly, combined_anomaly);
