import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DetectionCounter, type DetectionCount } from '../domain/index.ts'
import { detectionQuality, formatQuality, scores } from './index.ts'

function cell (label: string, v: Partial<DetectionCount>, readings: number): DetectionCount {
  return { sensorType: 'temperature', label, ruleAnomaly: false, zAnomaly: false, mlState: 0, stuckAnomaly: false, driftAnomaly: false, combinedAnomaly: false, readings, ...v }
}

test('evaluation - precision, recall, F1 per detector and kind; false positives are flagged normal readings', () => {
  const q = detectionQuality([
    cell('normal', {}, 900),
    cell('normal', { zAnomaly: true, mlState: 1 }, 10),
    cell('normal', { ruleAnomaly: true }, 5),
    cell('spike', { ruleAnomaly: true, zAnomaly: true, mlState: 1, combinedAnomaly: true }, 40),
    cell('spike', { zAnomaly: true }, 10),
    cell('stuck', { stuckAnomaly: true, combinedAnomaly: true }, 20),
    cell('stuck', { mlState: -1 }, 5),
    cell('normal', { driftAnomaly: true, combinedAnomaly: true }, 3),
    cell('unlabelled', { ruleAnomaly: true }, 1000)
  ])
  assert.equal(q.labelled, 993)
  assert.equal(q.anomalies, 75)
  assert.deepEqual(q.labels, { normal: 918, spike: 50, stuck: 25 })
  // rule: spikes 40 of 50, FP 5.
  assert.deepEqual(q.detectors.rule.byKind.spike, scores(40, 5, 10))
  assert.deepEqual(q.detectors.rule.byKind.spike, { tp: 40, fp: 5, fn: 10, precision: 40 / 45, recall: 0.8, f1: 2 * (40 / 45) * 0.8 / (40 / 45 + 0.8) })
  assert.deepEqual(q.detectors.rule.byKind.stuck, { tp: 0, fp: 5, fn: 25, precision: 0, recall: 0, f1: null })
  assert.deepEqual(q.detectors.zscore.overall, scores(50, 10, 25))
  assert.deepEqual(q.detectors.ml.overall, scores(40, 10, 35)) // no model yet = not flagged
  assert.deepEqual(q.detectors.combined.byKind.spike, scores(40, 3, 10))
  // Stuck and drift are detectors of their own: stuck caught 20 of 25 with no false positive, drift 3 false positives.
  assert.deepEqual(q.detectors.stuck.byKind.stuck, scores(20, 0, 5))
  assert.deepEqual(q.detectors.stuck.overall, scores(20, 0, 55))
  assert.deepEqual(q.detectors.drift.overall, scores(0, 3, 75))
  assert.deepEqual(q.detectors.combined.byKind.stuck, scores(20, 3, 5))
  // Rule vs ML over every scored reading, unlabelled included (the 5 without a model excluded).
  assert.deepEqual(q.ruleVsMl, { scored: 1988, both: 40, ruleOnly: 1005, mlOnly: 10, neither: 933, agreement: 973 / 1988 })
  assert.deepEqual(scores(0, 0, 0), { tp: 0, fp: 0, fn: 0, precision: null, recall: null, f1: null })
})

test('evaluation - the counter groups readings by type, label and verdicts; the table prints', () => {
  const c = new DetectionCounter()
  const r = (anomaly: boolean | null, anomalyKind: string | null) => ({ sensorType: 'co2', anomaly, anomalyKind })
  const v = (ruleAnomaly: boolean, mlAnomaly: boolean | null, stuck = false) => ({ ruleAnomaly, zAnomaly: false, mlAnomaly, stuck, drift: false, anomaly: ruleAnomaly || stuck })
  c.add(r(false, null), v(false, null))
  c.add(r(false, null), v(false, null))
  c.add(r(true, 'spike'), v(true, true))
  c.add(r(true, null), v(false, false))
  c.add(r(null, null), v(false, false))
  c.add(r(true, 'stuck'), v(false, false, true))
  // A detector set without stuck and drift (the original design's) counts them as not flagged.
  c.add(r(true, 'stuck'), { ruleAnomaly: false, zAnomaly: false, mlAnomaly: false, anomaly: false })
  const no = { stuckAnomaly: false, driftAnomaly: false }
  assert.deepEqual(c.cells(), [
    { sensorType: 'co2', label: 'normal', ruleAnomaly: false, zAnomaly: false, mlState: -1, ...no, combinedAnomaly: false, readings: 2 },
    { sensorType: 'co2', label: 'spike', ruleAnomaly: true, zAnomaly: false, mlState: 1, ...no, combinedAnomaly: true, readings: 1 },
    { sensorType: 'co2', label: 'anomaly', ruleAnomaly: false, zAnomaly: false, mlState: 0, ...no, combinedAnomaly: false, readings: 1 },
    { sensorType: 'co2', label: 'unlabelled', ruleAnomaly: false, zAnomaly: false, mlState: 0, ...no, combinedAnomaly: false, readings: 1 },
    { sensorType: 'co2', label: 'stuck', ruleAnomaly: false, zAnomaly: false, mlState: 0, stuckAnomaly: true, driftAnomaly: false, combinedAnomaly: true, readings: 1 },
    { sensorType: 'co2', label: 'stuck', ruleAnomaly: false, zAnomaly: false, mlState: 0, ...no, combinedAnomaly: false, readings: 1 }
  ])
  const text = formatQuality(detectionQuality(c.cells()))
  assert.match(text, /^Detection quality over 6 labelled readings \(4 anomalous; anomaly 1, spike 1, stuck 2\)\./)
  assert.match(text, /\nrule {6} +100\.0\/25\.0\/40\.0 +-\/0\.0\/- +100\.0\/100\.0\/100\.0 +-\/0\.0\/-\n/)
  assert.match(text, /\nstuck {5} +100\.0\/25\.0\/40\.0 +-\/0\.0\/- +-\/0\.0\/- +100\.0\/50\.0\/66\.7\n/)
  assert.equal(formatQuality(detectionQuality([])), 'Detection quality: no labelled readings (ground truth comes from the simulator).')
})
