import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AnomalyConfigError, CadenceTracker, formatCadence } from './index.ts'

const T0 = Date.UTC(2026, 0, 1)

test('cadence - the median interval, robust to gaps, dropouts and a restart', () => {
  const c = new CadenceTracker()
  assert.equal(c.median('s'), null)
  c.observe('s', T0)
  c.observe('s', T0 + 300_000)
  c.observe('s', T0 + 600_000)
  assert.equal(c.median('s'), null, 'two intervals: not yet')
  c.observe('s', T0 + 900_000)
  assert.equal(c.median('s'), 300_000)
  // A sensor at 5 min that misses readings (a 15-minute and a 2-hour gap) and comes back after a week.
  let ts = T0 + 900_000
  for (const gap of [300_000, 900_000, 300_000, 7_200_000, 300_000, 300_000, 7 * 86_400_000, 300_000, 300_000]) {
    ts += gap
    c.observe('s', ts)
  }
  assert.equal(c.intervals('s'), 12)
  assert.equal(c.median('s'), 300_000)
  // Jitter: the median of the newest intervals, the mean of the middle two for an even count.
  const j = new CadenceTracker()
  ts = T0
  j.observe('j', ts)
  for (const gap of [990, 1010, 1000, 1020, 60_000, 980]) {
    ts += gap
    j.observe('j', ts)
  }
  // Sorted: 980 990 1000 1010 1020 60000.
  assert.equal(j.median('j'), 1005)
})

test('cadence - duplicates and out-of-order readings add no interval; sensors are apart; the ring is bounded', () => {
  const c = new CadenceTracker({ window: 4, minIntervals: 2 })
  for (const t of [0, 1000, 1000, 500, 2000, 3000]) c.observe('a', T0 + t)
  assert.equal(c.intervals('a'), 3)
  assert.equal(c.median('a'), 1000)
  c.observe('b', T0)
  c.observe('b', T0 + 60_000)
  assert.equal(c.median('b'), null)
  c.observe('b', T0 + 120_000)
  assert.equal(c.median('b'), 60_000)
  // The newest 4 intervals only: the sensor slowed from 1 s to 10 s.
  let ts = T0 + 3000
  for (let i = 0; i < 3; i++) c.observe('a', ts += 10_000)
  assert.equal(c.median('a'), 10_000)
  for (let i = 0; i < 1000; i++) c.observe('a', ts += 10_000)
  assert.equal(c.intervals('a'), 4)
  assert.deepEqual([...c.all()], [['a', 10_000], ['b', 60_000]])
  c.observe('c', NaN)
  assert.equal(c.size, 2)
  assert.equal(c.forget('a'), true)
  assert.equal(c.median('a'), null)
  c.clear()
  assert.equal(c.size, 0)
})

test('cadence - bad options throw; formatted for people', () => {
  for (const bad of [{ window: 0 }, { window: 1.5 }, { minIntervals: 0 }, { window: 4, minIntervals: 5 }]) {
    assert.throws(() => new CadenceTracker(bad), AnomalyConfigError, JSON.stringify(bad))
  }
  assert.deepEqual([250, 1000, 1250, 60_000, 300_000, 5_400_000, 172_800_000].map(formatCadence),
    ['250 ms', '1 s', '1.25 s', '1 min', '5 min', '1.5 h', '2 d'])
})

test('cadence - snapshot: the newest time and the intervals in place come back; whole-ms intervals take about 3 bytes', () => {
  const c = new CadenceTracker()
  let ts = T0
  for (let i = 0; i < 100; i++) c.observe('s', ts += i % 10 === 9 ? 300_000 : 60_000)
  assert.equal(c.snapshot('unknown'), null)
  const bytes = c.snapshot('s') as Uint8Array
  // Header 6; window 1; newest 8; count and head 2; whole flag 1 + 58 × 3 + 6 × 3 (300,000 takes 3 too); checksum 4.
  assert.equal(bytes.length, 6 + 1 + 8 + 2 + 1 + 64 * 3 + 4)
  const d = new CadenceTracker()
  d.restore('s', bytes)
  assert.equal(d.median('s'), 60_000)
  assert.equal(d.intervals('s'), 64)
  for (let i = 0; i < 40; i++) {
    ts += 1000.5 // sub-ms intervals: Float64 from here on
    c.observe('s', ts)
    d.observe('s', ts)
    assert.equal(d.median('s'), c.median('s'))
  }
  assert.equal(d.median('s'), 1000.5)
  assert.deepEqual(d.snapshot('s'), c.snapshot('s'))
  assert.equal(d.snapshot('s')?.length, 6 + 1 + 8 + 2 + 1 + 64 * 8 + 4)
  const small = new CadenceTracker({ window: 16 })
  assert.throws(() => { small.restore('s', bytes) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'cadence.window: a ring of 64 intervals, this tracker keeps 16' })
  assert.equal(small.size, 0)
})
