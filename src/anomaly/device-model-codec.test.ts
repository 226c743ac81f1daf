import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DeviceForest } from './device-forest.ts'
import { decodeDeviceModel, encodeDeviceModel } from './device-model-codec.ts'
import { deviceRows, scoreRows } from './device-rows.fixture.ts'
import { SnapshotReader, SnapshotWriter } from './snapshot.ts'

test('device model codec - encodeDeviceModel / decodeDeviceModel: the decoded model scores every row exactly as the original', () => {
  const rows = deviceRows(1200, 3, i => i >= 1050 && i < 1070)
  const f = new DeviceForest('lab', ['a', 'b', 'c'])
  scoreRows(f, rows.slice(0, 700))
  const model = f.model!
  const bytes = encodeDeviceModel(model)
  const decoded = decodeDeviceModel(bytes)
  assert.equal(bytes.length > 100_000 && bytes.length < 400_000, true, `${bytes.length} bytes`)
  assert.deepEqual([decoded.key, decoded.version, decoded.sequence, decoded.trainedAt, decoded.samples, decoded.measurements, decoded.threshold],
    [model.key, model.version, model.sequence, model.trainedAt, model.samples, model.measurements, model.threshold])
  assert.deepEqual([decoded.center, decoded.scale, decoded.rotation, decoded.precision], [model.center, model.scale, model.rotation, model.precision])
  assert.deepEqual([decoded.older.toJSON(), decoded.newer.toJSON()], [model.older.toJSON(), model.newer.toJSON()])
  // The same rows scored by forests holding the original and the decoded model: every score equal.
  const original = new DeviceForest('lab', ['a', 'b', 'c'], { retrainRows: 1000 })
  const restored = new DeviceForest('lab', ['a', 'b', 'c'], { retrainRows: 1000 })
  original.restore(model, [])
  restored.restore(decoded, [])
  const a = scoreRows(original, rows.slice(700)).scores
  const b = scoreRows(restored, rows.slice(700)).scores
  assert.deepEqual(b.map(s => [s.rowScore, s.score, s.anomaly, s.contributions]), a.map(s => [s.rowScore, s.score, s.anomaly, s.contributions]))
  assert.equal(a.every(s => s.model?.version === 'lab#3'), true)
  assert.deepEqual(encodeDeviceModel(decoded), bytes)
})

test('device model codec - decodeDeviceModel: damaged bytes throw IOT_ERR_ANOMALY_STATE', () => {
  const f = new DeviceForest('d', ['a', 'b'], { firstRows: 50, installAfterRows: 0, nEstimators: 4 })
  scoreRows(f, deviceRows(51, 2).map(r => [r[0]!, r[1]!]))
  const bytes = encodeDeviceModel(f.model!)
  const damaged = (change: (b: Uint8Array) => Uint8Array, message: RegExp): void => {
    assert.throws(() => decodeDeviceModel(change(bytes.slice())), (err: Error & { code?: string }) => err.code === 'IOT_ERR_ANOMALY_STATE' && message.test(err.message))
  }
  // A byte flipped anywhere: the magic, the version, the kind byte, the body, the checksum.
  damaged(b => { b[0] = (b[0] as number) ^ 0x10; return b }, /^deviceModel: not a detector snapshot \(no IOTS magic\)$/)
  damaged(b => { b[4] = (b[4] as number) ^ 0x10; return b }, /^deviceModel: snapshot format version 17, this build reads 1$/)
  damaged(b => { b[5] = (b[5] as number) ^ 0x10; return b }, /^deviceModel: a snapshot of kind unknown \(26\), not deviceModel$/)
  for (const at of [20, 40, 200, bytes.length - 100, bytes.length - 1]) {
    damaged(b => { b[at] = (b[at] as number) ^ 0x10; return b }, /^deviceModel: checksum mismatch: the snapshot is damaged$/)
  }
  // Truncated, empty, another format, another kind of snapshot.
  damaged(b => b.subarray(0, b.length - 1), /damaged/)
  damaged(b => b.subarray(0, 6), /^deviceModel: 6 bytes: too short for a snapshot$/)
  damaged(() => new Uint8Array(0), /^deviceModel: 0 bytes: too short for a snapshot$/)
  damaged(b => { b.set([73, 68, 77, 49]); return b }, /no IOTS magic/)
  damaged(() => new SnapshotWriter('zscore').finish(), /^deviceModel: a snapshot of kind zscore, not deviceModel$/)
  // Intact bytes with more after the model.
  const body = new SnapshotReader(bytes, 'deviceModel')
  const longer = new SnapshotWriter('deviceModel')
  while (!body.atEnd) longer.u8(body.u8('body'))
  longer.u8(0)
  damaged(() => longer.finish(), /^deviceModel: 1 bytes left unread$/)
  // Intact bytes of values no model has are refused too.
  const model = f.model!
  const refused = (changed: typeof model, message: string): void => {
    assert.throws(() => decodeDeviceModel(encodeDeviceModel(changed)), { code: 'IOT_ERR_ANOMALY_STATE', message })
  }
  refused({ ...model, threshold: NaN }, 'deviceModel.threshold: expected a number in (0, 1), got NaN')
  refused({ ...model, threshold: 1 }, 'deviceModel.threshold: expected a number in (0, 1), got 1')
  refused({ ...model, trainedAt: Infinity }, 'deviceModel.trainedAt: expected a finite number, got Infinity')
  refused({ ...model, scale: new Float64Array([1, 0]) }, 'deviceModel.scale: expected numbers > 0, got 0')
  refused({ ...model, rotation: new Float64Array([1, 0, NaN, 1]) }, 'deviceModel.rotation: expected finite numbers, got NaN')
  refused({ ...model, axisVariance: new Float64Array([1, 0]) }, 'deviceModel.axisVariance: expected numbers > 0, got 0')
  refused({ ...model, distanceThreshold: 0 }, 'deviceModel.distanceThreshold: expected a number > 0, got 0')
  refused({ ...model, sequence: 0 }, 'deviceModel.sequence: expected 1 or more')
  refused({ ...model, samples: 7 }, 'deviceModel.samples: expected 8 or more, got 7')
  refused({ ...model, measurements: ['a'], center: new Float64Array(1), scale: new Float64Array([1]), rotation: new Float64Array([1]), precision: new Float64Array([1]), axisVariance: new Float64Array([1]) },
    'deviceModel.m: expected 2 to 4096 measurements, got 1')
  const three = { center: new Float64Array(3), scale: new Float64Array([1, 1, 1]), rotation: new Float64Array(9), precision: new Float64Array(9), axisVariance: new Float64Array([1, 1, 1]) }
  refused({ ...model, ...three, measurements: ['a', 'b', 'c'] }, 'deviceModel.older: a forest of 2 features for 3 measurements')
  // A model of 3 measurements with arrays of 2: read out of step, refused somewhere.
  assert.throws(() => decodeDeviceModel(encodeDeviceModel({ ...model, measurements: ['a', 'b', 'c'] })), { code: 'IOT_ERR_ANOMALY_STATE' })
  assert.equal(decodeDeviceModel(bytes).version, 'd#1')
})
