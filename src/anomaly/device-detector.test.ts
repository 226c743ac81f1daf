import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom, type Reading } from '../domain/index.ts'
import { DeviceDetector, formatContributions, type DeviceVerdict } from './device-detector.ts'
import { type StoredDeviceRow } from './device-forest.ts'
import { decodeDeviceModel, encodeDeviceModel } from './device-model-codec.ts'
import { type DeviceModel } from './device-model.ts'

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
  assert.equal(first.explanation, 'device 0.96 (lab#7): b -0.79σ (others imply +0.81σ) 83%, a +0.81σ (others imply -0.5σ) 17%')
  assert.equal(first.contributions[0]?.measurement, 'b')
  // Rows before the first model are not scored: it is asked for at row 400 and scores from row 416.
  assert.equal(lab[415]!.score, null)
  assert.equal(typeof lab[416]!.score, 'number')
  assert.equal(d.modelsTrained, 16)
  assert.deepEqual(d.devices().map(s => [s.device, s.measurements.join(','), s.rows, s.models, s.modelVersion]), [
    ['lab', 'a,b,c', 1200, 8, 'lab#8'],
    ['ok', 'a,b,c', 1200, 8, 'ok#8']
  ])
  assert.deepEqual(d.drainModels(), [], 'models are not retained by default')
})

test('device detector - rows given whole: a missing value is not scored, a new list of measurements starts afresh', () => {
  const d = new DeviceDetector({ firstRows: 20, retrainRows: 10 })
  const rnd = createRandom(9)
  let v: DeviceVerdict | null = null
  // The first model is asked for at row 20 and scores from row 36.
  for (let i = 0; i < 40; i++) v = d.scoreRow('pump', T0 + i * 1000, ['flow', 'current'], [10 + rnd.normal(), 2 + 0.1 * rnd.normal()])
  assert.equal(v?.modelVersion, 'pump#1')
  // The same measurements in another order are put in the model's order.
  const swapped = d.scoreRow('pump', T0 + 39_500, ['current', 'flow'], [2, 10])
  assert.deepEqual([swapped.measurements, [...swapped.values], swapped.modelVersion], [['flow', 'current'], [10, 2], 'pump#1'])
  const missing = d.scoreRow('pump', T0 + 40_000, ['flow', 'current'], [10, NaN])
  assert.deepEqual([missing.complete, missing.score, missing.anomaly, missing.modelVersion], [false, null, false, null])
  // A third measurement: the device's model starts over (the models trained so far still count).
  const three = d.scoreRow('pump', T0 + 41_000, ['flow', 'current', 'pressure'], [10, 2, 1])
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

/** Rows of one device (a, b = 2a, c = a/2 with noise, 1 Hz); b flips sign in the rows `broken` says. */
function deviceRows (rows: number, seed: number, broken: (i: number) => boolean): number[][] {
  const rnd = createRandom(seed)
  return Array.from({ length: rows }, (_, i) => {
    const a = Math.sin(2 * Math.PI * i / 200) + 0.1 * rnd.normal()
    const b = 2 * a + 0.1 * rnd.normal()
    const c = 0.5 * a + 0.05 * rnd.normal()
    return [a, broken(i) ? -b : b, c]
  })
}

test('device detector - restored from its own stored rows and model, it gives the uninterrupted verdicts once its last nine row scores are back', () => {
  const options = { trainingSize: 1000 }
  const measurements = ['a', 'b', 'c']
  const rows = deviceRows(3000, 21, i => (i >= 1050 && i < 1070) || (i >= 2550 && i < 2570))
  const CUT = 2000
  const live = new DeviceDetector(options, { retainTrained: true })
  const stored: StoredDeviceRow[] = []
  const models: DeviceModel[] = []
  const verdicts: DeviceVerdict[] = []
  rows.forEach((values, i) => {
    const v = live.scoreRow('lab', T0 + i * 1000, measurements, values)
    verdicts.push(v)
    if (i < CUT) {
      stored.push({ ts: v.ts, values: v.values, anomaly: v.anomaly })
      models.push(...live.drainModels())
    }
  })
  // The cut falls between two fits (asked for at rows 1920 and 2020), away from any alarm.
  assert.deepEqual(models.slice(-2).map(m => [m.version, (m.trainedAt - T0) / 1000]), [['lab#15', 1820], ['lab#16', 1920]])
  assert.equal(verdicts[CUT]!.modelVersion, 'lab#16')
  assert.deepEqual(verdicts.slice(CUT - 20, CUT + 20).filter(v => v.anomaly), [])
  assert.deepEqual(models.every(m => m.measurements.join() === 'a,b,c'), true)
  // Storage keeps the newest model's bytes and the rows (the newest 1000: the window).
  const bytes = encodeDeviceModel(models.at(-1)!)
  const restored = new DeviceDetector(options, { retainTrained: true })
  restored.restoreDevice('lab', decodeDeviceModel(bytes), stored.slice(-1000))
  assert.deepEqual(restored.devices().map(s => [s.device, s.rows, s.models, s.modelVersion]), [['lab', 1000, 0, 'lab#16']])
  const after = rows.slice(CUT).map((values, k) => restored.scoreRow('lab', T0 + (CUT + k) * 1000, measurements, values))
  const expected = verdicts.slice(CUT)
  // The model and each row's own score: the same from the first row.
  assert.deepEqual(after.map(v => [v.modelVersion, v.rowScore]), expected.map(v => [v.modelVersion, v.rowScore]))
  // The device score: the ring of the last nine row scores starts empty (zeros), so the first eight
  // read lower; from the ninth row on everything is the same, the fault at rows 2550-2569 included.
  const verdict = (v: DeviceVerdict): unknown[] => [v.score, v.rowScore, v.anomaly, v.modelVersion, v.contributions, v.explanation]
  assert.deepEqual(after.slice(8).map(verdict), expected.slice(8).map(verdict))
  for (let k = 0; k < 8; k++) assert.ok(after[k]!.score! <= expected[k]!.score!, `row ${CUT + k}`)
  assert.notDeepEqual(after.slice(0, 8).map(v => v.score), expected.slice(0, 8).map(v => v.score))
  // (The alarm starts at the 4th broken row: row 2545, before the break, had passed the threshold too.)
  assert.deepEqual(after.filter(v => v.anomaly).map(v => (v.ts - T0) / 1000), Array.from({ length: 21 }, (_, k) => 2553 + k))
  // The models trained after the restart are the live ones, at the same rows.
  const liveLater = live.drainModels()
  const restoredLater = restored.drainModels()
  assert.deepEqual(restoredLater.map(m => [m.version, m.trainedAt, m.samples, m.threshold]), liveLater.map(m => [m.version, m.trainedAt, m.samples, m.threshold]))
  assert.equal(liveLater.length, 10)
  assert.deepEqual([restored.modelsTrained, restored.trainingFailures], [10, 0])
})

test('device detector - restoreDevice without a model, and what it refuses', () => {
  const d = new DeviceDetector({ firstRows: 20, retrainRows: 10 }, { retainTrained: true })
  const rows = deviceRows(30, 5, () => false)
  // No model yet: the rows refill the window, and the first model is asked for at the next row (30 rows >= 20).
  d.restoreDevice('pump', null, rows.map((values, i) => ({ ts: T0 + i * 1000, values, anomaly: false })), ['x', 'y', 'z'])
  const v = Array.from({ length: 17 }, (_, k) => d.scoreRow('pump', T0 + (30 + k) * 1000, ['x', 'y', 'z'], [0, 0, 0]))
  assert.deepEqual([v[15]!.modelVersion, v[16]!.modelVersion], [null, 'pump#1'])
  const [model] = d.drainModels()
  assert.deepEqual([model?.version, model?.trainedAt, model?.samples, model?.measurements], ['pump#1', T0 + 30_000, 30, ['x', 'y', 'z']])
  assert.throws(() => d.restoreDevice('pump', null, []), { code: 'IOT_ERR_ANOMALY_STATE', message: 'device.pump: restoring a device without a model needs its list of measurements' })
  assert.ok(model !== undefined)
  assert.throws(() => d.restoreDevice('other', model, []), { code: 'IOT_ERR_ANOMALY_STATE', message: 'device.key: a model of "pump" restored for "other"' })
  assert.throws(() => d.restoreDevice('pump', model, [], ['x', 'z', 'y']), { code: 'IOT_ERR_ANOMALY_STATE', message: 'device.measurements: a model of x, y, z restored for x, z, y' })
  assert.throws(() => d.restoreDevice('pump', model, [{ ts: T0, values: [1, 2], anomaly: false }]), { code: 'IOT_ERR_ANOMALY_STATE', message: 'device.rows: 2 values for 3 measurements (x, y, z)' })
})
