import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { sensorTypes, sensorModels } from '../sources/index.ts'
import { knownMeasurements, sensorIdOf, sensorTypeOf } from './sensors.ts'

describe('sensorTypeOf', () => {
  test('the simulator\'s five types with their units', () => {
    for (const type of sensorTypes) {
      assert.deepEqual(sensorTypeOf(type), { ok: true, sensorType: type, unit: sensorModels[type].unit })
    }
    assert.deepEqual([...knownMeasurements.keys()].sort(), [...sensorTypes].sort())
  })

  test('case is ignored and aliases name the known types', () => {
    const cases: Array<[string, string, string]> = [
      ['Temperature', 'temperature', '°C'],
      ['TEMP', 'temperature', '°C'],
      ['temp', 'temperature', '°C'],
      ['hum', 'humidity', '%'],
      ['RH', 'humidity', '%'],
      ['CO2', 'co2', 'ppm'],
      ['CO₂', 'co2', 'ppm'],
      ['co₂', 'co2', 'ppm'],
      ['AQI', 'air_quality', 'AQI'],
      ['Air_Quality', 'air_quality', 'AQI'],
      ['Pressure', 'pressure', 'hPa']
    ]
    for (const [name, sensorType, unit] of cases) assert.deepEqual(sensorTypeOf(name), { ok: true, sensorType, unit }, name)
  })

  test('other valid names are their own type, without a unit', () => {
    for (const [name, sensorType] of [['pm2_5', 'pm2_5'], ['Voltage', 'voltage'], ['eCO2', 'eco2'], ['tvoc-ppb', 'tvoc-ppb'], ['1wire', '1wire'],
      ['constructor', 'constructor'], ['toString', 'tostring'], ['a'.repeat(63), 'a'.repeat(63)]]) {
      assert.deepEqual(sensorTypeOf(name as string), { ok: true, sensorType, unit: '' }, name)
    }
  })

  test('names that cannot be a sensor type are refused with a detail', () => {
    for (const name of ['', '_field', '-x', 'pm2.5', 'air quality', 'temp,1', 'température', 'x/y', 'a\u0000b', '__proto__', 'a'.repeat(64), '🍭']) {
      const r = sensorTypeOf(name)
      assert.equal(r.ok, false, JSON.stringify(name))
      if (!r.ok) assert.match(r.detail, /is not a usable sensor type: 1-63 characters of a-z, 0-9, _ and -/)
    }
  })

  test('a long refused name is cut in the detail', () => {
    const r = sensorTypeOf('x.'.repeat(500))
    assert.equal(r.ok, false)
    if (!r.ok) assert.ok(r.detail.length < 300, r.detail)
  })

  test('the cache of resolved names stays bounded and answers the same', () => {
    for (let i = 0; i < 5000; i++) sensorTypeOf(`name_${i}`)
    assert.deepEqual(sensorTypeOf('name_4999'), { ok: true, sensorType: 'name_4999', unit: '' })
    assert.deepEqual(sensorTypeOf('temp'), { ok: true, sensorType: 'temperature', unit: '°C' })
  })
})

test('sensorIdOf: <device id>.<sensor type>, at most 128 characters for the longest id and type', () => {
  assert.equal(sensorIdOf('esp32-1', 'temperature'), 'esp32-1.temperature')
  assert.equal(sensorIdOf('a.b', 'co2'), 'a.b.co2')
  assert.equal(sensorIdOf('d'.repeat(64), 't'.repeat(63)).length, 128)
})
