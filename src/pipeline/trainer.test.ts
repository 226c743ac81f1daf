import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FEATURES, ForestScorer, IsolationForest, decodeModel, type TrainingJob } from '../anomaly/index.ts'
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
