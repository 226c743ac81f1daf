import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FEATURES, FeatureExtractor, ROLLING_READINGS, featureNames, standardize } from './features.ts'
import { SnapshotWriter } from './snapshot.ts'

const T = Date.UTC(2026, 0, 1, 6, 59, 59) // 06:59:59 UTC: hour 6

test('features - the original seven, per sensor, rolling over the last 10 readings including this one', () => {
  assert.deepEqual(featureNames, ['value', 'hour_sin', 'hour_cos', 'rate_of_change', 'rolling_mean', 'rolling_std', 'rolling_range'])
  assert.equal(FEATURES, 7)
  assert.equal(ROLLING_READINGS, 10)
  const f = new FeatureExtractor()
  const out = new Float64Array(7)
  f.extract('a', 10, T, out)
  // Hour 6 of 24: a quarter turn.
  assert.deepEqual([...out], [10, 1, Math.cos(Math.PI / 2), 0, 10, 0, 0])
  f.extract('b', 99, T, out) // another sensor: its own history
  f.extract('a', 14, T + 2000, out) // 07:00:01: hour 7
  assert.equal(out[0], 14)
  assert.equal(out[1], Math.sin(2 * Math.PI * 7 / 24))
  assert.equal(out[2], Math.cos(2 * Math.PI * 7 / 24))
  assert.equal(out[3], 2) // +4 in 2 s
  assert.equal(out[4], 12)
  assert.equal(out[5], 2)
  assert.equal(out[6], 4)
  // After 12 more readings, only the last 10 count: values 3..12.
  for (let i = 1; i <= 12; i++) f.extract('a', i, T + 2000 + i * 1000, out)
  assert.equal(out[4], 7.5)
  assert.equal(out[5], Math.sqrt(8.25))
  assert.equal(out[6], 9)
  assert.equal(out[3], 1)
  assert.equal(f.size, 2)
})

test('features - rate is 0 for a reading not after the previous one; an older reading does not become the previous', () => {
  const f = new FeatureExtractor()
  const out = new Float32Array(14)
  f.extract('a', 1, T, out)
  f.extract('a', 5, T, out, 7)
  assert.equal(out[7 + 3], 0)
  f.extract('a', 9, T - 1000, out)
  assert.equal(out[3], 0)
  f.extract('a', 6, T + 1000, out) // against 5 at T (the older 9 did not replace it)
  assert.equal(out[3], 1)
  assert.equal(f.forget('a'), true)
  f.clear()
  assert.equal(f.size, 0)
})

test('features - standardize: on the sensor baseline scale; hours unchanged; a flat baseline is floored', () => {
  const out = new Float64Array(7)
  standardize([25, 0.5, -0.5, 4, 23, 1, 3], 21, 2, out)
  assert.deepEqual([...out], [2, 0.5, -0.5, 2, 1, 0.5, 1.5])
  standardize([1013.5, 0, 1, 0, 1013, 0, 0], 1013, 0, out)
  // floor 1e-4 * 1013 = 0.1013
  assert.ok(Math.abs(out[0]! - 0.5 / 0.1013) < 1e-9)
  standardize([0.5, 0, 1, 0, 0, 0, 0], 0, 0, out)
  assert.ok(Math.abs(out[0]! - 5000) < 1e-9) // floor 1e-4
})

test('features - snapshot: the rolling values in place and the previous reading come back; the features go on the same', () => {
  for (const cut of [4, 13]) { // a history filling, a full one
    const f = new FeatureExtractor()
    const value = (i: number): number => 20 + Math.sin(i) * 3 + (i === 6 ? 40 : 0)
    const out = new Float64Array(FEATURES)
    for (let i = 0; i < cut; i++) f.extract('s', value(i), T + i * 1000, out)
    assert.equal(f.lastTs('s'), T + (cut - 1) * 1000)
    const bytes = f.snapshot('s') as Uint8Array
    assert.equal(bytes.length, 6 + 3 + 8 * Math.min(cut, ROLLING_READINGS) + 16 + 4)
    const g = new FeatureExtractor()
    g.restore('s', bytes)
    const want = new Float64Array(FEATURES)
    for (let i = cut; i < cut + 15; i++) {
      f.extract('s', value(i), T + i * 1000, want)
      g.extract('s', value(i), T + i * 1000, out)
      assert.deepEqual(out, want)
    }
    assert.deepEqual(g.snapshot('s'), f.snapshot('s'))
  }
  assert.equal(new FeatureExtractor().snapshot('s'), null)
  // A history of 4 written up to position 2: refused.
  const w = new SnapshotWriter('features')
  w.uint(ROLLING_READINGS)
  w.uint(4)
  w.uint(2)
  const g = new FeatureExtractor()
  assert.throws(() => { g.restore('s', w.finish()) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'features.head: a history of 4 readings is written up to 4, not 2' })
  assert.equal(g.size, 0)
})
