import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom } from '../domain/index.ts'
import { AnomalyConfigError, DailyProfile, Detector } from './index.ts'

const DAY = 86_400_000
const T0 = Date.UTC(2026, 0, 1)
/** 21 °C ± 3, lowest at midnight UTC, highest at noon. */
const cycle = (ts: number): number => 21 + 3 * Math.sin(2 * Math.PI * ((ts % DAY) / DAY - 0.25))

function learnDays (p: DailyProfile, days: number, stepMs: number, value: (ts: number) => number): void {
  for (let ts = T0; ts < T0 + days * DAY; ts += stepMs) p.learn('s', value(ts), ts)
}

test('seasonal - a daily cycle is learnt in one day, confirmed by the next, and then expected', () => {
  const p = new DailyProfile()
  learnDays(p, 2, 300_000, cycle)
  // Day 1 closed when day 2 began (learnt); day 2 is still open: nothing confirmed yet.
  assert.equal(p.pattern('s'), 'learning')
  assert.equal(p.offset('s', T0 + 2 * DAY + 12 * 3_600_000), 0)
  assert.equal(p.uncertainty('s', T0), 0)
  // The first reading of day 3 closes day 2, which the profile of day 1 explained (skill ~1).
  assert.equal(p.learn('s', cycle(T0 + 2 * DAY), T0 + 2 * DAY), true)
  assert.equal(p.pattern('s'), 'cycle')
  assert.ok(p.skill('s') > 0.99, `skill ${p.skill('s')}`)
  assert.equal(p.learn('s', cycle(T0 + DAY), T0 + DAY), false) // an older day's reading is ignored
  // The expected offset from the day's mean at noon and at midnight (interpolated between hour centres).
  // (An hour's mean at the peak is 2.966: the profile holds hourly means.)
  assert.ok(Math.abs(p.offset('s', T0 + 2 * DAY + 12 * 3_600_000) - 3) < 0.05)
  assert.ok(Math.abs(p.offset('s', T0 + 2 * DAY) + 3) < 0.05)
  // What linear interpolation may miss there: |second difference| / 8 of the hourly profile, 3·(2π/24)²/8.
  assert.ok(Math.abs(p.uncertainty('s', T0 + 2 * DAY + 12 * 3_600_000) - 3 * (2 * Math.PI / 24) ** 2 / 8) < 0.002)
  assert.equal(p.pattern('other'), 'learning')
  assert.equal(p.offset('other', T0), 0)
})

test('seasonal - noise, a random walk and a constant have no daily cycle', () => {
  const rnd = createRandom(3)
  const noise = new DailyProfile()
  learnDays(noise, 4, 60_000, () => 21 + rnd.normal())
  assert.equal(noise.pattern('s'), 'none')
  assert.equal(noise.offset('s', T0 + 12 * 3_600_000), 0)
  const w = createRandom(4)
  let level = 21
  const walk = new DailyProfile()
  learnDays(walk, 6, 60_000, () => (level += 0.05 * w.normal()))
  assert.equal(walk.pattern('s'), 'none')
  const flat = new DailyProfile()
  learnDays(flat, 3, 60_000, () => 21.5)
  assert.equal(flat.pattern('s'), 'none')
})

test('seasonal - a day with readings in fewer than 80 % of its hours does not count', () => {
  const p = new DailyProfile()
  // Two days from 10:00 (14 hours each on the first day): the first is partial.
  for (let ts = T0 + 10 * 3_600_000; ts < T0 + 3 * DAY; ts += 300_000) p.learn('s', cycle(ts), ts)
  assert.equal(p.pattern('s'), 'learning') // day 1 partial, day 2 learnt, day 3 not closed yet
  p.learn('s', cycle(T0 + 3 * DAY), T0 + 3 * DAY)
  assert.equal(p.pattern('s'), 'cycle')
  assert.equal(p.forget('s'), true)
  p.clear()
  assert.equal(p.size, 0)
  assert.throws(() => new DailyProfile({ bins: 7 }), AnomalyConfigError)
  assert.throws(() => new DailyProfile({ minSkill: 1 }), AnomalyConfigError)
  assert.throws(() => new DailyProfile({ minCoverage: 0 }), AnomalyConfigError)
})

test('seasonal - the detector on a clean daily cycle gives no flags, at 1 min and at 5 min, for a week', () => {
  for (const step of [60_000, 300_000]) {
    const d = new Detector({ rules: { defaults: {} } })
    let flagged = 0
    let maxScore = 0
    for (let ts = T0; ts < T0 + 7 * DAY; ts += step) {
      const v = d.detect({ sensorId: 'room', sensorType: 'temperature', location: 'x', value: cycle(ts), ts, unit: '°C', anomaly: null, anomalyKind: null, seq: null })
      if (v.anomaly) flagged++
      if (v.anomalyScore > maxScore) maxScore = v.anomalyScore
    }
    assert.equal(flagged, 0, `step ${step}`)
    assert.equal(d.seasonal!.pattern('room'), 'cycle')
    assert.ok(maxScore < 0.5, `max score ${maxScore}`)
  }
})

test('daily profile - snapshot: the day being accumulated, the offsets, skill and pattern come back; learning goes on the same', () => {
  const p = new DailyProfile()
  const rnd = createRandom(4)
  const at = (k: number): number => T0 + k * 600_000 // every 10 minutes
  // Two and a half days: the profile is on (pattern cycle), and half a day is being accumulated.
  for (let k = 0; k < 360; k++) p.learn('s', cycle(at(k)) + 0.1 * rnd.normal(), at(k))
  assert.equal(p.pattern('s'), 'cycle')
  assert.equal(p.snapshot('unknown'), null)
  const bytes = p.snapshot('s') as Uint8Array
  // Header 6; bins 1; day 8; days 1; skill 8; pattern 1; used bins 3 + 12 × (1 + 8); seen 3; offsets 3 + 24 × 8; checksum 4.
  assert.equal(bytes.length, 6 + 1 + 8 + 1 + 8 + 1 + 3 + 12 * 9 + 3 + 3 + 24 * 8 + 4)
  const q = new DailyProfile()
  q.restore('s', bytes)
  assert.equal(q.skill('s'), p.skill('s'))
  for (let k = 360; k < 700; k++) {
    const v = cycle(at(k)) + 0.1 * rnd.normal()
    assert.equal(q.offset('s', at(k)), p.offset('s', at(k)))
    assert.equal(q.uncertainty('s', at(k)), p.uncertainty('s', at(k)))
    assert.equal(q.learn('s', v, at(k)), p.learn('s', v, at(k)))
  }
  assert.deepEqual(q.snapshot('s'), p.snapshot('s'))
  const hourly = new DailyProfile({ bins: 48 })
  assert.throws(() => { hourly.restore('s', bytes) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'seasonal.bins: a profile of 24 bins, this one has 48' })
  assert.equal(hourly.size, 0)
})
