-- Devices: one row per physical node that sends readings itself (MQTT, HTTP). Each (device,
-- measurement) is a sensor whose sensor_id is '<device_id>.<measurement>' (src/devices).
-- The device's token is stored only as its SHA-256 digest: tokens are 256 random bits, so a fast
-- hash cannot be reversed or guessed (a slow password hash guards low-entropy secrets; InfluxDB 2.x
-- also keeps hashes). The unique index finds a device from a token in one index probe.
-- A revoked device keeps its row (its readings keep their sensor ids) and never authenticates;
-- rotating replaces token_hash, so the old token stops working at once.
-- last_seen_at is written by the ingest every few seconds for the devices heard meanwhile, and
-- connection by MQTT session state (Last Will): fillfactor 80 lets those updates stay in place (HOT,
-- no index column changes), as on the window tables.
CREATE TABLE devices (
  device_id       text        PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  name            text        NOT NULL CHECK (name <> ''),
  location        text        NOT NULL CHECK (location <> ''),
  token_hash      bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
  created_at      timestamptz NOT NULL,
  token_issued_at timestamptz NOT NULL,   -- at add and at each rotation
  revoked_at      timestamptz,            -- null: active
  last_seen_at    timestamptz,            -- wall time of the newest reading received (null: never)
  connection      text        CHECK (connection IN ('online', 'offline')),  -- MQTT session state (null: unknown)
  connection_at   timestamptz             -- when the connection state was reported
) WITH (fillfactor = 80);

CREATE UNIQUE INDEX devices_token_hash ON devices (token_hash);
