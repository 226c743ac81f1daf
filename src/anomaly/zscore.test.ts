import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom } from '../domain/index.ts'
import { AnomalyConfigError, AnomalyStateError, ZScoreDetector, type ZScoreSnapshot } from './index.ts'

function close (actual: number | null | undefined, expected: number, tol = 1e-12, msg?: string): void {
  assert.equal(typeof actual, 'number', msg)
  const a = actual as number
  assert.ok(Math.abs(a - expected) <= tol * Math.max(1, Math.abs(expected)), `${msg ?? ''} expected ${expected}, got ${a}`)
}

/** Two-pass mean and population std. */
function twoPass (values: number[]): { mean: number, std: number } {
  let s = 0
  for (const v of values) s += v
  const mean = s / values.length
  let q = 0
  for (const v of values) q += (v - mean) * (v - mean)
  return { mean, std: Math.sqrt(q / values.length) }
}

/** 30 values alternating 10, 12: mean 11, population std exactly 1. */
function warmAlternating (d: ZScoreDetector, id = 's'): void {
  for (let i = 0; i < 30; i++) assert.equal(d.update(id, i % 2 === 0 ? 10 : 12), null)
}

test('zscore - defaults', () => {
  const d = new ZScoreDetector()
  assert.equal(d.windowSize, 100)
  assert.equal(d.minSamples, 30)
  assert.equal(d.threshold, 3)
  assert.equal(d.maxConsecutiveRejections, 10)
  assert.equal(d.size, 0)
})

test('zscore - hand-computed series', () => {
  const d = new ZScoreDetector({ windowSize: 5, minSamples: 5 })
  // Warm-up: no z until 5 values are in the baseline.
  for (const v of [10, 12, 11, 9, 13]) assert.deepEqual(d.score('t', v), { z: null, anomaly: false })
  // Baseline [10,12,11,9,13]: mean 11, deviations -1,1,0,-2,2, variance 10/5 = 2.
  assert.deepEqual(d.stats('t'), { count: 5, mean: 11, std: Math.sqrt(2), pending: 0 })
  assert.deepEqual(d.score('t', 14), { z: 3 / Math.sqrt(2), anomaly: false }) // 2.1213203435596424
  // 14 accepted, 10 evicted: [12,11,9,13,14], mean 11.8, variance (0.04+0.64+7.84+1.44+4.84)/5 = 2.96.
  const s = d.stats('t')!
  close(s.mean, 11.8)
  close(s.std, Math.sqrt(2.96))
  // 6: z = -5.8 / sqrt(2.96) = -3.3711...: anomaly, held back.
  const r = d.score('t', 6)
  close(r.z, -5.8 / Math.sqrt(2.96))
  close(r.z, -3.3711815235707, 1e-12)
  assert.equal(r.anomaly, true)
  assert.deepEqual({ ...d.stats('t'), mean: 0, std: 0 }, { count: 5, mean: 0, std: 0, pending: 1 })
  close(d.stats('t')!.mean, 11.8)
  // 11.8 scores exactly against the unchanged baseline: z ~ 0.
  close(d.score('t', 11.8).z, 0)
  // 11.8 was accepted after scoring and evicted 12: 17 is scored against [11, 9, 13, 14, 11.8].
  const b = twoPass([11, 9, 13, 14, 11.8])
  close(d.score('t', 17).z, (17 - b.mean) / b.std)
})

test('zscore - exact values with the default window: spike excluded from the baseline', () => {
  const d = new ZScoreDetector()
  warmAlternating(d)
  assert.deepEqual(d.stats('s'), { count: 30, mean: 11, std: 1, pending: 0 })
  assert.deepEqual(d.score('s', 100), { z: 89, anomaly: true })
  assert.deepEqual(d.score('s', 8), { z: -3, anomaly: false }) // |z| = 3 is not > 3: accepted
  // The spike did not enter the baseline: 31 values, the last one 8.
  const s = d.stats('s')!
  assert.equal(s.count, 31)
  assert.equal(s.pending, 0)
  close(s.mean, (330 + 8) / 31)
  assert.deepEqual(d.score('s', -1000), { z: (-1000 - s.mean) / s.std, anomaly: true })
  assert.equal(d.stats('s')!.count, 31)
})

test('zscore - null during warm-up, even for outliers, which are accepted', () => {
  const d = new ZScoreDetector({ minSamples: 10 })
  for (let i = 0; i < 9; i++) assert.deepEqual(d.score('w', 50), { z: null, anomaly: false })
  assert.deepEqual(d.score('w', 1e6), { z: null, anomaly: false })
  assert.equal(d.stats('w')!.count, 10)
  const z = d.update('w', 50)
  assert.equal(typeof z, 'number')
  close(z, (50 - (9 * 50 + 1e6) / 10) / Math.sqrt(((1e6 - 50) ** 2) * 9 / 100))
})

test('zscore - level shift: more than 10 consecutive rejections are accepted and the baseline recovers', () => {
  const d = new ZScoreDetector()
  warmAlternating(d)
  for (let i = 1; i <= 10; i++) {
    assert.deepEqual(d.score('s', 50), { z: 39, anomaly: true })
    assert.deepEqual(d.stats('s'), { count: 30, mean: 11, std: 1, pending: i })
  }
  // The 11th in a row is still an anomaly against the old baseline, but the run is accepted.
  assert.deepEqual(d.score('s', 50), { z: 39, anomaly: true })
  const s = d.stats('s')!
  assert.equal(s.count, 41)
  assert.equal(s.pending, 0)
  const mean = 880 / 41 // (15*10 + 15*12 + 11*50) / 41
  const std = Math.sqrt(31160 / 41 - mean * mean) // E[x^2] = (1500 + 2160 + 27500) / 41
  close(s.mean, mean)
  close(s.std, std)
  // Recovered: the new level is normal now.
  const r = d.score('s', 50)
  close(r.z, (50 - mean) / std) // 1.6494...
  assert.equal(r.anomaly, false)
  for (let i = 0; i < 200; i++) assert.equal(d.score('s', i % 2 === 0 ? 50 : 52).anomaly, false)
  assert.deepEqual(d.stats('s'), { count: 100, mean: 51, std: 1, pending: 0 })
})

test('zscore - a normal value breaks a run of rejections, which are then dropped', () => {
  const d = new ZScoreDetector()
  warmAlternating(d)
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 10; i++) assert.equal(d.score('s', 50).anomaly, true)
    assert.equal(d.stats('s')!.pending, 10)
    assert.equal(d.score('s', 11).anomaly, false)
    assert.equal(d.stats('s')!.pending, 0)
  }
  const s = d.stats('s')!
  assert.equal(s.count, 35) // 30 + five 11s, none of the 50 spikes
  assert.ok(s.mean < 12)
})

test('zscore - maxConsecutiveRejections 0 accepts every value', () => {
  const d = new ZScoreDetector({ maxConsecutiveRejections: 0 })
  warmAlternating(d)
  assert.deepEqual(d.score('s', 100), { z: 89, anomaly: true })
  assert.equal(d.stats('s')!.count, 31)
})

test('zscore - stuck sensor: flat baseline gives null or +-Infinity, never NaN', () => {
  const d = new ZScoreDetector()
  for (let i = 0; i < 250; i++) {
    const z = d.update('stuck', 1013.27)
    assert.equal(z, null, `i=${i}`)
  }
  assert.deepEqual(d.stats('stuck'), { count: 100, mean: 1013.27, std: 0, pending: 0 })
  assert.deepEqual(d.score('stuck', 1013.28), { z: Infinity, anomaly: true })
  assert.deepEqual(d.score('stuck', 1013.26), { z: -Infinity, anomaly: true })
  assert.deepEqual(d.score('stuck', 1013.27), { z: null, anomaly: false })
  // Unstuck at a new level: 11 in a row are accepted, then the baseline is no longer flat.
  const zs: Array<number | null> = []
  for (let i = 0; i < 300; i++) zs.push(d.update('stuck', 7 + (i % 3) * 0.5))
  assert.ok(zs.every(z => z === null || !Number.isNaN(z)))
  assert.deepEqual(zs.slice(0, 11), new Array(11).fill(-Infinity))
  assert.ok(zs.slice(11).every(z => z !== null && Number.isFinite(z)))
  // Stuck again at the new level: exactly flat once the window is full of it.
  for (let i = 0; i < 150; i++) d.update('stuck', 7)
  assert.deepEqual(d.stats('stuck'), { count: 100, mean: 7, std: 0, pending: 0 })
  assert.equal(d.update('stuck', 7), null)
})

test('zscore - numerically stable around 1013.25 +- 0.01 over 1e6 updates', () => {
  const d = new ZScoreDetector()
  const rnd = createRandom(42)
  let worstMean = 0
  let worstStd = 0
  let checks = 0
  for (let i = 1; i <= 1_000_000; i++) {
    // Level change halfway (5000 hPa is absurd, that is the point: the shift must re-centre).
    const level = i <= 500_000 ? 1013.25 : 5000.5
    d.update('p', level + (rnd.next() * 2 - 1) * 0.01)
    if (i % 997 === 0 || i === 1_000_000 || (i > 500_000 && i < 500_200)) {
      const values = d.snapshotSensor('p')!.values
      const want = twoPass(values)
      const got = d.stats('p')!
      assert.equal(got.count, values.length)
      worstMean = Math.max(worstMean, Math.abs(got.mean - want.mean) / Math.abs(want.mean))
      worstStd = Math.max(worstStd, Math.abs(got.std - want.std) / want.std)
      checks++
    }
  }
  assert.ok(checks > 1000)
  assert.ok(worstMean <= 1e-9, `mean relative error ${worstMean}`)
  assert.ok(worstStd <= 1e-9, `std relative error ${worstStd}`)
  const s = d.stats('p')!
  assert.ok(Math.abs(s.mean - 5000.5) < 0.005)
  close(s.std, 0.01 / Math.sqrt(3), 0.2) // uniform on +-0.01
})

test('zscore - snapshot/restore (through JSON) gives identical subsequent scores', () => {
  const rnd = createRandom(7)
  const feed = (): Array<[string, number]> => {
    const out: Array<[string, number]> = []
    for (let i = 0; i < 3000; i++) {
      const id = `s${rnd.int(3)}`
      const spike = rnd.next() < 0.05 ? 40 * rnd.normal() : 0
      out.push([id, 1013.25 + rnd.normal() * 0.3 + spike + (i > 2000 && id === 's1' ? 25 : 0)])
    }
    return out
  }
  const before = feed()
  const after = feed()
  const a = new ZScoreDetector()
  for (const [id, v] of before) a.update(id, v)
  // Leave a run of rejections in progress.
  for (let i = 0; i < 4; i++) assert.equal(a.score('s0', 1e5).anomaly, true)
  assert.equal(a.stats('s0')!.pending, 4)
  const json = JSON.stringify(a.snapshot())
  const b = new ZScoreDetector()
  b.restore(JSON.parse(json) as ZScoreSnapshot)
  assert.equal(b.size, 3)
  assert.deepEqual(b.snapshot(), a.snapshot())
  const za = after.map(([id, v]) => a.update(id, v))
  const zb = after.map(([id, v]) => b.update(id, v))
  assert.deepEqual(zb, za)
  assert.ok(za.filter(z => z !== null && Math.abs(z) > 3).length > 50)
  assert.deepEqual(b.snapshot(), a.snapshot())
})

test('zscore - restore keeps unlisted sensors, fits another window size, rejects malformed state', () => {
  const a = new ZScoreDetector()
  for (let i = 0; i < 100; i++) a.update('x', i)
  const snap = a.snapshot()
  const small = new ZScoreDetector({ windowSize: 10, minSamples: 5 })
  small.update('other', 1)
  small.restore(snap)
  assert.equal(small.size, 2)
  assert.deepEqual(small.snapshotSensor('x')!.values, [90, 91, 92, 93, 94, 95, 96, 97, 98, 99])
  const s = small.stats('x')!
  assert.equal(s.count, 10)
  close(s.mean, 94.5)
  close(s.std, Math.sqrt(8.25))

  // Sums that disagree with the values are recomputed, not trusted.
  const bad = a.snapshotSensor('x')!
  const healed = new ZScoreDetector()
  healed.restoreSensor({ ...bad, sum: bad.sum + 1000 })
  close(healed.stats('x')!.mean, 49.5)

  const isStateError = (err: unknown): boolean => {
    assert.ok(err instanceof AnomalyStateError)
    assert.equal(err.code, 'IOT_ERR_ANOMALY_STATE')
    return true
  }
  const good = a.snapshot()
  const cases: unknown[] = [
    null,
    { ...good, version: 2 },
    { ...good, sensors: {} },
    { ...good, sensors: [{ ...good.sensors[0], values: [1, Number.NaN] }] },
    { ...good, sensors: [{ ...good.sensors[0], values: [1, null] }] },
    { ...good, sensors: [{ ...good.sensors[0], rejected: 'x' }] },
    { ...good, sensors: [{ ...good.sensors[0], sensorId: 3 }] },
    { ...good, sensors: [{ ...good.sensors[0], sum: Infinity }] },
    { ...good, sensors: [good.sensors[0], 5] }
  ]
  const target = new ZScoreDetector()
  target.update('keep', 1)
  for (const c of cases) {
    assert.throws(() => target.restore(c as ZScoreSnapshot), isStateError, JSON.stringify(c))
  }
  // All or nothing: nothing was restored by the failing calls.
  assert.equal(target.size, 1)
})

test('zscore - sensors are independent; forget and size bound memory; non-finite values ignored', () => {
  const d = new ZScoreDetector()
  warmAlternating(d, 'a')
  warmAlternating(d, 'b')
  assert.equal(d.size, 2)
  assert.deepEqual(d.score('a', 14), { z: 3, anomaly: false })
  assert.deepEqual(d.score('b', 100), { z: 89, anomaly: true })
  assert.deepEqual([...d.sensorIds()], ['a', 'b'])
  assert.equal(d.forget('a'), true)
  assert.equal(d.forget('a'), false)
  assert.equal(d.size, 1)
  assert.equal(d.has('a'), false)
  assert.equal(d.stats('a'), null)
  assert.equal(d.snapshotSensor('a'), null)
  assert.equal(d.update('a', 11), null) // starts over: warm-up
  assert.deepEqual(d.score('b', Number.NaN), { z: null, anomaly: false })
  assert.deepEqual(d.score('b', Infinity), { z: null, anomaly: false })
  assert.deepEqual(d.score('new', Number.NaN), { z: null, anomaly: false })
  assert.equal(d.has('new'), false)
  assert.deepEqual(d.stats('b'), { count: 30, mean: 11, std: 1, pending: 1 })
  d.clear()
  assert.equal(d.size, 0)
})

test('zscore - bad options throw AnomalyConfigError', () => {
  const bad: Array<[Record<string, number>, string]> = [
    [{ windowSize: 1 }, 'windowSize'],
    [{ windowSize: 10.5 }, 'windowSize'],
    [{ windowSize: Number.NaN }, 'windowSize'],
    [{ minSamples: 1 }, 'minSamples'],
    [{ minSamples: 101 }, 'minSamples'],
    [{ threshold: 0 }, 'threshold'],
    [{ threshold: -3 }, 'threshold'],
    [{ threshold: Infinity }, 'threshold'],
    [{ threshold: Number.NaN }, 'threshold'],
    [{ maxConsecutiveRejections: -1 }, 'maxConsecutiveRejections'],
    [{ maxConsecutiveRejections: 2.5 }, 'maxConsecutiveRejections']
  ]
  for (const [options, path] of bad) {
    assert.throws(() => new ZScoreDetector(options), (err: unknown) => {
      assert.ok(err instanceof AnomalyConfigError)
      assert.equal(err.code, 'IOT_ERR_ANOMALY_CONFIG')
      assert.equal(err.path, path)
      return true
    }, JSON.stringify(options))
  }
})
