-- The notifier (src/notify) looks up an alarm's notifications: the repeat check (an active,
-- unacknowledged alarm whose last notification is older than the repeat interval) and an alarm's
-- page in the API. Without this index each lookup reads the whole outbox, which keeps every
-- transition ever notified (its unique keys are what stop a recomputation from notifying twice).
CREATE INDEX alarm_outbox_by_alarm ON alarm_outbox (alarm_id, outbox_id);
