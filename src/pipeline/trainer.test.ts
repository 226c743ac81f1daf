import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FEATURES, ForestScorer, IsolationForest, decodeModel, type MlScore } from '../anomaly/index.ts'
import { createRandom, type Reading } from '../domain/index.ts'
import { ThreadTrainer } from './trainer.ts'

test('thread trainer - fits on a worker thread exactly what an inline fit with the same seed gives', async () => {
  const rnd = createRandom(4)
  const rows = new Float32Array(300 * FEATURES).map(() => rnd.normal())
  const inline = IsolationForest.fit(rows, FEATURES, { nEstimators: 25, contamination: 0.05, random: createRandom(77) })
  const trainer = new ThreadTrainer()
  await trainer.ready()
  try {
    const jobs = [77, 78].map(seed => trainer.train({
      key: 'k', sequence: 1, trainedAt: 0, rows: rows.slice(), samples: 300, nEstimators: 25, maxSamples: 256, contamination: 0.05, seed
    }))
    const [same, other] = await Promise.all(jobs)
    assert.deepEqual(same!.forest.toJSON(), inline.toJSON())
    assert.equal(same!.forest.offset, inline.offset)
    assert.deepEqual(same!.forest.scoreSamples(rows), inline.scoreSamples(rows), 'rebuilt from typed arrays, it scores alike')
    assert.deepEqual(decodeModel(same!.encoded!), inline.toJSON(), 'the stored form made on the thread')
    assert.notDeepEqual(other!.forest.toJSON(), inline.toJSON())
    // A bad job is rejected with a typed error; the thread keeps serving.
    await assert.rejects(trainer.train({ key: 'k', sequence: 2, trainedAt: 0, rows: new Float32Array(0), samples: 0, nEstimators: 5, maxSamples: 256, contamination: 0.05, seed: 1 }),
      { code: 'IOT_ERR_TRAINING' })
    const again = await trainer.train({ key: 'k', sequence: 3, trainedAt: 0, rows: rows.slice(), samples: 300, nEstimators: 25, maxSamples: 256, contamination: 0.05, seed: 77 })
    assert.deepEqual(again.forest.toJSON(), inline.toJSON())
  } finally {
    await trainer.close()
  }
  await assert.rejects(trainer.train({ key: 'k', sequence: 4, trainedAt: 0, rows, samples: 300, nEstimators: 5, maxSamples: 256, contamination: 0.05, seed: 1 }),
    { code: 'IOT_ERR_TRAINING' })
})

test('thread trainer - the live worker\'s scorer follows the same retraining rule as inline training: same models, same scores', async () => {
  const T0 = Date.UTC(2026, 0, 1)
  const rnd = createRandom(5)
  const stream = Array.from({ length: 3000 }, (_, i) => {
    const f = new Float32Array(FEATURES).map(() => rnd.normal())
    const reading: Reading = { sensorId: 's', sensorType: 'temperature', location: 'Lab', value: 20, ts: T0 + i * 60_000, unit: '°C', anomaly: null, anomalyKind: null, seq: null }
    return { reading, f }
  })
  const options = { nEstimators: 10 }
  const inline = new ForestScorer(options)
  const expected = stream.map(({ reading, f }) => inline.score(reading, f))
  const trainer = new ThreadTrainer()
  await trainer.ready()
  try {
    const live = new ForestScorer(options, trainer)
    const got: Array<MlScore | null> = []
    for (const { reading, f } of stream) {
      got.push(live.score(reading, f))
      // The training asked for at this reading is installed before the next one.
      await live.settled()
    }
    // Inline, the reading that triggers a training is scored by the new model; live, by the one before
    // (training never waits). Every other reading gets the same model and score.
    const differ = got.map((x, i) => x?.modelVersion === expected[i]?.modelVersion && x?.score === expected[i]?.score ? -1 : i).filter(i => i >= 0)
    assert.deepEqual(differ, [50, 100, 200, 400, 800, 1600, 2600])
    assert.deepEqual(differ.map(i => got[i]?.modelVersion ?? null), [null, 'temperature#1', 'temperature#2', 'temperature#3', 'temperature#4', 'temperature#5', 'temperature#6'])
    // At 1 min cadence: rows 50, 100, 200, 400, 800, 1600, 2600 (not every row, as the 5-minute rule alone did).
    assert.deepEqual(live.drainTrained().map(m => [m.version, m.samples, m.trainedAt - T0]), [50, 100, 200, 400, 800, 1600, 2600]
      .map((row, k) => [`temperature#${k + 1}`, Math.min(row, 1000), row * 60_000]))
    assert.deepEqual(inline.drainTrained().map(m => m.trainedAt - T0), [50, 100, 200, 400, 800, 1600, 2600].map(row => row * 60_000))
  } finally {
    await trainer.close()
  }
})
