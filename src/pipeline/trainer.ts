import { Worker } from 'node:worker_threads'
import { IsolationForest, type FittedForest, type ForestTrainer, type ParsedModel, type TrainingJob } from '../anomaly/index.ts'
import { IotError } from '../domain/index.ts'

interface Reply { id: number, ready?: true, parts?: ParsedModel, encoded?: Uint8Array, error?: string }

/**
 * Fits forests on a worker thread, so a training (milliseconds) never holds up the stream; the
 * thread also encodes the model for storage, and hands the trees back as typed arrays (no JSON to
 * parse here). Jobs run one at a time in the order asked; the thread does not keep the process alive.
 */
export class ThreadTrainer implements ForestTrainer {
  readonly #thread: Worker
  readonly #waiting = new Map<number, { resolve: (f: FittedForest) => void, reject: (e: Error) => void }>()
  #next = 0
  #closed = false
  readonly #ready: Promise<void>

  /** `onFailure` hears once that the thread died (trainings fail from then on; the current models keep scoring). */
  constructor (onFailure: (err: Error) => void = () => {}) {
    // Compiled (dist/), the thread runs trainer-thread.js; from the sources (tests, development), a
    // shim that registers tsx first (Node 20 gives worker threads no loaders through execArgv).
    const entry = import.meta.url.endsWith('.js') ? './trainer-thread.js' : './trainer-thread.mjs'
    this.#thread = new Worker(new URL(entry, import.meta.url))
    this.#thread.unref()
    let started = (): void => {}
    this.#ready = new Promise(resolve => { started = resolve })
    this.#thread.on('message', (m: Reply) => {
      if (m.ready === true) {
        started()
        return
      }
      const w = this.#waiting.get(m.id)
      if (w === undefined) return
      this.#waiting.delete(m.id)
      if (m.error !== undefined || m.parts === undefined) w.reject(new IotError('IOT_ERR_TRAINING', m.error ?? 'the training thread sent no model'))
      else w.resolve({ forest: IsolationForest.fromParts(m.parts), ...(m.encoded === undefined ? {} : { encoded: m.encoded }) })
    })
    const failAll = (err: Error): void => {
      for (const w of this.#waiting.values()) w.reject(err)
      this.#waiting.clear()
    }
    const died = (err: Error): void => {
      started()
      failAll(err)
      if (!this.#closed) onFailure(err)
      this.#closed = true
    }
    this.#thread.on('error', died)
    this.#thread.on('exit', (code) => { died(new IotError('IOT_ERR_TRAINING', `training thread exited (${code})`)) })
  }

  /** Resolves once the thread has loaded (a second or so under tsx), or failed to: start the stream after it. */
  async ready (): Promise<void> {
    await this.#ready
  }

  async train (job: TrainingJob): Promise<FittedForest> {
    if (this.#closed) throw new IotError('IOT_ERR_TRAINING', 'trainer closed')
    const id = this.#next++
    return await new Promise<FittedForest>((resolve, reject) => {
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
