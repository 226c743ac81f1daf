import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FEATURES, IsolationForest, decodeModel } from '../anomaly/index.ts'
import { createRandom } from '../domain/index.ts'
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
