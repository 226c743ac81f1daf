import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type Reading, fromMicroseconds, microsecondsOf } from '../domain/index.ts'
import { defaultIngestLimits } from './limits.ts'
import { type LinePoint, parseLineProtocol } from './line-protocol.ts'
import { formatLine, type PointRejection, pointsToReadings } from './points.ts'
import { type IngestDevice } from './sensors.ts'

const device: IngestDevice = { id: 'esp32-1', name: 'Lab sensor', location: 'Laboratory' }
/** 2024-12-05T12:00:00Z. */
const NOW = 1_733_400_000_000
const TS_NS = '1733399990000000000'
const TS = 1_733_399_990_000

function reading (sensorType: string, value: number, ts: number, unit: string): Reading {
  return { sensorId: `esp32-1.${sensorType}`, sensorType, location: 'Laboratory', value, ts, unit, anomaly: null, anomalyKind: null, seq: null }
}

/** Parses a body (ns) and maps its points: what the HTTP write does. */
function write (body: string, limits = defaultIngestLimits): ReturnType<typeof pointsToReadings> {
  const parsed = parseLineProtocol(body, 'ns', NOW, limits)
  assert.deepEqual(parsed.errors, [])
  return pointsToReadings(parsed.points, device, NOW, limits)
}

/** A point as the parser makes it: tsMs follows tsUs. */
function point (over: Partial<Omit<LinePoint, 'tsMs'>>): LinePoint {
  const tsUs = over.tsUs ?? TS * 1000
  return { line: 1, measurement: 'm', tags: {}, fields: {}, ...over, tsUs, tsMs: fromMicroseconds(tsUs) }
}

describe('pointsToReadings: mapping', () => {
  test('Telegraf style: each field is a sensor type, the measurement only groups', () => {
    assert.deepEqual(write(`environment,device=esp32-1,location=Lab temperature=22.5,humidity=41i,co2=612u,pm2_5=7 ${TS_NS}`), {
      readings: [reading('temperature', 22.5, TS, '°C'), reading('humidity', 41, TS, '%'), reading('co2', 612, TS, 'ppm'), reading('pm2_5', 7, TS, '')],
      rejected: []
    })
  })

  test('a field named value: the measurement is the sensor type (aliases and case apply)', () => {
    assert.deepEqual(write(`temperature value=21 ${TS_NS}\nRH value=40 ${TS_NS}\nbattery value=3.7 ${TS_NS}`).readings, [
      reading('temperature', 21, TS, '°C'), reading('humidity', 40, TS, '%'), reading('battery', 3.7, TS, '')
    ])
  })

  test('tags change nothing: the device is the token\'s, the location the registry\'s', () => {
    const r = write(`environment,device=other-device,location=Elsewhere,host=gw-1,sensor=probe2 temperature=20 ${TS_NS}`)
    assert.deepEqual(r.readings, [reading('temperature', 20, TS, '°C')])
  })

  test('ts keeps the microseconds (also before 1970)', () => {
    const limits = { ...defaultIngestLimits, maxPastMs: null }
    assert.deepEqual(pointsToReadings([point({ fields: { t: 1 }, tsUs: TS * 1000 + 999 })], device, NOW).readings.map(r => microsecondsOf(r.ts)), [TS * 1000 + 999])
    assert.deepEqual(pointsToReadings([point({ fields: { t: 1 }, tsUs: -1 })], device, NOW, limits).readings.map(r => r.ts), [-0.001])
  })
})

describe('pointsToReadings: rejections, each field on its own, raw as line protocol', () => {
  test('strings and booleans are non_numeric_value; the numbers of the point are kept', () => {
    assert.deepEqual(write(`environment,device=esp32-1 temperature=22.5,status="ok",door=t ${TS_NS}`), {
      readings: [reading('temperature', 22.5, TS, '°C')],
      rejected: [
        { line: 1, raw: `environment,device=esp32-1 status="ok" ${TS_NS}`, reason: 'non_numeric_value', detail: 'field "status" is a string: only numbers are stored' },
        { line: 1, raw: `environment,device=esp32-1 door=true ${TS_NS}`, reason: 'non_numeric_value', detail: 'field "door" is a boolean: only numbers are stored' }
      ] satisfies PointRejection[]
    })
  })

  test('names that cannot be sensor types are invalid_measurement (the field key, or the measurement for value)', () => {
    const r = write(`env pm2.5=3,ok=1 ${TS_NS}\nmy\\ sensor value=1 ${TS_NS}`)
    assert.deepEqual(r.readings, [reading('ok', 1, TS, '')])
    assert.deepEqual(r.rejected.map(x => [x.line, x.raw, x.reason]), [
      [1, `env pm2.5=3 ${TS_NS}`, 'invalid_measurement'],
      [2, `my\\ sensor value=1 ${TS_NS}`, 'invalid_measurement']
    ])
    assert.match(r.rejected[1]?.detail ?? '', /^measurement "my sensor" is not a usable sensor type/)
  })

  test('two fields of one sensor in a point: the first is kept, the second is duplicate_measurement', () => {
    assert.deepEqual(write(`temperature value=20,temp=21,Humidity=1,rh=2 ${TS_NS}`), {
      readings: [reading('temperature', 20, TS, '°C'), reading('humidity', 1, TS, '%')],
      rejected: [
        { line: 1, raw: `temperature temp=21 ${TS_NS}`, reason: 'duplicate_measurement', detail: 'field "temp" names temperature, which this point has already' },
        { line: 1, raw: `temperature rh=2 ${TS_NS}`, reason: 'duplicate_measurement', detail: 'field "rh" names humidity, which this point has already' }
      ]
    })
  })

  test('a non-finite number in a point made by hand is non_finite_value', () => {
    assert.deepEqual(pointsToReadings([point({ fields: { t: Number.POSITIVE_INFINITY, u: Number.NaN } })], device, NOW).rejected.map(r => [r.reason, r.detail]), [
      ['non_finite_value', 'field "t" is not finite'],
      ['non_finite_value', 'field "u" is not finite']
    ])
  })

  test('far-off timestamps reject the point once; a power of 1000 off hints at the precision', () => {
    const week = 7 * 24 * 3600_000
    const r = pointsToReadings([
      point({ line: 1, fields: { t: 1, u: 2 }, tsUs: (NOW - week - 1000) * 1000 }),
      point({ line: 2, fields: { t: 1 }, tsUs: (NOW + 6 * 60_000) * 1000 }),
      point({ line: 3, fields: { t: 1 }, tsUs: NOW / 1000 }), // ms written with precision ns
      point({ line: 4, fields: { t: 1 }, tsUs: NOW / 1_000_000 }), // s written with precision ns
      point({ line: 5, fields: { t: 1 }, tsUs: NOW }), // µs written with precision ns
      point({ line: 6, fields: { t: 1 }, tsUs: NOW * 1000 * 1000 }) // ns written with precision us
    ], device, NOW)
    assert.deepEqual(r.readings, [])
    assert.deepEqual(r.rejected.map(x => [x.line, x.reason, x.detail]), [
      [1, 'timestamp_too_old', '604801 s behind the receive time'],
      [2, 'timestamp_in_future', '360 s ahead of the receive time'],
      [3, 'timestamp_too_old', "1733398267 s behind the receive time (1000000 times too small: is the write's precision right?)"],
      [4, 'timestamp_too_old', "1733399998 s behind the receive time (1000000000 times too small: is the write's precision right?)"],
      [5, 'timestamp_too_old', "1731666600 s behind the receive time (1000 times too small: is the write's precision right?)"],
      [6, 'timestamp_in_future', "1731666600000 s ahead of the receive time (1000 times too large: is the write's precision right?)"]
    ])
    assert.equal(r.rejected[0]?.raw, `m t=1,u=2 ${(NOW - week - 1000) * 1_000_000}`)
    const unlimited = pointsToReadings([point({ fields: { t: 1 }, tsUs: 0 })], device, NOW, { maxPastMs: null, maxFutureMs: null })
    assert.deepEqual(unlimited.readings.map(x => x.ts), [0])
  })
})

describe('formatLine', () => {
  test('escapes as line protocol wants, timestamp in ns', () => {
    const p = point({ measurement: 'a b,c=d', tags: { 'k ,=': 'v ,=\\' }, fields: { 'f ,=': 's "q" \\', g: true, h: -1.5 }, tsUs: 1 })
    assert.equal(formatLine(p, null), 'a\\ b\\,c=d,k\\ \\,\\==v\\ \\,\\=\\ f\\ \\,\\=="s \\"q\\" \\\\",g=true,h=-1.5 1000')
    assert.equal(formatLine(point({ fields: { x: 1 }, tsUs: 0 }), 'x'), 'm x=1 0')
  })

  test('parses back to the same point', () => {
    const body = [
      'a\\ b\\,c,k\\ 1=v\\,1,k2=v\\=2 f\\ 1="x \\"y\\" \\\\ z",f2=1i,f3=-2.5e-8,f4=F,f5=18446744073709551615u 1733399990000123000',
      'temperature,device=esp32-1 value=21 -1000',
      'm s="multi\nline" 0'
    ].join('\n')
    const first = parseLineProtocol(body, 'ns', NOW)
    assert.deepEqual(first.errors, [])
    const again = parseLineProtocol(first.points.map(p => formatLine(p, null)).join('\n'), 'ns', NOW)
    assert.deepEqual(again.errors, [])
    assert.deepEqual(again.points.map(({ line, ...rest }) => rest), first.points.map(({ line, ...rest }) => rest))
  })
})
