-- Alarm condition states (src/alarms: pending periods, burst windows, flagged runs) as a log: each
-- batch appends one row per partition it touched, holding the states it changed
-- ({"<alarm type>|<sensor id>": state, or null once nothing is pending}), in the batch's
-- transaction. Every anomalous reading changes its sensor's burst window: one alarm_conditions
-- upsert per changed state was 33,000 index upserts per 400,000 readings of `npm run bench -- alarms`,
-- the log one row per batch and partition. The worker's periodic alarm check folds the log of its
-- partitions into alarm_conditions (a snapshot, fenced like a batch) and deletes it; a worker
-- claiming partitions reads alarm_conditions, then their log in order.
ALTER TABLE alarm_conditions ADD COLUMN partition integer;
CREATE INDEX alarm_conditions_partition ON alarm_conditions (partition);

CREATE TABLE alarm_condition_log (
  seq       bigserial PRIMARY KEY,
  partition integer NOT NULL,
  states    jsonb NOT NULL
);
CREATE INDEX alarm_condition_log_partition ON alarm_condition_log (partition, seq);
