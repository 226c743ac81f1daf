import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom, type Reading, type Verdict } from '../domain/index.ts'
import { CORROBORATED_Z, Detector, ForestScorer, MAJOR_Z, THRESHOLD, anomalyScore, ratioScore, scoreOf, severityOf, storedScore, type ScoreInputs } from './index.ts'
import { Simulator } from '../sources/index.ts'

const none: ScoreInputs = { rule: false, z: null, mlAnomaly: null, mlRatio: 0, stuck: false, stuckRatio: 0, drift: false, driftRatio: 0 }

test('score - r² / (1 + r²) of the evidence over its decision threshold: 0.5 at the threshold', () => {
  assert.equal(THRESHOLD, 0.5)
  assert.equal(ratioScore(1), 0.5)
  assert.equal(ratioScore(0.5), 0.2)
  assert.equal(ratioScore(2), 0.8)
  assert.equal(ratioScore(0), 0)
  assert.equal(ratioScore(-1), 0)
  assert.equal(ratioScore(Number.NaN), 0)
  assert.equal(ratioScore(Infinity), 1)
})

test('score - one scale for every detector', () => {
  assert.equal(scoreOf(none), 0)
  assert.equal(scoreOf({ ...none, rule: true }), 1)
  // The z-score alone decides at |z| = 6, with the forest agreeing at 5.
  assert.equal(MAJOR_Z, 6)
  assert.equal(CORROBORATED_Z, 5)
  assert.equal(scoreOf({ ...none, z: -6 }), 0.5)
  assert.equal(scoreOf({ ...none, z: 3 }), 0.2)
  assert.equal(scoreOf({ ...none, z: 12 }), 0.8)
  assert.equal(scoreOf({ ...none, z: 5, mlAnomaly: true, mlRatio: 1.1 }), 0.5)
  assert.ok(scoreOf({ ...none, z: 5, mlAnomaly: false }) < 0.5)
  // Stuck and drift: at least 0.5 once they decided, below it before.
  assert.equal(scoreOf({ ...none, stuck: true, stuckRatio: 1 }), 0.5)
  assert.equal(scoreOf({ ...none, stuck: true, stuckRatio: 2 }), 0.8)
  assert.ok(scoreOf({ ...none, stuck: false, stuckRatio: 3 }) < 0.5)
  assert.equal(scoreOf({ ...none, stuck: false, stuckRatio: 0.5 }), 0.2)
  assert.equal(scoreOf({ ...none, drift: true, driftRatio: 0.9 }), 0.5)
  assert.ok(scoreOf({ ...none, drift: false, driftRatio: 1.2 }) < 0.5)
  // The forest alone counts half: never past the threshold (it flags its 5 % of normal rows by construction).
  assert.equal(scoreOf({ ...none, mlAnomaly: true, mlRatio: 1 }), 0.25)
  assert.ok(scoreOf({ ...none, mlAnomaly: true, mlRatio: 1e6 }) < 0.5)
  // The highest wins.
  assert.equal(scoreOf({ ...none, z: 3, stuck: true, stuckRatio: 2 }), 0.8)
})

test('score - severity: rule critical, past the threshold major, surprised minor', () => {
  assert.equal(severityOf(true, 1, false), 'critical')
  assert.equal(severityOf(false, 0.5, false), 'major')
  assert.equal(severityOf(false, 0.49, true), 'minor')
  assert.equal(severityOf(false, 0.3, false), null)
})

test('score - a verdict carries its score; a stored one gets it from what was stored', () => {
  const v = { anomalyScore: 0.37 } as Verdict
  assert.equal(anomalyScore(v), 0.37)
  assert.equal(storedScore({ ruleAnomaly: false, zScore: 6, mlAnomaly: null, stuck: false, drift: false }), 0.5)
  assert.equal(storedScore({ ruleAnomaly: false, zScore: 0.1, mlAnomaly: false, stuck: true, drift: false }), 0.5)
  assert.equal(storedScore({ ruleAnomaly: true, zScore: null, mlAnomaly: null, stuck: false, drift: false }), 1)
})

test('score - calibration: on anomaly-free noise at most 1 % of readings score 0.5 or more', () => {
  const d = new Detector({ rules: { defaults: {} }, ml: new ForestScorer({ scope: 'sensor', nEstimators: 30 }) })
  const rnd = createRandom(21)
  const t0 = Date.UTC(2026, 0, 1)
  const readings: Reading[] = Array.from({ length: 50_000 }, (_, i) => ({
    sensorId: 'n', sensorType: 'noise', location: 'x', value: 100 + 5 * rnd.normal(), ts: t0 + i * 1000, unit: '', anomaly: false, anomalyKind: null, seq: null
  }))
  let past = 0
  for (let i = 0; i < readings.length; i += 1000) {
    for (const v of d.detectMany(readings.slice(i, i + 1000))) if (v.anomalyScore >= THRESHOLD) past++
  }
  assert.equal(past, 1) // one reading in 50,000 (0.002 %)
})

test('score - the combined verdict is exactly anomalyScore >= 0.5 (simulator, every detector on)', () => {
  const sim = new Simulator({ sensors: 25, seed: 4, startTs: Date.UTC(2026, 0, 1) })
  const d = new Detector({ ml: new ForestScorer({ nEstimators: 30 }) })
  const verdicts = d.detectMany(Array.from({ length: 25 * 1200 }, () => sim.next()))
  for (const v of verdicts) {
    assert.equal(v.anomaly, v.anomalyScore >= THRESHOLD)
    assert.ok(v.anomalyScore >= 0 && v.anomalyScore <= 1)
    assert.equal(v.severity === 'major' || v.severity === 'critical', v.anomaly)
  }
  assert.ok(verdicts.some(v => v.stuck) && verdicts.some(v => v.severity === 'minor'))
})
