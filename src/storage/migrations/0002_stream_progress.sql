-- Kafka mode: several workers share a consumer group. A partition's owner marks it idle when
-- nothing arrived on it for the idle timeout, so it stops holding back the combined watermark;
-- a partition whose owner died keeps its last state (and holds the watermark) until someone
-- owns it again.
ALTER TABLE stream_offsets ADD COLUMN idle boolean NOT NULL DEFAULT false;
