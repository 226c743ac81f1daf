import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  DeviceDetector, FEATURES, ForestScorer, IsolationForest, decodeDeviceModel, decodeModel, encodeDeviceModel, type DeviceTrainingJob, type DeviceVerdict, type TrainingJob
} from '../anomaly/index.ts'
import { createRandom, type Reading } from '../domain/index.ts'
import { ThreadTrainer } from './trainer.ts'

const job = (seed: number, rows: Float32Array, samples = 300, nEstimators = 25): TrainingJob =>
  ({ key: 'k', sequence: 1, trainedAt: 0, rows, samples, nEstimators, maxSamples: 256, contamination: 0.05, seed })

test('thread trainer - fits on a worker thread exactly what an inline fit with the same seed gives', async () => {
  const rnd = createRandom(4)
  const rows = new Float32Array(300 * FEATURES).map(() => rnd.normal())
  const inline = IsolationForest.fit(rows, FEATURES, { nEstimators: 25, contamination: 0.05, random: createRandom(77) })
  const trainer = new ThreadTrainer()
  await trainer.ready()
  try {
    const same = trainer.start(job(77, rows))
    const other = trainer.start(job(78, rows))
    const dropped = trainer.start(job(79, rows))
    rows.fill(0) // the trainer copied the rows when the fit started
    dropped.cancel()
    // Taken out of order: the first waits on this thread for its reply, the second is there by then.
    const second = other.take()
    const first = same.take()
    assert.deepEqual(first.forest.toJSON(), inline.toJSON())
    assert.equal(first.forest.offset, inline.offset)
    assert.deepEqual(decodeModel(first.encoded!), inline.toJSON(), 'the stored form made on the thread')
    assert.notDeepEqual(second.forest.toJSON(), inline.toJSON())
    // A bad job fails with a typed error when taken; the thread keeps serving.
    const bad = trainer.start(job(1, new Float32Array(0), 0, 5))
    assert.throws(() => bad.take(), { code: 'IOT_ERR_TRAINING' })
    const r2 = createRandom(4)
    const again = trainer.start(job(77, new Float32Array(300 * FEATURES).map(() => r2.normal()))).take()
    assert.deepEqual(again.forest.toJSON(), inline.toJSON())
    assert.ok(trainer.waits >= 1, 'taken at once after starting: it waited')
  } finally {
    await trainer.close()
  }
  // Closed: a fit fails when taken, at once.
  assert.throws(() => trainer.start(job(1, rows)).take(), { code: 'IOT_ERR_TRAINING' })
})

test('thread trainer - the live worker\'s scorer gives exactly the inline scorer\'s models and scores, row for row', async () => {
  const T0 = Date.UTC(2026, 0, 1)
  const rnd = createRandom(5)
  const stream = Array.from({ length: 3000 }, (_, i) => {
    const f = new Float32Array(FEATURES).map(() => rnd.normal())
    const reading: Reading = { sensorId: 's', sensorType: 'temperature', location: 'Lab', value: 20, ts: T0 + i * 60_000, unit: '°C', anomaly: null, anomalyKind: null, seq: null }
    return { reading, f }
  })
  const options = { nEstimators: 10, installAfterRows: 20 }
  const inline = new ForestScorer(options)
  const expected = stream.map(({ reading, f }) => inline.score(reading, f))
  const trainer = new ThreadTrainer()
  await trainer.ready()
  try {
    const live = new ForestScorer(options, trainer)
    const got = stream.map(({ reading, f }) => live.score(reading, f))
    assert.deepEqual(got.map(x => [x?.modelVersion ?? null, x?.score ?? null]), expected.map(x => [x?.modelVersion ?? null, x?.score ?? null]))
    // Asked for at rows 50, 100, 200, 400, 800, 1600, 2600 (1 min cadence: the rows decide), scoring 20 rows later.
    assert.deepEqual(got.map((x, i) => x?.modelVersion !== got[i - 1]?.modelVersion ? i : -1).filter(i => i > 0), [70, 120, 220, 420, 820, 1620, 2620])
    assert.deepEqual(live.drainTrained().map(m => [m.version, m.samples, m.trainedAt - T0]), [50, 100, 200, 400, 800, 1600, 2600]
      .map((row, k) => [`temperature#${k + 1}`, Math.min(row, 1000), row * 60_000]))
  } finally {
    await trainer.close()
  }
})

test('thread trainer - device models fitted on the thread give the inline verdicts row for row', async () => {
  const T0 = Date.UTC(2026, 0, 1)
  // One device at 1 Hz: a (a slow cycle with noise), b = 2a, c = a/2; b flips sign in rows 2500-2519.
  const rnd = createRandom(8)
  const rows = Array.from({ length: 3000 }, (_, i) => {
    const a = Math.sin(2 * Math.PI * i / 300) + 0.1 * rnd.normal()
    const b = 2 * a + 0.1 * rnd.normal()
    const c = 0.5 * a + 0.05 * rnd.normal()
    return [a, i >= 2500 && i < 2520 ? -b : b, c]
  })
  const measurements = ['a', 'b', 'c']
  const verdict = (v: DeviceVerdict): unknown[] => [v.score, v.rowScore, v.anomaly, v.modelVersion, v.contributions]
  const inline = new DeviceDetector({}, { retainTrained: true })
  const expected = rows.map((values, i) => inline.scoreRow('lab', T0 + i * 1000, measurements, values))
  const trainer = new ThreadTrainer()
  await trainer.ready()
  try {
    const live = new DeviceDetector({}, { trainer: trainer.devices, retainTrained: true })
    const got = rows.map((values, i) => live.scoreRow('lab', T0 + i * 1000, measurements, values))
    assert.deepStrictEqual(got.map(verdict), expected.map(verdict))
    assert.deepEqual(got.filter(v => v.anomaly).map(v => (v.ts - T0) / 1000), Array.from({ length: 20 }, (_, k) => 2504 + k))
    const models = live.drainModels()
    assert.deepEqual(models.map(m => [m.version, m.trainedAt, m.samples]), inline.drainModels().map(m => [m.version, m.trainedAt, m.samples]))
    assert.equal(models.length, 18)
    assert.deepEqual([live.modelsTrained, live.trainingFailures], [18, 0])
    // A model from the thread is the inline one: its stored form reads back the same.
    const last = models.at(-1)!
    const stored = decodeDeviceModel(encodeDeviceModel(last))
    assert.deepEqual([stored.version, stored.measurements, stored.threshold, stored.center], [last.version, ['a', 'b', 'c'], last.threshold, last.center])
    assert.deepEqual(stored.newer.toJSON(), last.newer.toJSON())
    // A bad job fails with a typed error when taken; forests and device models share the thread and keep coming.
    const bad: DeviceTrainingJob = { key: 'x', measurements, sequence: 1, trainedAt: 0, rows: new Float64Array(6), m: 3, nEstimators: 4, maxSamples: 16, falseAlarmRate: 0.01, seed: 1 }
    const failed = trainer.startDevice(bad)
    const forest = trainer.start(job(77, new Float32Array(300 * FEATURES).fill(1)))
    assert.throws(() => failed.take(), { code: 'IOT_ERR_TRAINING', message: 'device x: 6 values are not 8 or more rows of 3' })
    assert.equal(forest.take().forest.nEstimators, 25)
  } finally {
    await trainer.close()
  }
  assert.throws(() => trainer.devices.start({ key: 'x', measurements, sequence: 1, trainedAt: 0, rows: new Float64Array(30), m: 3, nEstimators: 4, maxSamples: 16, falseAlarmRate: 0.01, seed: 1 }).take(), { code: 'IOT_ERR_TRAINING' })
})
