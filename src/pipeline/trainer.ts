import { Worker } from 'node:worker_threads'
import { IsolationForest, type ForestTrainer, type TrainingJob } from '../anomaly/index.ts'
import { IotError } from '../domain/index.ts'

interface Reply { id: number, model?: unknown, error?: string }

/**
 * Fits forests on a worker thread, so a training (milliseconds) never holds up the stream. Jobs
 * run one at a time in the order asked; the thread does not keep the process alive.
 */
export class ThreadTrainer implements ForestTrainer {
  readonly #thread: Worker
  readonly #waiting = new Map<number, { resolve: (f: IsolationForest) => void, reject: (e: Error) => void }>()
  #next = 0
  #closed = false

  constructor () {
    this.#thread = new Worker(new URL('./trainer-thread.mjs', import.meta.url))
    this.#thread.unref()
    this.#thread.on('message', (m: Reply) => {
      const w = this.#waiting.get(m.id)
      if (w === undefined) return
      this.#waiting.delete(m.id)
      if (m.error !== undefined) w.reject(new IotError('IOT_ERR_TRAINING', m.error))
      else {
        try {
          w.resolve(IsolationForest.fromJSON(m.model))
        } catch (err) {
          w.reject(err as Error)
        }
      }
    })
    const failAll = (err: Error): void => {
      for (const w of this.#waiting.values()) w.reject(err)
      this.#waiting.clear()
    }
    this.#thread.on('error', failAll)
    this.#thread.on('exit', (code) => { failAll(new IotError('IOT_ERR_TRAINING', `training thread exited (${code})`)) })
  }

  async train (job: TrainingJob): Promise<IsolationForest> {
    if (this.#closed) throw new IotError('IOT_ERR_TRAINING', 'trainer closed')
    const id = this.#next++
    return await new Promise<IsolationForest>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject })
      // The rows are the job's own copy (never a SharedArrayBuffer): hand them over without copying again.
      this.#thread.postMessage({ id, job }, [job.rows.buffer as ArrayBuffer])
    })
  }

  async close (): Promise<void> {
    this.#closed = true
    await this.#thread.terminate()
  }
}
