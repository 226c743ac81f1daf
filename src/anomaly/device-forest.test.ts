import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom } from '../domain/index.ts'
import { DeviceForest, defaultDeviceForestOptions, symmetricEigen } from './device-forest.ts'

const T0 = Date.UTC(2026, 2, 1)

/**
 * A device of three correlated measurements at 1 Hz: a (a slow cycle with noise), b = 2a, c = a/2,
 * each with noise of its own. `breakB(i)`: b takes the opposite sign at row i, staying within its
 * usual range (only its relation to a and c is broken).
 */
function device (rows: number, seed: number, breakB: (i: number) => boolean = () => false): number[][] {
  const rnd = createRandom(seed)
  const out: number[][] = []
  for (let i = 0; i < rows; i++) {
    const a = Math.sin(2 * Math.PI * i / 200) + 0.1 * rnd.normal()
    const b = 2 * a + 0.1 * rnd.normal()
    const c = 0.5 * a + 0.05 * rnd.normal()
    out.push([a, breakB(i) ? -b : b, c])
  }
  return out
}

function run (f: DeviceForest, rows: number[][]): { alarms: number[], passed: number, scores: Array<ReturnType<DeviceForest['score']>> } {
  const alarms: number[] = []
  const scores: Array<ReturnType<DeviceForest['score']>> = []
  let passed = 0
  rows.forEach((r, i) => {
    const s = f.score(r, T0 + i * 1000)
    scores.push(s)
    if (s.anomaly) alarms.push(i)
    if (s.rowScore !== null && s.rowScore >= 0.5) passed++
  })
  return { alarms, passed, scores }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k)

test('device forest - a measurement that breaks its correlation is flagged, and named', () => {
  // Rows 1050-1069: b flips sign where |a| is near 1 (b -2 where a and c say +2): within b's range.
  const f = new DeviceForest('lab', ['a', 'b', 'c'])
  const { alarms, scores } = run(f, device(1200, 3, i => i >= 1050 && i < 1070))
  // The device score is the median of the last 9 row scores: the alarm starts at the 5th broken
  // row and ends 4 rows after the last one; no other row of the 1200 alarms.
  assert.deepEqual(alarms, range(1054, 1074))
  const at = scores[1054]!
  assert.equal(at.model?.version, 'lab#7')
  assert.ok(at.score !== null && at.score >= 0.5)
  assert.equal(at.score!.toFixed(4), '0.6448')
  assert.deepEqual(at.contributions.map(c => [c.measurement, c.share.toFixed(3), c.z.toFixed(2), c.expected.toFixed(2)]), [['b', '0.959', '-0.79', '0.81']])
  // Before the break: scored, below the threshold, nobody to blame.
  assert.equal(scores[1049]!.anomaly, false)
  assert.deepEqual(scores[1049]!.contributions, [])
  // No model before 400 rows; then a new one every 100 rows (RetrainPolicy, 60 s of event time apart).
  assert.equal(scores[399]!.model, null)
  assert.equal(scores[399]!.score, null)
  assert.equal(scores[400]!.model?.version, 'lab#1')
  assert.equal(scores[500]!.model?.version, 'lab#2')
  assert.equal(f.modelsTrained, 8)
})

test('device forest - the same device without a break: no alarm; about 1 % of rows past the threshold on their own', () => {
  const f = new DeviceForest('ok', ['a', 'b', 'c'])
  const { alarms, passed } = run(f, device(5000, 4))
  assert.deepEqual(alarms, [])
  // 4600 rows scored; the threshold is the 99th percentile of out-of-fold scores: 36 rows pass it alone (0.78 %).
  assert.equal(passed, 36)
  assert.equal(f.modelsTrained, 24)
})

test('device forest - alarmed rows stay out of training until they are most of the window', () => {
  // b shifts by +3 for good at row 600 (b's usual range is about ±2.2).
  const f = new DeviceForest('lab', ['a', 'b', 'c'], { trainingSize: 1000 })
  const rows = device(1600, 5).map((r, i) => i >= 600 ? [r[0]!, r[1]! + 3, r[2]!] : r)
  const { alarms, scores } = run(f, rows)
  // Alarmed from the 5th shifted row until the alarmed rows outnumber the others in the 1000-row
  // window (row 1104): then the next model learns the window as it is, and the alarm ends.
  assert.deepEqual(alarms, range(604, 1105))
  assert.equal(scores[1104]!.model?.version, 'lab#3')
  assert.equal(scores[1105]!.model?.version, 'lab#4')
  assert.equal(f.rows, 1000)
  assert.equal(f.alarmedRows, 0)
})

test('device forest - deterministic for the same rows and seed; the seed matters', () => {
  const rows = device(700, 6)
  const a = run(new DeviceForest('d', ['a', 'b', 'c']), rows).scores.map(s => s.rowScore)
  const b = run(new DeviceForest('d', ['a', 'b', 'c']), rows).scores.map(s => s.rowScore)
  const c = run(new DeviceForest('d', ['a', 'b', 'c'], { seed: 7 }), rows).scores.map(s => s.rowScore)
  assert.deepEqual(a, b)
  assert.notDeepEqual(a, c)
})

test('device forest - options and rows are checked', () => {
  assert.throws(() => new DeviceForest('d', ['a']), { code: 'IOT_ERR_ANOMALY_CONFIG', message: 'device.measurements: a device-level model needs at least 2 measurements, got 1' })
  assert.throws(() => new DeviceForest('d', ['a', 'b'], { alarmRows: 10 }), { code: 'IOT_ERR_ANOMALY_CONFIG', message: 'device.alarmRows: must be <= alarmWindow (9), got 10' })
  assert.throws(() => new DeviceForest('d', ['a', 'b'], { firstRows: 5000 }), { code: 'IOT_ERR_ANOMALY_CONFIG' })
  assert.throws(() => new DeviceForest('d', ['a', 'b'], { falseAlarmRate: 0 }), { code: 'IOT_ERR_ANOMALY_CONFIG' })
  const f = new DeviceForest('d', ['a', 'b'])
  assert.throws(() => f.score([1], T0), RangeError)
  assert.throws(() => f.score([1, NaN], T0), /b is not a finite number/)
  assert.equal(defaultDeviceForestOptions.firstRows, 400)
})

test('device forest - symmetricEigen: eigenpairs of symmetric matrices', () => {
  const two = symmetricEigen([2, 1, 1, 2], 2)
  assert.deepEqual(Array.from(two.values).map(v => Number(v.toFixed(12))).sort(), [1, 3])
  const m = [4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 1]
  const { values, vectors } = symmetricEigen(m, 3)
  for (let k = 0; k < 3; k++) {
    for (let i = 0; i < 3; i++) {
      let av = 0
      for (let j = 0; j < 3; j++) av += m[i * 3 + j]! * vectors[j * 3 + k]!
      assert.ok(Math.abs(av - values[k]! * vectors[i * 3 + k]!) < 1e-12)
    }
  }
  assert.ok(Math.abs(values[0]! + values[1]! + values[2]! - 8) < 1e-12)
})
