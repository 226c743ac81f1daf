import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom } from '../domain/index.ts'
import { AnomalyConfigError, ResolutionEstimator, StuckDetector, defaultStuckDurations } from './index.ts'

const T0 = Date.UTC(2026, 0, 1)
const MINUTE = 60_000

/** Runs values (one every `stepMs`) through a stuck detector with learnt resolution; returns the indexes flagged. */
function flagged (values: number[], stepMs: number, type = 'temperature', d = new StuckDetector(), declared: Record<string, number> = {}): number[] {
  const res = new ResolutionEstimator(declared)
  const out: number[] = []
  values.forEach((v, i) => {
    if (d.update('s', type, v, T0 + i * stepMs, res.observe('s', type, v))) out.push(i)
  })
  return out
}

function noisy (n: number, seed: number, level = 22, sd = 0.5): number[] {
  const rnd = createRandom(seed)
  return Array.from({ length: n }, () => level + sd * rnd.normal())
}

test('stuck - flagged at the 5th identical reading of a sensor that changes at every reading, at 1 s and at 5 min', () => {
  for (const step of [1000, 5 * MINUTE]) {
    const values = noisy(300, 1)
    const last = values[299]!
    for (let i = 0; i < 20; i++) values.push(last) // stuck at its last value, as the simulator does
    // The run starts at reading 299 (the last change): its 5th reading is 303.
    const got = flagged(values, step)
    assert.deepEqual(got, Array.from({ length: 17 }, (_, i) => 303 + i), `step ${step}`)
  }
})

test('stuck - the details of the run: readings, event time, readings needed, value', () => {
  const d = new StuckDetector()
  const res = new ResolutionEstimator()
  const values = [...noisy(200, 2), 7, 7, 7, 7, 7]
  values.forEach((v, i) => d.update('s', 'co2', v, T0 + i * 2000, res.observe('s', 'co2', v)))
  assert.equal(d.lastReadings, 5)
  assert.equal(d.lastMs, 8000)
  assert.equal(d.lastNeed, 5)
  assert.equal(d.lastValue, 7)
  assert.equal(d.need('s'), 5)
  assert.equal(d.need('unknown'), 5)
})

test('stuck - quantised steady readings (a server room at 22.0 °C, 0.1 °C steps) are not flagged', () => {
  for (const [step, n, sd] of [[1000, 86_400, 0.03], [MINUTE, 10_080, 0.03], [5 * MINUTE, 2016, 0.04]] as const) {
    const rnd = createRandom(5)
    const values = Array.from({ length: n }, () => Math.round((22 + sd * rnd.normal()) * 10) / 10)
    const runs = values.filter((v, i) => i === 0 || v !== values[i - 1]).length
    assert.ok(runs > 100, `the room changes now and then (${runs} runs)`)
    const d = new StuckDetector()
    assert.deepEqual(flagged(values, step, 'temperature', d), [], `step ${step}`)
    assert.ok(d.need('s') > 20, `needs twice the usual longest flat stretch, got ${d.need('s')}`)
  }
})

test('stuck - a sensor that never changed is not stuck: nothing shows it ever worked', () => {
  assert.deepEqual(flagged(new Array(10_000).fill(21.5), MINUTE), [])
})

test('stuck - while few runs have completed, the run must also last the type duration', () => {
  assert.equal(defaultStuckDurations.co2, 30 * MINUTE)
  assert.equal(defaultStuckDurations.temperature, 60 * MINUTE)
  // Ten changes (ten completed runs, fewer than minRuns), then flat at 1 s.
  const values = [...noisy(10, 3), ...new Array(4000).fill(20)]
  const got = flagged(values, 1000, 'co2')
  // The flat run starts at reading 10 (the first 20): 30 min later is reading 1810.
  assert.equal(got[0], 1810)
  assert.equal(got.length, 4010 - 1810)
  // An hour for temperature, and for a type without a duration of its own.
  assert.equal(flagged(values, 1000, 'temperature')[0], 3610)
  assert.equal(flagged(values, 1000, 'radiation')[0], 3610)
})

test('stuck - tolerance: a move of less than half a resolution step is no change, one step is', () => {
  const d = new StuckDetector({ minReadings: 3, minRuns: 1 })
  // Declared 0.1: 22.04 is the same value as 22.0 (round-off of a converted unit); 22.1 is a change.
  const values = [21, 22, 21, 22, 22.04, 22.0, 22.04, 22.1]
  assert.deepEqual(flagged(values, 1000, 'temperature', d, { temperature: 0.1 }), [5, 6])
})

test('stuck - a stuck run does not teach the sensor that long flat runs are normal', () => {
  const d = new StuckDetector()
  const a = noisy(500, 4)
  const episode = new Array(200).fill(a[499]!)
  const b = noisy(500, 5)
  const again = new Array(10).fill(b[499]!)
  const got = flagged([...a, ...episode, ...b, ...again], 1000, 'humidity', d)
  assert.equal(got[0], 503)
  assert.equal(d.need('s'), 5)
  assert.equal(got.at(-1), 1209)
  assert.ok(got.includes(1203) && !got.includes(1202))
})

test('stuck - forget, clear and bad options', () => {
  const d = new StuckDetector()
  flagged([1, 2, 3], 1000, 'x', d)
  assert.equal(d.size, 1)
  assert.equal(d.forget('s'), true)
  assert.equal(d.forget('s'), false)
  d.update('t', 'x', Number.NaN, T0, Infinity)
  assert.equal(d.lastReadings, 0)
  d.clear()
  assert.equal(d.size, 0)
  for (const bad of [{ minReadings: 1 }, { minReadings: 2.5 }, { factor: 0 }, { quantile: 1.5 }, { minRuns: 0 }, { durations: { x: -1 } }, { defaultDurationMs: Number.NaN }]) {
    assert.throws(() => new StuckDetector(bad), AnomalyConfigError, JSON.stringify(bad))
  }
})

test('stuck - snapshot: the flat run and the histogram of runs come back; a run restored mid-way is stuck at the same reading', () => {
  const values = noisy(400, 3).map(v => Math.round(v * 10) / 10)
  const last = values[399] as number
  for (let i = 0; i < 30; i++) values.push(last)
  const res = new ResolutionEstimator()
  const d = new StuckDetector()
  const update = (s: StuckDetector, i: number, resolution: number): boolean => s.update('s', 'temperature', values[i] as number, T0 + i * MINUTE, resolution)
  const cut = 403 // the flat run began at 399: 4 readings into it
  for (let i = 0; i < cut; i++) update(d, i, res.observe('s', 'temperature', values[i] as number))
  assert.equal(d.snapshot('unknown'), null)
  const bytes = d.snapshot('s') as Uint8Array
  const e = new StuckDetector()
  e.restore('s', bytes)
  const got: boolean[] = []
  const want: boolean[] = []
  for (let i = cut; i < values.length; i++) {
    const r = res.observe('s', 'temperature', values[i] as number)
    got.push(update(e, i, r))
    want.push(update(d, i, r))
    assert.deepEqual([e.lastReadings, e.lastMs, e.lastNeed, e.lastValue], [d.lastReadings, d.lastMs, d.lastNeed, d.lastValue])
  }
  assert.deepEqual(got, want)
  assert.equal(d.lastNeed, 8) // twice the longest usual run (4)
  assert.equal(got.indexOf(true), 406 - cut) // stuck at the run's 8th reading
  assert.deepEqual(e.snapshot('s'), d.snapshot('s'))
  const bad = bytes.slice()
  bad[10] = (bad[10] as number) ^ 0xff
  assert.throws(() => { e.restore('s', bad) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'stuck: checksum mismatch: the snapshot is damaged' })
  assert.equal(e.size, 0)
})
