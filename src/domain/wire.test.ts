import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Simulator } from '../sources/index.ts'
import { type Reading } from './reading.ts'
import { createRandom } from './random.ts'
import {
  defaultValidationOptions, formatTimestamp, fromMicroseconds, microsecondsOf, parseTimestamp, toMicrosecondPrecision, rejectReasons, rejectedMessage, toWire, validateMessage, validateWire,
  type RejectReason, type ValidationOptions, type ValidationResult, type WireReading
} from './wire.ts'

const SECOND = 1000
const MINUTE = 60 * SECOND
const DAY = 24 * 3600 * SECOND
/** 2025-11-17T11:22:35Z: the instant of the original producer's sample message (without its fraction). */
const T = Date.UTC(2025, 10, 17, 11, 22, 35)
/** The ingest clock used by most tests: one minute after T. */
const NOW = T + MINUTE

/** A valid wire object; `over` replaces or adds fields. */
function wire (over: Record<string, unknown> = {}): Record<string, unknown> {
  return { sensor_id: 'TEMP_001', sensor_type: 'temperature', location: 'Server Room', value: 22.45, timestamp: '2025-11-17T11:22:35Z', ...over }
}

/** The wire object without the named field. */
function without (field: string): Record<string, unknown> {
  const o = wire()
  delete o[field]
  return o
}

function reject (raw: string, now = NOW, opts: ValidationOptions = defaultValidationOptions): RejectReason {
  const r = validateMessage(raw, now, opts)
  if (r.ok) assert.fail(`accepted: ${raw.slice(0, 200)}`)
  assert.equal(typeof r.detail, 'string')
  assert.ok(r.detail.length > 0, 'a rejection carries a detail')
  return r.reason
}

function accept (raw: string, now = NOW, opts: ValidationOptions = defaultValidationOptions): Reading {
  const r: ValidationResult = validateMessage(raw, now, opts)
  if (!r.ok) assert.fail(`rejected (${r.reason}: ${r.detail}): ${raw.slice(0, 200)}`)
  return r.reading
}

/** A message of exactly `bytes` UTF-8 bytes, padded in an extra field with `char` (then ASCII for the rest). */
function messageOfBytes (bytes: number, char: string): string {
  const base = JSON.stringify(wire({ pad: '' }))
  let room = bytes - Buffer.byteLength(base)
  const size = Buffer.byteLength(char)
  assert.ok(room >= 0)
  const pad = char.repeat(Math.floor(room / size))
  room -= Buffer.byteLength(pad)
  const raw = JSON.stringify(wire({ pad: pad + 'x'.repeat(room) }))
  assert.equal(Buffer.byteLength(raw), bytes)
  return raw
}

describe('parseTimestamp', () => {
  test('ISO 8601 with Z (upper or lower case)', () => {
    assert.equal(parseTimestamp('2025-11-17T11:22:35Z'), T)
    assert.equal(parseTimestamp('2025-11-17T11:22:35z'), T)
    assert.equal(parseTimestamp('2025-11-17T11:22:35.123Z'), T + 123)
    assert.equal(parseTimestamp('1970-01-01T00:00:00Z'), 0)
  })

  test('offsets +02:00, -0530, +01, -00:00 and +14:00 shift to UTC', () => {
    assert.equal(parseTimestamp('2025-11-17T13:22:35+02:00'), T)
    assert.equal(parseTimestamp('2025-11-17T13:22:35+0200'), T)
    assert.equal(parseTimestamp('2025-11-17T05:52:35-0530'), T)
    assert.equal(parseTimestamp('2025-11-17T05:52:35-05:30'), T)
    assert.equal(parseTimestamp('2025-11-17T12:22:35+01'), T)
    assert.equal(parseTimestamp('2025-11-17T11:22:35-00:00'), T)
    assert.equal(parseTimestamp('2025-11-18T01:22:35+14:00'), T)
    assert.equal(parseTimestamp('2025-11-17T13:22:35.5+02:00'), T + 500)
  })

  test('an offset can move the instant across a day, month and year boundary', () => {
    assert.equal(parseTimestamp('2025-01-01T01:00:00+02:00'), Date.UTC(2024, 11, 31, 23))
    assert.equal(parseTimestamp('2024-12-31T23:30:00-01:00'), Date.UTC(2025, 0, 1, 0, 30))
  })

  test('naive date-times (no zone) are UTC, also with a space separator', () => {
    assert.equal(parseTimestamp('2025-11-17T11:22:35'), T)
    assert.equal(parseTimestamp('2025-11-17 11:22:35'), T)
    assert.equal(parseTimestamp('2025-11-17 11:22:35.250'), T + 250)
    assert.equal(parseTimestamp('2025-11-17 11:22:35Z'), T)
  })

  test('seconds are optional', () => {
    assert.equal(parseTimestamp('2025-11-17T11:22'), Date.UTC(2025, 10, 17, 11, 22))
    assert.equal(parseTimestamp('2025-11-17T11:22Z'), Date.UTC(2025, 10, 17, 11, 22))
    assert.equal(parseTimestamp('2025-11-17T13:22+02:00'), Date.UTC(2025, 10, 17, 11, 22))
  })

  test('fractions: microseconds are kept (Python isoformat), digits below them truncated, never rounded', () => {
    assert.equal(parseTimestamp('2025-11-17T11:22:35.123456'), fromMicroseconds((T + 123) * 1000 + 456))
    assert.equal(microsecondsOf(parseTimestamp('2025-11-17T11:22:35.123456')), (T + 123) * 1000 + 456)
    assert.equal(parseTimestamp('2025-11-17T11:22:35.999999'), fromMicroseconds(T * 1000 + 999_999))
    assert.equal(parseTimestamp('2025-11-17T11:22:35.123456789Z'), fromMicroseconds((T + 123) * 1000 + 456))
    assert.equal(parseTimestamp('2025-11-17T11:22:35.1234Z'), fromMicroseconds((T + 123) * 1000 + 400))
    assert.equal(parseTimestamp('2025-11-17T11:22:35.123000Z'), T + 123, 'zero microseconds: a whole ms')
    assert.equal(parseTimestamp('2025-11-17T11:22:35.1'), T + 100)
    assert.equal(parseTimestamp('2025-11-17T11:22:35.12'), T + 120)
    assert.equal(parseTimestamp('2025-11-17T11:22:35.000001'), fromMicroseconds(T * 1000 + 1))
    assert.equal(parseTimestamp('2025-11-17T11:22:35.0000009'), T, 'below a microsecond')
    assert.equal(parseTimestamp('2025-11-17T13:22:35.000250+02:00'), fromMicroseconds(T * 1000 + 250))
    assert.equal(parseTimestamp('2025-11-17T11:22:35,5Z'), T + 500, 'comma as decimal sign (ISO 8601)')
    assert.ok(Number.isNaN(parseTimestamp('2025-11-17T11:22:35.1234567891Z')), 'more than 9 fraction digits')
    assert.ok(Number.isNaN(parseTimestamp('2025-11-17T11:22:35.Z')), 'a dot without digits')
  })

  test('a thousand readings within one millisecond keep a thousand distinct times, in order, that read back exactly', () => {
    const times = Array.from({ length: 1000 }, (_, us) => parseTimestamp(`2025-11-17T11:22:35.123${String(us).padStart(3, '0')}`))
    assert.equal(new Set(times).size, 1000)
    for (let i = 1; i < times.length; i++) assert.ok(times[i - 1]! < times[i]!)
    for (const [us, ts] of times.entries()) {
      assert.equal(microsecondsOf(ts), (T + 123) * 1000 + us)
      assert.equal(formatTimestamp(ts), `2025-11-17T11:22:35.123${String(us).padStart(3, '0')}Z`.replace('.123000Z', '.123Z'))
      assert.equal(parseTimestamp(formatTimestamp(ts)), ts)
      assert.equal(toMicrosecondPrecision(ts), ts)
    }
    assert.equal(toMicrosecondPrecision(T + 0.1231), fromMicroseconds(T * 1000 + 123), 'ms given as a number: rounded to the µs')
    assert.equal(toMicrosecondPrecision(T + 0.0005), fromMicroseconds(T * 1000 + 1))
  })

  test('leap days: 2024-02-29 exists, 2025-02-29 and 2100-02-29 do not, 2000-02-29 does', () => {
    assert.equal(parseTimestamp('2024-02-29T12:00:00Z'), Date.UTC(2024, 1, 29, 12))
    assert.equal(parseTimestamp('2000-02-29T00:00:00Z'), Date.UTC(2000, 1, 29))
    assert.ok(Number.isNaN(parseTimestamp('2025-02-29T00:00:00Z')))
    assert.ok(Number.isNaN(parseTimestamp('2100-02-29T00:00:00Z')))
  })

  test('impossible dates and times are NaN, not rolled over', () => {
    for (const text of [
      '2025-02-30T00:00:00Z',
      '2025-04-31T00:00:00Z',
      '2025-11-31T00:00:00',
      '2025-13-01T00:00:00Z',
      '2025-00-10T00:00:00Z',
      '2025-11-00T00:00:00Z',
      '2025-11-32T00:00:00Z',
      '2025-11-17T24:00:00Z',
      '2025-11-17T24:00:00',
      '2025-11-17T23:60:00Z',
      '2025-11-17T23:59:60Z',
      '2025-11-17T11:22:35+24:00',
      '2025-11-17T11:22:35+05:60',
      '2025-11-17T11:22:35+5',
      '2025-11-17T11:22:35+05:3',
      '2025-11-17T11:22:35+053'
    ]) {
      assert.ok(Number.isNaN(parseTimestamp(text)), text)
    }
  })

  test('date-only and other non date-time text is NaN', () => {
    for (const text of [
      '2025-11-17',
      '2025-11-17T',
      '2025-11-17T11',
      '',
      'garbage',
      'not a timestamp at all',
      '1763378555123',
      '17/11/2025 11:22:35',
      '2025/11/17 11:22:35',
      '25-11-17T11:22:35',
      '2025-1-17T11:22:35',
      '2025-11-17T1:22:35',
      '2025-11-17X11:22:35',
      ' 2025-11-17T11:22:35Z',
      '2025-11-17T11:22:35Z ',
      '2025-11-17T11:22:35Zjunk',
      '2025-11-17T11:22:35 UTC',
      'Mon, 17 Nov 2025 11:22:35 GMT'
    ]) {
      assert.ok(Number.isNaN(parseTimestamp(text)), JSON.stringify(text))
    }
  })

  test('formatTimestamp writes ISO 8601 UTC with milliseconds that parseTimestamp reads back', () => {
    assert.equal(formatTimestamp(T + 123), '2025-11-17T11:22:35.123Z')
    for (const ts of [0, T, T + 1, Date.UTC(2024, 1, 29, 23, 59, 59, 999), Date.UTC(9999, 11, 31, 23, 59, 59, 999)]) {
      assert.equal(parseTimestamp(formatTimestamp(ts)), ts)
    }
  })

  test('formatTimestamp equals toISOString and parseTimestamp reads it back, over 200,000 instants from year 0 to 9999 and around them', () => {
    const random = createRandom(7)
    const span = Date.UTC(9999, 11, 31, 23, 59, 59, 999) - Date.UTC(0, 0, 1)
    const instants = [-62_167_219_200_001, -62_167_219_200_000, -1, 0, 59_999, 60_000, 253_402_300_799_999, 253_402_300_800_000]
    for (let i = 0; i < 100_000; i++) instants.push(Date.UTC(0, 0, 1) + Math.floor(random.next() * span))
    // In time order, as readings come: the reused hour must not leak into the next one (steps of ms, and of up to 90 s).
    for (let t = T - 5 * 60_000, i = 0; i < 100_000; i++) instants.push(t += Math.floor(random.next() * 7))
    for (let t = T - 3_600_000, i = 0; i < 20_000; i++) instants.push(t += Math.floor(random.next() * 90_000))
    for (const ts of instants) {
      const text = formatTimestamp(ts)
      assert.equal(text, new Date(ts).toISOString(), `formatTimestamp(${ts})`)
      if (Number.isInteger(ts) && !text.startsWith('+') && !text.startsWith('-')) assert.equal(parseTimestamp(text), ts, `parseTimestamp(${text})`)
    }
  })

  test('the canonical form with an impossible field falls through to the general rules and is refused', () => {
    for (const text of ['2025-13-01T00:00:00.000Z', '2025-00-10T00:00:00.000Z', '2025-04-31T00:00:00.000Z', '2025-02-29T00:00:00.000Z',
      '2025-01-01T24:00:00.000Z', '2025-01-01T00:60:00.000Z', '2025-01-01T00:00:60.000Z', '2025-01-01T00:00:00.00xZ', '2O25-01-01T00:00:00.000Z']) {
      assert.ok(Number.isNaN(parseTimestamp(text)), text)
    }
    assert.equal(parseTimestamp('2024-02-29T23:59:59.999Z'), Date.UTC(2024, 1, 29, 23, 59, 59, 999))
    assert.equal(parseTimestamp('2025-01-01 00:00:00.000Z'), Date.UTC(2025, 0, 1), 'a space separator takes the general path')
  })

  test('years 0000-0099 are taken literally, not as 1900-1999', () => {
    assert.equal(parseTimestamp('0050-01-01T00:00:00Z'), new Date('0050-01-01T00:00:00Z').getTime())
    assert.equal(parseTimestamp('0000-01-01T00:00:00Z'), new Date('0000-01-01T00:00:00Z').getTime())
  })
})

describe('validateMessage - accepted', () => {
  test('the original producer message exactly as it sends it (naive timestamp with microseconds)', () => {
    const raw = '{"sensor_id": "TEMP_001", "sensor_type": "temperature", "location": "Server Room", "value": 22.45, "timestamp": "2025-11-17T11:22:35.123456", "unit": "°C", "anomaly": false}'
    assert.deepEqual(accept(raw), {
      sensorId: 'TEMP_001',
      sensorType: 'temperature',
      location: 'Server Room',
      value: 22.45,
      ts: fromMicroseconds(Date.UTC(2025, 10, 17, 11, 22, 35, 123) * 1000 + 456),
      unit: '°C',
      anomaly: false,
      anomalyKind: null,
      seq: null
    })
  })

  test('the producer message with Python json.dumps escaping (ensure_ascii) and anomaly true', () => {
    const raw = '{"sensor_id": "HUM_002", "sensor_type": "humidity", "location": "Office Floor 3", "value": 95.12, "timestamp": "2025-11-17T11:22:35.000001", "unit": "\\u00b0C", "anomaly": true}'
    const r = accept(raw)
    assert.equal(r.unit, '°C')
    assert.equal(r.anomaly, true)
    assert.equal(r.ts, fromMicroseconds(T * 1000 + 1))
    assert.equal(r.value, 95.12)
  })

  test('unknown sensor types and extra fields are accepted; extra fields are dropped', () => {
    const raw = JSON.stringify(wire({ sensor_type: 'radiation', unit: 'µSv/h', firmware: '1.2.3', battery: 97, nested: { a: [1, 2] } }))
    assert.deepEqual(accept(raw), {
      sensorId: 'TEMP_001',
      sensorType: 'radiation',
      location: 'Server Room',
      value: 22.45,
      ts: T,
      unit: 'µSv/h',
      anomaly: null,
      anomalyKind: null,
      seq: null
    })
  })

  test('only the required fields: unit becomes "", anomaly, anomaly_type and seq become null', () => {
    const r = accept(JSON.stringify(wire()))
    assert.equal(r.unit, '')
    assert.equal(r.anomaly, null)
    assert.equal(r.anomalyKind, null)
    assert.equal(r.seq, null)
  })

  test('explicit nulls for anomaly and anomaly_type map to null', () => {
    const r = accept(JSON.stringify(wire({ anomaly: null, anomaly_type: null })))
    assert.equal(r.anomaly, null)
    assert.equal(r.anomalyKind, null)
  })

  test('all optional fields set map one to one', () => {
    const r = accept(JSON.stringify(wire({ unit: '%', anomaly: true, anomaly_type: 'spike', seq: 42 })))
    assert.equal(r.unit, '%')
    assert.equal(r.anomaly, true)
    assert.equal(r.anomalyKind, 'spike')
    assert.equal(r.seq, 42)
    assert.equal(accept(JSON.stringify(wire({ seq: 0 }))).seq, 0)
    assert.equal(accept(JSON.stringify(wire({ seq: 9007199254740991 }))).seq, 9007199254740991)
    assert.equal(accept(JSON.stringify(wire({ seq: 3.0 }))).seq, 3)
    assert.equal(accept(JSON.stringify(wire({ anomaly_type: 'overheat' }))).anomalyKind, 'overheat', 'kinds are not restricted')
  })

  test('values: negative, zero, integer, tiny and large finite numbers', () => {
    for (const value of [-40, 0, 1013, 1e-300, -1.5e308, 1.7976931348623157e308]) {
      assert.equal(accept(JSON.stringify(wire({ value }))).value, value)
    }
    assert.equal(accept('{"sensor_id":"a","sensor_type":"t","location":"l","value":-0.0,"timestamp":"2025-11-17T11:22:35Z"}').value, -0)
    assert.equal(accept('{"sensor_id":"a","sensor_type":"t","location":"l","value":2.5E3,"timestamp":"2025-11-17T11:22:35Z"}').value, 2500)
  })

  test('a timestamp with an offset is stored as the UTC instant', () => {
    assert.equal(accept(JSON.stringify(wire({ timestamp: '2025-11-17T13:22:35.123456+02:00' }))).ts, fromMicroseconds((T + 123) * 1000 + 456))
  })

  test('surrounding whitespace and a UTF-8 location are fine', () => {
    const r = accept(`  \n${JSON.stringify(wire({ location: 'Kühlraum Süd' }))}\n`)
    assert.equal(r.location, 'Kühlraum Süd')
  })

  test('every reason in rejectReasons is produced by some message (see the rejection tests; the last seven by device ingest, src/ingest)', () => {
    assert.deepEqual([...rejectReasons], [
      'too_large', 'invalid_json', 'non_finite_value', 'schema', 'bad_timestamp', 'timestamp_too_old', 'timestamp_in_future',
      'non_numeric_value', 'too_many_values', 'invalid_measurement', 'duplicate_measurement', 'foreign_sensor', 'line_protocol', 'too_many_lines'
    ])
  })

  test('a rejected envelope becomes a dead letter with its own reason, detail and raw text', () => {
    const msg = rejectedMessage('line_protocol', 'device esp32-1, line 17: expected a field', 'weather temp')
    assert.deepEqual(validateMessage(msg, T), { ok: false, reason: 'line_protocol', detail: 'device esp32-1, line 17: expected a field', raw: 'weather temp' })
    // An unknown reason (someone else's envelope) is a schema rejection, never a reading.
    assert.deepEqual(validateMessage('{"iot_rejected":{"reason":"drop table","detail":"x","raw":"y"}}', T), { ok: false, reason: 'schema', detail: 'x', raw: 'y' })
    assert.deepEqual(validateMessage('{"iot_rejected":null}', T), { ok: false, reason: 'schema', detail: 'a rejected message without a detail' })
  })
})

describe('validateMessage - too_large', () => {
  test('the default limit is 16 KiB; exactly at the limit is accepted, one byte more is rejected', () => {
    assert.equal(defaultValidationOptions.maxBytes, 16384)
    accept(messageOfBytes(16384, 'x'))
    assert.equal(reject(messageOfBytes(16385, 'x')), 'too_large')
  })

  test('multi-byte UTF-8 counts bytes, not characters (2-, 3- and 4-byte characters)', () => {
    for (const char of ['°', '€', '😀']) {
      const atLimit = messageOfBytes(16384, char)
      assert.ok(atLimit.length < 16384, 'fewer UTF-16 units than bytes')
      accept(atLimit)
      const over = messageOfBytes(16385, char)
      assert.ok(over.length <= 16384, `${char}: under the limit in characters, over it in bytes`)
      assert.equal(reject(over), 'too_large', char)
    }
  })

  test('a message of 6000 three-byte characters (18000 bytes, ~6100 characters) is too large', () => {
    const raw = JSON.stringify(wire({ location: '€'.repeat(6000) }))
    assert.ok(raw.length < 16384)
    assert.equal(reject(raw), 'too_large')
  })

  test('a custom limit applies; the size is checked before anything else', () => {
    const opts: ValidationOptions = { ...defaultValidationOptions, maxBytes: 100 }
    const small = JSON.stringify({ sensor_id: 'a', sensor_type: 't', location: 'l', value: 1, timestamp: '2025-11-17T11:22:35Z' })
    assert.ok(Buffer.byteLength(small) <= 100)
    accept(small, NOW, opts)
    assert.equal(reject(small + ' '.repeat(101 - small.length), NOW, opts), 'too_large', 'whitespace counts')
    assert.equal(reject('{'.repeat(101), NOW, opts), 'too_large', 'broken JSON over the limit')
    assert.equal(reject('{"value": NaN, "x": "' + 'y'.repeat(100) + '"}', NOW, opts), 'too_large')
  })
})

describe('validateMessage - invalid_json', () => {
  test('broken JSON', () => {
    for (const raw of [
      '',
      ' ',
      '{',
      '}',
      'not json',
      '{"sensor_id": "a",}',
      "{'sensor_id': 'a'}",
      '{"sensor_id": "a" "value": 1}',
      JSON.stringify(wire()).slice(0, -1),
      JSON.stringify(wire()) + '{}',
      '{"value": undefined}',
      '{"value": +Infinity}',
      '{"value": 0x10}'
    ]) {
      assert.equal(reject(raw), 'invalid_json', JSON.stringify(raw))
    }
  })
})

describe('validateMessage - non_finite_value', () => {
  test('NaN, Infinity and -Infinity literals (as Python json.dumps writes them)', () => {
    for (const literal of ['NaN', 'Infinity', '-Infinity']) {
      const raw = `{"sensor_id": "TEMP_001", "sensor_type": "temperature", "location": "Server Room", "value": ${literal}, "timestamp": "2025-11-17T11:22:35.123456", "unit": "°C", "anomaly": false}`
      assert.equal(reject(raw), 'non_finite_value', literal)
      const compact = `{"sensor_id":"a","sensor_type":"t","location":"l","value":${literal},"timestamp":"2025-11-17T11:22:35Z"}`
      assert.equal(reject(compact), 'non_finite_value', `${literal} without spaces`)
    }
  })

  test('validateWire rejects a parsed non-finite value (HTTP bodies arrive parsed)', () => {
    for (const value of [Number.NaN, Infinity, -Infinity]) {
      const r = validateWire(wire({ value }) as WireReading, NOW)
      assert.equal(r.ok, false)
      if (!r.ok) assert.equal(r.reason, 'non_finite_value')
    }
  })

  test('a number literal that overflows to Infinity (1e999) is a non-finite value', () => {
    assert.equal(reject('{"sensor_id":"a","sensor_type":"t","location":"l","value":1e999,"timestamp":"2025-11-17T11:22:35Z"}'), 'non_finite_value')
    assert.equal(reject('{"sensor_id":"a","sensor_type":"t","location":"l","value":-1e999,"timestamp":"2025-11-17T11:22:35Z"}'), 'non_finite_value')
  })
})

describe('validateMessage - schema', () => {
  test('top level is not an object', () => {
    for (const raw of ['[]', JSON.stringify([wire()]), '5', '22.45', 'null', 'true', '"TEMP_001"', '{}']) {
      assert.equal(reject(raw), 'schema', raw.slice(0, 40))
    }
  })

  test('each required field missing', () => {
    for (const field of ['sensor_id', 'sensor_type', 'location', 'value', 'timestamp']) {
      assert.equal(reject(JSON.stringify(without(field))), 'schema', field)
    }
  })

  test('wrong types (no coercion)', () => {
    const cases: Record<string, unknown>[] = [
      { sensor_id: 17 },
      { sensor_id: null },
      { sensor_type: ['temperature'] },
      { location: { name: 'Lab' } },
      { value: '22.45' },
      { value: null },
      { value: true },
      { value: [22.45] },
      { timestamp: 1763378555123 },
      { timestamp: null },
      { unit: 5 },
      { unit: null },
      { anomaly: 'false' },
      { anomaly: 0 },
      { anomaly_type: 5 },
      { seq: '1' },
      { seq: null },
      { seq: true }
    ]
    for (const over of cases) assert.equal(reject(JSON.stringify(wire(over))), 'schema', JSON.stringify(over))
  })

  test('empty sensor_id, sensor_type or location', () => {
    for (const field of ['sensor_id', 'sensor_type', 'location']) {
      assert.equal(reject(JSON.stringify(wire({ [field]: '' }))), 'schema', field)
    }
  })

  test('control characters in sensor_id, sensor_type, location and unit (NUL cannot be stored in PostgreSQL text)', () => {
    for (const field of ['sensor_id', 'sensor_type', 'location', 'unit']) {
      for (const bad of ['a\u0000b', 'line\nbreak', 'tab\there', '\u001f', 'del\u007f']) {
        assert.equal(reject(JSON.stringify(wire({ [field]: bad }))), 'schema', `${field}: ${JSON.stringify(bad)}`)
      }
    }
    const r = accept(JSON.stringify(wire({ location: 'Büro 3 – Süd ☀', unit: 'µg/m³' })))
    assert.equal(r.location, 'Büro 3 – Süd ☀', 'printable non-ASCII is fine')
    assert.equal(r.unit, 'µg/m³')
  })

  test('control characters in anomaly_type are rejected too', () => {
    assert.equal(reject(JSON.stringify(wire({ anomaly_type: 'spike\u0000' }))), 'schema')
    assert.equal(reject(JSON.stringify(wire({ anomaly_type: 'a\nb' }))), 'schema')
  })

  test('seq must be a non-negative integer', () => {
    for (const seq of [1.5, -1, 0.1, -0.5]) {
      assert.equal(reject(JSON.stringify(wire({ seq }))), 'schema', String(seq))
    }
  })

  test('length limits: sensor_id 128, sensor_type 64, location 128, unit 32, anomaly_type 32, timestamp 10..40', () => {
    accept(JSON.stringify(wire({ sensor_id: 's'.repeat(128), sensor_type: 't'.repeat(64), location: 'l'.repeat(128), unit: 'u'.repeat(32), anomaly_type: 'k'.repeat(32) })))
    for (const over of [
      { sensor_id: 's'.repeat(129) },
      { sensor_type: 't'.repeat(65) },
      { location: 'l'.repeat(129) },
      { unit: 'u'.repeat(33) },
      { anomaly_type: 'k'.repeat(33) },
      { timestamp: '2025-11-17T11:22:35.123456789+02:00' + '0'.repeat(6) }
    ]) {
      assert.equal(reject(JSON.stringify(wire(over))), 'schema', Object.keys(over)[0])
    }
  })
})

describe('validateMessage - bad_timestamp', () => {
  test('a string timestamp that is not a valid ISO 8601 date-time', () => {
    for (const timestamp of [
      '2025-02-30T00:00:00',
      '2025-11-17T24:00:00',
      '2025-13-01T00:00:00Z',
      '2025-11-17',
      'not a timestamp',
      '17/11/2025 11:22',
      '2025-11-17T11:22:35+25:00'
    ]) {
      assert.equal(reject(JSON.stringify(wire({ timestamp }))), 'bad_timestamp', timestamp)
    }
  })

  test('a short non-timestamp string is a bad timestamp too', () => {
    for (const timestamp of ['yesterday', 'now', '']) {
      assert.equal(reject(JSON.stringify(wire({ timestamp }))), 'bad_timestamp', timestamp)
    }
  })
})

describe('validateMessage - far-off timestamps against the ingest clock', () => {
  const at = (ts: number): string => JSON.stringify(wire({ timestamp: formatTimestamp(ts) }))

  test('defaults are 7 days behind and 5 minutes ahead', () => {
    assert.equal(defaultValidationOptions.maxPastMs, 7 * DAY)
    assert.equal(defaultValidationOptions.maxFutureMs, 5 * MINUTE)
  })

  test('exactly 7 days behind is accepted, 1 ms more is timestamp_too_old', () => {
    assert.equal(accept(at(NOW - 7 * DAY)).ts, NOW - 7 * DAY)
    assert.equal(reject(at(NOW - 7 * DAY - 1)), 'timestamp_too_old')
    assert.equal(reject(at(NOW - 30 * DAY)), 'timestamp_too_old')
    assert.equal(reject(at(0)), 'timestamp_too_old')
  })

  test('exactly 5 minutes ahead is accepted, 1 ms more is timestamp_in_future', () => {
    assert.equal(accept(at(NOW + 5 * MINUTE)).ts, NOW + 5 * MINUTE)
    assert.equal(reject(at(NOW + 5 * MINUTE + 1)), 'timestamp_in_future')
    assert.equal(reject(at(NOW + DAY)), 'timestamp_in_future')
  })

  test('the limits are measured against the given now, not the wall clock', () => {
    const virtual = Date.UTC(2030, 0, 1) // an accelerated simulator far ahead of the wall
    assert.equal(accept(at(virtual - MINUTE), virtual).ts, virtual - MINUTE)
    assert.equal(reject(at(Date.now()), virtual), 'timestamp_too_old')
    const past = Date.UTC(2001, 0, 1) // a replay of old data
    assert.equal(accept(at(past), past).ts, past)
    assert.equal(reject(at(past + 6 * MINUTE), past), 'timestamp_in_future')
  })

  test('naive timestamps are compared as UTC', () => {
    assert.equal(reject(JSON.stringify(wire({ timestamp: '2025-11-17T11:28:35.001' })), T), 'timestamp_in_future')
    accept(JSON.stringify(wire({ timestamp: '2025-11-17T11:27:35' })), T)
  })

  test('null disables each limit (backfills); the other still applies', () => {
    const noPast: ValidationOptions = { ...defaultValidationOptions, maxPastMs: null }
    assert.equal(accept(at(0), NOW, noPast).ts, 0)
    assert.equal(accept(at(Date.UTC(1900, 0, 1)), NOW, noPast).ts, Date.UTC(1900, 0, 1))
    assert.equal(reject(at(NOW + 6 * MINUTE), NOW, noPast), 'timestamp_in_future')

    const noFuture: ValidationOptions = { ...defaultValidationOptions, maxFutureMs: null }
    assert.equal(accept(at(Date.UTC(2100, 0, 1)), NOW, noFuture).ts, Date.UTC(2100, 0, 1))
    assert.equal(reject(at(NOW - 8 * DAY), NOW, noFuture), 'timestamp_too_old')

    const off: ValidationOptions = { ...defaultValidationOptions, maxPastMs: null, maxFutureMs: null }
    accept(at(0), NOW, off)
    accept(at(Date.UTC(9999, 11, 31)), NOW, off)
  })

  test('custom limits', () => {
    const tight: ValidationOptions = { maxBytes: 16384, maxPastMs: MINUTE, maxFutureMs: 0 }
    accept(at(NOW), NOW, tight)
    accept(at(NOW - MINUTE), NOW, tight)
    assert.equal(reject(at(NOW - MINUTE - 1), NOW, tight), 'timestamp_too_old')
    assert.equal(reject(at(NOW + 1), NOW, tight), 'timestamp_in_future')
  })

  test('a bad timestamp is bad_timestamp even when the limits are off', () => {
    const off: ValidationOptions = { ...defaultValidationOptions, maxPastMs: null, maxFutureMs: null }
    assert.equal(reject(JSON.stringify(wire({ timestamp: '2025-02-30T00:00:00' })), NOW, off), 'bad_timestamp')
  })
})

describe('toWire', () => {
  const full: Reading = {
    sensorId: 'TEMP_001',
    sensorType: 'temperature',
    location: 'Server Room',
    value: 22.45,
    ts: T + 123,
    unit: '°C',
    anomaly: true,
    anomalyKind: 'spike',
    seq: 7
  }

  test('writes the wire field names, the ISO UTC timestamp and the optional fields that are set', () => {
    assert.equal(toWire(full),
      '{"sensor_id":"TEMP_001","sensor_type":"temperature","location":"Server Room","value":22.45,' +
      '"timestamp":"2025-11-17T11:22:35.123Z","unit":"°C","anomaly":true,"anomaly_type":"spike","seq":7}')
  })

  test('null anomaly, anomalyKind and seq are left out; an empty unit is kept', () => {
    const bare: Reading = { ...full, unit: '', anomaly: null, anomalyKind: null, seq: null }
    assert.equal(toWire(bare),
      '{"sensor_id":"TEMP_001","sensor_type":"temperature","location":"Server Room","value":22.45,' +
      '"timestamp":"2025-11-17T11:22:35.123Z","unit":""}')
  })

  test('round trip: validateMessage(toWire(r)) gives back r', () => {
    const readings: Reading[] = [
      full,
      { ...full, unit: '', anomaly: null, anomalyKind: null, seq: null },
      { ...full, anomaly: false, anomalyKind: null, seq: 0 },
      { ...full, value: -40, location: 'Kühlraum "Nord"', sensorId: 'id/with\\slashes' },
      { ...full, value: 1e-9, sensorType: 'radiation', unit: 'µSv/h' }
    ]
    for (const r of readings) {
      const back = validateMessage(toWire(r), r.ts)
      assert.deepEqual(back, { ok: true, reading: r })
    }
  })

  test('round trip of 2000 simulator readings (values, labels, seq), bit for bit', () => {
    const sim = new Simulator({ sensors: 25, startTs: T, seed: 7 })
    let labelled = 0
    for (let i = 0; i < 2000; i++) {
      const r = sim.next()
      if (r.anomaly === true) labelled++
      const back = validateMessage(toWire(r), r.ts)
      assert.deepEqual(back, { ok: true, reading: r })
    }
    assert.ok(labelled > 0, 'the sample includes labelled anomalies')
  })

  test('round trip of a reading in the first century', () => {
    const r: Reading = { ...full, ts: new Date('0050-06-01T00:00:00Z').getTime() }
    const off: ValidationOptions = { ...defaultValidationOptions, maxPastMs: null, maxFutureMs: null }
    assert.deepEqual(validateMessage(toWire(r), r.ts, off), { ok: true, reading: r })
  })
})
