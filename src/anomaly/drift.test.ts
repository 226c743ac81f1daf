import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom } from '../domain/index.ts'
import { AnomalyConfigError, DriftDetector } from './index.ts'

const T0 = Date.UTC(2026, 0, 1)

/** Indexes of the readings flagged as drifting (one every `stepMs`; a tiny resolution, as full-precision data has). */
function drifting (values: number[], stepMs = 1000, seasoned = true, d = new DriftDetector()): number[] {
  const out: number[] = []
  values.forEach((v, i) => { if (d.update('s', v, T0 + i * stepMs, false, false, seasoned, 1e-9)) out.push(i) })
  return out
}

/** 3000 readings of N(10, 1) noise (seed 7); from reading 1500 on, plus `shape(i - 1500)`. */
function series (shape: (k: number) => number): number[] {
  const rnd = createRandom(7)
  return Array.from({ length: 3000 }, (_, i) => 10 + rnd.normal() + (i < 1500 ? 0 : shape(i - 1500)))
}

test('drift - a ramp is caught within a few dozen readings of its start, and the slower the later', () => {
  // 0.05 σ a reading (the simulator's fastest drift): flagged 33 readings in, at +1.65σ.
  const fast = drifting(series(k => 0.05 * k))
  assert.equal(fast[0], 1533)
  // Flagged until it has lasted twice the reference's time constant (300 readings here): then it is the level.
  assert.equal(fast.length, 361)
  // 0.02 σ a reading (its slowest): 88 readings in, at +1.76σ.
  assert.equal(drifting(series(k => 0.02 * k))[0], 1588)
  // Downwards too.
  assert.equal(drifting(series(k => -0.05 * k))[0] !== undefined, true)
})

test('drift - stationary noise, a random walk with noise and a pure random walk raise (almost) no alarm', () => {
  const rnd = createRandom(8)
  assert.deepEqual(drifting(Array.from({ length: 200_000 }, () => 5 + 2 * rnd.normal())), [])
  const w = createRandom(10)
  let level = 0
  assert.deepEqual(drifting(Array.from({ length: 100_000 }, () => { level += 0.05 * w.normal(); return level })), [])
  // Noise plus a walk of 0.05 σ a step (the simulator's temperature wanders like this).
  const n = createRandom(9)
  let wl = 0
  assert.deepEqual(drifting(Array.from({ length: 100_000 }, () => { wl += 0.05 * n.normal(); return wl + n.normal() })), [])
})

test('drift - a sensor that snaps back ends the drift at once, and the reference is where the drift began', () => {
  const d = new DriftDetector()
  // +6σ over 100 readings, then back to normal at 1600.
  const got = drifting(series(k => k < 100 ? 0.06 * k : 0), 1000, true, d)
  assert.equal(got[0], 1528)
  assert.equal(got.at(-1), 1599)
  assert.equal(got.length, 72)
  assert.ok(Math.abs(d.inspect('s')!.reference - 10) < 0.3, `reference ${d.inspect('s')!.reference}`)
})

test('drift - a step (a level shift) is not a drift: the reference restarts at the new level', () => {
  // +5σ at once: the CUSUM is past h in three readings, the step test (20 against 20 readings) ends it.
  assert.deepEqual(drifting(series(() => 5)), [1502, 1503, 1504])
  const d = new DriftDetector()
  drifting(series(() => 5), 1000, true, d)
  assert.ok(Math.abs(d.inspect('s')!.reference - 15) < 0.3)
})

test('drift - at a slow cadence the test waits until the daily pattern is known', () => {
  const ramp = series(k => 0.05 * k)
  // One reading every 5 min: the reference spans hours, a daily cycle would look like drift.
  assert.deepEqual(drifting(ramp, 300_000, false), [])
  assert.equal(drifting(ramp, 300_000, true)[0], 1533)
  // At 1 s the reference spans minutes: no need to wait.
  assert.equal(drifting(ramp, 1000, false)[0], 1533)
})

test('drift - readings another detector flagged are skipped; spikes too unless a drift is flagged', () => {
  const d = new DriftDetector()
  const values = series(k => 0.05 * k)
  const out: number[] = []
  values.forEach((v, i) => {
    // Every 10th reading is a spike of +30: flagged by the z-score, skipped.
    const spike = i % 10 === 5
    if (d.update('s', spike ? v + 30 : v, T0 + i * 1000, false, spike, true, 1e-9)) out.push(i)
  })
  assert.equal(out[0], 1532) // a reading earlier than without spikes: the skipped ones shift the reference's average
  // During the drift a spike is skipped too (30σ from where the drift has gone) and the flag stands.
  assert.ok(out.includes(1545) && out.length === 366)
  const skipAll = new DriftDetector()
  values.forEach((v, i) => skipAll.update('s', v, T0 + i * 1000, true, false, true, 1e-9))
  assert.equal(skipAll.inspect('s')!.readings, 0)
  assert.equal(skipAll.inspect('x'), null)
})

test('drift - options, forget and clear', () => {
  const d = new DriftDetector()
  assert.equal(d.k, 0.75)
  assert.equal(d.h, 12)
  assert.equal(d.referenceReadings, 300)
  d.update('a', 1, T0, false, false, true, Infinity)
  assert.equal(d.size, 1)
  assert.equal(d.forget('a'), true)
  assert.equal(d.forget('a'), false)
  d.update('a', Number.NaN, T0, false, false, true, Infinity)
  d.clear()
  assert.equal(d.size, 0)
  for (const bad of [{ k: 0 }, { h: -1 }, { warmup: 1.5 }, { referenceReadings: 5, minReferenceReadings: 10 }, { walkZ: Number.NaN }]) {
    assert.throws(() => new DriftDetector(bad), AnomalyConfigError, JSON.stringify(bad))
  }
})

test('drift - snapshot: the reference, scale, variogram, statistics and both rings come back; a drift restored mid-way goes on the same', () => {
  const values = series(k => 0.05 * k)
  const d = new DriftDetector()
  const cut = 1540 // the drift was flagged at 1533
  for (let i = 0; i < cut; i++) d.update('s', values[i] as number, T0 + i * 1000, false, false, true, 1e-9)
  assert.equal(d.inspect('s')?.direction, 1)
  assert.equal(d.snapshot('unknown'), null)
  const bytes = d.snapshot('s') as Uint8Array
  // Header 6; ring sizes 2; 11 counters 15 (varints: four of them above 127 take 2); direction 1; 19 Float64 152; rings 40 + 100 Float64 1120; checksum 4.
  assert.equal(bytes.length, 6 + 2 + 15 + 1 + 152 + 1120 + 4)
  const e = new DriftDetector()
  e.restore('s', bytes)
  assert.deepEqual(e.inspect('s'), d.inspect('s'))
  for (let i = cut; i < values.length; i++) {
    const args = [values[i] as number, T0 + i * 1000, false, i % 97 === 0, true, 1e-9] as const
    assert.equal(e.update('s', ...args), d.update('s', ...args))
    assert.deepEqual([e.lastStatistic, e.lastResidual, e.lastReference], [d.lastStatistic, d.lastResidual, d.lastReference])
  }
  assert.deepEqual(e.snapshot('s'), d.snapshot('s'))
  assert.throws(() => { e.restore('s', bytes.subarray(0, 100)) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'drift: checksum mismatch: the snapshot is damaged' })
  assert.equal(e.inspect('s'), null)
})
