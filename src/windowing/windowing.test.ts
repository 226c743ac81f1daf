import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  ChannelWatermarks, ON_TIME, TumblingEventTimeWindows, WindowDeltas, WindowOperator,
  addToStats, createStatsAccumulator, mergeStats, statsResult, type StatsInput
} from './index.ts'

const input = (value: number, flags: Partial<StatsInput> = {}): StatsInput =>
  ({ value, ruleAnomaly: false, labelAnomaly: false, zAnomaly: false, mlAnomaly: false, combinedAnomaly: false, ...flags })

test('TumblingEventTimeWindows - assigns [start, end) aligned to the epoch, negatives too', () => {
  const w = new TumblingEventTimeWindows(60_000)
  assert.deepEqual(w.windowOf(0), { start: 0, end: 60_000 })
  assert.deepEqual(w.windowOf(59_999), { start: 0, end: 60_000 })
  assert.deepEqual(w.windowOf(60_000), { start: 60_000, end: 120_000 })
  assert.deepEqual(w.windowOf(-1), { start: -60_000, end: 0 })
  assert.equal(new TumblingEventTimeWindows(60_000, 15_000).startOf(10_000), -45_000)
  assert.throws(() => new TumblingEventTimeWindows(0), RangeError)
})

test('stats accumulator - exact count/min/max/mean/stddev and anomaly counts', () => {
  const acc = createStatsAccumulator()
  for (const v of [2, 4, 4, 4, 5, 5, 7, 9]) addToStats(acc, input(v, { ruleAnomaly: v === 9, zAnomaly: v > 6 }))
  const r = statsResult(acc)
  assert.equal(r.count, 8)
  assert.equal(r.avg, 5)
  assert.equal(r.stddev, 2)
  assert.equal(r.min, 2)
  assert.equal(r.max, 9)
  assert.equal(r.ruleAnomalies, 1)
  assert.equal(r.zAnomalies, 2)
})

test('stats accumulator - merging deltas equals adding everything to one accumulator', () => {
  const values = Array.from({ length: 1000 }, (_, i) => 1013.25 + Math.sin(i) * 0.01 + (i % 7) * 1e-4)
  const whole = createStatsAccumulator()
  for (const v of values) addToStats(whole, input(v))
  let merged = createStatsAccumulator()
  for (let i = 0; i < values.length; i += 37) {
    const part = createStatsAccumulator()
    for (const v of values.slice(i, i + 37)) addToStats(part, input(v))
    merged = mergeStats(merged, part)
  }
  const a = statsResult(whole)
  const b = statsResult(merged)
  assert.equal(b.count, 1000)
  assert.equal(b.min, a.min)
  assert.equal(b.max, a.max)
  assert.ok(Math.abs(b.avg - a.avg) / a.avg < 1e-12)
  assert.ok(Math.abs(b.stddev - a.stddev) / a.stddev < 1e-9)
  // two-pass reference
  const mean = values.reduce((s, v) => s + v, 0) / values.length
  const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length)
  assert.ok(Math.abs(b.stddev - sd) / sd < 1e-9)
})

test('ChannelWatermarks - minimum over channels, held back until every channel has data', () => {
  const w = new ChannelWatermarks(10_000, 30_000)
  w.addChannel(0, 0)
  w.addChannel(1, 0)
  assert.equal(w.observe(0, 100_000), -Infinity)
  assert.equal(w.observe(1, 50_000), 40_000)
  assert.equal(w.observe(1, 200_000), 90_000)
  assert.equal(w.observe(0, 90_000), 90_000, 'out-of-order event does not lower it')
})

test('ChannelWatermarks - idle channel stops holding back; watermark never goes back', () => {
  const w = new ChannelWatermarks(10_000, 30_000)
  w.addChannel(0, 0)
  w.addChannel(1, 0)
  w.observe(0, 100_000)
  w.observe(1, 20_000)
  assert.equal(w.current, 10_000)
  w.tick(10_000)
  w.observe(0, 150_000)
  assert.equal(w.tick(35_000), 10_000, 'channel 1 was active at the 10 s tick: not idle yet')
  assert.equal(w.tick(40_000), 140_000, 'channel 1 idle after 30 s of wall time')
  assert.equal(w.isIdle(1), true)
  assert.equal(w.observe(1, 25_000), 140_000, 'returning channel cannot move it back')
  assert.equal(w.isIdle(1), false)
  w.restoreFloor(100)
  assert.equal(w.current, 140_000)
})

test('ChannelWatermarks - external channels (other workers) join the minimum', () => {
  const w = new ChannelWatermarks(0, 30_000)
  w.addChannel(0, 0)
  w.observe(0, 500)
  w.setExternal(7, 200)
  assert.equal(w.current, 500, 'already combined to 500 before the external arrived: monotonic')
  const v = new ChannelWatermarks(0, 30_000)
  v.addChannel(0, 0)
  v.setExternal(7, 200)
  assert.equal(v.observe(0, 500), 200)
  v.setExternal(7, null)
  assert.equal(v.current, 500)
})

test('ChannelWatermarks - channels restored in one batch: the minimum is over all of them, not the first one added', () => {
  const one = new ChannelWatermarks(10, 30_000)
  one.addChannel(0, 0, 5000)
  one.addChannel(1, 0, 1000)
  assert.equal(one.current, 4990, 'one by one: the first channel raised it and it never goes back')
  const w = new ChannelWatermarks(10, 30_000)
  w.batch(() => {
    w.addChannel(0, 0, 5000)
    w.setExternal(7, 3000)
    w.addChannel(1, 0, 1000)
  })
  assert.equal(w.current, 990)
  // Nested batches take the minimum once, when the outermost ends.
  const n = new ChannelWatermarks(10, 30_000)
  n.batch(() => {
    n.addChannel(0, 0, 5000)
    n.batch(() => { n.setExternal(7, 3000) })
    n.addChannel(1, 0, 1000)
  })
  assert.equal(n.current, 990)
  w.batch(() => {
    w.setExternal(7, 800) // an external behind the rest keeps it where it is (never back)
    w.setExternal(8, null)
  })
  assert.equal(w.current, 990)
})

test('WindowOperator - on time until the watermark passes end + allowed lateness, then late', () => {
  const op = new WindowOperator({ sizeMs: 60_000, maxOutOfOrdernessMs: 10_000, allowedLatenessMs: 60_000, idleTimeoutMs: 30_000 })
  op.watermarks.addChannel(0, 0)
  assert.equal(op.assign(0, 30_000), ON_TIME) // window [0, 60 s)
  assert.equal(op.assign(0, 129_999), ON_TIME) // watermark 119_999
  assert.equal(op.isFinal(0), false)
  assert.equal(op.assign(0, 59_000), ON_TIME, 'revision: within allowed lateness')
  assert.equal(op.assign(0, 130_000), ON_TIME) // watermark 120_000 = end + lateness
  assert.equal(op.isFinal(0), true)
  assert.equal(op.assign(0, 59_000), 61_000, 'late by watermark − ts')
  assert.equal(op.assign(0, 60_000), ON_TIME, 'next window still open')
})

test('WindowDeltas - one delta per (window, location, type), drained once', () => {
  const d = new WindowDeltas(60_000)
  d.add('Lab', 'co2', 0, input(400))
  d.add('Lab', 'co2', 0, input(600, { labelAnomaly: true }))
  d.add('Lab', 'temperature', 0, input(20))
  d.add('Lab', 'co2', 60_000, input(500))
  assert.equal(d.size, 3)
  const out = d.drain()
  assert.equal(d.size, 0)
  const co2 = out.find(x => x.sensorType === 'co2' && x.start === 0)
  assert.deepEqual(co2 && statsResult(co2.acc), {
    count: 2, avg: 500, min: 400, max: 600, stddev: 100, ruleAnomalies: 0, labelAnomalies: 1, zAnomalies: 0, mlAnomalies: 0, combinedAnomalies: 0
  })
  assert.equal(co2?.end, 60_000)
})
