-- Event times keep microseconds (docs/ARCHITECTURE.md, Event time): an event time in epoch ms
-- has a fraction, so the progress columns holding one are double precision (exact: µs / 1000
-- is the same double in JavaScript and here). late_readings.lateness_ms stays whole ms.
ALTER TABLE stream_offsets ALTER COLUMN max_event_ms TYPE double precision;
ALTER TABLE stream_watermarks ALTER COLUMN watermark_ms TYPE double precision;
