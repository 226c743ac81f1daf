import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom, type Reading, type Verdict } from '../domain/index.ts'
import {
  AnomalyStateError,
  Detector,
  RuleEngine,
  ZScoreDetector,
  type DetectorSnapshot,
  type MlScore,
  type MlScorer
} from './index.ts'

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
  return { ruleAnomaly: false, zScore: null, zAnomaly: false, mlScore: null, mlAnomaly: null, modelVersion: null, ...over }
}

test('detector - combines rules and z-score per reading', () => {
  const d = new Detector({
    rules: { defaults: { temperature: { min: 15, max: 35, maxRatePerSec: 1 } } },
    zscore: { windowSize: 10, minSamples: 4 }
  })
  const at = (i: number, value: number) => d.detect(reading({ value, ts: T0 + i * 1000 }))
  // Warm-up: [20, 22, 20, 22] mean 21, std 1.
  assert.deepEqual(at(0, 20), verdict({}))
  assert.deepEqual(at(1, 22), verdict({ ruleAnomaly: true })) // +2 in 1 s > 1 /s
  assert.deepEqual(at(3, 20), verdict({})) // -2 in 2 s = 1 /s
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
  assert.deepEqual(hot.detect(reading({ value: 37 })), verdict({ ruleAnomaly: true, zScore: 0 }))
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

test('detector - ML seam: scorer called per reading, its verdict and model version carried', () => {
  const calls: Reading[] = []
  const ml: MlScorer = {
    score (r: Reading): MlScore | null {
      calls.push(r)
      return calls.length < 3 ? null : { score: 0.25 * calls.length, anomaly: calls.length === 4, modelVersion: 'iforest-temperature-1' }
    }
  }
  const d = new Detector({ ml })
  const rs = [1, 2, 3, 4].map(i => reading({ value: 20 + i, ts: T0 + i }))
  const vs = rs.map(r => d.detect(r))
  assert.deepEqual(calls, rs)
  assert.deepEqual(vs.map(v => [v.mlScore, v.mlAnomaly, v.modelVersion]), [
    [null, null, null],
    [null, null, null],
    [0.75, false, 'iforest-temperature-1'],
    [1, true, 'iforest-temperature-1']
  ])
  assert.equal(new Detector().ml, null)
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
