import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads'
import {
  IsolationForest, deviceModelFromParts, type DeviceModel, type DeviceModelParts, type DeviceTrainer, type DeviceTrainingJob, type FittedForest,
  type ForestTrainer, type ParsedModel, type PendingDeviceFit, type PendingFit, type TrainingJob
} from '../anomaly/index.ts'
import { IotError } from '../domain/index.ts'

/** What the thread is asked to fit: a per-sensor forest, or a device-level model. */
export type TrainerRequest =
  | { kind: 'forest', id: number, job: TrainingJob }
  | { kind: 'device', id: number, job: DeviceTrainingJob }

/** The thread's answer: the fitted model as typed arrays (`parts` of a forest, `device` of a device model), its stored form, or why it failed. */
export interface TrainerReply { id: number, parts?: ParsedModel, device?: DeviceModelParts, encoded?: Uint8Array, error?: string }

export interface ThreadTrainerOptions {
  /** Longest wait for one fit before the trainer is taken for dead (its fits fail from then on). */
  takeTimeoutMs: number
  /** Hears once that the thread died or stopped answering (the current models keep scoring). */
  onFailure: (err: Error) => void
}

/**
 * Fits forests on a worker thread, so a training (about 10 ms, a device model's about 25 ms) runs
 * beside the stream; the thread also encodes the model for storage and hands the trees back as
 * typed arrays. Per-sensor forests (`start`) and device models (`startDevice`, or `devices` as a
 * `DeviceTrainer`) share the thread; jobs run one at a time in the order started. The scorer takes
 * a fit some rows after starting it (`installAfterRows`): `take` returns at once when the fit is
 * done and otherwise waits for it on this thread (replies come over a port read synchronously,
 * woken through a shared counter), so where a model starts scoring never depends on timing. The
 * thread does not keep the process alive.
 */
export class ThreadTrainer implements ForestTrainer {
  readonly #thread: Worker
  /** Replies arrive here; never listened to, only read with receiveMessageOnPort. */
  readonly #replies: MessagePort
  /** Bumped by the thread after each reply (Atomics.wait wakes on it). */
  readonly #signal: Int32Array
  readonly #arrived = new Map<number, TrainerReply>()
  readonly #cancelled = new Set<number>()
  readonly #options: ThreadTrainerOptions
  #next = 0
  #closed: Error | null = null
  readonly #ready: Promise<void>
  /** Times `take` had to wait for a fit (the stream outran the thread). */
  waits = 0

  constructor (options: Partial<ThreadTrainerOptions> = {}) {
    this.#options = { takeTimeoutMs: 60_000, onFailure: () => {}, ...options }
    this.#signal = new Int32Array(new SharedArrayBuffer(4))
    const { port1, port2 } = new MessageChannel()
    this.#replies = port1
    // Compiled (dist/), the thread runs trainer-thread.js; from the sources (tests, development), a
    // shim that registers tsx first (Node 20 gives worker threads no loaders through execArgv).
    const entry = import.meta.url.endsWith('.js') ? './trainer-thread.js' : './trainer-thread.mjs'
    this.#thread = new Worker(new URL(entry, import.meta.url), { workerData: { replies: port2, signal: this.#signal }, transferList: [port2] })
    this.#thread.unref()
    let started = (): void => {}
    this.#ready = new Promise(resolve => { started = resolve })
    this.#thread.on('message', () => { started() })
    const died = (err: Error): void => {
      started()
      this.#fail(err)
    }
    this.#thread.on('error', died)
    this.#thread.on('exit', (code) => { died(new IotError('IOT_ERR_TRAINING', `training thread exited (${code})`)) })
  }

  /** Resolves once the thread has loaded (a second or so under tsx), or failed to: start the stream after it. */
  async ready (): Promise<void> {
    await this.#ready
  }

  start (job: TrainingJob): PendingFit {
    // A copy of the rows of its own, handed over without copying again.
    const rows = job.rows.slice()
    const id = this.#post(id => ({ kind: 'forest', id, job: { ...job, rows } }), rows.buffer as ArrayBuffer)
    return {
      take: (): FittedForest => {
        const reply = this.#take(id)
        if (reply.parts === undefined) throw new IotError('IOT_ERR_TRAINING', 'the training thread sent no model')
        return { forest: IsolationForest.fromParts(reply.parts), ...(reply.encoded === undefined ? {} : { encoded: reply.encoded }) }
      },
      cancel: () => { this.#cancel(id) }
    }
  }

  /**
   * Fits a device-level model (`fitDeviceModel`) on the thread. Its stored form is not made there:
   * storage keeps a device's trees hourly (saveModels), so the stream encodes the few it keeps.
   */
  startDevice (job: DeviceTrainingJob): PendingDeviceFit {
    const rows = job.rows.slice()
    const id = this.#post(id => ({ kind: 'device', id, job: { ...job, measurements: [...job.measurements], rows } }), rows.buffer as ArrayBuffer)
    return {
      take: (): DeviceModel => {
        const reply = this.#take(id)
        if (reply.device === undefined) throw new IotError('IOT_ERR_TRAINING', 'the training thread sent no device model')
        return deviceModelFromParts(reply.device)
      },
      cancel: () => { this.#cancel(id) }
    }
  }

  /** `startDevice` as a `DeviceTrainer` (for `DeviceDetector`'s `trainer`). */
  readonly devices: DeviceTrainer = { start: job => this.startDevice(job) }

  /** Sends a request (unless closed: its take then fails at once) and returns its id. */
  #post (request: (id: number) => TrainerRequest, transfer: ArrayBuffer): number {
    const id = this.#next++
    if (this.#closed === null) this.#thread.postMessage(request(id), [transfer])
    return id
  }

  #cancel (id: number): void {
    if (this.#arrived.delete(id)) return
    this.#cancelled.add(id)
  }

  /** The reply to request `id`, waiting for it on this thread if need be; throws when the fit failed or the thread is gone. */
  #take (id: number): TrainerReply {
    const deadline = performance.now() + this.#options.takeTimeoutMs
    let waited = false
    for (;;) {
      const seen = Atomics.load(this.#signal, 0)
      this.#drain()
      const reply = this.#arrived.get(id)
      if (reply !== undefined) {
        this.#arrived.delete(id)
        if (reply.error !== undefined) throw new IotError('IOT_ERR_TRAINING', reply.error)
        return reply
      }
      if (this.#closed !== null) throw this.#closed
      const left = deadline - performance.now()
      if (left <= 0) {
        const err = new IotError('IOT_ERR_TRAINING', `the training thread gave no model in ${this.#options.takeTimeoutMs} ms`)
        this.#fail(err)
        throw err
      }
      if (!waited) {
        waited = true
        this.waits++
      }
      Atomics.wait(this.#signal, 0, seen, left)
    }
  }

  /** Moves every reply that came into `#arrived` (dropping cancelled ones). */
  #drain (): void {
    for (let m = receiveMessageOnPort(this.#replies); m !== undefined; m = receiveMessageOnPort(this.#replies)) {
      const reply = m.message as TrainerReply
      if (this.#cancelled.delete(reply.id)) continue
      this.#arrived.set(reply.id, reply)
    }
  }

  #fail (err: Error): void {
    if (this.#closed !== null) return
    this.#closed = err
    this.#options.onFailure(err)
  }

  async close (): Promise<void> {
    this.#closed ??= new IotError('IOT_ERR_TRAINING', 'trainer closed')
    this.#replies.close()
    await this.#thread.terminate()
  }
}
