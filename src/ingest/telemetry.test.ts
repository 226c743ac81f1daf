import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type Reading, microsecondsOf } from '../domain/index.ts'
import { defaultIngestLimits } from './limits.ts'
import { MAX_RAW_CHARS } from './reasons.ts'
import { type IngestDevice } from './sensors.ts'
import { decodeTelemetry, type TelemetryLimits, type TelemetryRejection, WHOLE_PAYLOAD } from './telemetry.ts'

const device: IngestDevice = { id: 'esp32-1', name: 'Lab sensor', location: 'Laboratory' }
/** 2024-12-05T12:00:00Z: 1733400000000, the ts of the conventions note's ThingsBoard example. */
const NOW = 1_733_400_000_000
const MINUTE = 60_000

function reading (sensorType: string, value: number, ts: number, unit: string, over: Partial<Reading> = {}): Reading {
  return { sensorId: `esp32-1.${sensorType}`, sensorType, location: 'Laboratory', value, ts, unit, anomaly: null, anomalyKind: null, seq: null, ...over }
}

function rejection (index: number, raw: string, reason: TelemetryRejection['reason'], detail: string): TelemetryRejection {
  return { index, raw, reason, detail }
}

function decode (payload: string | Buffer, limits: TelemetryLimits = defaultIngestLimits, receivedAtMs = NOW): ReturnType<typeof decodeTelemetry> {
  return decodeTelemetry(payload, device, receivedAtMs, limits)
}

describe('decodeTelemetry: ThingsBoard shapes', () => {
  test('values alone are at the receive time, one reading a key, known units', () => {
    assert.deepEqual(decode('{"temperature":22.5,"humidity":41}'), {
      readings: [reading('temperature', 22.5, NOW, '°C'), reading('humidity', 41, NOW, '%')],
      rejected: []
    })
  })

  test('{"ts","values"}: at ts', () => {
    assert.deepEqual(decode('{"ts":1733399990000,"values":{"temperature":22.5,"co2":612}}'), {
      readings: [reading('temperature', 22.5, 1733399990000, '°C'), reading('co2', 612, 1733399990000, 'ppm')],
      rejected: []
    })
  })

  test('an array of both shapes, in order', () => {
    const r = decode('[{"ts":1733399990000,"values":{"temp":21}},{"ts":1733399995000,"values":{"temp":21.5}},{"RH":40}]')
    assert.deepEqual(r, {
      readings: [reading('temperature', 21, 1733399990000, '°C'), reading('temperature', 21.5, 1733399995000, '°C'), reading('humidity', 40, NOW, '%')],
      rejected: []
    })
  })

  test('aliases and case map to the known types; other names are their own type without a unit', () => {
    assert.deepEqual(decode('{"TEMP":20,"hum":30,"CO₂":500,"aqi":42,"Pressure":1012.5,"pm2_5":7,"Voltage":3.3}').readings, [
      reading('temperature', 20, NOW, '°C'),
      reading('humidity', 30, NOW, '%'),
      reading('co2', 500, NOW, 'ppm'),
      reading('air_quality', 42, NOW, 'AQI'),
      reading('pressure', 1012.5, NOW, 'hPa'),
      reading('pm2_5', 7, NOW, ''),
      reading('voltage', 3.3, NOW, '')
    ])
  })

  test('a Buffer payload is UTF-8; a byte order mark is skipped (string or Buffer)', () => {
    const expected = { readings: [reading('co2', 400, NOW, 'ppm')], rejected: [] }
    assert.deepEqual(decode(Buffer.from('{"co₂":400}')), expected)
    assert.deepEqual(decode(Buffer.from('\uFEFF{"co2":400}')), expected)
    assert.deepEqual(decode('\uFEFF{"co2":400}'), expected)
  })

  test('an empty array is nothing, and no error', () => {
    assert.deepEqual(decode('[]'), { readings: [], rejected: [] })
  })

  test('the receive time of values without ts is whole ms', () => {
    assert.deepEqual(decode('{"temperature":1}', defaultIngestLimits, NOW + 0.75).readings, [reading('temperature', 1, NOW, '°C')])
  })

  test('integers, negatives, exponents and zero are numbers like any other', () => {
    assert.deepEqual(decode('{"a":0,"b":-0.5,"c":1e3,"d":-12}').readings.map(r => r.value), [0, -0.5, 1000, -12])
  })
})

describe('decodeTelemetry: bad values are rejected one by one, good ones kept', () => {
  test('strings, numeric strings, booleans, null, objects and arrays are non_numeric_value', () => {
    const r = decode('{"temperature":22.5,"status":"ok","humidity":"41","alarm":true,"door":false,"co2":null,"nested":{"x":1},"list":[1,2]}')
    assert.deepEqual(r, {
      readings: [reading('temperature', 22.5, NOW, '°C')],
      rejected: [
        rejection(0, '{"status":"ok"}', 'non_numeric_value', '"status" is a string ("ok"): only numbers are stored'),
        rejection(0, '{"humidity":"41"}', 'non_numeric_value', '"humidity" is a string ("41"): only numbers are stored'),
        rejection(0, '{"alarm":true}', 'non_numeric_value', '"alarm" is a boolean (true): only numbers are stored'),
        rejection(0, '{"door":false}', 'non_numeric_value', '"door" is a boolean (false): only numbers are stored'),
        rejection(0, '{"co2":null}', 'non_numeric_value', '"co2" is null: only numbers are stored'),
        rejection(0, '{"nested":{"x":1}}', 'non_numeric_value', '"nested" is an object: only numbers are stored'),
        rejection(0, '{"list":[1,2]}', 'non_numeric_value', '"list" is an array: only numbers are stored')
      ]
    })
  })

  test('a bad value of a timed entry keeps its ts in raw, so raw can be sent again once fixed', () => {
    assert.deepEqual(decode('{"ts":1733399990000,"values":{"temperature":"22.5","humidity":41}}'), {
      readings: [reading('humidity', 41, 1733399990000, '%')],
      rejected: [rejection(0, '{"ts":1733399990000,"values":{"temperature":"22.5"}}', 'non_numeric_value', '"temperature" is a string ("22.5"): only numbers are stored')]
    })
  })

  test('a number beyond a double (1e999 parses as Infinity) is non_finite_value', () => {
    assert.deepEqual(decode('{"temperature":1e999,"humidity":-1e999,"co2":400}'), {
      readings: [reading('co2', 400, NOW, 'ppm')],
      rejected: [
        rejection(0, '{"temperature":Infinity}', 'non_finite_value', '"temperature" is not finite'),
        rejection(0, '{"humidity":-Infinity}', 'non_finite_value', '"humidity" is not finite')
      ]
    })
  })

  test('a name that cannot be a sensor type is invalid_measurement', () => {
    const r = decode('{"pm2.5":12,"air quality":3,"ok":1}')
    assert.deepEqual(r.readings, [reading('ok', 1, NOW, '')])
    assert.deepEqual(r.rejected.map(x => [x.index, x.raw, x.reason]), [
      [0, '{"pm2.5":12}', 'invalid_measurement'],
      [0, '{"air quality":3}', 'invalid_measurement']
    ])
    assert.match(r.rejected[0]?.detail ?? '', /^measurement "pm2\.5" is not a usable sensor type/)
  })

  test('two names of one sensor in one entry: the first is kept, the second is duplicate_measurement', () => {
    assert.deepEqual(decode('{"temp":20,"Temperature":21,"humidity":30}'), {
      readings: [reading('temperature', 20, NOW, '°C'), reading('humidity', 30, NOW, '%')],
      rejected: [rejection(0, '{"Temperature":21}', 'duplicate_measurement', '"Temperature" names temperature, which this entry has already')]
    })
    // In separate entries they are separate readings (de-duplication on (sensor, ts) is the worker's).
    assert.equal(decode('[{"temp":20},{"temperature":21}]').readings.length, 2)
  })

  test('a raw value is cut to MAX_RAW_CHARS', () => {
    const r = decode(JSON.stringify({ note: 'x'.repeat(5000) }))
    assert.equal(r.rejected[0]?.raw.length, MAX_RAW_CHARS)
    assert.equal(r.rejected[0]?.reason, 'non_numeric_value')
  })
})

describe('decodeTelemetry: bad entries', () => {
  test('entries that are not objects are schema, each at its index', () => {
    const r = decode('[{"temperature":1},2,null,"x",[{"temperature":3}],{"humidity":4}]')
    assert.deepEqual(r, {
      readings: [reading('temperature', 1, NOW, '°C'), reading('humidity', 4, NOW, '%')],
      rejected: [
        rejection(1, '2', 'schema', 'an entry is a JSON object, got a number (2)'),
        rejection(2, 'null', 'schema', 'an entry is a JSON object, got null'),
        rejection(3, '"x"', 'schema', 'an entry is a JSON object, got a string ("x")'),
        rejection(4, '[{"temperature":3}]', 'schema', 'an entry is a JSON object, got an array')
      ]
    })
  })

  test('ts without values, values without ts: schema (ThingsBoard would store "ts" as telemetry)', () => {
    assert.deepEqual(decode('[{"ts":1733399990000,"temperature":1},{"values":{"temperature":2}}]'), {
      readings: [],
      rejected: [
        rejection(0, '{"ts":1733399990000,"temperature":1}', 'schema', '"ts" without "values": send {"ts":<epoch ms>,"values":{...}}, or the values alone for the receive time'),
        rejection(1, '{"values":{"temperature":2}}', 'schema', '"values" without "ts": send {"ts":<epoch ms>,"values":{...}}')
      ]
    })
  })

  test('ts that is not a number of ms is bad_timestamp for the whole entry', () => {
    const r = decode('[{"ts":"1733399990000","values":{"t":1}},{"ts":null,"values":{"t":1}},{"ts":1e300,"values":{"t":1}}]')
    assert.deepEqual(r, {
      readings: [],
      rejected: [
        rejection(0, '{"ts":"1733399990000","values":{"t":1}}', 'bad_timestamp', '"ts" is epoch milliseconds, a number; got a string ("1733399990000")'),
        rejection(1, '{"ts":null,"values":{"t":1}}', 'bad_timestamp', '"ts" is epoch milliseconds, a number; got null'),
        rejection(2, '{"ts":1e+300,"values":{"t":1}}', 'bad_timestamp', '"ts" is epoch milliseconds, a number; got a number (1e+300)')
      ]
    })
  })

  test('a fraction of a ms keeps the microseconds: readings within one ms stay distinct', () => {
    const r = decode('[{"ts":1733399990000.5,"values":{"t":1}},{"ts":1733399990000.501,"values":{"t":2}},{"ts":1733399990000.5001,"values":{"t":3}}]')
    assert.deepEqual(r.readings.map(x => microsecondsOf(x.ts)), [1733399990000500, 1733399990000501, 1733399990000500])
    assert.deepEqual(r.rejected, [])
  })

  test('far-off ts: timestamp_too_old / timestamp_in_future for the entry; null limits take anything', () => {
    const old = NOW - 8 * 24 * 60 * MINUTE
    const ahead = NOW + 6 * MINUTE
    const payload = `[{"ts":${old},"values":{"t":1}},{"ts":${ahead},"values":{"t":2}},{"ts":${NOW + 5 * MINUTE},"values":{"t":3}}]`
    assert.deepEqual(decode(payload), {
      readings: [reading('t', 3, NOW + 5 * MINUTE, '')],
      rejected: [
        rejection(0, `{"ts":${old},"values":{"t":1}}`, 'timestamp_too_old', '691200 s behind the receive time'),
        rejection(1, `{"ts":${ahead},"values":{"t":2}}`, 'timestamp_in_future', '360 s ahead of the receive time')
      ]
    })
    assert.equal(decode(payload, { ...defaultIngestLimits, maxPastMs: null, maxFutureMs: null }).readings.length, 3)
    assert.equal(decode('{"ts":0,"values":{"t":1}}', { ...defaultIngestLimits, maxPastMs: null }).readings[0]?.ts, 0)
  })

  test('"values" that is not an object, and no values at all, are schema', () => {
    assert.deepEqual(decode('[{"ts":1733399990000,"values":[1]},{"ts":1733399990000,"values":{}},{}]').rejected, [
      rejection(0, '{"ts":1733399990000,"values":[1]}', 'schema', '"values" is an object of measurements, got an array'),
      rejection(1, '{"ts":1733399990000,"values":{}}', 'schema', 'no values'),
      rejection(2, '{}', 'schema', 'no values')
    ])
  })

  test('keys beside ts and values are schema each; the values are kept', () => {
    assert.deepEqual(decode('{"ts":1733399990000,"values":{"temperature":20},"humidity":41,"device":"x"}'), {
      readings: [reading('temperature', 20, 1733399990000, '°C')],
      rejected: [
        rejection(0, '{"humidity":41}', 'schema', 'unknown key "humidity" beside "ts" and "values" (measurements go in "values")'),
        rejection(0, '{"device":"x"}', 'schema', 'unknown key "device" beside "ts" and "values" (measurements go in "values")')
      ]
    })
  })
})

describe('decodeTelemetry: the whole payload rejected once', () => {
  test('broken JSON is invalid_json; an unquoted NaN or Infinity is non_finite_value', () => {
    const broken = decode('{"temperature":22.5')
    assert.equal(broken.readings.length, 0)
    assert.equal(broken.rejected.length, 1)
    assert.deepEqual({ ...broken.rejected[0], detail: '' }, rejection(WHOLE_PAYLOAD, '{"temperature":22.5', 'invalid_json', ''))
    assert.ok((broken.rejected[0]?.detail ?? '').length > 0)
    assert.deepEqual(decode('{"temperature":NaN,"humidity":41}'), {
      readings: [],
      rejected: [rejection(WHOLE_PAYLOAD, '{"temperature":NaN,"humidity":41}', 'non_finite_value', 'a value is NaN or Infinity')]
    })
    assert.equal(decode('[{"t":-Infinity}]').rejected[0]?.reason, 'non_finite_value')
    assert.equal(decode('').rejected[0]?.reason, 'invalid_json')
  })

  test('a Buffer that is not UTF-8 is invalid_json', () => {
    assert.deepEqual(decode(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])).rejected.map(r => [r.index, r.reason, r.detail]), [
      [WHOLE_PAYLOAD, 'invalid_json', 'payload is not UTF-8']
    ])
  })

  test('JSON that is not an object or an array is schema', () => {
    for (const payload of ['42', '"temperature"', 'null', 'true']) {
      assert.deepEqual(decode(payload), {
        readings: [],
        rejected: [rejection(WHOLE_PAYLOAD, payload, 'schema', 'a telemetry payload is a JSON object or an array of objects')]
      })
    }
  })

  test('more than maxPayloadBytes (UTF-8, string or Buffer) is too_large; exactly the limit is taken', () => {
    const limits = { ...defaultIngestLimits, maxPayloadBytes: 20 }
    const fits = '{"t":1,"x":"ééé"}' // 20 bytes in UTF-8, 17 UTF-16 units
    assert.equal(Buffer.byteLength(fits), 20)
    assert.equal(decode(fits, limits).readings.length, 1)
    assert.equal(decode(Buffer.from(fits), limits).readings.length, 1)
    const over = '{"t":1,"x":"éééé"}'
    for (const payload of [over, Buffer.from(over)]) {
      assert.deepEqual(decode(payload, limits), {
        readings: [],
        rejected: [rejection(WHOLE_PAYLOAD, over, 'too_large', 'payload exceeds 20 bytes')]
      })
    }
    const huge = decode(`{"t":"${'x'.repeat(100_000)}"}`)
    assert.equal(huge.rejected[0]?.reason, 'too_large')
    assert.equal(huge.rejected[0]?.raw.length, MAX_RAW_CHARS)
  })

  test('more than maxValuesPerPayload values over all entries is too_many_values', () => {
    const limits = { ...defaultIngestLimits, maxValuesPerPayload: 3 }
    assert.equal(decode('[{"a":1,"b":2},{"ts":1733399990000,"values":{"c":3}}]', limits).readings.length, 3)
    assert.deepEqual(decode('[{"a":1,"b":2},{"ts":1733399990000,"values":{"c":3,"d":4}}]', limits), {
      readings: [],
      rejected: [rejection(WHOLE_PAYLOAD, '[{"a":1,"b":2},{"ts":1733399990000,"values":{"c":3,"d":4}}]', 'too_many_values', '4 values in one payload, at most 3')]
    })
    // Entries that are not objects and empty ones count one each: an array of 1,001 nulls is refused whole.
    assert.equal(decode(JSON.stringify(new Array(1001).fill(null))).rejected[0]?.reason, 'too_many_values')
  })
})

describe('decodeTelemetry: our own wire readings', () => {
  const wire = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    sensor_id: 'esp32-1.temperature', sensor_type: 'temperature', location: 'Somewhere else', value: 22.5, timestamp: '2024-12-05T11:59:50.000Z', unit: '°C', ...over
  })

  test('validated as on the bus, taken for the device\'s own sensors with the device\'s location', () => {
    const r = decode(JSON.stringify([wire(), wire({ sensor_id: 'esp32-1', sensor_type: 'Voltage', unit: 'V', seq: 7, anomaly: false })]))
    assert.deepEqual(r, {
      readings: [
        reading('temperature', 22.5, NOW - 10_000, '°C'),
        { sensorId: 'esp32-1', sensorType: 'Voltage', location: 'Laboratory', value: 22.5, ts: NOW - 10_000, unit: 'V', anomaly: false, anomalyKind: null, seq: 7 }
      ],
      rejected: []
    })
  })

  test('another device\'s sensor is foreign_sensor (a prefix of the id is not enough)', () => {
    for (const sensorId of ['esp32-2.temperature', 'esp32-10.temperature', 'esp32-1x', 'esp32-', 'ESP32-1.temperature']) {
      const raw = JSON.stringify(wire({ sensor_id: sensorId }))
      assert.deepEqual(decode(raw), {
        readings: [],
        rejected: [rejection(0, raw, 'foreign_sensor', `sensor_id "${sensorId}" is not device "esp32-1"'s: it is the device id or starts with "esp32-1."`)]
      }, sensorId)
    }
  })

  test('the wire validator\'s reasons come through', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [wire({ timestamp: 'yesterday' }), 'bad_timestamp'],
      [wire({ timestamp: '2024-11-01T00:00:00Z' }), 'timestamp_too_old'],
      [wire({ timestamp: '2024-12-05T13:00:00Z' }), 'timestamp_in_future'],
      [wire({ value: '22.5' }), 'schema'],
      [wire({ sensor_type: '' }), 'schema']
    ]
    for (const [entry, reason] of cases) {
      const r = decode(JSON.stringify(entry))
      assert.equal(r.readings.length, 0)
      assert.deepEqual(r.rejected.map(x => [x.index, x.raw, x.reason]), [[0, JSON.stringify(entry), reason]])
    }
    const overflowing = JSON.stringify(wire({ value: 0 })).replace('"value":0', '"value":1e999')
    assert.deepEqual(decode(overflowing).rejected.map(x => [x.reason, x.detail]), [['non_finite_value', 'value is not finite']])
  })
})
