import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fitDeviceModel, inlineDeviceTrainer, symmetricEigen, type DeviceTrainingJob } from './device-model.ts'
import { T0, deviceRows } from './device-rows.fixture.ts'

test('device model - symmetricEigen: eigenpairs of symmetric matrices', () => {
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

test('device model - fitDeviceModel: a pure function of its job', () => {
  const rows = Float64Array.from(deviceRows(300, 8).flat())
  const job: DeviceTrainingJob = { key: 'd', measurements: ['a', 'b', 'c'], sequence: 3, trainedAt: T0, rows, m: 3, nEstimators: 20, maxSamples: 64, falseAlarmRate: 0.01, seed: 11 }
  const before = rows.slice()
  const a = fitDeviceModel(job)
  const b = inlineDeviceTrainer.start(job).take()
  assert.deepEqual(rows, before, 'the rows are left as they were')
  assert.deepEqual([a.key, a.version, a.sequence, a.samples, a.trainedAt, a.measurements], ['d', 'd#3', 3, 300, T0, ['a', 'b', 'c']])
  assert.deepEqual([a.center, a.scale, a.rotation, a.precision, a.threshold], [b.center, b.scale, b.rotation, b.precision, b.threshold])
  assert.deepEqual([a.older.toJSON(), a.newer.toJSON()], [b.older.toJSON(), b.newer.toJSON()])
  assert.notDeepEqual(fitDeviceModel({ ...job, seed: 12 }).older.toJSON(), a.older.toJSON())
  assert.throws(() => fitDeviceModel({ ...job, rows: rows.subarray(0, 7 * 3) }), RangeError)
  assert.throws(() => fitDeviceModel({ ...job, m: 2 }), RangeError)
  // The inline trainer hands a failed fit over when it is taken.
  assert.throws(() => inlineDeviceTrainer.start({ ...job, m: 2 }).take(), RangeError)
})
