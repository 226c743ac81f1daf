-- The Flink alternative for the window aggregates (docs/ARCHITECTURE.md, "Flink alternative"):
-- topic iot_sensors (our wire JSON) -> event-time watermark -> tumbling windows per
-- (location, sensor_type) -> upserts into PostgreSQL (table flink_sensor_aggregates, migration 0013).
-- ${NAME} placeholders are filled by the launcher (IotFlinkJob: --set NAME=VALUE, or the
-- environment variable IOT_FLINK_NAME); `iot-monitor flink` fills them from its configuration.
-- Statements end with ';' at a line end; SET statements become the job's configuration.

SET 'pipeline.name' = 'iot-monitor window aggregates (${TOPIC})';
SET 'parallelism.default' = '${PARALLELISM}';
-- Window bounds (TIMESTAMP(3)) are UTC, as the worker's.
SET 'table.local-time-zone' = 'UTC';
-- A partition silent this long stops holding the watermark back (the worker's --idle-timeout).
SET 'table.exec.source.idle-timeout' = '${IDLE_TIMEOUT_MS} ms';
-- Checkpoints: Kafka offsets and open windows together, kept after the process dies so that a
-- restart resumes from the newest one (the launcher restores it).
SET 'execution.checkpointing.interval' = '${CHECKPOINT_INTERVAL_MS} ms';
SET 'execution.checkpointing.mode' = 'EXACTLY_ONCE';
SET 'execution.checkpointing.externalized-checkpoint-retention' = 'RETAIN_ON_CANCELLATION';
SET 'execution.checkpointing.dir' = '${CHECKPOINT_DIR}';
SET 'state.backend.type' = 'hashmap';

CREATE TEMPORARY SYSTEM FUNCTION iot_event_time AS 'io.iotmonitor.flink.EventTime' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION iot_valid_reading AS 'io.iotmonitor.flink.ValidReading' LANGUAGE JAVA;
CREATE TEMPORARY SYSTEM FUNCTION iot_stddev_pop AS 'io.iotmonitor.flink.StddevPop' LANGUAGE JAVA;

-- The wire format (src/domain/wire.ts). A message that is not JSON is skipped; one that fails
-- the worker's checks gets the epoch as event time (iot_event_time) and is filtered out below.
CREATE TEMPORARY TABLE iot_sensors (
  sensor_id    STRING,
  sensor_type  STRING,
  location     STRING,
  `value`      DOUBLE,
  `timestamp`  STRING,
  unit         STRING,
  anomaly      BOOLEAN,
  anomaly_type STRING,
  headers      MAP<STRING, BYTES> METADATA VIRTUAL,
  record_ts    TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  event_time AS iot_event_time(`timestamp`, headers['iot-ingest-ms'], record_ts, CAST(${MAX_PAST_MS} AS BIGINT), CAST(${MAX_FUTURE_MS} AS BIGINT)),
  WATERMARK FOR event_time AS event_time - INTERVAL '${OUT_OF_ORDERNESS}' DAY TO SECOND(3)
) WITH (
  'connector' = 'kafka',
  'topic' = '${TOPIC}',
  'properties.bootstrap.servers' = '${KAFKA_BROKERS}',
  'properties.group.id' = '${GROUP_ID}',
  'properties.isolation.level' = 'read_committed',
  'properties.auto.offset.reset' = 'earliest',
  'scan.startup.mode' = 'group-offsets',
  'scan.topic-partition-discovery.interval' = '60 s',
  'format' = 'json',
  'json.ignore-parse-errors' = 'true',
  'json.fail-on-missing-field' = 'false'
);

CREATE TEMPORARY VIEW valid_readings AS
SELECT location, sensor_type, `value`, anomaly, event_time
FROM iot_sensors
WHERE event_time > TO_TIMESTAMP_LTZ(0, 3)
  AND iot_valid_reading(sensor_id, sensor_type, location, `value`, unit, anomaly_type);

-- The columns of sensor_aggregates that a window of raw readings gives (the detector counts are
-- the worker's own). Upserted on the primary key: a replay after a restart rewrites the same rows.
CREATE TEMPORARY TABLE window_sink (
  window_start        TIMESTAMP(3),
  window_end          TIMESTAMP(3),
  location            STRING,
  sensor_type         STRING,
  avg_value           DOUBLE,
  min_value           DOUBLE,
  max_value           DOUBLE,
  stddev_value        DOUBLE,
  count_readings      INT,
  label_anomaly_count INT,
  PRIMARY KEY (location, sensor_type, window_start) NOT ENFORCED
) WITH (
  'connector' = 'jdbc',
  'url' = '${JDBC_URL}',
  'table-name' = '${SINK_TABLE}',
  'sink.buffer-flush.max-rows' = '1000',
  'sink.buffer-flush.interval' = '1 s',
  'sink.max-retries' = '10'
);

INSERT INTO window_sink
SELECT window_start, window_end, location, sensor_type,
       AVG(`value`), MIN(`value`), MAX(`value`), iot_stddev_pop(`value`),
       CAST(COUNT(*) AS INT), CAST(COUNT(*) FILTER (WHERE anomaly IS TRUE) AS INT)
FROM TABLE(TUMBLE(TABLE valid_readings, DESCRIPTOR(event_time), INTERVAL '${WINDOW}' DAY TO SECOND(3)))
GROUP BY location, sensor_type, window_start, window_end;
