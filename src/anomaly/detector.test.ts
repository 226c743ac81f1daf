import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom, type Reading, type Verdict } from '../domain/index.ts'
import {
  Detector,
  DriftDetector,
  ForestScorer,
  IsolationForest,
  MAD_TO_SIGMA,
  RuleEngine,
  StuckDetector,
  ZScoreDetector,
  ratioScore,
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
const MEAN_ABS_TO_SIGMA = Math.sqrt(Math.PI / 2)

function verdict (over: Partial<Verdict>): Verdict {
  return {
    ruleAnomaly: false,
    zScore: null,
    zAnomaly: false,
    mlScore: null,
    mlAnomaly: null,
    modelVersion: null,
    stuck: false,
    drift: false,
    anomalyScore: 0,
    anomaly: false,
    severity: null,
    explanation: null,
    ...over
  }
}

function close (actual: number | null | undefined, expected: number, tol = 1e-9): void {
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `expected ${expected}, got ${String(actual)}`)
}

test('detector - combines rules and the robust z-score per reading, on one calibrated score', () => {
  const d = new Detector({
    rules: { defaults: { temperature: { min: 15, max: 35, maxRatePerSec: 1 } } },
    zscore: { windowSize: 10, minSamples: 4 }
  })
  const at = (i: number, value: number): Verdict => d.detect(reading({ value, ts: T0 + i * 1000 }))
  assert.deepEqual(at(0, 20), verdict({}))
  assert.deepEqual(at(1, 22), verdict({ ruleAnomaly: true, anomalyScore: 1, anomaly: true, severity: 'critical', explanation: 'rule: rate 2 °C/s beyond ±1 °C/s' }))
  assert.deepEqual(at(3, 20), verdict({})) // the previous reading is still 20 at 0 (22 broke the rate rule)
  assert.deepEqual(at(5, 22), verdict({}))
  // Baseline [20, 22, 20, 22]: median 21, MAD 1 (scale 1.4826, above the one-step floor 2? no: the
  // sensor moved by 2 at a time, so its resolution floor is 2).
  const z24 = (24 - 21) / 2
  assert.deepEqual(at(7, 24), verdict({ zScore: z24, anomalyScore: ratioScore(z24 / 6) }))
  // Baseline [20, 22, 20, 22, 24]: median 22, MAD 2 (scale 2.965): 31 is z 3.04, a minor surprise.
  const v31 = at(20, 31) // +7 in 13 s: no rate rule
  const z31 = 9 / (2 * MAD_TO_SIGMA)
  assert.deepEqual(v31, verdict({ zScore: z31, zAnomaly: true, anomalyScore: ratioScore(z31 / 6), severity: 'minor', explanation: 'z +3 (baseline 22 ± 3 °C)' }))
  // Rule and z together: 40 is above max and 5.74 scales out of [20, 22, 20, 22, 24, 31] (31, z 3.04,
  // joined the baseline: only beyond |z| 6 is a value held back): median 22, mean deviation 2.5.
  const both = at(21, 40)
  assert.equal(both.ruleAnomaly, true)
  assert.equal(both.zAnomaly, true)
  close(both.zScore, 18 / (MEAN_ABS_TO_SIGMA * 2.5))
  assert.equal(both.anomalyScore, 1)
  assert.equal(both.explanation, 'rule: above max 35 °C; z +5.7 (baseline 22 ± 3.1 °C)')
  // Rule only: an out-of-range value right at the baseline of a sensor that lives there.
  const hot = new Detector({ zscore: { minSamples: 2 } })
  hot.detect(reading({ value: 36 }))
  hot.detect(reading({ value: 38 }))
  assert.deepEqual(hot.detect(reading({ value: 37 })), verdict({ ruleAnomaly: true, zScore: 0, anomalyScore: 1, anomaly: true, severity: 'critical', explanation: 'rule: above max 35 °C' }))
})

test('detector - unknown sensor types get no rule verdict but a z-score', () => {
  const d = new Detector({ zscore: { minSamples: 2 } })
  const r = (value: number): Reading => reading({ sensorId: 'rad-1', sensorType: 'radiation', value })
  assert.deepEqual(d.detect(r(1e6)), verdict({}))
  assert.deepEqual(d.detect(r(1e6 + 2)), verdict({}))
  // Median 1e6 + 1, MAD 1 (1.4826), but the sensor's resolution (its one step, 2) is the floor.
  // The score is the flat run's: one repeat of the four a stuck run needs.
  assert.deepEqual(d.detect(r(1e6 + 2)), verdict({ zScore: 0.5, anomalyScore: ratioScore(1 / 4) }))
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

test('detector - ML seam: the scorer sees features on the robust baseline once it is warm; the forest alone stays below 0.5', () => {
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
  // Baseline median 21; scale 2 (the resolution floor: the sensor moved by 2). T0 is 2023-11-14T22:13:20Z: hour 22.
  const v = d.detect(reading({ value: 21.5, ts: T0 + 4000 }))
  const angle = 2 * Math.PI * 22 / 24
  const window = [20, 22, 20, 22, 21.5]
  const mean = 21.1
  const std = Math.sqrt(window.reduce((s, x) => s + (x - mean) ** 2, 0) / 5)
  const expected = [0.25, Math.sin(angle), Math.cos(angle), -0.25, (mean - 21) / 2, std / 2, 1].map(Math.fround)
  assert.deepEqual(calls[0]!.f, expected)
  const s = forest.scoreSample(expected)
  assert.equal(v.mlScore, -s)
  assert.equal(v.mlAnomaly, s - forest.offset < 0)
  assert.equal(v.modelVersion, 'temperature#1')
  assert.ok(v.anomalyScore < 0.5)
  // Far out: 31 is 9.5 scales from the median 21.5 (scale 1.2533 × mean deviation 0.8 = 1.0026): major.
  const far = d.detect(reading({ value: 31, ts: T0 + 5000 }))
  close(far.zScore, 9.5 / (MEAN_ABS_TO_SIGMA * 0.8))
  assert.equal(far.severity, 'major')
  assert.match(far.explanation!, /^z \+9\.5 \(baseline 21\.5 ± 1 °C\)(; ml 0\.\d\d \(temperature#1\): [a-z_]+ [+-][\d.]+σ? \d+%(, [a-z_]+ [+-][\d.]+σ? \d+%)?)?$/)
  assert.equal(new Detector().ml, null)
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
  assert.ok(a.some(v => v.stuck), 'a stuck sensor')
})

test('detector - severity: rule critical, large z major, small z minor; the rate rule skips flagged readings', () => {
  const d = new Detector({ zscore: { windowSize: 20, minSamples: 10 } })
  const at = (i: number, value: number): Verdict => d.detect(reading({ value, ts: T0 + i * 1000 }))
  const base = [20.0, 20.2, 20.1, 20.3, 19.9, 20.1, 20.0, 20.2, 19.8, 20.1]
  base.forEach((v, i) => at(i, v))
  // Median 20.1; MAD 0.1 (0.148) and mean deviation 0.11 (0.138): the scale is 0.148.
  const scale = MAD_TO_SIGMA * 0.1
  const minor = at(10, 20.7)
  close(minor.zScore, 0.6 / scale, 1e-6)
  assert.equal(minor.severity, 'minor')
  assert.equal(minor.anomaly, false)
  assert.match(minor.explanation!, /^z \+4 \(baseline 20\.1 ± 0\.15 °C\)$/)
  // 20.7 (z 4) joined the baseline (only beyond |z| 6 is a value held back): median 20.1, mean deviation 1.7 / 11.
  const major = at(11, 21.5)
  close(major.zScore, 1.4 / (MEAN_ABS_TO_SIGMA * 1.7 / 11), 1e-6)
  assert.equal(major.severity, 'major')
  assert.equal(major.anomaly, true)
  assert.ok(major.anomalyScore > 0.5)
  // A spike: above max 35 and a jump of 20 °C in 1 s.
  const spike = at(12, 40)
  assert.equal(spike.severity, 'critical')
  assert.match(spike.explanation!, /^rule: above max 35 °C; z \+\d+/)
  // Back to normal: compared with 20.1 at 9 (20.7, 21.5 and 40 were flagged), not with 40: no rate anomaly.
  assert.equal(at(13, 20.1).ruleAnomaly, false)
  const jump = at(14, 27) // from 20.1 at t=13: 6.9 °C in 1 s > 5 °C/s
  assert.equal(jump.ruleAnomaly, true)
  assert.match(jump.explanation!, /^rule: rate 6\.9 °C\/s beyond ±5 °C\/s/)
})

test('detector - stuck and drift: flags, explanations, scores; their values stay out of the z baseline', () => {
  const d = new Detector({ rules: { defaults: {} } })
  const rnd = createRandom(12)
  const out: Verdict[] = []
  let ts = T0
  const feed = (value: number): Verdict => { const v = d.detect(reading({ sensorType: 'co2', unit: 'ppm', value, ts })); ts += 1000; out.push(v); return v }
  for (let i = 0; i < 2000; i++) feed(450 + 20 * rnd.normal())
  const last = out.at(-1)!
  assert.equal(last.stuck, false)
  // Stuck at 451.3: the run holds the 5 readings it needs at the 5th.
  for (let i = 0; i < 3; i++) assert.equal(feed(451.3).stuck, false)
  const s4 = feed(451.3)
  assert.equal(s4.stuck, false)
  const s5 = feed(451.3)
  assert.equal(s5.stuck, true)
  assert.equal(s5.anomaly, true)
  assert.equal(s5.severity, 'major')
  assert.equal(s5.anomalyScore, 0.5)
  assert.equal(s5.explanation, 'stuck: 451 ppm for 5 readings (4 s; needs 5)')
  for (let i = 0; i < 100; i++) feed(451.3)
  const s105 = out.at(-1)!
  assert.equal(s105.explanation, 'stuck: 451 ppm for 105 readings (104 s; needs 5)')
  assert.ok(s105.anomalyScore > 0.99)
  // The stuck values did not flatten the z baseline: the next normal reading is no surprise.
  const back = feed(455)
  assert.equal(back.stuck, false)
  assert.equal(back.zAnomaly, false)
  // A drift of +6σ over 200 readings: flagged on the way, with its explanation.
  const drifted: Verdict[] = []
  for (let i = 1; i <= 200; i++) drifted.push(feed(450 + 20 * rnd.normal() + 120 * i / 200))
  const first = drifted.findIndex(v => v.drift)
  // Flagged at its 56th reading, when it had gone +1.7σ (the simulator labels a drift from +1σ).
  assert.equal(first, 55)
  const at = drifted[first]!
  assert.equal(at.anomaly, true)
  assert.ok(at.anomalyScore >= 0.5)
  assert.equal(at.explanation, 'drift: +2σ from 455 ppm (CUSUM 12.3 ≥ 12)')
  assert.ok(drifted.slice(first).filter(v => v.drift).length > 100)
  // Snapped back: over at once.
  const after = feed(450)
  assert.equal(after.drift, false)
})

test('detector - accepts ready engines or none; forget, size, clear', () => {
  const rules = new RuleEngine({ defaults: { pressure: { min: 980, max: 1040, maxRatePerSec: 2 } } })
  const zscore = new ZScoreDetector({ windowSize: 50, minSamples: 10 })
  const stuck = new StuckDetector({ minReadings: 3 })
  const drift = new DriftDetector({ h: 20 })
  const a = new Detector({ rules, zscore, stuck, drift, resolution: { pressure: 0.1 } })
  assert.equal(a.rules, rules)
  assert.equal(a.zscore, zscore)
  assert.equal(a.stuck, stuck)
  assert.equal(a.drift, drift)
  const bare = new Detector({ stuck: false, drift: false, seasonal: false })
  assert.equal(bare.stuck, null)
  assert.equal(bare.drift, null)
  assert.equal(bare.seasonal, null)
  assert.equal(bare.detect(reading({ value: 21 })).stuck, false)
  const rnd = createRandom(3)
  const gen = (n: number, t0: number): Reading[] => Array.from({ length: n }, (_, i) => reading({
    sensorId: `p${i % 4}`,
    sensorType: 'pressure',
    value: 1013.25 + rnd.normal() * 0.5 + (rnd.next() < 0.05 ? 30 : 0),
    ts: t0 + Math.floor(i / 4) * 1000
  }))
  const vs = gen(400, T0).map(r => a.detect(r))
  assert.ok(vs.some(v => v.ruleAnomaly))
  assert.ok(vs.some(v => v.zAnomaly))
  assert.equal(a.size, 4)
  assert.equal(a.forget('p0'), true)
  assert.equal(a.forget('p0'), false)
  assert.equal(a.size, 3)
  assert.equal(a.detect(reading({ sensorId: 'p0', sensorType: 'pressure', value: 1013 })).zScore, null)
  a.clear()
  assert.equal(a.size, 0)
})

test('detector - a non-finite value leaves the state untouched', () => {
  const d = new Detector({ rules: { defaults: { temperature: { maxRatePerSec: 1 } } } })
  d.detect(reading({ value: 20, ts: T0 }))
  assert.deepEqual(d.detect(reading({ value: Number.NaN, ts: T0 + 1000 })), verdict({}))
  assert.equal(d.detect(reading({ value: 20.5, ts: T0 + 500 })).ruleAnomaly, false) // still after 20 @ T0
  assert.equal(d.zscore.stats('temp-1')!.count, 2)
})
