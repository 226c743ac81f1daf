import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { type Reading } from './reading.ts'

/** Names and units are printable: no control characters (NUL cannot even be stored in PostgreSQL text). */
const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f]*$'

/**
 * The wire format on topic `iot_sensors`, compatible with the original producer:
 * {"sensor_id","sensor_type","location","value","timestamp","unit","anomaly"} plus optional
 * "anomaly_type" (ground-truth kind) and "seq". Unknown extra fields are ignored.
 */
export const WireReadingSchema = Type.Object({
  sensor_id: Type.String({ minLength: 1, maxLength: 128, pattern: NO_CONTROL }),
  sensor_type: Type.String({ minLength: 1, maxLength: 64, pattern: NO_CONTROL }),
  location: Type.String({ minLength: 1, maxLength: 128, pattern: NO_CONTROL }),
  value: Type.Number(),
  timestamp: Type.String({ maxLength: 40 }),
  unit: Type.Optional(Type.String({ maxLength: 32, pattern: NO_CONTROL })),
  anomaly: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  anomaly_type: Type.Optional(Type.Union([Type.String({ maxLength: 32, pattern: NO_CONTROL }), Type.Null()])),
  seq: Type.Optional(Type.Integer({ minimum: 0 }))
})
export type WireReading = Static<typeof WireReadingSchema>

/**
 * Machine-readable reasons a message is rejected; stored in dead_letters.reason. The first seven
 * are the wire validator's; the others come from device ingest (src/ingest), which rejects single
 * values, entries and lines of what a device sent:
 * - `non_numeric_value`: a string, boolean, null, object or array where a number belongs;
 * - `too_many_values`: a JSON payload with more values than its limit;
 * - `invalid_measurement`: a measurement name that cannot be a sensor type;
 * - `duplicate_measurement`: a second value for the same sensor in one entry or point;
 * - `foreign_sensor`: one of our wire readings whose sensor_id is not the sending device's;
 * - `line_protocol`: a line-protocol syntax error;
 * - `too_many_lines`: a line-protocol body longer than its limit.
 */
export const rejectReasons = [
  'too_large',
  'invalid_json',
  'non_finite_value',
  'schema',
  'bad_timestamp',
  'timestamp_too_old',
  'timestamp_in_future',
  'non_numeric_value',
  'too_many_values',
  'invalid_measurement',
  'duplicate_measurement',
  'foreign_sensor',
  'line_protocol',
  'too_many_lines'
] as const
export type RejectReason = (typeof rejectReasons)[number]

export interface ValidationOptions {
  /** Largest accepted message in bytes (UTF-8). */
  maxBytes: number
  /** Reject readings older than this many ms behind the ingest clock; null disables (backfills). */
  maxPastMs: number | null
  /** Reject readings more than this many ms ahead of the ingest clock; null disables. */
  maxFutureMs: number | null
}

export const defaultValidationOptions: ValidationOptions = {
  maxBytes: 16 * 1024,
  maxPastMs: 7 * 24 * 3600_000,
  maxFutureMs: 5 * 60_000
}

export type ValidationResult =
  | { ok: true, reading: Reading }
  | { ok: false, reason: RejectReason, detail: string, /** The text that was rejected, when the message carried it (a rejected envelope). */ raw?: string }

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/

/**
 * Event times are epoch ms with microsecond precision (PostgreSQL's own): a whole number of µs
 * divided by 1000, so `1733400000000.123` is 123 µs after a millisecond. The same µs always
 * gives the same number (one correctly rounded division), whether it comes from text, line
 * protocol or the database; microsecondsOf recovers the µs exactly.
 */
export const fromMicroseconds = (us: number): number => us / 1000
/** The whole µs of an event time (exact below year 287,000). */
export const microsecondsOf = (ts: number): number => Math.round(ts * 1000)
/** An epoch-ms number rounded to the microsecond: the canonical form of a time given as ms. */
export const toMicrosecondPrecision = (ms: number): number => Number.isInteger(ms) ? ms : fromMicroseconds(microsecondsOf(ms))

/**
 * Parses an ISO 8601 date-time to epoch ms with microsecond precision (see fromMicroseconds).
 * Without a zone it is UTC (the original producer sends naive `datetime.now().isoformat()`,
 * with microseconds); digits below a microsecond are truncated. Returns NaN when the text is
 * not a valid date-time.
 */
export function parseTimestamp (text: string): number {
  if (text.length === 24) {
    const t = parseCanonical(text)
    if (t === t) return t // eslint-disable-line no-self-compare -- not NaN
  }
  const m = ISO.exec(text)
  if (m === null) return Number.NaN
  const [, y, mo, d, h, mi, s, frac, zone] = m
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = Number(h)
  const minute = Number(mi)
  const second = s === undefined ? 0 : Number(s)
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return Number.NaN
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0'))
  const us = frac === undefined || frac.length <= 3 ? 0 : Number(frac.slice(3, 6).padEnd(3, '0'))
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day) // not Date.UTC: it reads years 0-99 as 1900-1999
  date.setUTCHours(hour, minute, second, ms)
  if (date.getUTCDate() !== day) return Number.NaN // 2025-02-30 and the like
  let t = date.getTime()
  if (zone !== undefined && zone !== 'Z' && zone !== 'z') {
    const sign = zone[0] === '-' ? -1 : 1
    const digits = zone.slice(1).replace(':', '')
    const offH = Number(digits.slice(0, 2))
    const offM = digits.length > 2 ? Number(digits.slice(2, 4)) : 0
    if (offH > 23 || offM > 59) return Number.NaN
    t -= sign * (offH * 60 + offM) * 60_000
  }
  return us === 0 ? t : fromMicroseconds(t * 1000 + us)
}

/** Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
function daysFromCivil (y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/**
 * The hot path of parseTimestamp: exactly `YYYY-MM-DDTHH:MM:SS.mmmZ` (what toISOString and our
 * producers write), read digit by digit without allocating. NaN for anything else, which then
 * takes the general path (and is judged there).
 */
function parseCanonical (t: string): number {
  if (t.charCodeAt(4) !== 45 || t.charCodeAt(7) !== 45 || t.charCodeAt(10) !== 84 || t.charCodeAt(13) !== 58 ||
    t.charCodeAt(16) !== 58 || t.charCodeAt(19) !== 46 || t.charCodeAt(23) !== 90) return Number.NaN
  const century = twoDigits(t, 0); const yy = twoDigits(t, 2); const month = twoDigits(t, 5); const day = twoDigits(t, 8)
  const hour = twoDigits(t, 11); const minute = twoDigits(t, 14); const second = twoDigits(t, 17)
  const ms10 = twoDigits(t, 20); const ms1 = t.charCodeAt(22) - 48
  if (century < 0 || yy < 0 || ms10 < 0 || (ms1 >>> 0) > 9 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 ||
    minute < 0 || minute > 59 || second < 0 || second > 59) return Number.NaN
  const year = century * 100 + yy
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  if (day > (DAYS_IN_MONTH[month - 1] as number) + (leap ? 1 : 0)) return Number.NaN
  return ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + ms10 * 10 + ms1
}

/** The two decimal digits at t[i..i+2) as a number, or -1. */
function twoDigits (t: string, i: number): number {
  const a = t.charCodeAt(i) - 48
  const b = t.charCodeAt(i + 1) - 48
  return (a >>> 0) > 9 || (b >>> 0) > 9 ? -1 : a * 10 + b
}

/** The last hour formatted: `YYYY-MM-DDTHH:` of hour #formattedHour since the epoch. */
let formattedHour = Number.NaN
let hourPrefix = ''
/** toISOString's range of four-digit years (0000-01-01 to 9999-12-31). */
const MIN_FOUR_DIGIT_MS = -62_167_219_200_000
const MAX_FOUR_DIGIT_MS = 253_402_300_800_000

/**
 * Formats epoch ms as the wire's ISO 8601 UTC text: exactly as toISOString for whole ms, with
 * three more digits (`.123456Z`) when the time has microseconds. Readings come in time order, so
 * the date and hour are reused from the previous call while they match.
 */
export function formatTimestamp (ts: number): string {
  if (!Number.isInteger(ts) && Number.isFinite(ts)) {
    const us = microsecondsOf(ts)
    const ms = Math.floor(us / 1000)
    const sub = us - ms * 1000
    const text = formatTimestamp(ms)
    return sub === 0 ? text : `${text.slice(0, -1)}${sub < 10 ? '00' : sub < 100 ? '0' : ''}${sub}Z`
  }
  if (!(ts >= MIN_FOUR_DIGIT_MS && ts < MAX_FOUR_DIGIT_MS)) return new Date(ts).toISOString()
  const hour = Math.floor(ts / 3_600_000)
  if (hour !== formattedHour) {
    formattedHour = hour
    hourPrefix = new Date(hour * 3_600_000).toISOString().slice(0, 14)
  }
  const rest = ts - hour * 3_600_000 // 0..3599999 ms within the hour
  const m = Math.floor(rest / 60_000)
  const s = Math.floor((rest - m * 60_000) / 1000)
  const ms = rest - m * 60_000 - s * 1000
  return `${hourPrefix}${m < 10 ? '0' : ''}${m}:${s < 10 ? '0' : ''}${s}.${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`
}

/** Encodes a reading in the wire format. */
export function toWire (r: Reading): string {
  const o: WireReading = {
    sensor_id: r.sensorId,
    sensor_type: r.sensorType,
    location: r.location,
    value: r.value,
    timestamp: formatTimestamp(r.ts),
    unit: r.unit
  }
  if (r.anomaly !== null) o.anomaly = r.anomaly
  if (r.anomalyKind !== null) o.anomaly_type = r.anomalyKind
  if (r.seq !== null) o.seq = r.seq
  return JSON.stringify(o)
}

const ajv = new Ajv({ allErrors: false, coerceTypes: false })
const checkWire = ajv.compile<WireReading>(WireReadingSchema)
const NON_FINITE = /:\s*-?(NaN|Infinity)\b/

/**
 * Validates one raw message against the wire format and the ingest clock `now` (epoch ms:
 * wall time for live sources, the virtual clock for the accelerated simulator and replays).
 */
export function validateMessage (raw: string, now: number, opts: ValidationOptions = defaultValidationOptions): ValidationResult {
  // Byte length: a string of n UTF-16 units has between n and 3n UTF-8 bytes; count exactly only near the limit.
  if (raw.length > opts.maxBytes || (raw.length * 3 > opts.maxBytes && Buffer.byteLength(raw) > opts.maxBytes)) {
    return { ok: false, reason: 'too_large', detail: `message exceeds ${opts.maxBytes} bytes` }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch (err) {
    if (NON_FINITE.test(raw)) return { ok: false, reason: 'non_finite_value', detail: 'value is NaN or Infinity' }
    return { ok: false, reason: 'invalid_json', detail: (err as Error).message }
  }
  const rejected = rejectedOf(parsed)
  if (rejected !== null) return rejected
  // JSON.parse turns an overflowing literal such as 1e999 into Infinity.
  if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { value?: unknown }).value === 'number' &&
    !Number.isFinite((parsed as { value: number }).value)) {
    return { ok: false, reason: 'non_finite_value', detail: 'value is not finite' }
  }
  if (!checkWire(parsed)) {
    const e = checkWire.errors?.[0]
    return { ok: false, reason: 'schema', detail: e === undefined ? 'invalid' : `${e.instancePath === '' ? '/' : e.instancePath} ${e.message ?? ''}`.trim() }
  }
  return validateWire(parsed, now, opts)
}

/** The key of a rejected envelope: what device ingest could not take, sent on for the dead letters. */
const REJECTED_KEY = 'iot_rejected'

/**
 * A message saying "this was rejected, and why": device ingest puts what it could not take (a bad
 * line of a line-protocol write, a string where a number belongs) on the bus in this envelope, so
 * that the worker stores it in the dead letters with its own reason and detail, in the same
 * transaction and order as the readings beside it. Anyone may send one; it only ever becomes a dead letter.
 */
export function rejectedMessage (reason: RejectReason, detail: string, raw: string): string {
  return JSON.stringify({ [REJECTED_KEY]: { reason, detail, raw } })
}

function rejectedOf (parsed: unknown): ValidationResult | null {
  if (typeof parsed !== 'object' || parsed === null || !Object.hasOwn(parsed, REJECTED_KEY)) return null
  const r = (parsed as Record<string, unknown>)[REJECTED_KEY] as { reason?: unknown, detail?: unknown, raw?: unknown } | null
  const reason = typeof r?.reason === 'string' && (rejectReasons as readonly string[]).includes(r.reason) ? r.reason as RejectReason : 'schema'
  const detail = typeof r?.detail === 'string' ? r.detail : 'a rejected message without a detail'
  return { ok: false, reason, detail, ...(typeof r?.raw === 'string' ? { raw: r.raw } : {}) }
}

/** Validates an already-parsed wire object (HTTP bodies arrive parsed). */
export function validateWire (w: WireReading, now: number, opts: ValidationOptions = defaultValidationOptions): ValidationResult {
  if (!Number.isFinite(w.value)) return { ok: false, reason: 'non_finite_value', detail: 'value is not finite' }
  const ts = parseTimestamp(w.timestamp)
  if (Number.isNaN(ts)) return { ok: false, reason: 'bad_timestamp', detail: `not an ISO 8601 date-time: ${w.timestamp.slice(0, 40)}` }
  if (opts.maxPastMs !== null && ts < now - opts.maxPastMs) {
    return { ok: false, reason: 'timestamp_too_old', detail: `${Math.round((now - ts) / 1000)} s behind the ingest clock` }
  }
  if (opts.maxFutureMs !== null && ts > now + opts.maxFutureMs) {
    return { ok: false, reason: 'timestamp_in_future', detail: `${Math.round((ts - now) / 1000)} s ahead of the ingest clock` }
  }
  return {
    ok: true,
    reading: {
      sensorId: w.sensor_id,
      sensorType: w.sensor_type,
      location: w.location,
      value: w.value,
      ts,
      unit: w.unit ?? '',
      anomaly: w.anomaly ?? null,
      anomalyKind: w.anomaly_type ?? null,
      seq: w.seq ?? null
    }
  }
}

/**
 * Why a dead letter was kept: a reason the validator gives, or `undecodable` (the bus could not
 * decode what the broker holds, e.g. a corrupt record batch: there is no message text).
 */
export type DeadLetterReason = RejectReason | 'undecodable'

/** A rejected message, kept with its raw text and reason. */
export interface DeadLetter {
  raw: string
  reason: DeadLetterReason
  detail: string
  /** Where it came from: 'simulator', 'http', 'kafka:iot_sensors/3@1234', ... */
  source: string
  receivedAt: number
}
