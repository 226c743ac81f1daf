// Our own Kafka wire code: record batches (message format v2) read and written as bytes, the
// Fetch loop and the idempotent Produce path, on the client library's connections. The adapter
// (kafka-bus.ts) needs these three; the rest stays inside.
export { BatchProducer } from './batch-producer.ts'
export { FetchSession } from './fetcher.ts'
export { newestPicked } from './tail.ts'
