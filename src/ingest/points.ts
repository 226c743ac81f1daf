import { type Reading } from '../domain/index.ts'
import { type IngestLimits, defaultIngestLimits, farOff } from './limits.ts'
import { type FieldValue, type LinePoint } from './line-protocol.ts'
import { type IngestRejectReason, truncateRaw } from './reasons.ts'
import { type IngestDevice, deviceReading, holdsSensor, sensorIdOf, sensorTypeOf } from './sensors.ts'

/** A point or field not taken in. `raw` is line protocol (ns timestamp) that can be written again once fixed. */
export interface PointRejection {
  /** The point's line in its body. */
  line: number
  raw: string
  reason: IngestRejectReason
  detail: string
}

export interface PointsResult {
  readings: Reading[]
  rejected: PointRejection[]
}

/** What pointsToReadings reads of the limits. */
export type PointsLimits = Pick<IngestLimits, 'maxPastMs' | 'maxFutureMs'>

/** The field that says "the measurement is the sensor type" (`temperature,device=esp32-1 value=22.5`). */
export const VALUE_FIELD = 'value'

/**
 * The readings of the points a device wrote (authenticated by its token):
 * - Each numeric field is one reading. Its measurement name is the field key (Telegraf style:
 *   `environment temperature=22.5,humidity=41`, the line's measurement only groups), except for
 *   a field named `value`, whose measurement name is the line's measurement
 *   (`temperature value=22.5`). The name becomes a sensor type as in sensorTypeOf.
 * - The device is the token's, whatever the tags say, and its location is the registry's: tags
 *   (`device`, `host`, `location`, ...) are ignored, so a write can never reach another device's
 *   sensors or move one, and Telegraf's default `host` tag changes nothing.
 * - Booleans and strings are `non_numeric_value` (we store numbers), each field on its own.
 * - A point with a far-off timestamp (`maxPastMs`, `maxFutureMs` against `receivedAtMs`) is
 *   rejected once, with a hint when the precision looks wrong.
 * - The reading's `ts` is the point's `tsMs`, with its microseconds (domain/wire.ts
 *   fromMicroseconds); digits below a microsecond (precision=ns) are truncated.
 */
export function pointsToReadings (
  points: readonly LinePoint[],
  device: IngestDevice,
  receivedAtMs: number,
  limits: PointsLimits = defaultIngestLimits
): PointsResult {
  const readings: Reading[] = []
  const rejected: PointRejection[] = []
  for (const point of points) {
    const ts = point.tsMs
    const off = farOff(ts, receivedAtMs, limits)
    if (off !== null) {
      rejected.push({ line: point.line, raw: truncateRaw(formatLine(point, null)), reason: off.reason, detail: off.detail + precisionHint(point.tsUs, receivedAtMs) })
      continue
    }
    const firstReading = readings.length
    for (const key of Object.keys(point.fields)) {
      const value = point.fields[key] as FieldValue
      const name = key === VALUE_FIELD ? point.measurement : key
      const type = sensorTypeOf(name)
      if (!type.ok) {
        rejectField(rejected, point, key, 'invalid_measurement', type.detail)
        continue
      }
      if (typeof value !== 'number') {
        rejectField(rejected, point, key, 'non_numeric_value', `field ${JSON.stringify(key)} is ${typeof value === 'string' ? 'a string' : 'a boolean'}: only numbers are stored`)
        continue
      }
      if (!Number.isFinite(value)) {
        rejectField(rejected, point, key, 'non_finite_value', `field ${JSON.stringify(key)} is not finite`)
        continue
      }
      if (holdsSensor(readings, firstReading, sensorIdOf(device.id, type.sensorType))) {
        rejectField(rejected, point, key, 'duplicate_measurement', `field ${JSON.stringify(key)} names ${type.sensorType}, which this point has already`)
        continue
      }
      readings.push(deviceReading(device, type, value, ts))
    }
  }
  return { readings, rejected }
}

/** Rejects one field of a point, its raw the point with that field alone. */
function rejectField (rejected: PointRejection[], point: LinePoint, key: string, reason: IngestRejectReason, detail: string): void {
  rejected.push({ line: point.line, raw: truncateRaw(formatLine(point, key)), reason, detail })
}

/** readings[from..] has a reading of `sensorId` (a point has a handful of fields: a scan beats a Set). */
/**
 * " (...)" when the timestamp is a power of 1000 off the receive time (within a day): the usual
 * mistake is ms or s timestamps written with the default precision, ns.
 */
function precisionHint (tsUs: number, receivedAtMs: number): string {
  const nowUs = receivedAtMs * 1000
  for (const factor of [1e3, 1e6, 1e9]) {
    if (Math.abs(tsUs * factor - nowUs) < DAY_US) return ` (${factor} times too small: is the write's precision right?)`
    if (Math.abs(tsUs / factor - nowUs) < DAY_US) return ` (${factor} times too large: is the write's precision right?)`
  }
  return ''
}

const DAY_US = 86_400_000_000

/**
 * A point as one line of line protocol, with only `field` when it is given, its timestamp in ns.
 * The inverse of parseLineProtocol (for the values it produced: integer fields come back as floats).
 */
export function formatLine (point: LinePoint, field: string | null): string {
  let line = escapeName(point.measurement, MEASUREMENT_SPECIALS)
  for (const key of Object.keys(point.tags)) line += `,${escapeName(key, KEY_SPECIALS)}=${escapeName(point.tags[key] as string, KEY_SPECIALS)}`
  const keys = field === null ? Object.keys(point.fields) : [field]
  line += ' '
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string
    const value = point.fields[key] as FieldValue
    if (i > 0) line += ','
    line += `${escapeName(key, KEY_SPECIALS)}=${typeof value === 'string' ? `"${value.replace(STRING_SPECIALS, '\\$&')}"` : String(value)}`
  }
  return `${line} ${point.tsUs === 0 ? '0' : `${point.tsUs}000`}`
}

const MEASUREMENT_SPECIALS = /[, ]/g
const KEY_SPECIALS = /[,= ]/g
const STRING_SPECIALS = /["\\]/g

function escapeName (name: string, specials: RegExp): string {
  return name.replace(specials, '\\$&')
}
