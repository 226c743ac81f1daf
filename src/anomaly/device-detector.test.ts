import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom, type Reading } from '../domain/index.ts'
import { DeviceDetector, formatContributions, type DeviceVerdict } from './device-detector.ts'

const T0 = Date.UTC(2026, 2, 1)

function reading (sensorId: string, ts: number, value: number): Reading {
  const sensorType = sensorId.slice(sensorId.lastIndexOf('.') + 1)
  return { sensorId, sensorType, location: 'Lab', value, ts, unit: '', anomaly: null, anomalyKind: null, seq: null }
}

/** Readings of devices `lab` and `ok` (a, b = 2a, c = a/2 with noise; 1 Hz, one message per second each); lab's b flips sign in rows 1050-1069. */
function readings (rows: number): Reading[] {
  const out: Reading[] = []
  const rnd = { lab: createRandom(3), ok: createRandom(4) }
  for (let i = 0; i < rows; i++) {
    for (const device of ['lab', 'ok'] as const) {
      const r = rnd[device]
      const a = Math.sin(2 * Math.PI * i / 200) + 0.1 * r.normal()
      const b = 2 * a + 0.1 * r.normal()
      const c = 0.5 * a + 0.05 * r.normal()
      const broken = device === 'lab' && i >= 1050 && i < 1070
      const ts = T0 + i * 1000
      out.push(reading(`${device}.a`, ts, a), reading(`${device}.b`, ts, broken ? -b : b), reading(`${device}.c`, ts, c))
    }
  }
  return out
}

test('device detector - readings aligned per device: the device whose measurement breaks its correlation alarms, the other does not', () => {
  const d = new DeviceDetector()
  const verdicts: DeviceVerdict[] = [...d.pushMany(readings(1200)), ...d.flush()]
  assert.equal(verdicts.length, 2400)
  const rowOf = (v: DeviceVerdict): number => (v.ts - T0) / 1000
  const lab = verdicts.filter(v => v.device === 'lab')
  const ok = verdicts.filter(v => v.device === 'ok')
  assert.deepEqual(lab.map(rowOf), Array.from({ length: 1200 }, (_, i) => i))
  assert.deepEqual(lab.filter(v => v.anomaly).map(rowOf), Array.from({ length: 20 }, (_, k) => 1054 + k))
  assert.deepEqual(ok.filter(v => v.anomaly).map(rowOf), [])
  const first = lab[1054]!
  assert.deepEqual(first.measurements, ['a', 'b', 'c'])
  assert.equal(first.complete, true)
  assert.equal(first.modelVersion, 'lab#7')
  assert.equal(first.explanation, 'device 0.64 (lab#7): b -0.79σ (others imply +0.81σ) 96%')
  assert.equal(first.contributions[0]?.measurement, 'b')
  // Rows before the first model (400 rows) are not scored.
  assert.equal(lab[399]!.score, null)
  assert.equal(typeof lab[400]!.score, 'number')
  assert.equal(d.modelsTrained, 16)
  assert.deepEqual(d.devices().map(s => [s.device, s.measurements.join(','), s.rows, s.models, s.modelVersion]), [
    ['lab', 'a,b,c', 1200, 8, 'lab#8'],
    ['ok', 'a,b,c', 1200, 8, 'ok#8']
  ])
})

test('device detector - rows given whole: a missing value is not scored, a new list of measurements starts afresh', () => {
  const d = new DeviceDetector({ firstRows: 20, retrainRows: 10 })
  const rnd = createRandom(9)
  let v: DeviceVerdict | null = null
  for (let i = 0; i < 30; i++) v = d.scoreRow('pump', T0 + i * 1000, ['flow', 'current'], [10 + rnd.normal(), 2 + 0.1 * rnd.normal()])
  assert.equal(v?.modelVersion, 'pump#1')
  const missing = d.scoreRow('pump', T0 + 30_000, ['flow', 'current'], [10, NaN])
  assert.deepEqual([missing.complete, missing.score, missing.anomaly, missing.modelVersion], [false, null, false, null])
  // A third measurement: the device's model starts over (the models trained so far still count).
  const three = d.scoreRow('pump', T0 + 31_000, ['flow', 'current', 'pressure'], [10, 2, 1])
  assert.deepEqual([three.complete, three.score, three.modelVersion], [true, null, null])
  assert.equal(d.modelsTrained, 1)
  // One measurement is no device-level row.
  assert.equal(d.scoreRow('single', T0, ['flow'], [1]).score, null)
  assert.deepEqual(d.devices().map(s => s.device), ['pump'])
})

test('device detector - formatContributions', () => {
  assert.equal(formatContributions([
    { index: 2, measurement: 'co2', z: 5.23, expected: 0.4, share: 0.712 },
    { index: 0, measurement: 'humidity', z: -3.14, expected: -0.02, share: 0.2 }
  ]), 'co2 +5.2σ (others imply +0.4σ) 71%, humidity -3.1σ (others imply -0.02σ) 20%')
  assert.equal(formatContributions([]), '')
})
