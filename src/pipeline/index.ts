export { Worker, defaultWorkerOptions, type BatchOutcome, type OutcomeSink, type ReadingDetector, type WorkerDeps, type WorkerOptions } from './worker.ts'
export { PipelineMetrics } from './metrics.ts'
export { EventSink, type EventPublisher, type EventTopics } from './events.ts'
export { allRoles, startEmbedded, startSystem, type Role, type RunningSystem } from './system.ts'
