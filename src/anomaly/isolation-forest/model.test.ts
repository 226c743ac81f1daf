// The stored form of a model (IFB1): exact round trips, the wide layout, the older gzipped JSON,
// and damaged bytes failing with a typed error.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gunzipSync, gzipSync } from 'node:zlib'
import { createRandom } from '../../domain/index.ts'
import { AnomalyStateError } from '../errors.ts'
import { IsolationForest, decodeModel, encodeModel, type IsolationForestModel } from './index.ts'

function rows (n: number, d: number, seed: number): Float64Array {
  const r = createRandom(seed)
  return Float64Array.from({ length: n * d }, () => r.normal() * 3 + 20)
}

test('a fitted forest comes back from its stored form exactly: same trees, same offset, same scores', () => {
  const data = rows(1000, 7, 1)
  const forest = IsolationForest.fit(data, 7, { nEstimators: 100, maxSamples: 256, contamination: 0.02, random: createRandom(2) })
  const bytes = encodeModel(forest.toParts())
  assert.equal(gunzipSync(bytes).toString('latin1', 0, 4), 'IFB1')
  assert.equal(gunzipSync(bytes)[4], 0, 'narrow layout for 256-sample trees')
  const back = IsolationForest.fromJSON(decodeModel(bytes))
  assert.deepEqual(back.toJSON(), forest.toJSON())
  assert.ok(Object.is(back.offset, forest.offset))
  assert.deepEqual(back.scoreSamples(data), forest.scoreSamples(data))
})

test('indices, features or sample counts beyond 16 / 8 bits take the wide layout', () => {
  // A sklearn-shaped model whose leaves carry feature -300 (sklearn writes -2; any integer is allowed there).
  const json: IsolationForestModel = {
    version: 1,
    nFeatures: 2,
    maxSamples: 70_000,
    offset: -0.5,
    trees: [{ left: [1, -1, -1], right: [2, -1, -1], feature: [1, -300, -300], threshold: [0.25, -2, -2], nodeSamples: [70_000, 1, 69_999] }]
  }
  const forest = IsolationForest.fromJSON(json)
  const bytes = encodeModel(forest.toParts())
  assert.equal(gunzipSync(bytes)[4], 1, 'wide layout')
  assert.deepEqual(decodeModel(bytes), json)
})

test('models stored as gzipped JSON (before IFB1) still load', () => {
  const forest = IsolationForest.fit(rows(300, 3, 5), 3, { nEstimators: 10, contamination: 0.05, random: createRandom(6) })
  const old = gzipSync(JSON.stringify(forest.toJSON()))
  assert.deepEqual(IsolationForest.fromJSON(decodeModel(old)).toJSON(), forest.toJSON())
})

test('damaged bytes fail with AnomalyStateError, never a wrong model', () => {
  const forest = IsolationForest.fit(rows(300, 3, 7), 3, { nEstimators: 10, contamination: 0.05, random: createRandom(8) })
  const raw = gunzipSync(encodeModel(forest.toParts()))
  for (const [what, bytes] of [
    ['not gzip', Buffer.from('hello')],
    ['neither IFB1 nor JSON', gzipSync('IFB')],
    ['cut in the header', gzipSync(raw.subarray(0, 20))],
    ['cut in a tree', gzipSync(raw.subarray(0, raw.length - 9))]
  ] as const) {
    assert.throws(() => decodeModel(bytes), AnomalyStateError, what)
  }
  // Bytes that decode but describe no valid forest are refused by fromJSON's validation.
  const broken = Buffer.from(raw)
  broken.writeUInt32LE(0, 12) // maxSamples 0
  assert.throws(() => IsolationForest.fromJSON(decodeModel(gzipSync(broken))), AnomalyStateError)
})
