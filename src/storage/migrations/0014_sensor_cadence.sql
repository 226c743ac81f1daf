-- The learnt cadence of each sensor (the median interval between its recent readings, in ms, as the
-- worker's detectors see it: src/anomaly/cadence.ts), for operators (the Devices tab, /api/devices)
-- and for the offline deadline of alarms. Null until a sensor has a few intervals.
ALTER TABLE sensors ADD COLUMN cadence_ms double precision;
