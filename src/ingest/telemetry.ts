import { type Reading, toMicrosecondPrecision, validateMessage } from '../domain/index.ts'
import { type IngestLimits, defaultIngestLimits, exceedsBytes, farOff } from './limits.ts'
import { type IngestRejectReason, truncateRaw } from './reasons.ts'
import { type IngestDevice, deviceReading, holdsSensor, sensorIdOf, sensorTypeOf } from './sensors.ts'

/** What decodeTelemetry reads of the limits. */
export type TelemetryLimits = Pick<IngestLimits, 'maxPayloadBytes' | 'maxValuesPerPayload' | 'maxPastMs' | 'maxFutureMs'>

/** `index` of a rejection that concerns the whole payload (too large, broken JSON, ...). */
export const WHOLE_PAYLOAD = -1

/**
 * One thing not taken in. `index` is the entry's position in the payload's array (0 for a lone
 * object), or WHOLE_PAYLOAD. `raw` is JSON that can be sent again as it is once fixed: the bad value
 * alone (`{"temperature":"hot"}`, with its `ts` when the entry had one), the bad entry, or the
 * payload; at most MAX_RAW_CHARS.
 */
export interface TelemetryRejection {
  index: number
  raw: string
  reason: IngestRejectReason
  detail: string
}

export interface TelemetryResult {
  readings: Reading[]
  rejected: TelemetryRejection[]
}

/** A strict UTF-8 decoder: bytes that are not UTF-8 are refused, not replaced with U+FFFD. */
const utf8 = new TextDecoder('utf-8', { fatal: true })
/** An unquoted NaN or Infinity where JSON wants a value (JSON.parse refuses them). */
const NON_FINITE = /:\s*-?(NaN|Infinity)\b/
/** The largest epoch ms a date can hold (±100,000,000 days, as JavaScript's Date). */
const MAX_TS_MS = 8.64e15

/**
 * Decodes one telemetry payload of a device (an MQTT message on `v1/devices/me/telemetry`, or the
 * body of `POST /api/v1/{token}/telemetry`), in any of ThingsBoard's shapes or ours:
 * - `{"temperature":22.5,"humidity":41}`: values at the receive time;
 * - `{"ts":1733400000000,"values":{"temperature":22.5}}`: values at `ts` (epoch ms; a fraction
 *   keeps microseconds: `1733400000000.125`);
 * - one of our wire readings (`{"sensor_id":"esp32-1.temperature",...}`, src/domain/wire.ts),
 *   validated as the bus validates it;
 * - an array of any of these.
 *
 * Every key of a value map is a measurement: see sensorTypeOf for how it becomes a sensor type,
 * and the module header (index.ts) for the sensor id and location. Good values are kept and each
 * bad one is rejected on its own; a payload that is too large, not JSON, not an object or array,
 * or holds more than `maxValuesPerPayload` values is rejected once, whole.
 *
 * Decided here:
 * - Only numbers are stored: strings (even "22.5"), booleans, null, objects and arrays are
 *   `non_numeric_value` (ThingsBoard would store them as attributes of other types).
 * - An object with `ts` but no `values` (or the reverse) is `schema`: ThingsBoard would store `ts`
 *   as a telemetry key, which is never what was meant. Keys beside `ts` and `values` are `schema`
 *   each, so nothing is dropped silently.
 * - Our wire readings are accepted only for the device's own sensors: `sensor_id` equal to the
 *   device id or starting with `<device id>.`; else `foreign_sensor`. Their location is replaced
 *   by the device's (the registry says where a device is); their sensor type, unit, label and seq
 *   are kept as sent.
 * - Far-off timestamps (`maxPastMs`, `maxFutureMs` against `receivedAtMs`) reject the entry once.
 *
 * Pure: `receivedAtMs` is the receive time (epoch ms) and stands for the event time of values sent
 * without one.
 */
export function decodeTelemetry (
  payload: string | Buffer,
  device: IngestDevice,
  receivedAtMs: number,
  limits: TelemetryLimits = defaultIngestLimits
): TelemetryResult {
  const readings: Reading[] = []
  const rejected: TelemetryRejection[] = []
  const whole = (raw: string, reason: IngestRejectReason, detail: string): TelemetryResult => {
    rejected.push({ index: WHOLE_PAYLOAD, raw: truncateRaw(raw), reason, detail })
    return { readings, rejected }
  }

  let text: string
  if (typeof payload === 'string') {
    if (exceedsBytes(payload, limits.maxPayloadBytes)) return whole(payload, 'too_large', `payload exceeds ${limits.maxPayloadBytes} bytes`)
    text = payload.charCodeAt(0) === 0xfeff ? payload.slice(1) : payload
  } else {
    if (payload.length > limits.maxPayloadBytes) {
      return whole(payload.subarray(0, 4 * 1024).toString('utf8'), 'too_large', `payload exceeds ${limits.maxPayloadBytes} bytes`)
    }
    try {
      text = utf8.decode(payload) // drops a leading byte order mark
    } catch {
      return whole(payload.toString('utf8'), 'invalid_json', 'payload is not UTF-8')
    }
  }

  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    if (NON_FINITE.test(text)) return whole(text, 'non_finite_value', 'a value is NaN or Infinity')
    return whole(text, 'invalid_json', (err as Error).message)
  }
  const entries: unknown[] = Array.isArray(parsed) ? parsed : [parsed]
  if (!Array.isArray(parsed) && !isPlainObject(parsed)) {
    return whole(text, 'schema', 'a telemetry payload is a JSON object or an array of objects')
  }
  const count = countValues(entries)
  if (count > limits.maxValuesPerPayload) {
    return whole(text, 'too_many_values', `${count} values in one payload, at most ${limits.maxValuesPerPayload}`)
  }

  const serverTs = Math.floor(receivedAtMs)
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]
    const reject = (raw: string, reason: IngestRejectReason, detail: string): void => {
      rejected.push({ index, raw: truncateRaw(raw), reason, detail })
    }
    if (!isPlainObject(entry)) {
      reject(JSON.stringify(entry), 'schema', `an entry is a JSON object, got ${describe(entry)}`)
      continue
    }
    if (Object.hasOwn(entry, 'sensor_id')) {
      decodeWire(entry, device, receivedAtMs, limits, readings, reject)
      continue
    }
    const hasTs = Object.hasOwn(entry, 'ts')
    const hasValues = Object.hasOwn(entry, 'values')
    if (!hasTs && !hasValues) {
      decodeValues(entry, null, serverTs, device, readings, reject)
      continue
    }
    if (!hasTs || !hasValues) {
      reject(JSON.stringify(entry), 'schema', hasTs
        ? '"ts" without "values": send {"ts":<epoch ms>,"values":{...}}, or the values alone for the receive time'
        : '"values" without "ts": send {"ts":<epoch ms>,"values":{...}}')
      continue
    }
    const { ts, values } = entry
    if (typeof ts !== 'number' || !(Math.abs(ts) <= MAX_TS_MS)) {
      reject(JSON.stringify(entry), 'bad_timestamp', `"ts" is epoch milliseconds, a number; got ${describe(ts)}`)
      continue
    }
    const at = toMicrosecondPrecision(ts)
    if (!isPlainObject(values)) {
      reject(JSON.stringify(entry), 'schema', `"values" is an object of measurements, got ${describe(values)}`)
      continue
    }
    for (const key of Object.keys(entry)) {
      if (key !== 'ts' && key !== 'values') {
        reject(JSON.stringify({ [key]: entry[key] }), 'schema', `unknown key ${JSON.stringify(key)} beside "ts" and "values" (measurements go in "values")`)
      }
    }
    const off = farOff(at, receivedAtMs, limits)
    if (off !== null) {
      reject(JSON.stringify(entry), off.reason, off.detail)
      continue
    }
    decodeValues(values, at, at, device, readings, reject)
  }
  return { readings, rejected }
}

type Reject = (raw: string, reason: IngestRejectReason, detail: string) => void

/** The values of one entry, each its own reading at `ts`; `sentTs` is the entry's own ts (null: receive time). */
function decodeValues (
  values: Record<string, unknown>, sentTs: number | null, ts: number, device: IngestDevice, readings: Reading[], reject: Reject
): void {
  const keys = Object.keys(values)
  if (keys.length === 0) {
    reject(sentTs === null ? '{}' : JSON.stringify({ ts: sentTs, values }), 'schema', 'no values')
    return
  }
  const firstReading = readings.length
  for (const key of keys) {
    const value = values[key]
    const raw = (): string => {
      // JSON has no Infinity (JSON.stringify writes null): show what the overflowing literal became.
      const shown = typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value)
      return sentTs === null ? `{${JSON.stringify(key)}:${shown}}` : `{"ts":${sentTs},"values":{${JSON.stringify(key)}:${shown}}}`
    }
    const type = sensorTypeOf(key)
    if (!type.ok) {
      reject(raw(), 'invalid_measurement', type.detail)
      continue
    }
    if (typeof value !== 'number') {
      reject(raw(), 'non_numeric_value', `${JSON.stringify(key)} is ${describe(value)}: only numbers are stored`)
      continue
    }
    // JSON.parse turns an overflowing literal such as 1e999 into Infinity.
    if (!Number.isFinite(value)) {
      reject(raw(), 'non_finite_value', `${JSON.stringify(key)} is not finite`)
      continue
    }
    if (holdsSensor(readings, firstReading, sensorIdOf(device.id, type.sensorType))) {
      reject(raw(), 'duplicate_measurement', `${JSON.stringify(key)} names ${type.sensorType}, which this entry has already`)
      continue
    }
    readings.push(deviceReading(device, type, value, ts))
  }
}

/** Index of the reading of `sensorId` among readings[from..], or -1 (an entry has a handful: a scan beats a Set). */
/** One of our wire readings, validated as the bus validates it, for one of the device's own sensors. */
function decodeWire (
  entry: Record<string, unknown>, device: IngestDevice, receivedAtMs: number, limits: TelemetryLimits, readings: Reading[], reject: Reject
): void {
  const raw = JSON.stringify(entry)
  // JSON.parse made an overflowing literal Infinity, which JSON.stringify writes as null.
  if (typeof entry.value === 'number' && !Number.isFinite(entry.value)) {
    reject(raw, 'non_finite_value', 'value is not finite')
    return
  }
  const result = validateMessage(raw, receivedAtMs, {
    maxBytes: limits.maxPayloadBytes,
    maxPastMs: limits.maxPastMs,
    maxFutureMs: limits.maxFutureMs
  })
  if (!result.ok) {
    reject(raw, result.reason, result.detail)
    return
  }
  const r = result.reading
  if (r.sensorId !== device.id && !(r.sensorId.length > device.id.length && r.sensorId.startsWith(device.id) && r.sensorId.charCodeAt(device.id.length) === 46 /* . */)) {
    reject(raw, 'foreign_sensor', `sensor_id ${JSON.stringify(r.sensorId)} is not device ${JSON.stringify(device.id)}'s: it is the device id or starts with "${device.id}."`)
    return
  }
  readings.push({
    sensorId: r.sensorId,
    sensorType: r.sensorType,
    location: device.location,
    value: r.value,
    ts: r.ts,
    unit: r.unit,
    anomaly: r.anomaly,
    anomalyKind: r.anomalyKind,
    seq: r.seq
  })
}

/**
 * Values in the entries, as the limit counts them: a wire reading or an entry that is not an
 * object is one, a timed entry its `values` keys, a plain entry its keys. Counted before anything
 * is decoded, so an oversized payload costs no readings.
 */
function countValues (entries: unknown[]): number {
  let n = 0
  for (const entry of entries) {
    if (!isPlainObject(entry) || Object.hasOwn(entry, 'sensor_id')) n += 1
    else if (isPlainObject(entry.values)) n += Math.max(1, Object.keys(entry.values).length)
    else n += Math.max(1, Object.keys(entry).length)
  }
  return n
}

function isPlainObject (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

/** What a JSON value is, for a detail: `a string ("hot")`, `a boolean (true)`, `null`, ... */
function describe (x: unknown): string {
  if (x === null) return 'null'
  if (x === undefined) return 'missing'
  if (Array.isArray(x)) return 'an array'
  switch (typeof x) {
    case 'string': return `a string (${JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x)})`
    case 'boolean': return `a boolean (${String(x)})`
    case 'number': return `a number (${String(x)})`
    default: return 'an object'
  }
}
