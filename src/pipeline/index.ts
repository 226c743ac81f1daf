export { Worker, defaultWorkerOptions, type BatchOutcome, type ReadingDetector, type WorkerDeps, type WorkerOptions } from './worker.ts'
export { PipelineMetrics } from './metrics.ts'
export { startEmbedded, type EmbeddedSystem } from './system.ts'
