export { KafkaBus, JsonPublisher, ensureTopics, type KafkaBusOptions } from './kafka-bus.ts'
