// The training thread: fits Isolation Forests for the main thread's ForestScorer, one job at a time.
import { parentPort } from 'node:worker_threads'
import { FEATURES, IsolationForest, type TrainingJob } from '../anomaly/index.ts'
import { createRandom } from '../domain/index.ts'

// Loaded (TypeScript compiled, modules linked): the main thread may count on quick answers now.
parentPort?.postMessage({ ready: true })
parentPort?.on('message', (msg: { id: number, job: TrainingJob }) => {
  const { id, job } = msg
  try {
    const forest = IsolationForest.fit(job.rows, FEATURES, {
      nEstimators: job.nEstimators, maxSamples: job.maxSamples, contamination: job.contamination, random: createRandom(job.seed)
    })
    parentPort?.postMessage({ id, model: forest.toJSON() })
  } catch (err) {
    parentPort?.postMessage({ id, error: (err as Error).message })
  }
})
