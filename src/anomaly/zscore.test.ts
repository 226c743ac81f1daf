import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom } from '../domain/index.ts'
import { AnomalyConfigError, MAD_TO_SIGMA, ZScoreDetector, scaleFloor } from './index.ts'

const MEAN_ABS_TO_SIGMA = Math.sqrt(Math.PI / 2)

function close (actual: number | null | undefined, expected: number, tol = 1e-12, msg?: string): void {
  assert.equal(typeof actual, 'number', msg)
  const a = actual as number
  assert.ok(Math.abs(a - expected) <= tol * Math.max(1, Math.abs(expected)), `${msg ?? ''} expected ${expected}, got ${a}`)
}

/** Median, MAD and mean absolute deviation of values, the slow way. */
function robust (values: number[]): { median: number, scale: number } {
  const s = [...values].sort((a, b) => a - b)
  const n = s.length
  const med = (xs: number[]): number => n % 2 === 1 ? xs[(n - 1) / 2]! : (xs[n / 2 - 1]! + xs[n / 2]!) / 2
  const m = med(s)
  const dev = s.map(x => Math.abs(x - m)).sort((a, b) => a - b)
  const mad = MAD_TO_SIGMA * med(dev)
  const mean = MEAN_ABS_TO_SIGMA * dev.reduce((a, b) => a + b, 0) / n
  return { median: m, scale: Math.max(mad, mean) }
}

/** 30 values alternating 10, 12: median 11, MAD 1 and mean absolute deviation 1: scale 1.4826 (from the MAD). */
function warmAlternating (d: ZScoreDetector, id = 's'): void {
  for (let i = 0; i < 30; i++) assert.equal(d.update(id, i % 2 === 0 ? 10 : 12), null)
}

test('zscore - defaults', () => {
  const d = new ZScoreDetector()
  assert.equal(d.windowSize, 100)
  assert.equal(d.minSamples, 30)
  assert.equal(d.threshold, 3)
  assert.equal(d.rejectThreshold, 6)
  assert.equal(d.maxConsecutiveRejections, 10)
  assert.equal(new ZScoreDetector({ threshold: 8 }).rejectThreshold, 8)
  assert.equal(d.size, 0)
})

test('zscore - hand-computed series: median and the larger of 1.4826 MAD and 1.2533 mean absolute deviation', () => {
  const d = new ZScoreDetector({ windowSize: 5, minSamples: 5 })
  for (const v of [10, 12, 11, 9, 13]) assert.deepEqual(d.score('t', v), { z: null, anomaly: false })
  // [9, 10, 11, 12, 13]: median 11, deviations 2 1 0 1 2: MAD 1 (1.4826), mean deviation 1.2 (1.50398).
  const s0 = d.stats('t')!
  assert.equal(s0.center, 11)
  assert.equal(s0.mad, MAD_TO_SIGMA)
  close(s0.scale, MEAN_ABS_TO_SIGMA * 1.2)
  const r14 = d.score('t', 14)
  close(r14.z, 3 / (MEAN_ABS_TO_SIGMA * 1.2)) // 1.9947...
  assert.equal(r14.anomaly, false)
  // 14 accepted, 10 evicted: [12, 11, 9, 13, 14] → median 12, deviations 0 1 3 1 2: MAD 1, mean 1.4.
  const s1 = d.stats('t')!
  assert.equal(s1.center, 12)
  close(s1.scale, MEAN_ABS_TO_SIGMA * 1.4)
  // 6: z = -6 / 1.7546 = -3.4196: an anomaly, but within the rejection threshold (6): it joins the baseline.
  const r6 = d.score('t', 6)
  close(r6.z, -6 / (MEAN_ABS_TO_SIGMA * 1.4))
  close(r6.z, -3.4196, 1e-4)
  assert.equal(r6.anomaly, true)
  assert.equal(d.stats('t')!.pending, 0)
  assert.deepEqual(d.values('t'), [11, 9, 13, 14, 6])
  // [6, 9, 11, 13, 14]: median 11, deviations 5 2 0 2 3: MAD 2 (2.965), mean deviation 2.4 (3.008).
  // 40 is z 9.64: held back.
  const r40 = d.score('t', 40)
  close(r40.z, 29 / (MEAN_ABS_TO_SIGMA * 2.4))
  assert.equal(r40.anomaly, true)
  assert.equal(d.stats('t')!.pending, 1)
  assert.equal(d.stats('t')!.center, 11)
  // An even window takes the mean of the two middle values.
  const e = new ZScoreDetector({ windowSize: 4, minSamples: 4 })
  for (const v of [1, 2, 4, 10]) e.update('e', v)
  // [1, 2, 4, 10]: median 3, deviations 1 1 2 7: MAD (1 + 2) / 2 = 1.5, mean deviation 11 / 4.
  const se = e.stats('e')!
  assert.equal(se.center, 3)
  assert.equal(se.mad, MAD_TO_SIGMA * 1.5)
  close(se.scale, MEAN_ABS_TO_SIGMA * 11 / 4)
})

test('zscore - the sorted window matches a brute-force median and scale at every step', () => {
  const d = new ZScoreDetector({ windowSize: 37, minSamples: 5, maxConsecutiveRejections: 0 })
  const rnd = createRandom(11)
  const kept: number[] = []
  for (let i = 0; i < 3000; i++) {
    // Repeated values, outliers and a level change: the cases a sorted window can get wrong.
    const v = i < 1500 ? Math.round(rnd.normal() * 4) / 2 : 100 + rnd.normal() * (rnd.next() < 0.05 ? 50 : 1)
    if (kept.length >= 5) {
      const want = robust(kept)
      close(d.measure('x', v), (v - want.median) / Math.max(want.scale, scaleFloor(Infinity, want.median)), 1e-9, `step ${i}`)
    }
    d.update('x', v)
    kept.push(v)
    if (kept.length > 37) kept.shift()
    assert.deepEqual(d.values('x'), kept)
  }
})

test('zscore - exact values with the default window: spike excluded from the baseline', () => {
  const d = new ZScoreDetector()
  warmAlternating(d)
  assert.deepEqual(d.stats('s'), { count: 30, center: 11, mad: MAD_TO_SIGMA, scale: MAD_TO_SIGMA, pending: 0 })
  assert.deepEqual(d.score('s', 100), { z: 89 / MAD_TO_SIGMA, anomaly: true })
  assert.deepEqual(d.score('s', 8), { z: -3 / MAD_TO_SIGMA, anomaly: false }) // -2.02: accepted
  // The spike did not enter the baseline: 31 values, the newest 8.
  const s = d.stats('s')!
  assert.equal(s.count, 31)
  assert.equal(s.pending, 0)
  assert.equal(s.center, 10)
  assert.deepEqual(d.values('s').slice(-2), [12, 8])
})

test('zscore - MAD floor: a constant series never divides by zero and is never flagged', () => {
  const d = new ZScoreDetector()
  for (let i = 0; i < 500; i++) {
    const z = d.update('c', 21.5)
    if (i < 30) assert.equal(z, null)
    else assert.equal(z, 0, `i=${i}`)
  }
  assert.deepEqual(d.stats('c'), { count: 100, center: 21.5, mad: 0, scale: 1e-3 * 21.5, pending: 0 })
  // Resolution unknown (the series never moved): the floor is 1e-3 of the median's magnitude.
  close(d.measure('c', 21.6), 0.1 / 0.0215, 1e-12) // 4.65
  // With a known resolution the floor is one step: a one-step flicker is z = 1, not an alarm.
  close(d.measure('c', 21.6, 0.1), 1, 1e-12)
  close(d.measure('c', 21.9, 0.1), 4, 1e-12)
  // A constant at 0 has the absolute floor.
  const zero = new ZScoreDetector({ minSamples: 2 })
  zero.update('0', 0)
  zero.update('0', 0)
  assert.equal(zero.measure('0', 0), 0)
  assert.equal(zero.measure('0', 1e-6), 1)
  assert.equal(scaleFloor(0.5, 100), 0.5)
  assert.equal(scaleFloor(Infinity, -2000), 2)
  assert.equal(scaleFloor(Infinity, 0), 1e-6)
})

test('zscore - a lumpy window (MAD 0) takes its scale from the mean absolute deviation', () => {
  const d = new ZScoreDetector({ windowSize: 10, minSamples: 10 })
  // Six of ten at 122 (MAD 0), the others one third off: mean absolute deviation 4/3 / 10.
  for (const v of [122, 122, 122.3, 122, 121.7, 122, 122.3, 122, 121.7, 122]) d.update('f', v)
  const s = d.stats('f')!
  assert.equal(s.center, 122)
  assert.equal(s.mad, 0)
  close(s.scale, MEAN_ABS_TO_SIGMA * 0.12, 1e-9)
  // 122.3 is z = 0.3 / 0.1504 = 1.99, not 300 (what a floor of one 0.001 step would give).
  close(d.measure('f', 122.3, 0.001), 0.3 / (MEAN_ABS_TO_SIGMA * 0.12), 1e-9)
})

test('zscore - null during warm-up, even for outliers, which are accepted', () => {
  const d = new ZScoreDetector({ minSamples: 10 })
  for (let i = 0; i < 9; i++) assert.deepEqual(d.score('w', 50), { z: null, anomaly: false })
  assert.deepEqual(d.score('w', 1e6), { z: null, anomaly: false })
  assert.equal(d.stats('w')!.count, 10)
  // Median 50 and MAD 0 (nine of ten are 50); the mean deviation (1e6 - 50) / 10 gives the scale.
  close(d.update('w', 50), 0)
  close(d.update('w', 60), 10 / (MEAN_ABS_TO_SIGMA * (1e6 - 50) / 11))
})

test('zscore - level shift: more than 10 consecutive rejections are accepted and the baseline recovers', () => {
  const d = new ZScoreDetector()
  warmAlternating(d)
  for (let i = 1; i <= 10; i++) {
    assert.deepEqual(d.score('s', 50), { z: 39 / MAD_TO_SIGMA, anomaly: true })
    assert.equal(d.stats('s')!.pending, i)
    assert.equal(d.stats('s')!.count, 30)
  }
  // The 11th in a row is still an anomaly against the old baseline, but the run is accepted.
  assert.deepEqual(d.score('s', 50), { z: 39 / MAD_TO_SIGMA, anomaly: true })
  const s = d.stats('s')!
  assert.equal(s.count, 41)
  assert.equal(s.pending, 0)
  assert.equal(s.center, 12) // 15 × 10, 15 × 12, 11 × 50
  for (let i = 0; i < 200; i++) d.score('s', i % 2 === 0 ? 50 : 52)
  assert.deepEqual(d.stats('s'), { count: 100, center: 51, mad: MAD_TO_SIGMA, scale: MAD_TO_SIGMA, pending: 0 })
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
  assert.equal(d.stats('s')!.count, 35) // 30 + five 11s, none of the 50 spikes
})

test('zscore - commit with exclude keeps a value out without counting it as a rejection', () => {
  const d = new ZScoreDetector()
  warmAlternating(d)
  for (let i = 0; i < 50; i++) {
    const z = d.measure('s', 50)
    d.commit('s', 50, z, true)
  }
  assert.deepEqual(d.stats('s'), { count: 30, center: 11, mad: MAD_TO_SIGMA, scale: MAD_TO_SIGMA, pending: 0 })
  // measure changes nothing either.
  d.measure('s', 1e9)
  assert.equal(d.stats('s')!.count, 30)
})

test('zscore - maxConsecutiveRejections 0 accepts every value', () => {
  const d = new ZScoreDetector({ maxConsecutiveRejections: 0 })
  warmAlternating(d)
  assert.deepEqual(d.score('s', 100), { z: 89 / MAD_TO_SIGMA, anomaly: true })
  assert.equal(d.stats('s')!.count, 31)
})

test('zscore - sensors are independent; forget and size bound memory; non-finite values ignored', () => {
  const d = new ZScoreDetector()
  warmAlternating(d, 'a')
  warmAlternating(d, 'b')
  assert.equal(d.size, 2)
  assert.deepEqual(d.score('a', 14), { z: 3 / MAD_TO_SIGMA, anomaly: false })
  assert.deepEqual(d.score('b', 100), { z: 89 / MAD_TO_SIGMA, anomaly: true })
  assert.deepEqual([...d.sensorIds()], ['a', 'b'])
  assert.equal(d.forget('a'), true)
  assert.equal(d.forget('a'), false)
  assert.equal(d.size, 1)
  assert.equal(d.has('a'), false)
  assert.equal(d.stats('a'), null)
  assert.deepEqual(d.values('a'), [])
  assert.equal(d.update('a', 11), null) // starts over: warm-up
  assert.deepEqual(d.score('b', Number.NaN), { z: null, anomaly: false })
  assert.deepEqual(d.score('b', Infinity), { z: null, anomaly: false })
  assert.deepEqual(d.score('new', Number.NaN), { z: null, anomaly: false })
  assert.equal(d.has('new'), false)
  assert.equal(d.stats('b')!.pending, 1)
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
    [{ threshold: 4, rejectThreshold: 3 }, 'rejectThreshold'],
    [{ rejectThreshold: Infinity }, 'rejectThreshold'],
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

test('zscore - snapshot: the window, its sum, the held-back run and the signs of zeros come back; z goes on the same', () => {
  const options = { windowSize: 8, minSamples: 3, maxConsecutiveRejections: 2 }
  const z = new ZScoreDetector(options)
  // 0 then -0: the sorted copy keeps -0 where the ring evicts 0 (and the other way round).
  const first = [0, -0, 1, 2, 0, 1, 2, 3, -0, 1, 0, 2, 90, 95]
  for (const v of first) z.update('s', v)
  assert.equal(z.stats('s')?.pending, 2)
  assert.equal(z.snapshot('unknown'), null)
  const bytes = z.snapshot('s') as Uint8Array
  // Header 6; window size, count, head 3; sum 8; sinceSum 1; 8 values 64; zeros 1 + 1; held back 1 + 16; checksum 4.
  assert.equal(bytes.length, 6 + 3 + 8 + 1 + 64 + 2 + 17 + 4)
  const y = new ZScoreDetector(options)
  y.restore('s', bytes)
  assert.deepEqual(y.values('s'), z.values('s'))
  assert.deepEqual(y.stats('s'), z.stats('s'))
  const rest = [100, 0, -0, 2, 1, 0, 3, -0, 0, 1, 2]
  assert.deepEqual(rest.map(v => y.update('s', v)), rest.map(v => z.update('s', v)))
  assert.deepEqual(y.snapshot('s'), z.snapshot('s'))
  assert.ok(Object.is(y.stats('s')?.center, z.stats('s')?.center))
  // Another window size: refused, and the sensor has no baseline.
  const wide = new ZScoreDetector({ windowSize: 9, minSamples: 3 })
  assert.throws(() => { wide.restore('s', bytes) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'zscore.windowSize: a window of 8 values, this detector keeps 9' })
  assert.equal(wide.has('s'), false)
})
