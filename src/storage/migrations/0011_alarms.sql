-- Alarms (src/alarms): one row per alarm, its history, the outbox of notifications (written in the
-- transaction that changed the alarm: exactly-once transitions, at-least-once delivery), silences,
-- and the state of conditions that have not fired yet (pending periods, bursts), so a restart
-- continues them.

CREATE TABLE alarms (
  alarm_id        text PRIMARY KEY,              -- `${kind}:${id}|${type}|${startMs}` (src/alarms/model.ts)
  originator_kind text NOT NULL CHECK (originator_kind IN ('sensor', 'device', 'location')),
  originator_id   text NOT NULL,
  alarm_type      text NOT NULL,
  severity        text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning', 'indeterminate')),
  sensor_type     text,
  location        text,
  active          boolean NOT NULL,
  acknowledged    boolean NOT NULL DEFAULT false,
  start_ms        double precision NOT NULL,
  last_ms         double precision NOT NULL,
  clear_ms        double precision,
  ack_ms          double precision,
  ack_by          text,
  ack_comment     text,
  details         jsonb NOT NULL DEFAULT '{}',
  labels          jsonb NOT NULL DEFAULT '{}',
  updated_at      timestamptz NOT NULL DEFAULT now()
);
-- At most one active alarm per (originator, type).
CREATE UNIQUE INDEX alarms_one_active ON alarms (originator_kind, originator_id, alarm_type) WHERE active;
CREATE INDEX alarms_recent ON alarms (active DESC, start_ms DESC);

CREATE TABLE alarm_events (
  event_id  bigserial PRIMARY KEY,
  alarm_id  text NOT NULL REFERENCES alarms (alarm_id) ON DELETE CASCADE,
  kind      text NOT NULL,
  at_ms     double precision NOT NULL,
  by_whom   text NOT NULL DEFAULT 'system',
  comment   text,
  details   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alarm_events_alarm ON alarm_events (alarm_id, event_id);

-- Notifications to deliver. A row is written with the alarm change; the notifier sends it, retries
-- with back-off, and marks it delivered. The key is unique: a recomputation never notifies twice.
CREATE TABLE alarm_outbox (
  outbox_id        bigserial PRIMARY KEY,
  idempotency_key  text NOT NULL UNIQUE,
  alarm_id         text NOT NULL REFERENCES alarms (alarm_id) ON DELETE CASCADE,
  status           text NOT NULL CHECK (status IN ('firing', 'resolved')),
  at_ms            double precision NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz,
  last_error       text
);
CREATE INDEX alarm_outbox_pending ON alarm_outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Silences and maintenance windows: matchers on labels ({"location": "lab"}, {"alertname": "offline", "sensor_id": "t-1"}), a time range.
CREATE TABLE alarm_silences (
  silence_id  bigserial PRIMARY KEY,
  matchers    jsonb NOT NULL,
  starts_at   timestamptz NOT NULL,
  ends_at     timestamptz NOT NULL,
  created_by  text NOT NULL,
  comment     text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK (ends_at > starts_at)
);

-- Conditions still pending (above a threshold, waiting for the pending period; a burst counting),
-- per (originator, type): the core's state. Batches log their changes in alarm_condition_log
-- (migration 0015), which the worker folds in here.
CREATE TABLE alarm_conditions (
  originator_kind text NOT NULL,
  originator_id   text NOT NULL,
  alarm_type      text NOT NULL,
  state           jsonb NOT NULL,
  PRIMARY KEY (originator_kind, originator_id, alarm_type)
);
