-- What each running worker knows and the database does not: its consumer lag and the latency from
-- the bus to stored. Each worker process upserts its row every few seconds and deletes it when it
-- stops; an api process of its own reads the rows updated lately (/api/pipeline, the live strip).
CREATE TABLE worker_status (
  consumer_group text        NOT NULL,
  topic          text        NOT NULL,
  instance       text        NOT NULL,   -- host-pid
  partitions     integer[]   NOT NULL,   -- the partitions it owns
  lag            bigint,                 -- records in its partitions not yet handed out (null: unknown)
  latency_p50_ms double precision,       -- bus to stored over the last minute, median of its batches
  latency_p99_ms double precision,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic, instance)
) WITH (fillfactor = 50);
