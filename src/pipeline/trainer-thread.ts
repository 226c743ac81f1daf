// The training thread: fits Isolation Forests for the main thread's ForestScorer and device models
// for its DeviceDetector, one job at a time, and makes each per-sensor model's stored form here too,
// so the stream's thread only rebuilds the forests. Replies go over the port the main thread reads
// synchronously; the shared counter wakes it.
import { type MessagePort, parentPort, workerData } from 'node:worker_threads'
import { deviceModelToParts, encodeModel, fitDeviceModel, fitJob } from '../anomaly/index.ts'
import type { TrainerReply, TrainerRequest } from './trainer.ts'

const { replies, signal } = workerData as { replies: MessagePort, signal: Int32Array }

function reply (message: TrainerReply, transfer: ArrayBuffer[] = []): void {
  replies.postMessage(message, transfer)
  Atomics.add(signal, 0, 1)
  Atomics.notify(signal, 0)
}

parentPort?.on('message', (msg: TrainerRequest) => {
  const { id } = msg
  try {
    if (msg.kind === 'device') {
      reply({ id, device: deviceModelToParts(fitDeviceModel(msg.job)) })
      return
    }
    const forest = fitJob(msg.job)
    // A copy of its own: the compressed bytes may sit in a larger buffer that cannot be transferred (Node 24).
    const encoded = new Uint8Array(encodeModel(forest.toParts()))
    reply({ id, parts: forest.toParts(), encoded }, [encoded.buffer as ArrayBuffer])
  } catch (err) {
    reply({ id, error: (err as Error).message })
  }
})
// Loaded (TypeScript compiled, modules linked): the main thread may count on quick answers now.
parentPort?.postMessage({ ready: true })
