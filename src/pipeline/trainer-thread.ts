// The training thread: fits Isolation Forests for the main thread's ForestScorer, one job at a time,
// and makes each model's stored form here too, so the stream's thread only rebuilds the forest.
import { parentPort } from 'node:worker_threads'
import { FEATURES, IsolationForest, encodeModel, type TrainingJob } from '../anomaly/index.ts'
import { createRandom } from '../domain/index.ts'

// Loaded (TypeScript compiled, modules linked): the main thread may count on quick answers now.
parentPort?.postMessage({ ready: true })
parentPort?.on('message', (msg: { id: number, job: TrainingJob }) => {
  const { id, job } = msg
  try {
    const forest = IsolationForest.fit(job.rows, FEATURES, {
      nEstimators: job.nEstimators, maxSamples: job.maxSamples, contamination: job.contamination, random: createRandom(job.seed)
    })
    // A copy of its own: the compressed bytes may sit in a larger buffer that cannot be transferred (Node 24).
    const encoded = new Uint8Array(encodeModel(forest.toParts()))
    parentPort?.postMessage({ id, parts: forest.toParts(), encoded }, [encoded.buffer as ArrayBuffer])
  } catch (err) {
    parentPort?.postMessage({ id, error: (err as Error).message })
  }
})
