/**
 * Device ingest, pure: what real sensors send (ThingsBoard JSON over MQTT or HTTP, InfluxDB line
 * protocol over HTTP) to Readings, every refusal typed with a reason. No I/O and no clock: the
 * receive time is passed in. The adapters (src/sources) authenticate the device by its token and
 * put the readings on the bus.
 *
 * The mapping, for every format:
 * - A device is the one its token names. Each (device, measurement) is one sensor:
 *     sensorId   = `${device.id}.${sensorType}`   e.g. `esp32-1.temperature`
 *     sensorType = the measurement name lower-cased, aliases replaced (temp → temperature,
 *                  hum/rh → humidity, co₂ → co2, aqi → air_quality); other names that are valid
 *                  types (1-63 of a-z 0-9 _ -, not starting with _ or -) are their own type,
 *                  invalid ones are rejected (`invalid_measurement`)
 *     unit       = the known type's unit (°C, %, AQI, hPa, ppm: the simulator's), else ''
 *     location   = device.location: the registry says where a device is; a payload cannot
 *                  move it (line-protocol tags and the location of our wire readings are ignored)
 *   Because the sensor type has no dot, the last dot of a sensor id separates device and type.
 * - Only numbers are stored: strings, booleans, null and objects are `non_numeric_value`.
 * - A measurement name: a ThingsBoard telemetry key; a line-protocol field key, or the line's
 *   measurement when the field is `value`.
 * - Our own wire readings are taken from a device only for its own sensors (`foreign_sensor`).
 *
 * Reasons: the wire validator's (too_large, invalid_json, non_finite_value, schema,
 * bad_timestamp, timestamp_too_old, timestamp_in_future) and non_numeric_value,
 * too_many_values, invalid_measurement, duplicate_measurement, foreign_sensor, line_protocol,
 * too_many_lines (see reasons.ts).
 *
 * Also the per-device rate limit every way in shares: a token bucket per device (`TokenBucket`:
 * MQTT delays past it, HTTP refuses with 429 through `RateLimiter`), the time passed in.
 */
export { decodeTelemetry, WHOLE_PAYLOAD, type TelemetryLimits, type TelemetryRejection, type TelemetryResult } from './telemetry.ts'
export {
  parseLineProtocol, precisions,
  type FieldValue, type LineError, type LinePoint, type LineProtocolLimits, type LineProtocolResult, type Precision
} from './line-protocol.ts'
export { pointsToReadings, VALUE_FIELD, type PointRejection, type PointsLimits, type PointsResult } from './points.ts'
export { knownMeasurements, measurementAliases, sensorIdOf, sensorTypeOf, type IngestDevice, type SensorTypeResult } from './sensors.ts'
export { defaultIngestLimits, type IngestLimits } from './limits.ts'
export { ingestRejectReasons, MAX_RAW_CHARS, type IngestRejectReason } from './reasons.ts'
export { TokenBucket } from './token-bucket.ts'
export { RateLimiter, burstFor, defaultDeviceRateLimit, type DeviceRateLimit } from './rate-limit.ts'
