import { rejectReasons } from '../domain/index.ts'

/**
 * Why a value, an entry, a line or a whole payload was not taken in: the wire validator's reasons
 * (src/domain/wire.ts) where they mean the same thing, and these where none fits:
 * - `non_numeric_value`: a string, boolean, null, object or array where a number belongs (ThingsBoard
 *   and line protocol carry them; we store numbers only).
 * - `too_many_values`: a JSON payload with more values than `maxValuesPerPayload`.
 * - `invalid_measurement`: a measurement name that cannot be a sensor type (see measurements.ts).
 * - `duplicate_measurement`: a second value for the same sensor in one entry or point (`temp` and
 *   `temperature` both name temperature): the first is kept.
 * - `foreign_sensor`: one of our wire readings whose sensor_id is not the sending device's.
 * - `line_protocol`: a line-protocol syntax error.
 * - `too_many_lines`: a line-protocol body longer than `maxLinesPerBody`.
 */
export const ingestRejectReasons = [
  ...rejectReasons,
  'non_numeric_value',
  'too_many_values',
  'invalid_measurement',
  'duplicate_measurement',
  'foreign_sensor',
  'line_protocol',
  'too_many_lines'
] as const
export type IngestRejectReason = (typeof ingestRejectReasons)[number]

/** How much of a rejected text is kept: enough to recognise it, bounded whatever was sent. */
export const MAX_RAW_CHARS = 1024

/** `text` cut to MAX_RAW_CHARS UTF-16 units, never between the two halves of a surrogate pair. */
export function truncateRaw (text: string): string {
  if (text.length <= MAX_RAW_CHARS) return text
  const code = text.charCodeAt(MAX_RAW_CHARS - 1)
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? MAX_RAW_CHARS - 1 : MAX_RAW_CHARS)
}
