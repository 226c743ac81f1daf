import { fromMicroseconds } from '../domain/index.ts'
import { type IngestLimits, defaultIngestLimits, exceedsBytes } from './limits.ts'
import { type IngestRejectReason, truncateRaw } from './reasons.ts'

/** Units of line-protocol timestamps (the `precision` of InfluxDB's write API; its default is ns). */
export type Precision = 'ns' | 'us' | 'ms' | 's'
export const precisions: readonly Precision[] = ['ns', 'us', 'ms', 's']

/** A field's value: float, integer (`i`) and unsigned (`u`) are numbers; `t`/`f` booleans; quoted strings. */
export type FieldValue = number | boolean | string

/** One point of a line-protocol body. */
export interface LinePoint {
  /** 1-based physical line the point starts on. */
  line: number
  measurement: string
  tags: Record<string, string>
  fields: Record<string, FieldValue>
  /**
   * Event time in epoch ms, with the sub-millisecond part as a fraction: `tsUs / 1000`, the
   * nearest double. Exact for whole ms; `Math.round(tsMs * 1000) === tsUs` while |tsMs| < 2^42
   * (until 2109), beyond which use tsUs.
   */
  tsMs: number
  /** Event time in epoch µs: a safe integer, exact (digits below a µs, from `ns`, are dropped rounding down). */
  tsUs: number
}

/** A line (entry) that was not parsed. */
export interface LineError {
  /** 1-based physical line the entry starts on. */
  line: number
  /** That line, at most MAX_RAW_CHARS. */
  raw: string
  reason: IngestRejectReason
  detail: string
}

export interface LineProtocolResult {
  points: LinePoint[]
  errors: LineError[]
}

/** What parseLineProtocol reads of the limits. */
export type LineProtocolLimits = Pick<IngestLimits, 'maxLinesPerBody' | 'maxLineBytes'>

const BACKSLASH = 92
const COMMA = 44
const SPACE = 32
const EQUALS = 61
const QUOTE = 34
const HASH = 35
const MINUS = 45
const DOT = 46
const CR = 13
const DIGIT_0 = 48
const DIGIT_9 = 57
const DEL = 127

/** int64 and uint64 bounds as digits, compared as text: they are beyond a double's exact integers. */
const INT64_MAX = '9223372036854775807'
const INT64_MIN_ABS = '9223372036854775808'
const UINT64_MAX = '18446744073709551615'

const NOT_WHITESPACE = /\S/g
/** Decimal digits that always fit a double exactly (10^15 < 2^53). */
const MAX_EXACT_DIGITS = 15
/** Literals: parsed exactly, where a computed power need not be. */
const POWERS_OF_TEN = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15]
/** Names remembered per line (see LineParser.name): a measurement and 31 tags or fields, a few KB. */
const MAX_NAME_SLOTS = 64

/**
 * Parses a body of InfluxDB line protocol (v2 reference, "Line protocol"):
 * `measurement[,tag=value...] field=value[,field=value...] [timestamp]`, one point a line.
 *
 * - Escapes: in the measurement `\,` and `\ `; in tag keys, tag values and field keys `\,`, `\=`
 *   and `\ `; in string field values `\"` and `\\`. A backslash before any other character is
 *   itself (`a\b` is `a\b`, `\n` is a backslash and an n), but it still keeps that character from
 *   ending the element, as InfluxDB's parsers do. A backslash at the end of a line is itself.
 * - Fields: float (`1`, `-1.5`, `.5`, `1e3`), integer `1i` (int64), unsigned `1u` (uint64),
 *   boolean `t T true True TRUE f F false False FALSE`, string `"..."`. Integers beyond 2^53 are
 *   the nearest double. A float beyond a double is `non_finite_value`.
 * - A string field may hold newlines (InfluxDB's parsers and its JavaScript client allow them);
 *   the point then spans lines and is numbered by its first.
 * - Lines may end in `\n` or `\r\n`; blank lines and lines starting with `#` (after spaces) are
 *   skipped; spaces before a line and between its sections are allowed (one or more).
 * - Control characters (U+0000-U+001F, U+007F) are refused outside string values, and so are
 *   an empty measurement, key or tag value, an unescaped `=` in a tag value, a repeated tag or
 *   field key, and a point without fields.
 * - Timestamp: an integer in `precision` units; absent, it is `receivedAtMs` truncated to the
 *   precision (what InfluxDB does with its clock). It must fit in a safe integer of µs (±285
 *   years around 1970), else `bad_timestamp`.
 *
 * Each bad line is one error (its number, text, reason, detail) and parsing goes on with the next
 * line; good lines are kept. When an entry fails, parsing resumes on the physical line after its
 * first, so a stray quote costs one line, not the rest of the body. Bounded: a line longer than
 * `maxLineBytes` is `too_large` (not parsed); past `maxLinesPerBody` lines one `too_many_lines`
 * error ends the parse. A Buffer is read as UTF-8 (bad bytes become U+FFFD); a leading byte order
 * mark is skipped. Pure: the receive time is passed in.
 */
export function parseLineProtocol (
  body: string | Buffer,
  precision: Precision,
  receivedAtMs: number,
  limits: LineProtocolLimits = defaultIngestLimits
): LineProtocolResult {
  const text = typeof body === 'string' ? body : body.toString('utf8')
  return new LineParser(text, precision, receivedAtMs, limits).parse()
}

/** The parse of one body: a cursor over the text and the state of the entry under way. */
class LineParser {
  readonly s: string
  readonly precision: Precision
  readonly limits: LineProtocolLimits
  /** µs of a point without a timestamp: the receive time truncated to the precision. */
  readonly defaultUs: number
  readonly points: LinePoint[] = []
  readonly errors: LineError[] = []

  /** Where the current physical line's content ends (before `\r\n` or `\n`), and its `\n` (or the text's length). */
  end = 0
  nl = 0
  /** Physical lines the entry took beyond its first (a string field with newlines). */
  extraLines = 0
  /** The error of the entry under way. */
  reason: IngestRejectReason = 'line_protocol'
  detail = ''
  /** A number field's value, when parseNumber succeeded. */
  number = 0

  constructor (s: string, precision: Precision, receivedAtMs: number, limits: LineProtocolLimits) {
    this.s = s
    this.precision = precision
    this.limits = limits
    const ms = Math.floor(receivedAtMs)
    this.defaultUs = precision === 's' ? Math.floor(ms / 1000) * 1_000_000 : ms * 1000
  }

  parse (): LineProtocolResult {
    const s = this.s
    const n = s.length
    let pos = s.charCodeAt(0) === 0xfeff ? 1 : 0
    let line = 1
    while (pos < n) {
      let nl = s.indexOf('\n', pos)
      if (nl === -1) nl = n
      let end = nl
      if (end > pos && s.charCodeAt(end - 1) === CR) end--
      if (line > this.limits.maxLinesPerBody) {
        NOT_WHITESPACE.lastIndex = pos
        if (NOT_WHITESPACE.test(s)) {
          this.fail(line, pos, end, 'too_many_lines',
            `the body has more than ${this.limits.maxLinesPerBody} lines; lines from ${line} on were not read`)
        }
        break
      }
      let i = pos
      while (i < end && s.charCodeAt(i) === SPACE) i++
      if (i === end || s.charCodeAt(i) === HASH) {
        pos = nl + 1
        line++
        continue
      }
      if (end - pos > this.limits.maxLineBytes || ((end - pos) * 3 > this.limits.maxLineBytes && exceedsBytes(s.slice(pos, end), this.limits.maxLineBytes))) {
        this.fail(line, pos, end, 'too_large', `line exceeds ${this.limits.maxLineBytes} bytes`)
        pos = nl + 1
        line++
        continue
      }
      this.end = end
      this.nl = nl
      this.extraLines = 0
      const point = this.entry(i, pos, line)
      if (point === null) {
        this.fail(line, pos, end, this.reason, this.detail)
        // Resume on the next physical line even when a string had run onto later ones.
        pos = nl + 1
        line++
        continue
      }
      this.points.push(point)
      pos = this.nl + 1
      line += 1 + this.extraLines
    }
    return { points: this.points, errors: this.errors }
  }

  fail (line: number, from: number, to: number, reason: IngestRejectReason, detail: string): void {
    this.errors.push({ line, raw: truncateRaw(this.s.slice(from, to)), reason, detail })
  }

  /** Sets the entry's error; returns -1 so that scanners can `return this.error(...)`. */
  error (detail: string, reason: IngestRejectReason = 'line_protocol'): -1 {
    this.reason = reason
    this.detail = detail
    return -1
  }

  /** The entry starting at `start` (its physical line starts at `lineStart`), or null with the error set. */
  entry (start: number, lineStart: number, line: number): LinePoint | null {
    const s = this.s
    // Measurement: up to an unescaped comma or space.
    let i = this.scanName(start, false, 'measurement')
    if (i < 0) return null
    if (i === start) return this.nullError('no measurement before the first comma')
    const measurement = this.lastEscaped ? unescapeName(s, start, i, false) : this.name(0, start, i)
    let slot = 1

    // Tags: `,key=value` until a space.
    const tags: Record<string, string> = {}
    while (i < this.end && s.charCodeAt(i) === COMMA) {
      const keyStart = i + 1
      i = this.scanName(keyStart, true, 'tag key')
      if (i < 0) return null
      if (i === keyStart) return this.nullError('empty tag key')
      if (i >= this.end || s.charCodeAt(i) !== EQUALS) return this.nullError(`tag key ${quote(s, keyStart, i)} without "=" and a value`)
      const key = this.lastEscaped ? unescapeName(s, keyStart, i, true) : this.name(slot++, keyStart, i)
      const valueStart = i + 1
      i = this.scanName(valueStart, true, 'tag value')
      if (i < 0) return null
      if (i === valueStart) return this.nullError(`tag ${JSON.stringify(key)} has an empty value (leave the tag out instead)`)
      if (i < this.end && s.charCodeAt(i) === EQUALS) return this.nullError(`unescaped "=" in the value of tag ${JSON.stringify(key)} (write \\=)`)
      const value = this.lastEscaped ? unescapeName(s, valueStart, i, true) : this.name(slot++, valueStart, i)
      if (Object.hasOwn(tags, key)) return this.nullError(`tag ${JSON.stringify(key)} is repeated`)
      setOwn(tags, key, value)
    }
    while (i < this.end && s.charCodeAt(i) === SPACE) i++
    if (i >= this.end) return this.nullError('no fields (a point needs at least one: measurement field=value)')

    // Fields: `key=value` separated by commas, until a space or the end of the line.
    const fields: Record<string, FieldValue> = {}
    for (;;) {
      const keyStart = i
      i = this.scanName(keyStart, true, 'field key')
      if (i < 0) return null
      if (i === keyStart) return this.nullError('empty field key')
      if (i >= this.end || s.charCodeAt(i) !== EQUALS) return this.nullError(`field key ${quote(s, keyStart, i)} without "=" and a value`)
      const key = this.lastEscaped ? unescapeName(s, keyStart, i, true) : this.name(slot++, keyStart, i)
      const valueStart = ++i
      if (i >= this.end) return this.nullError(`field ${JSON.stringify(key)} has no value`)
      const c = s.charCodeAt(i)
      let value: FieldValue
      if (c === QUOTE) {
        i = this.scanString(valueStart, lineStart)
        if (i < 0) return null
        value = this.lastEscaped ? unescapeString(s, valueStart + 1, i - 1) : s.slice(valueStart + 1, i - 1)
      } else {
        i = valueStart
        while (i < this.end) {
          const d = s.charCodeAt(i)
          if (d === COMMA || d === SPACE) break
          i++
        }
        if ((c >= DIGIT_0 && c <= DIGIT_9) || c === MINUS || c === DOT) {
          if (this.parseNumber(valueStart, i, key) < 0) return null
          value = this.number
        } else {
          const b = booleanOf(s, valueStart, i)
          if (b === null) {
            return this.nullError(`field ${JSON.stringify(key)} has value ${quote(s, valueStart, i)}: not a number, boolean or "quoted string"`)
          }
          value = b
        }
      }
      if (Object.hasOwn(fields, key)) return this.nullError(`field ${JSON.stringify(key)} is repeated`)
      setOwn(fields, key, value)
      if (i >= this.end) break
      const next = s.charCodeAt(i)
      if (next === COMMA) {
        i++
        continue
      }
      if (next === SPACE) break
      return this.nullError(`unexpected ${quote(s, i, i + 1)} after the value of field ${JSON.stringify(key)}`)
    }

    // Timestamp, optional, then only spaces to the end of the line.
    while (i < this.end && s.charCodeAt(i) === SPACE) i++
    let tsUs = this.defaultUs
    if (i < this.end) {
      const tsStart = i
      if (s.charCodeAt(i) === MINUS) i++
      while (i < this.end && isDigit(s.charCodeAt(i))) i++
      let tsEnd = i
      while (i < this.end && s.charCodeAt(i) === SPACE) i++
      if (i < this.end) {
        if (tsEnd === tsStart) return this.nullError(`unexpected text after the fields: ${quote(s, tsStart, this.end)}`)
        tsEnd = this.end
        while (tsEnd > tsStart && s.charCodeAt(tsEnd - 1) === SPACE) tsEnd--
        return this.nullError(`invalid timestamp ${quote(s, tsStart, tsEnd)}: an integer of ${this.precision} since the epoch`, 'bad_timestamp')
      }
      const us = this.timestampUs(tsStart, tsEnd)
      if (us === null) return null
      tsUs = us
    }
    return { line, measurement, tags, fields, tsMs: fromMicroseconds(tsUs), tsUs }
  }

  /**
   * s[a, b) as a string, reusing the string of the same slot (position among the line's names) of
   * an earlier line when it is the same text. Writers repeat the measurement, tag keys and values
   * and field keys line after line in the same order; reusing them saves a string per name and,
   * for keys, V8's interning of a new property name (10-15% of the parse time of Telegraf lines).
   */
  name (slot: number, a: number, b: number): string {
    const names = this.names
    if (slot < names.length) {
      const earlier = names[slot] as string
      if (earlier.length === b - a && this.s.startsWith(earlier, a)) return earlier
      const text = this.s.slice(a, b)
      names[slot] = text
      return text
    }
    const text = this.s.slice(a, b)
    if (slot === names.length && slot < MAX_NAME_SLOTS) names.push(text)
    return text
  }

  /** The names of earlier lines by slot (see name()). */
  readonly names: string[] = []

  nullError (detail: string, reason: IngestRejectReason = 'line_protocol'): null {
    this.error(detail, reason)
    return null
  }

  /** Whether the name scanned last had a backslash (and needs unescaping). */
  lastEscaped = false

  /**
   * Scans a measurement (`equalsEnds` false: ends at an unescaped comma or space) or a key or tag
   * value (also ends at an unescaped `=`) from `i` to the end of the line. Returns where it ended,
   * or -1 on a control character.
   */
  scanName (i: number, equalsEnds: boolean, what: string): number {
    const s = this.s
    const end = this.end
    let escaped = false
    while (i < end) {
      const c = s.charCodeAt(i)
      if (c === COMMA || c === SPACE || (c === EQUALS && equalsEnds)) break
      if (c < SPACE || c === DEL) return this.error(`control character U+${hex4(c)} in a ${what}`)
      if (c === BACKSLASH && i + 1 < end) {
        const next = s.charCodeAt(i + 1)
        if (next < SPACE || next === DEL) return this.error(`control character U+${hex4(next)} in a ${what}`)
        escaped = true
        i += 2
        continue
      }
      i++
    }
    this.lastEscaped = escaped
    return i
  }

  /**
   * Scans a quoted string from its opening quote at `i`; returns the index after its closing
   * quote, or -1. Runs onto the next physical lines when the string holds newlines.
   */
  scanString (i: number, lineStart: number): number {
    const s = this.s
    let escaped = false
    i++
    for (;;) {
      if (i >= this.end) {
        if (this.nl >= s.length) return this.error('string field value without its closing quote')
        // A newline inside the string: the entry goes on with the next physical line.
        i = this.nl + 1
        let nl = s.indexOf('\n', i)
        if (nl === -1) nl = s.length
        let end = nl
        if (end > i && s.charCodeAt(end - 1) === CR) end--
        this.nl = nl
        this.end = end
        this.extraLines++
        if (exceedsBytes(s.slice(lineStart, end), this.limits.maxLineBytes)) {
          return this.error(`line exceeds ${this.limits.maxLineBytes} bytes (a string field runs on over ${this.extraLines + 1} lines)`, 'too_large')
        }
        continue
      }
      const c = s.charCodeAt(i)
      if (c === QUOTE) break
      if (c === BACKSLASH && i + 1 < this.end) {
        escaped = true
        i += 2
        continue
      }
      i++
    }
    this.lastEscaped = escaped
    return i + 1
  }

  /** Parses the number field in s[a, b) into this.number; returns 0, or -1 with the error set. */
  parseNumber (a: number, b: number, key: string): number {
    const s = this.s
    const last = s.charCodeAt(b - 1)
    if (last === 105 /* i */ || last === 117 /* u */) {
      const unsigned = last === 117
      const negative = s.charCodeAt(a) === MINUS
      const digits = negative ? a + 1 : a
      let j = digits
      let value = 0
      for (let c = s.charCodeAt(j); j < b - 1 && isDigit(c); c = s.charCodeAt(++j)) value = value * 10 + (c - DIGIT_0)
      if (j !== b - 1 || j === digits || (unsigned && negative)) {
        return this.error(`field ${JSON.stringify(key)} has value ${quote(s, a, b)}: not ${unsigned ? 'an unsigned' : 'an'} integer`)
      }
      if (j - digits > MAX_EXACT_DIGITS) {
        if (digitsAbove(s, digits, j, unsigned ? UINT64_MAX : negative ? INT64_MIN_ABS : INT64_MAX)) {
          return this.error(`field ${JSON.stringify(key)} has value ${quote(s, a, b)}: out of the ${unsigned ? 'uint64' : 'int64'} range`)
        }
        value = Number(s.slice(digits, j)) // correctly rounded, where the sum above drifts
      }
      this.number = negative && value !== 0 ? -value : value // -0i is 0
      return 0
    }
    // Float: -?(digits[.digits] | .digits)([eE][+-]?digits)?, checked here because Number() also
    // takes hex, binary, "Infinity" and surrounding spaces. The digits are summed on the way:
    // with at most 15 of them and no exponent, sum / 10^fraction digits is one correctly rounded
    // division of two exact doubles, so it equals Number(text) without making the text.
    let j = a
    const negative = s.charCodeAt(j) === MINUS
    if (negative) j++
    const intStart = j
    let mantissa = 0
    for (let c = s.charCodeAt(j); j < b && isDigit(c); c = s.charCodeAt(++j)) mantissa = mantissa * 10 + (c - DIGIT_0)
    let mantissaDigits = j - intStart
    let fractionDigits = 0
    if (j < b && s.charCodeAt(j) === DOT) {
      j++
      const fracStart = j
      for (let c = s.charCodeAt(j); j < b && isDigit(c); c = s.charCodeAt(++j)) mantissa = mantissa * 10 + (c - DIGIT_0)
      fractionDigits = j - fracStart
      mantissaDigits += fractionDigits
    }
    if (mantissaDigits === 0) return this.notANumber(a, b, key)
    if (j === b && mantissaDigits <= MAX_EXACT_DIGITS) {
      const value = fractionDigits === 0 ? mantissa : mantissa / (POWERS_OF_TEN[fractionDigits] as number)
      this.number = negative ? -value : value
      return 0
    }
    if (j < b && (s.charCodeAt(j) | 0x20) === 101 /* e or E */) {
      j++
      const sign = s.charCodeAt(j)
      if (sign === 43 /* + */ || sign === MINUS) j++
      const expStart = j
      while (j < b && isDigit(s.charCodeAt(j))) j++
      if (j === expStart) return this.notANumber(a, b, key)
    }
    if (j !== b) return this.notANumber(a, b, key)
    const value = Number(s.slice(a, b))
    if (!Number.isFinite(value)) return this.error(`field ${JSON.stringify(key)} has value ${quote(s, a, b)}: beyond a 64-bit float`, 'non_finite_value')
    this.number = value
    return 0
  }

  notANumber (a: number, b: number, key: string): -1 {
    return this.error(`field ${JSON.stringify(key)} has value ${quote(this.s, a, b)}: not a number (floats: 1, -1.5, 1e3; integers: 1i; unsigned: 1u)`)
  }

  /** The timestamp in s[a, b) (`-?digits`) as epoch µs, or null with the error set. */
  timestampUs (a: number, b: number): number | null {
    const s = this.s
    const negative = s.charCodeAt(a) === MINUS
    const digits = negative ? a + 1 : a
    if (digits === b) return this.nullError(`invalid timestamp ${quote(s, a, b)}: an integer of ${this.precision} since the epoch`, 'bad_timestamp')
    // ns: the last three digits are below a µs; they round the µs down (toward the past).
    const kept = this.precision === 'ns' ? Math.max(digits, b - 3) : b
    let value = 0
    for (let j = digits; j < kept; j++) {
      value = value * 10 + (s.charCodeAt(j) - DIGIT_0)
      if (value > Number.MAX_SAFE_INTEGER) return this.outOfRange(a, b)
    }
    let us: number
    switch (this.precision) {
      case 'ns': {
        let belowUs = 0
        for (let j = kept; j < b; j++) belowUs = belowUs * 10 + (s.charCodeAt(j) - DIGIT_0)
        us = negative ? -value - (belowUs > 0 ? 1 : 0) : value
        break
      }
      case 'us': us = negative ? -value : value; break
      case 'ms': us = (negative ? -value : value) * 1000; break
      case 's': us = (negative ? -value : value) * 1_000_000; break
    }
    if (!Number.isSafeInteger(us)) return this.outOfRange(a, b)
    return us === 0 ? 0 : us // no -0
  }

  outOfRange (a: number, b: number): null {
    return this.nullError(`timestamp ${quote(this.s, a, b)} (${this.precision}) is out of range: at most ±${Number.MAX_SAFE_INTEGER} µs from the epoch`, 'bad_timestamp')
  }
}

function isDigit (c: number): boolean {
  return c >= DIGIT_0 && c <= DIGIT_9
}

/** The digits s[a, b) (no sign) are above `max` (digits too), leading zeros aside. */
function digitsAbove (s: string, a: number, b: number, max: string): boolean {
  while (a < b - 1 && s.charCodeAt(a) === DIGIT_0) a++
  const length = b - a
  if (length !== max.length) return length > max.length
  return s.slice(a, b) > max
}

/** The boolean spelled by s[a, b), or null: exactly InfluxDB's spellings. */
function booleanOf (s: string, a: number, b: number): boolean | null {
  switch (b - a) {
    case 1: {
      const c = s.charCodeAt(a)
      return c === 116 || c === 84 ? true : c === 102 || c === 70 ? false : null // t T f F
    }
    case 4: {
      const word = s.slice(a, b)
      return word === 'true' || word === 'True' || word === 'TRUE' ? true : null
    }
    case 5: {
      const word = s.slice(a, b)
      return word === 'false' || word === 'False' || word === 'FALSE' ? false : null
    }
    default: return null
  }
}

/**
 * Unescapes a measurement (`\,` and `\ `) or, with `equalsToo`, a key or tag value (also `\=`).
 * A backslash before anything else is kept with that character, which is not read as an escape
 * itself (`\\,` is `\\` then the end of the name, as the scan saw it).
 */
function unescapeName (s: string, a: number, b: number, equalsToo: boolean): string {
  let out = ''
  let from = a
  for (let i = a; i < b - 1; i++) {
    if (s.charCodeAt(i) !== BACKSLASH) continue
    const next = s.charCodeAt(i + 1)
    if (next === COMMA || next === SPACE || (equalsToo && next === EQUALS)) {
      out += s.slice(from, i)
      from = i + 1
    }
    i++
  }
  return out + s.slice(from, b)
}

/** Unescapes a string field value: `\"` is `"`, `\\` is `\`, a backslash before anything else is kept. */
function unescapeString (s: string, a: number, b: number): string {
  let out = ''
  let from = a
  for (let i = a; i < b - 1; i++) {
    if (s.charCodeAt(i) !== BACKSLASH) continue
    const next = s.charCodeAt(i + 1)
    if (next === QUOTE || next === BACKSLASH) {
      out += s.slice(from, i)
      from = i + 1
    }
    i++
  }
  return out + s.slice(from, b)
}

/**
 * Sets an own property. `obj[key] = value` with key `__proto__` would replace the prototype
 * instead: a tag or field may be called anything.
 */
function setOwn<T> (obj: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
  else obj[key] = value
}

/** s[a, b) quoted for a detail, cut at 60 characters. */
function quote (s: string, a: number, b: number): string {
  return JSON.stringify(b - a > 60 ? `${s.slice(a, a + 60)}…` : s.slice(a, b))
}

function hex4 (c: number): string {
  return c.toString(16).toUpperCase().padStart(4, '0')
}
