export * from './port.ts'
export { murmur2, partitionFor } from './partitioner.ts'
export { MemoryBus, type MemoryBusOptions } from './memory/index.ts'
export { KafkaBus, JsonPublisher, ensureTopics, type KafkaBusOptions } from './kafka/index.ts'
