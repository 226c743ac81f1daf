import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom, type Reading, type Verdict } from '../domain/index.ts'
import {
  AnomalyStateError,
  Detector,
  ForestScorer,
  IsolationForest,
  anomalyScore,
  severityOf,
  RuleEngine,
  ZScoreDetector,
  type DetectorSnapshot,
  type MlScorer
} from './index.ts'
import { Simulator } from '../sources/index.ts'

function reading (over: Partial<Reading>): Reading {
  return {
    sensorId: 'temp-1',
    sensorType: 'temperature',
    location: 'Office Floor 3',
    value: 20,
    ts: 1_700_000_000_000,
    unit: '°C',
    anomaly: null,
    anomalyKind: null,
    seq: null,
    ...over
  }
}

const T0 = 1_700_000_000_000

function verdict (over: Partial<Verdict>): Verdict {
  return { ruleAnomaly: false, zScore: null, zAnomaly: false, mlScore: null, mlAnomaly: null, modelVersion: null, anomaly: false, severity: null, explanation: null, ...over }
}

test('detector - combines rules and z-score per reading', () => {
  const d = new Detector({
    rules: { defaults: { temperature: { min: 15, max: 35, maxRatePerSec: 1 } } },
    zscore: { windowSize: 10, minSamples: 4 }
  })
  const at = (i: number, value: number) => d.detect(reading({ value, ts: T0 + i * 1000 }))
  // Warm-up: [20, 22, 20, 22] mean 21, std 1.
  assert.deepEqual(at(0, 20), verdict({}))
  assert.deepEqual(at(1, 22), verdict({ ruleAnomaly: true, anomaly: true, severity: 'critical', explanation: 'rule: rate 2 °C/s beyond ±1 °C/s' })) // +2 in 1 s > 1 /s
  assert.deepEqual(at(3, 20), verdict({})) // the previous reading is still 20 at 0 (22 broke the rate rule)
  assert.deepEqual(at(5, 22), verdict({}))
  // z only: 24 is 3 deviations (not > 3) and joins the baseline [20, 22, 20, 22, 24]:
  // mean 21.6, variance (2.56 + 0.16 + 2.56 + 0.16 + 5.76) / 5 = 2.24, so 26.5 is 4.9 / sqrt(2.24) = 3.27.
  assert.deepEqual(at(7, 24), verdict({ zScore: 3 }))
  const v26 = at(12, 26.5) // +2.5 in 5 s: no rate rule
  assert.equal(v26.ruleAnomaly, false)
  assert.ok(Math.abs(v26.zScore! - 4.9 / Math.sqrt(2.24)) < 1e-12)
  assert.equal(v26.zAnomaly, true)
  // Rule and z together: 40 is above max, a rate jump and far out of the baseline.
  const both = at(13, 40)
  assert.equal(both.ruleAnomaly, true)
  assert.equal(both.zAnomaly, true)
  // Rule only: an out-of-range value right at the baseline of a sensor that lives there.
  const hot = new Detector({ zscore: { minSamples: 2 } })
  hot.detect(reading({ value: 36 }))
  hot.detect(reading({ value: 38 }))
  assert.deepEqual(hot.detect(reading({ value: 37 })), verdict({ ruleAnomaly: true, zScore: 0, anomaly: true, severity: 'critical', explanation: 'rule: above max 35 °C' }))
})

test('detector - unknown sensor types get no rule verdict but a z-score', () => {
  const d = new Detector({ zscore: { minSamples: 2 } })
  const r = (value: number) => reading({ sensorId: 'rad-1', sensorType: 'radiation', value })
  assert.deepEqual(d.detect(r(1e6)), verdict({}))
  assert.deepEqual(d.detect(r(1e6 + 2)), verdict({}))
  assert.deepEqual(d.detect(r(1e6 + 2)), verdict({ zScore: 1 }))
})

test('detector - rate uses the latest previous reading by event time; late readings do not rewind it', () => {
  const d = new Detector({ rules: { defaults: { temperature: { maxRatePerSec: 1 } } } })
  assert.equal(d.detect(reading({ value: 20, ts: T0 })).ruleAnomaly, false)
  assert.equal(d.detect(reading({ value: 20.5, ts: T0 + 1000 })).ruleAnomaly, false)
  // Late (older) reading: no rate rule, and it does not become the previous reading.
  assert.equal(d.detect(reading({ value: 100, ts: T0 + 500 })).ruleAnomaly, false)
  assert.equal(d.detect(reading({ value: 21.5, ts: T0 + 2000 })).ruleAnomaly, false) // 1 /s from 20.5
  assert.equal(d.detect(reading({ value: 23, ts: T0 + 3000 })).ruleAnomaly, true) // 1.5 /s
  // Another sensor has its own previous value.
  assert.equal(d.detect(reading({ sensorId: 'temp-2', value: 90, ts: T0 + 3000 })).ruleAnomaly, false)
  assert.equal(d.detect(reading({ sensorId: 'temp-2', value: 90.5, ts: T0 + 4000 })).ruleAnomaly, false)
})

test('detector - ML seam: the scorer sees standardized features once the baseline is warm; the assigned model scores', () => {
  const calls: Array<{ r: Reading, f: number[] }> = []
  const rnd = createRandom(1)
  const forest = IsolationForest.fit(new Float32Array(7 * 256).map(() => rnd.normal()), 7, { nEstimators: 20, contamination: 0.1, random: createRandom(1) })
  const model = { key: 'temperature', sequence: 1, version: 'temperature#1', trainedAt: T0, samples: 256, forest }
  const ml: MlScorer = {
    assign (r: Reading, f: Float32Array) {
      calls.push({ r, f: [...f] })
      return model
    }
  }
  const d = new Detector({ ml, zscore: { windowSize: 10, minSamples: 4 }, rules: { defaults: {} } })
  // Warm-up of the z baseline (4 readings): no features, no ML verdict.
  const vals = [20, 22, 20, 22]
  vals.forEach((v, i) => { assert.deepEqual(d.detect(reading({ value: v, ts: T0 + i * 1000 })), verdict({})) })
  assert.equal(calls.length, 0)
  // Baseline mean 21, std 1. T0 is 2023-11-14T22:13:20Z: hour 22.
  const v = d.detect(reading({ value: 21.5, ts: T0 + 4000 }))
  const angle = 2 * Math.PI * 22 / 24
  const window = [20, 22, 20, 22, 21.5]
  const mean = 21.1
  const std = Math.sqrt(window.reduce((s, x) => s + (x - mean) ** 2, 0) / 5)
  const expected = [0.5, Math.sin(angle), Math.cos(angle), -0.5, (mean - 21) / 1, std, 2].map(Math.fround)
  assert.deepEqual(calls[0]!.f, expected)
  const s = forest.scoreSample(expected)
  assert.equal(v.mlScore, -s)
  assert.equal(v.mlAnomaly, s - forest.offset < 0)
  assert.equal(v.modelVersion, 'temperature#1')
  // A reading the z-score flags: its explanation names the forest's top features when it flags too.
  const far = d.detect(reading({ value: 31, ts: T0 + 5000 }))
  assert.equal(far.zAnomaly, true)
  assert.equal(far.severity, far.mlAnomaly === true ? 'major' : 'minor')
  if (far.mlAnomaly === true) {
    assert.match(far.explanation!, /^z \+\d+(\.\d)? \(baseline 21\.\d+ ± [\d.]+ °C\); ml 0\.\d\d \(temperature#1\): [a-z_]+ [+-][\d.]+σ? \d+%(, [a-z_]+ [+-][\d.]+σ? \d+%)?$/)
  }
  assert.equal(new Detector().ml, null)
})

test('detector - severityOf: rule critical; z with |z| >= 6 or with the forest major; one statistical detector minor', () => {
  assert.equal(severityOf(true, null, false, false), 'critical')
  assert.equal(severityOf(true, 1, false, true), 'critical')
  assert.equal(severityOf(false, 6, true, false), 'major')
  assert.equal(severityOf(false, -Infinity, true, false), 'major')
  assert.equal(severityOf(false, 3.5, true, true), 'major')
  assert.equal(severityOf(false, 5.99, true, false), 'minor')
  assert.equal(severityOf(false, 0.2, false, true), 'minor')
  assert.equal(severityOf(false, null, false, false), null)
})

test('detector - detectMany (batch scoring per model) gives exactly the verdicts of detect one by one', () => {
  const sim = new Simulator({ sensors: 25, seed: 3, startTs: T0 })
  const readings = Array.from({ length: 25 * 700 }, () => sim.next())
  const one = new Detector({ ml: new ForestScorer({ nEstimators: 30 }) })
  const many = new Detector({ ml: new ForestScorer({ nEstimators: 30 }) })
  const a = readings.map(r => one.detect(r))
  const b: Verdict[] = []
  for (let i = 0; i < readings.length; i += 2000) b.push(...many.detectMany(readings.slice(i, i + 2000)))
  assert.deepEqual(b, a)
  assert.ok(a.filter(v => v.mlAnomaly === true).length > 100, 'the forest flagged readings')
  assert.ok(a.some(v => v.severity === 'major') && a.some(v => v.severity === 'critical') && a.some(v => v.severity === 'minor'))
})

test('detector - severity: rule critical, large z major, small z minor; the rate rule skips flagged readings', () => {
  const d = new Detector({ zscore: { windowSize: 20, minSamples: 10 } })
  const at = (i: number, value: number): Verdict => d.detect(reading({ value, ts: T0 + i * 1000 }))
  for (let i = 0; i < 10; i++) at(i, 20 + (i % 2) * 0.2) // baseline mean 20.1, std 0.1
  const minor = at(10, 20.45) // z = 3.5
  assert.equal(minor.severity, 'minor')
  assert.equal(minor.anomaly, false)
  assert.match(minor.explanation!, /^z \+3\.5 \(baseline 20\.1 ± 0\.1 °C\)$/)
  const major = at(11, 20.8) // z = 7 (20.45 was kept out of the baseline)
  assert.equal(major.severity, 'major')
  assert.equal(major.anomaly, true)
  // A spike: above max 35 and a jump of 20 °C in 1 s.
  const spike = at(12, 40)
  assert.equal(spike.severity, 'critical')
  assert.match(spike.explanation!, /^rule: above max 35 °C; z \+\d+/)
  // Back to normal: compared with 20.8 (the spike broke a rule), not with 40: no rate anomaly.
  assert.equal(at(13, 20.1).ruleAnomaly, false)
  const jump = at(14, 27) // from 20.1 at t=13: 6.9 °C in 1 s > 5 °C/s
  assert.equal(jump.ruleAnomaly, true)
  assert.match(jump.explanation!, /^rule: rate 6\.9 °C\/s beyond ±5 °C\/s/)
})

test('detector - anomalyScore: rule 1, |z| / (|z| + 3), or the ML score if higher', () => {
  assert.equal(anomalyScore(verdict({ ruleAnomaly: true })), 1)
  assert.equal(anomalyScore(verdict({ zScore: -3 })), 0.5)
  assert.equal(anomalyScore(verdict({ zScore: 6, mlScore: 0.9 })), 0.9)
  assert.equal(anomalyScore(verdict({ zScore: Infinity })), 1)
  assert.equal(anomalyScore(verdict({})), 0)
})

test('detector - accepts ready engines; forget, size, snapshot and restore', () => {
  const rules = new RuleEngine({ defaults: { pressure: { min: 980, max: 1040, maxRatePerSec: 2 } } })
  const zscore = new ZScoreDetector({ windowSize: 50, minSamples: 10 })
  const a = new Detector({ rules, zscore })
  assert.equal(a.rules, rules)
  assert.equal(a.zscore, zscore)
  const rnd = createRandom(3)
  const gen = (n: number, t0: number): Reading[] => Array.from({ length: n }, (_, i) => reading({
    sensorId: `p${i % 4}`,
    sensorType: 'pressure',
    value: 1013.25 + rnd.normal() * 0.5 + (rnd.next() < 0.05 ? 30 : 0),
    ts: t0 + Math.floor(i / 4) * 1000
  }))
  for (const r of gen(400, T0)) a.detect(r)
  assert.equal(a.size, 4)
  const snap = JSON.parse(JSON.stringify(a.snapshot())) as DetectorSnapshot
  const b = new Detector({ rules, zscore: { windowSize: 50, minSamples: 10 } })
  b.restore(snap)
  assert.equal(b.size, 4)
  const next = gen(400, T0 + 100_000)
  const va = next.map(r => a.detect(r))
  const vb = next.map(r => b.detect(r))
  assert.deepEqual(vb, va)
  assert.ok(va.some(v => v.ruleAnomaly))
  assert.ok(va.some(v => v.zAnomaly))

  assert.equal(a.forget('p0'), true)
  assert.equal(a.forget('p0'), false)
  assert.equal(a.size, 3)
  assert.equal(a.detect(reading({ sensorId: 'p0', sensorType: 'pressure', value: 1013 })).zScore, null)
  a.clear()
  assert.equal(a.size, 0)

  assert.throws(() => b.restore({ ...snap, previous: [{ sensorId: 'x', value: Number.NaN, ts: 0 }] }),
    (err: unknown) => err instanceof AnomalyStateError && err.code === 'IOT_ERR_ANOMALY_STATE')
  assert.throws(() => b.restore({ ...snap, version: 2 as 1 }), { code: 'IOT_ERR_ANOMALY_STATE' })
})

test('detector - a non-finite value leaves the state untouched', () => {
  const d = new Detector({ rules: { defaults: { temperature: { maxRatePerSec: 1 } } } })
  d.detect(reading({ value: 20, ts: T0 }))
  assert.deepEqual(d.detect(reading({ value: Number.NaN, ts: T0 + 1000 })), verdict({}))
  assert.equal(d.detect(reading({ value: 20.5, ts: T0 + 500 })).ruleAnomaly, false) // still after 20 @ T0
  assert.equal(d.zscore.stats('temp-1')!.count, 2)
})
