import { test } from 'node:test'
import assert from 'node:assert/strict'
import { type Reading } from '../domain/index.ts'
import { RowAligner, deviceOf, type AlignedRow } from './device-align.ts'

const T0 = Date.UTC(2026, 2, 1)

function reading (sensorId: string, sensorType: string, ts: number, value: number): Reading {
  return { sensorId, sensorType, location: 'Lab', value, ts, unit: '', anomaly: null, anomalyKind: null, seq: null }
}

/** A row as [device, ms after T0, measurements joined, values joined ('-' for none), complete]. */
function brief (rows: AlignedRow[]): Array<[string, number, string, string, boolean]> {
  return rows.map(r => [r.device, r.ts - T0, r.measurements.join(','), Array.from(r.values, v => Number.isNaN(v) ? '-' : String(v)).join(','), r.complete])
}

test('deviceOf - devices, the simulator\'s co-located sensors, and sensors of no device', () => {
  assert.deepEqual(deviceOf('esp32-lab.temperature', 'temperature'), { device: 'esp32-lab', measurement: 'temperature' })
  assert.deepEqual(deviceOf('plant.line-2.co2', 'co2'), { device: 'plant.line-2', measurement: 'co2' })
  assert.deepEqual(deviceOf('skab-valve1-0.Volume Flow RateRMS', 'Volume Flow RateRMS'), { device: 'skab-valve1-0', measurement: 'Volume Flow RateRMS' })
  assert.deepEqual(deviceOf('temperature-server-room-01', 'temperature'), { device: 'sim-server-room-01', measurement: 'temperature' })
  assert.equal(deviceOf('replay', 'temperature'), null)
  assert.equal(deviceOf('temperature', 'temperature'), null)
  assert.equal(deviceOf('lab.', 'co2'), null)
  // Connected devices only (the live worker's default): the simulator's sensors are of no device.
  assert.equal(deviceOf('temperature-server-room-01', 'temperature', false), null)
  assert.deepEqual(deviceOf('esp32-lab.temperature', 'temperature', false), { device: 'esp32-lab', measurement: 'temperature' })
  const connected = new RowAligner({ simulated: false })
  assert.deepEqual(brief(connected.push(reading('co2-lab-01', 'co2', T0, 400))), [])
  assert.deepEqual(brief(connected.flush()), [])
  assert.equal(connected.size, 0)
})

test('RowAligner - readings with the same event time make one row per device; a row closes once complete', () => {
  const a = new RowAligner()
  const out: AlignedRow[] = []
  const feed = (r: Reading): number => { const n = out.length; a.push(r, out); return out.length - n }
  // One telemetry message per device per second, two devices interleaved.
  assert.equal(feed(reading('esp32-lab.temperature', 'temperature', T0, 22)), 0)
  assert.equal(feed(reading('node-2.co2', 'co2', T0, 600)), 0)
  assert.equal(feed(reading('esp32-lab.humidity', 'humidity', T0, 40)), 0) // the first row waits: its list may still grow
  assert.equal(feed(reading('node-2.temperature', 'temperature', T0, 21)), 0)
  assert.equal(feed(reading('esp32-lab.temperature', 'temperature', T0 + 1000, 22.1)), 1)
  assert.equal(feed(reading('esp32-lab.humidity', 'humidity', T0 + 1000, 41)), 1) // complete: out at once
  assert.equal(feed(reading('node-2.co2', 'co2', T0 + 1000, 610)), 1)
  assert.equal(feed(reading('node-2.temperature', 'temperature', T0 + 1000, 21.5)), 1)
  assert.equal(feed(reading('replay', 'temperature', T0 + 1000, 5)), 0) // no device
  assert.deepEqual(brief(out), [
    ['esp32-lab', 0, 'temperature,humidity', '22,40', true],
    ['esp32-lab', 1000, 'temperature,humidity', '22.1,41', true],
    ['node-2', 0, 'co2,temperature', '600,21', true],
    ['node-2', 1000, 'co2,temperature', '610,21.5', true]
  ])
  assert.deepEqual(a.flush(), [])
  assert.equal(a.size, 2)
  assert.deepEqual(a.measurementsOf('node-2'), ['co2', 'temperature'])
})

test('RowAligner - de-phased sensors of one node: one row per period once the cadence is known', () => {
  // The simulator's co-located sensors: 1 Hz each, at 100, 400 and 700 ms into every second.
  const a = new RowAligner()
  const out: AlignedRow[] = []
  for (let k = 0; k < 6; k++) {
    a.push(reading('temperature-lab-01', 'temperature', T0 + k * 1000 + 100, 20 + k), out)
    a.push(reading('co2-lab-01', 'co2', T0 + k * 1000 + 400, 600 + k), out)
    a.push(reading('humidity-lab-01', 'humidity', T0 + k * 1000 + 700, 40 + k), out)
  }
  a.flush(out)
  // Until a sensor has 3 intervals (its 4th reading, at 3100 ms), only the same event time joins a
  // row; from then on, readings within 0.9 × 1 s of a row's first one join it.
  assert.deepEqual(brief(out), [
    ['sim-lab-01', 100, 'temperature,co2', '20,-', false],
    ['sim-lab-01', 400, 'temperature,co2,humidity', '-,600,-', false],
    ['sim-lab-01', 700, 'temperature,co2,humidity', '-,-,40', false],
    ['sim-lab-01', 1100, 'temperature,co2,humidity', '21,-,-', false],
    ['sim-lab-01', 1400, 'temperature,co2,humidity', '-,601,-', false],
    ['sim-lab-01', 1700, 'temperature,co2,humidity', '-,-,41', false],
    ['sim-lab-01', 2100, 'temperature,co2,humidity', '22,-,-', false],
    ['sim-lab-01', 2400, 'temperature,co2,humidity', '-,602,-', false],
    ['sim-lab-01', 2700, 'temperature,co2,humidity', '23,603,42', true],
    ['sim-lab-01', 3700, 'temperature,co2,humidity', '24,604,43', true],
    ['sim-lab-01', 4700, 'temperature,co2,humidity', '25,605,44', true],
    ['sim-lab-01', 5700, 'temperature,co2,humidity', '-,-,45', false]
  ])
  assert.equal(a.cadenceOf('sim-lab-01'), 1000)
})

test('RowAligner - a reading older than the device\'s last row is left out; a measurement gone for good leaves the list', () => {
  const a = new RowAligner({ dropAfterRows: 3 })
  const out: AlignedRow[] = []
  for (let k = 0; k < 3; k++) {
    a.push(reading('d.a', 'a', T0 + k * 1000, k), out)
    a.push(reading('d.b', 'b', T0 + k * 1000, 10 + k), out)
  }
  a.push(reading('d.b', 'b', T0 + 500, 99), out) // late: rows up to 1000 ms are closed
  assert.equal(a.late, 1)
  // b stops reporting: rows miss it 3 times, then the device is `a` alone.
  for (let k = 3; k < 8; k++) a.push(reading('d.a', 'a', T0 + k * 1000, k), out)
  a.flush(out)
  assert.deepEqual(brief(out), [
    ['d', 0, 'a,b', '0,10', true],
    ['d', 1000, 'a,b', '1,11', true],
    ['d', 2000, 'a,b', '2,12', true],
    ['d', 3000, 'a,b', '3,-', false],
    ['d', 4000, 'a,b', '4,-', false],
    ['d', 5000, 'a,b', '5,-', false],
    ['d', 6000, 'a', '6', true],
    ['d', 7000, 'a', '7', true]
  ])
  assert.deepEqual(a.measurementsOf('d'), ['a'])
  assert.throws(() => new RowAligner({ tolerance: 1 }), { code: 'IOT_ERR_ANOMALY_CONFIG' })
})
