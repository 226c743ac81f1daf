import { test } from 'node:test'
import assert from 'node:assert/strict'
import { IotError, type Reading } from '../domain/index.ts'
import { AnomalyConfigError, RuleEngine, defaultRuleConfig, validateRuleConfig, type RuleConfig } from './index.ts'

function reading (over: Partial<Reading>): Reading {
  return {
    sensorId: 's1',
    sensorType: 'temperature',
    location: 'Office Floor 3',
    value: 20,
    ts: 0,
    unit: '',
    anomaly: null,
    anomalyKind: null,
    seq: null,
    ...over
  }
}

function isConfigError (path?: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof AnomalyConfigError, `expected AnomalyConfigError, got ${String(err)}`)
    assert.ok(err instanceof IotError)
    assert.equal(err.code, 'IOT_ERR_ANOMALY_CONFIG')
    assert.equal(AnomalyConfigError.code, 'IOT_ERR_ANOMALY_CONFIG')
    assert.equal(err.name, 'AnomalyConfigError')
    if (path !== undefined) assert.equal(err.path, path)
    return true
  }
}

test('rules - default range of each of the five types, bounds inclusive', () => {
  const rules = new RuleEngine()
  const table: Array<[string, number, number, number]> = [
    ['temperature', 10, 35, 5],
    ['humidity', 20, 80, 15],
    ['air_quality', 0, 150, 25],
    ['pressure', 980, 1040, 10],
    ['co2', 300, 1200, 150]
  ]
  for (const [sensorType, min, max, maxRatePerSec] of table) {
    const at = (value: number) => rules.evaluate(reading({ sensorType, value }), null)
    assert.deepEqual(at(min), { anomaly: false, reason: null }, `${sensorType} at min`)
    assert.deepEqual(at(max), { anomaly: false, reason: null }, `${sensorType} at max`)
    assert.deepEqual(at((min + max) / 2), { anomaly: false, reason: null }, `${sensorType} mid`)
    assert.deepEqual(at(min - 0.01), { anomaly: true, reason: 'below_min' }, `${sensorType} below`)
    assert.deepEqual(at(max + 0.01), { anomaly: true, reason: 'above_max' }, `${sensorType} above`)
    assert.deepEqual(rules.thresholdFor(sensorType, 'Laboratory'), { min, max, maxRatePerSec })
  }
})

test('rules - location overrides: server room and manufacturing temperature, warehouse temperature and humidity', () => {
  const rules = new RuleEngine()
  const at = (location: string, value: number, sensorType = 'temperature') => rules.evaluate(reading({ location, value, sensorType }), null)
  assert.deepEqual(at('Server Room', 27), { anomaly: false, reason: null })
  assert.deepEqual(at('Server Room', 27.1), { anomaly: true, reason: 'above_max' })
  assert.deepEqual(at('Server Room', 9.9), { anomaly: true, reason: 'below_min' })
  assert.deepEqual(at('Warehouse', 6), { anomaly: false, reason: null })
  assert.deepEqual(at('Warehouse', 4.9), { anomaly: true, reason: 'below_min' })
  assert.deepEqual(at('Manufacturing', 39), { anomaly: false, reason: null })
  assert.deepEqual(at('Office Floor 3', 36), { anomaly: true, reason: 'above_max' })
  assert.deepEqual(at('Warehouse', 85, 'humidity'), { anomaly: false, reason: null })
  assert.deepEqual(at('Office Floor 3', 85, 'humidity'), { anomaly: true, reason: 'above_max' })
  // Location match is exact.
  assert.deepEqual(at('server room', 28), { anomaly: false, reason: null })
  // Other types at the server room keep their defaults.
  assert.deepEqual(at('Server Room', 79, 'humidity'), { anomaly: false, reason: null })
  assert.deepEqual(rules.thresholdFor('temperature', 'Server Room'), { min: 10, max: 27, maxRatePerSec: 5 })
})

test('rules - an override merges field by field over the default; types without default can be overridden', () => {
  const rules = new RuleEngine({
    defaults: { temperature: { min: 15, max: 35, maxRatePerSec: 2 } },
    overrides: {
      'temperature@Lab': { max: 25 },
      'co2@Lab': { max: 1000 },
      'temperature@Bldg@2': { min: 18 }
    }
  })
  assert.deepEqual(rules.thresholdFor('temperature', 'Lab'), { min: 15, max: 25, maxRatePerSec: 2 })
  assert.deepEqual(rules.thresholdFor('temperature', 'Bldg@2'), { min: 18, max: 35, maxRatePerSec: 2 })
  assert.deepEqual(rules.thresholdFor('temperature', 'Office'), { min: 15, max: 35, maxRatePerSec: 2 })
  assert.deepEqual(rules.thresholdFor('co2', 'Lab'), { max: 1000 })
  assert.equal(rules.thresholdFor('co2', 'Office'), null)

  assert.deepEqual(rules.evaluate(reading({ location: 'Lab', value: 14 }), null), { anomaly: true, reason: 'below_min' })
  assert.deepEqual(rules.evaluate(reading({ location: 'Lab', value: 26 }), null), { anomaly: true, reason: 'above_max' })
  assert.deepEqual(rules.evaluate(reading({ location: 'Bldg@2', value: 17 }), null), { anomaly: true, reason: 'below_min' })
  assert.deepEqual(rules.evaluate(reading({ sensorType: 'co2', location: 'Lab', value: 1001 }), null), { anomaly: true, reason: 'above_max' })
  assert.deepEqual(rules.evaluate(reading({ sensorType: 'co2', location: 'Lab', value: -1e9 }), null), { anomaly: false, reason: null })
  assert.deepEqual(rules.evaluate(reading({ sensorType: 'co2', location: 'Office', value: 1e9 }), null), { anomaly: false, reason: null })
})

test('rules - rate of change per second of event time', () => {
  const rules = new RuleEngine({
    defaults: { temperature: { min: -50, max: 100, maxRatePerSec: 0.5 } },
    overrides: { 'temperature@Lab': { maxRatePerSec: 5 } }
  })
  const prev = { value: 20, ts: 1_000_000 }
  const at = (value: number, dtMs: number, location = 'Office') =>
    rules.evaluate(reading({ value, ts: prev.ts + dtMs, location }), prev)
  const normal = { anomaly: false, reason: null }
  const rate = { anomaly: true, reason: 'rate' }
  assert.deepEqual(at(21, 2000), normal) // exactly 0.5 /s
  assert.deepEqual(at(21.5, 2000), rate) // 0.75 /s
  assert.deepEqual(at(21, 1000), rate) // 1 /s
  assert.deepEqual(at(19, 1000), rate) // -1 /s: absolute rate
  assert.deepEqual(at(20.4, 1000), normal)
  assert.deepEqual(at(24, 1000, 'Lab'), normal) // 4 /s under the Lab's 5 /s
  assert.deepEqual(at(26, 1000, 'Lab'), rate) // 6 /s
  // Range comes first.
  assert.deepEqual(at(101, 1000), { anomaly: true, reason: 'above_max' })
  // No previous value, same timestamp or older timestamp: no rate to compute.
  assert.deepEqual(rules.evaluate(reading({ value: 90, ts: prev.ts + 1 }), null), normal)
  assert.deepEqual(at(90, 0), normal)
  assert.deepEqual(at(90, -1000), normal)
  // Without maxRatePerSec there is no rate rule.
  assert.deepEqual(new RuleEngine({ defaults: { temperature: { max: 35 } } }).evaluate(reading({ value: 34, ts: prev.ts + 1 }), prev), normal)
})

test('rules - unknown sensor types are never flagged', () => {
  const rules = new RuleEngine()
  for (const value of [-1e300, -1, 0, 1e6, 1e300]) {
    assert.deepEqual(rules.evaluate(reading({ sensorType: 'radiation', value, ts: 1 }), { value: 0, ts: 0 }),
      { anomaly: false, reason: null })
  }
  assert.equal(rules.thresholdFor('radiation', 'Server Room'), null)
})

test('rules - results are shared constants (no allocation per reading)', () => {
  const rules = new RuleEngine()
  const a = rules.evaluate(reading({ value: 20 }), null)
  const b = rules.evaluate(reading({ value: 21 }), null)
  assert.equal(a, b)
  assert.ok(Object.isFrozen(a))
  assert.equal(rules.evaluate(reading({ value: 99 }), null), rules.evaluate(reading({ value: 98 }), null))
})

test('rules - the default config is valid, frozen and survives JSON', () => {
  assert.ok(Object.isFrozen(defaultRuleConfig))
  assert.ok(Object.isFrozen(defaultRuleConfig.defaults))
  const parsed: unknown = JSON.parse(JSON.stringify(defaultRuleConfig))
  const config = validateRuleConfig(parsed)
  assert.deepEqual({ ...config.defaults }, { ...defaultRuleConfig.defaults })
  assert.deepEqual(new RuleEngine(config).thresholdFor('temperature', 'Server Room'), { min: 10, max: 27, maxRatePerSec: 5 })
})

test('rules - a bad config throws AnomalyConfigError with code IOT_ERR_ANOMALY_CONFIG', () => {
  const bad: Array<[unknown, string | undefined]> = [
    [null, ''],
    [[], ''],
    [{}, 'defaults'],
    [{ defaults: { temperature: { min: 35, max: 15 } } }, 'defaults.temperature'],
    [{ defaults: { temperature: { min: 20, max: 20 } } }, 'defaults.temperature'],
    [{ defaults: { temperature: { min: Number.NaN } } }, 'defaults.temperature.min'],
    [{ defaults: { temperature: { max: Infinity } } }, 'defaults.temperature.max'],
    [{ defaults: { temperature: { max: '30' } } }, 'defaults.temperature.max'],
    [{ defaults: { temperature: { max: null } } }, 'defaults.temperature.max'],
    [{ defaults: { temperature: { maxRate: 1 } } }, 'defaults.temperature.maxRate'],
    [{ defaults: { temperature: { maxRatePerSec: 0 } } }, 'defaults.temperature.maxRatePerSec'],
    [{ defaults: { temperature: { maxRatePerSec: -1 } } }, 'defaults.temperature.maxRatePerSec'],
    [{ defaults: { temperature: 30 } }, 'defaults.temperature'],
    [{ defaults: { '': {} } }, 'defaults.'],
    [{ defaults: { 'a@b': {} } }, 'defaults.a@b'],
    [{ defaults: {}, extra: 1 }, 'extra'],
    [{ defaults: {}, overrides: [] }, 'overrides'],
    [{ defaults: {}, overrides: { temperature: { max: 30 } } }, 'overrides.temperature'],
    [{ defaults: {}, overrides: { '@Lab': { max: 30 } } }, 'overrides.@Lab'],
    [{ defaults: {}, overrides: { 'temperature@': { max: 30 } } }, 'overrides.temperature@'],
    // Valid alone, invalid once merged over the default 15..35.
    [{ defaults: { temperature: { min: 15, max: 35 } }, overrides: { 'temperature@Lab': { min: 40 } } },
      'overrides.temperature@Lab (merged over defaults.temperature)']
  ]
  for (const [config, path] of bad) {
    assert.throws(() => validateRuleConfig(config), isConfigError(path), JSON.stringify(config))
    assert.throws(() => new RuleEngine(config as RuleConfig), isConfigError(path))
  }
  assert.throws(() => new RuleEngine({ defaults: { co2: { min: 1200, max: 300 } } }),
    { code: 'IOT_ERR_ANOMALY_CONFIG', message: 'defaults.co2: min (1200) must be < max (300)' })
})
