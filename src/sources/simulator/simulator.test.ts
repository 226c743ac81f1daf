import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type Reading } from '../../domain/index.ts'
import {
  BACKGROUND_DRIFT_MAX,
  baseline,
  createFleet,
  dailyCycle,
  DRIFT_PEAK_SIGMAS,
  type FaultRates,
  locationOffsets,
  locations,
  type SensorType,
  sensorModels,
  sensorTypes,
  Simulator,
  type SimulatorOptions,
  SPIKE_FACTOR_MAX,
  SPIKE_FACTOR_MIN
} from './index.ts'

const START = Date.UTC(2025, 0, 15) // midnight UTC
const HOUR = 3_600_000
const NO_FAULTS: FaultRates = { spike: 0, drift: 0, stuck: 0, dropout: 0 }
/** Half-width of the "normal noise band" around the expected value, in noise sigmas. */
const BAND_SIGMAS = 4

function modelOf (r: Reading): (typeof sensorModels)[SensorType] {
  return sensorModels[r.sensorType as SensorType]
}

/** Runs the simulator, calling `fn` with each reading and the expected (noise-free) value. */
function run (opts: SimulatorOptions, count: number, fn: (r: Reading, expected: number) => void): Simulator {
  const sim = new Simulator(opts)
  for (let i = 0; i < count; i++) {
    const r = sim.next()
    fn(r, sim.expected)
  }
  return sim
}

/** Reads until event time reaches `endTs` (exclusive). */
function runUntil (opts: SimulatorOptions, endTs: number, fn: (r: Reading, expected: number) => void): Simulator {
  const sim = new Simulator(opts)
  while (sim.nextTs < endTs) {
    const r = sim.next()
    fn(r, sim.expected)
  }
  return sim
}

describe('fleet', () => {
  test('25 sensors: the original fleet, 5 per location and 5 per type, with units', () => {
    const fleet = createFleet(25)
    assert.equal(fleet.length, 25)
    for (const location of locations) {
      assert.deepEqual(fleet.filter(s => s.location === location).map(s => s.sensorType), [...sensorTypes])
    }
    for (const type of sensorTypes) {
      assert.deepEqual(fleet.filter(s => s.sensorType === type).map(s => s.location), [...locations])
    }
    const units = Object.fromEntries(fleet.map(s => [s.sensorType, s.unit]))
    assert.deepEqual(units, { temperature: '°C', humidity: '%', air_quality: 'AQI', pressure: 'hPa', co2: 'ppm' })
    assert.deepEqual(fleet[0], { id: 'temperature-server-room-01', sensorType: 'temperature', location: 'Server Room', unit: '°C' })
    assert.equal(fleet[7]?.id, 'air_quality-office-floor-3-01')
    assert.equal(fleet[24]?.id, 'co2-manufacturing-01')
  })

  test('larger fleets add sensors per (location, type) with unique stable ids', () => {
    const fleet = createFleet(100)
    assert.equal(new Set(fleet.map(s => s.id)).size, 100)
    assert.equal(fleet[25]?.id, 'temperature-server-room-02')
    assert.equal(fleet[99]?.id, 'co2-manufacturing-04')
    assert.deepEqual(createFleet(25), fleet.slice(0, 25), 'ids do not depend on the fleet size')
    const big = createFleet(10_000)
    assert.equal(new Set(big.map(s => s.id)).size, 10_000)
    assert.equal(big[9_999]?.id, 'co2-manufacturing-400')
    assert.equal(big.filter(s => s.sensorType === 'pressure' && s.location === 'Warehouse').length, 400)
  })

  test('the tables keep every labelled anomaly out of the normal band and within bounds', () => {
    for (const location of locations) {
      for (const type of sensorTypes) {
        const m = sensorModels[type]
        const level = m.base + locationOffsets[location][type]
        const lo = level - Math.abs(m.amplitude) - BACKGROUND_DRIFT_MAX
        const hi = level + Math.abs(m.amplitude) + BACKGROUND_DRIFT_MAX
        const band = BAND_SIGMAS * m.noise
        const where = `${location} ${type}`
        assert.ok(lo - band > m.min && hi + band < m.max, `${where}: normal band inside bounds`)
        assert.ok(lo > 0, `${where}: positive normal values`)
        // Upward spike: at least (1.5 - 1) × expected away.
        assert.ok(lo * (SPIKE_FACTOR_MIN - 1) > band, `${where}: upward spike clear of band`)
        // Downward spike (expected × f > max): e(1 - 1/f) > max (f - 1) / f² ≥ 2/9 max.
        if (hi * SPIKE_FACTOR_MAX > m.max) {
          assert.ok(m.max * 2 / 9 > band, `${where}: downward spike clear of band`)
          assert.ok(lo / SPIKE_FACTOR_MAX > m.min, `${where}: downward spike within bounds`)
        }
        // Drift to ±6 sigma plus noise stays within the bounds in at least one direction.
        const reach = (DRIFT_PEAK_SIGMAS + BAND_SIGMAS) * m.noise
        assert.ok(hi + reach < m.max || lo - reach > m.min, `${where}: drift room`)
      }
    }
  })
})

describe('determinism', () => {
  test('same options give identical readings; another seed differs', () => {
    const opts: SimulatorOptions = { sensors: 25, ratePerSensor: 1, seed: 7, startTs: START }
    const a = new Simulator(opts)
    const b = new Simulator(opts)
    const c = new Simulator({ ...opts, seed: 8 })
    let differ = 0
    for (let i = 0; i < 10_000; i++) {
      const ra = a.next()
      assert.deepEqual(b.next(), ra)
      const rc = c.next()
      assert.equal(rc.ts, ra.ts, 'the schedule depends on the fleet and rate only')
      if (rc.value !== ra.value) differ++
    }
    assert.ok(differ > 9_900, `a different seed gives different values (${differ})`)
  })

  test('first round: every sensor once with seq 0, evenly spaced timestamps', () => {
    const sim = new Simulator({ sensors: 25, ratePerSensor: 1, seed: 1, startTs: START })
    const seen = new Set<string>()
    for (let g = 0; g < 25; g++) {
      assert.equal(sim.nextTs, START + 40 * g)
      const r = sim.next()
      assert.equal(r.ts, START + 40 * g)
      assert.equal(r.seq, 0)
      seen.add(r.sensorId)
    }
    assert.deepEqual([...seen].sort(), createFleet(25).map(s => s.id).sort())
    assert.equal(sim.next().seq, 1)
  })

  test('rejects bad options', () => {
    assert.throws(() => new Simulator({ sensors: 0, startTs: START }), RangeError)
    assert.throws(() => new Simulator({ sensors: 2.5, startTs: START }), RangeError)
    assert.throws(() => new Simulator({ ratePerSensor: 0, startTs: START }), RangeError)
    assert.throws(() => new Simulator({ startTs: 1.5 }), RangeError)
    assert.throws(() => new Simulator({ startTs: START, faults: { spike: 1.1 } }), RangeError)
    assert.throws(() => new Simulator({ startTs: START, faults: { drift: -1 } }), RangeError)
  })
})

describe('schedule', () => {
  function checkSchedule (sensors: number, rate: number, hours: number, expected: number): void {
    const lastTs = new Map<string, number>()
    const lastSeq = new Map<string, number>()
    let count = 0
    let prevTs = -Infinity
    const gaps = new Set<number>()
    runUntil({ sensors, ratePerSensor: rate, seed: 3, startTs: START }, START + hours * HOUR, r => {
      count++
      assert.ok(r.ts >= prevTs, 'non-decreasing event time')
      assert.ok(Number.isInteger(r.ts))
      prevTs = r.ts
      const seq = lastSeq.get(r.sensorId)
      assert.equal(r.seq, seq === undefined ? 0 : seq + 1, 'contiguous per-sensor seq')
      lastSeq.set(r.sensorId, r.seq ?? -1)
      const ts = lastTs.get(r.sensorId)
      if (ts !== undefined) gaps.add(r.ts - ts)
      lastTs.set(r.sensorId, r.ts)
    })
    assert.equal(count, expected)
    assert.equal(lastSeq.size, sensors)
    const interval = 1000 / rate
    for (const gap of gaps) assert.ok(Math.abs(gap - interval) <= 1, `per-sensor interval ${gap}`)
  }

  test('25 sensors at 2/s for one hour: 180,000 readings in order', () => {
    checkSchedule(25, 2, 1, 180_000)
  })

  test('7 sensors at 3/s for one hour: 75,600 readings (non-integer interval)', () => {
    checkSchedule(7, 3, 1, 75_600)
  })

  test('10,000 sensors are de-phased: many distinct timestamps per interval', () => {
    const sim = new Simulator({ sensors: 10_000, ratePerSensor: 1, seed: 3, startTs: START })
    const stamps = new Set<number>()
    for (let i = 0; i < 10_000; i++) stamps.add(sim.next().ts)
    assert.equal(stamps.size, 1000) // 10 readings per millisecond
  })
})

describe('spikes', () => {
  test('5% of readings by default, each a clear factor-rule spike, values within bounds', () => {
    const n = 400_000
    let spikes = 0
    let down = 0
    run({ sensors: 25, ratePerSensor: 1, seed: 11, startTs: START, faults: { ...NO_FAULTS, spike: 0.05 } }, n, (r, e) => {
      const m = modelOf(r)
      assert.ok(r.value >= m.min && r.value <= m.max, `${r.sensorId} ${r.value} within bounds`)
      if (!r.anomaly) {
        assert.equal(r.anomalyKind, null)
        return
      }
      assert.equal(r.anomalyKind, 'spike')
      spikes++
      const eps = 1e-9
      if (r.value > e) {
        const f = r.value / e
        assert.ok(f >= SPIKE_FACTOR_MIN - eps && f <= SPIKE_FACTOR_MAX + eps, `upward factor ${f}`)
      } else {
        down++
        const f = e / r.value
        assert.ok(f >= SPIKE_FACTOR_MIN - eps && f <= SPIKE_FACTOR_MAX + eps, `downward factor ${f}`)
        assert.ok(e * f > m.max, 'downward only when the upward spike would leave the bounds')
      }
      assert.ok(Math.abs(r.value - e) > BAND_SIGMAS * m.noise, 'outside the normal band')
    })
    const rate = spikes / n
    assert.ok(Math.abs(rate - 0.05) < 0.0025, `spike rate ${rate}`)
    assert.ok(down > 0, 'humidity and pressure spikes sometimes go down')
  })

  test('with all faults on: labelled spikes and dropouts lie outside the band, others in bounds', () => {
    const counts = new Map<string, number>()
    let normal = 0
    let outside = 0
    run({ sensors: 25, ratePerSensor: 1, seed: 12, startTs: START }, 500_000, (r, e) => {
      const m = modelOf(r)
      const kind = r.anomalyKind ?? 'normal'
      counts.set(kind, (counts.get(kind) ?? 0) + 1)
      assert.equal(r.anomaly, r.anomalyKind !== null)
      if (kind !== 'dropout') assert.ok(r.value >= m.min && r.value <= m.max)
      if (kind === 'spike' || kind === 'dropout') assert.ok(Math.abs(r.value - e) > BAND_SIGMAS * m.noise)
      if (kind === 'normal') {
        normal++
        if (Math.abs(r.value - e) > BAND_SIGMAS * m.noise) outside++
      }
    })
    // Spikes are 5% of the readings outside episodes.
    const spikes = counts.get('spike') ?? 0
    const inEpisodes = (counts.get('drift') ?? 0) + (counts.get('stuck') ?? 0) + (counts.get('dropout') ?? 0)
    assert.ok(inEpisodes > 0)
    const rate = spikes / (500_000 - inEpisodes)
    assert.ok(Math.abs(rate - 0.05) < 0.003, `spike rate outside episodes ${rate}`)
    // Normal readings are in the band (4 sigma: ~6e-5 of a Gaussian lies outside).
    assert.ok(outside / normal < 3e-4, `normal readings outside the band: ${outside}`)
  })
})

describe('episodes', () => {
  /** Consecutive labelled readings of one kind per sensor, as [reading, expected] lists. */
  function episodes (faults: FaultRates, hours: number, rate = 1, sensors = 25): Map<string, Array<Array<[Reading, number]>>> {
    const open = new Map<string, Array<[Reading, number]>>()
    const out = new Map<string, Array<Array<[Reading, number]>>>()
    const close = (id: string): void => {
      const ep = open.get(id)
      if (ep === undefined) return
      const kind = ep[0]?.[0].anomalyKind ?? ''
      out.set(kind, [...(out.get(kind) ?? []), ep])
      open.delete(id)
    }
    runUntil({ sensors, ratePerSensor: rate, seed: 21, startTs: START, faults }, START + hours * HOUR, (r, e) => {
      const ep = open.get(r.sensorId)
      if (r.anomalyKind === null || (ep !== undefined && ep[0]?.[0].anomalyKind !== r.anomalyKind)) close(r.sensorId)
      if (r.anomalyKind !== null) {
        const cur = open.get(r.sensorId) ?? []
        cur.push([r, e])
        open.set(r.sensorId, cur)
      }
    })
    for (const id of [...open.keys()]) close(id)
    return out
  }

  test('stuck episodes repeat exactly the last normal value', () => {
    const lastNormal = new Map<string, number>()
    let stuck = 0
    let runs = 0
    const inRun = new Set<string>()
    runUntil({ sensors: 25, seed: 5, startTs: START, faults: { ...NO_FAULTS, stuck: 6 } }, START + 2 * HOUR, r => {
      assert.ok(r.anomalyKind === null || r.anomalyKind === 'stuck')
      if (r.anomalyKind === 'stuck') {
        stuck++
        assert.equal(r.anomaly, true)
        if (!inRun.has(r.sensorId)) runs++
        inRun.add(r.sensorId)
        assert.equal(r.value, lastNormal.get(r.sensorId), 'exactly the last normal value')
      } else {
        inRun.delete(r.sensorId)
        lastNormal.set(r.sensorId, r.value)
      }
    })
    assert.ok(runs > 100, `stuck episodes: ${runs}`)
    assert.ok(stuck / runs >= 60 && stuck / runs <= 180, `mean stuck length ${stuck / runs}`)
  })

  test('dropout episodes read 0 for a few readings', () => {
    const eps = episodes({ ...NO_FAULTS, dropout: 6 }, 2)
    assert.deepEqual([...eps.keys()], ['dropout'])
    const list = eps.get('dropout') ?? []
    assert.ok(list.length > 100)
    for (const ep of list) {
      assert.ok(ep.length >= 1 && ep.length <= 60, `dropout length ${ep.length}`)
      for (const [r] of ep) assert.equal(r.value, 0)
    }
  })

  test('drift episodes ramp away from normal to about 6 sigma, labelled from 1 sigma', () => {
    const eps = episodes({ ...NO_FAULTS, drift: 6 }, 3)
    assert.deepEqual([...eps.keys()], ['drift'])
    const list = eps.get('drift') ?? []
    assert.ok(list.length > 100)
    let peak = 0
    let first = 0
    for (const ep of list) {
      const sigma = modelOf(ep[0]?.[0] as Reading).noise
      const offsets = ep.map(([r, e]) => (r.value - e) / sigma)
      // The ramp is linear from 1 to 6 sigma: compare the first and last thirds.
      const third = Math.floor(offsets.length / 3)
      const head = offsets.slice(0, third).reduce((a, b) => a + b, 0) / third
      const tail = offsets.slice(-third).reduce((a, b) => a + b, 0) / third
      assert.ok(Math.abs(tail) > Math.abs(head), 'moves away from normal')
      assert.ok(Math.sign(head) === Math.sign(tail))
      // Signed along the episode's direction, so the noise averages out.
      peak += Math.sign(tail) * (offsets[offsets.length - 1] ?? 0)
      first += Math.sign(tail) * (offsets[0] ?? 0)
    }
    // Averaged over episodes the noise cancels: last reading at 6 sigma, first at ~1 sigma.
    assert.ok(Math.abs(peak / list.length - DRIFT_PEAK_SIGMAS) < 0.3, `mean peak ${peak / list.length} sigma`)
    assert.ok(Math.abs(first / list.length - 1) < 0.3, `mean first labelled offset ${first / list.length} sigma`)
  })

  test('episode kinds appear only when their rate is positive', () => {
    for (const off of ['drift', 'stuck', 'dropout', 'spike'] as const) {
      const seen = new Set<string>()
      run({ sensors: 25, seed: 9, startTs: START, faults: { drift: 2, stuck: 2, dropout: 2, [off]: 0 } }, 300_000, r => {
        if (r.anomalyKind !== null) seen.add(r.anomalyKind)
      })
      const expected = ['drift', 'dropout', 'spike', 'stuck'].filter(k => k !== off)
      assert.deepEqual([...seen].sort(), expected, `with ${off} off`)
    }
    let any = false
    run({ sensors: 25, seed: 9, startTs: START, faults: NO_FAULTS }, 300_000, r => {
      any ||= r.anomaly !== false || r.anomalyKind !== null
    })
    assert.equal(any, false, 'no labels with all rates 0')
  })

  test('episodes start at the configured rate per sensor-hour of event time', () => {
    // 100 sensors × 5 h, stuck at 2/h, mean duration 120 s: renewal rate 1 / (1800 s + 120 s).
    const list = episodes({ ...NO_FAULTS, stuck: 2 }, 5, 0.2, 100).get('stuck') ?? []
    const expected = 100 * 5 * 3600 / (1800 + 120)
    assert.ok(Math.abs(list.length / expected - 1) < 0.1, `${list.length} episodes, expected ~${expected}`)
  })
})

describe('daily cycle', () => {
  test('dailyCycle and baseline: exact values', () => {
    assert.equal(dailyCycle(START + 14 * HOUR), 1)
    assert.equal(dailyCycle(START + 2 * HOUR), -1)
    assert.equal(dailyCycle(START + 8 * HOUR), 0)
    assert.equal(dailyCycle(START - 10 * HOUR), 1) // 14:00 of the previous day
    assert.equal(baseline('temperature', 'Server Room', START + 14 * HOUR), 21)
    assert.equal(baseline('temperature', 'Manufacturing', START + 2 * HOUR), 25)
    assert.equal(baseline('humidity', 'Warehouse', START + 14 * HOUR), 52)
    assert.equal(baseline('co2', 'Office Floor 3', START + 8 * HOUR), 600)
  })

  test('temperature at 14:00 UTC is 2 × 3 °C above 02:00 UTC', () => {
    // 1000 sensors (200 thermometers), one reading a minute, from 01:50 to 14:10.
    const at = (h: number, ts: number): boolean => Math.abs(ts - (START + h * HOUR)) < 10 * 60_000
    const sums = { night: 0, nightN: 0, day: 0, dayN: 0 }
    const opts: SimulatorOptions = { sensors: 1000, ratePerSensor: 1 / 60, seed: 4, startTs: START + 110 * 60_000, faults: NO_FAULTS }
    runUntil(opts, START + 14 * HOUR + 10 * 60_000, r => {
      if (r.sensorType !== 'temperature') return
      if (at(2, r.ts)) { sums.night += r.value; sums.nightN++ }
      if (at(14, r.ts)) { sums.day += r.value; sums.dayN++ }
    })
    assert.ok(sums.nightN > 3000 && sums.dayN > 3000)
    const diff = sums.day / sums.dayN - sums.night / sums.nightN
    // Cycle: 6 × cos(≤ 10 min of 24 h) ≈ 6; drift of 200 walks over 12 h averages out (sd ~0.1).
    assert.ok(Math.abs(diff - 6) < 0.5, `14:00 − 02:00 = ${diff}`)
  })

  test('smooth: no step at hour boundaries', () => {
    for (let h = 0; h < 24; h++) {
      const ts = START + h * HOUR
      const step = Math.abs(baseline('temperature', 'Warehouse', ts) - baseline('temperature', 'Warehouse', ts - 1000))
      assert.ok(step < 3e-4, `step at ${h}:00 is ${step}`) // 3 °C × 2π / 86400 per second ≈ 2.2e-4
    }
    // Noise-free values of one thermometer (cycle + background walk), one a second for 24 h.
    let prev = Number.NaN
    let sum = 0
    let max = 0
    let n = 0
    run({ sensors: 1, seed: 2, startTs: START, faults: NO_FAULTS }, 86_400, (r, e) => {
      assert.equal(r.sensorId, 'temperature-server-room-01')
      if (!Number.isNaN(prev)) {
        const d = Math.abs(e - prev)
        sum += d
        max = Math.max(max, d)
        n++
      }
      prev = e
    })
    assert.ok(sum / n < 0.05, `mean |Δ| ${sum / n}`)
    assert.ok(max < 0.25, `max |Δ| ${max}`) // an hourly step would be up to 0.78 °C
  })
})
