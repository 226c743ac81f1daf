import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AnomalyConfigError, ResolutionEstimator } from './index.ts'
import { SnapshotWriter } from './snapshot.ts'

test('resolution - the smallest non-zero step between consecutive readings, before each reading', () => {
  const r = new ResolutionEstimator()
  assert.equal(r.observe('t', 'temperature', 22.0), Infinity) // nothing known yet
  assert.equal(r.observe('t', 'temperature', 22.0), Infinity) // no change: still unknown
  assert.equal(r.observe('t', 'temperature', 22.5), Infinity) // the step 0.5 is learnt after this reading
  assert.equal(r.observe('t', 'temperature', 22.3), 0.5)
  assert.ok(Math.abs(r.observe('t', 'temperature', 22.4) - 0.2) < 1e-12)
  assert.ok(Math.abs(r.learnt('t')! - 0.1) < 1e-12)
  // Round-off (a step below 1e-9 of the value) is not a step of the sensor.
  r.observe('t', 'temperature', 22.4 + 1e-12)
  assert.ok(Math.abs(r.learnt('t')! - 0.1) < 1e-12)
  assert.equal(r.learnt('other'), undefined)
  assert.equal(r.size, 1)
})

test('resolution - a declared resolution per type counts when it is the larger', () => {
  const r = new ResolutionEstimator({ temperature: 0.1 })
  assert.equal(r.observe('a', 'temperature', 20), 0.1) // unknown learnt: the declared one
  r.observe('a', 'temperature', 20.01)
  assert.equal(r.observe('a', 'temperature', 20.02), 0.1) // learnt 0.01 < declared
  assert.equal(r.observe('b', 'humidity', 50), Infinity) // nothing declared for humidity
  const coarse = new ResolutionEstimator({ temperature: 0.1 })
  coarse.observe('c', 'temperature', 20)
  coarse.observe('c', 'temperature', 20.5)
  assert.equal(coarse.observe('c', 'temperature', 20.5), 0.5) // learnt 0.5 > declared
  assert.equal(coarse.forget('c'), true)
  coarse.clear()
  assert.equal(coarse.size, 0)
  assert.throws(() => new ResolutionEstimator({ temperature: 0 }), AnomalyConfigError)
  assert.throws(() => new ResolutionEstimator({ temperature: Number.NaN }), AnomalyConfigError)
})

test('resolution - snapshot: the learnt step and the last value come back exactly; a step of 0 is damage', () => {
  const r = new ResolutionEstimator()
  for (const v of [20, 20.1, 20.3]) r.observe('s', 'temperature', v)
  assert.equal(r.snapshot('unknown'), null)
  const bytes = r.snapshot('s') as Uint8Array
  assert.equal(bytes.length, 6 + 16 + 4) // header, two Float64, checksum
  const y = new ResolutionEstimator()
  y.restore('s', bytes)
  assert.equal(y.learnt('s'), 20.1 - 20)
  assert.equal(y.observe('s', 'temperature', 20.35), r.observe('s', 'temperature', 20.35))
  assert.deepEqual(y.snapshot('s'), r.snapshot('s'))
  const zero = new SnapshotWriter('resolution')
  zero.f64(20)
  zero.f64(0)
  assert.throws(() => { y.restore('s', zero.finish()) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'resolution.step: the smallest step is > 0 or Infinity, got 0' })
  assert.equal(y.learnt('s'), undefined)
})
