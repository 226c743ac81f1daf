export * from './port.ts'
export { partitionFor } from './partitioner.ts'
export { MemoryBus, type MemoryBusOptions } from './memory/index.ts'
export { KafkaBus, JsonPublisher, ensureTopics, type KafkaBusOptions } from './kafka/index.ts'
