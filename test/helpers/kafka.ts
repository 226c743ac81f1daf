// The Kafka broker the Kafka suites run against: KAFKA_BROKERS (host:port,...), as printed by
// `bash scripts/services.sh up kafka`. In CI (CI=true) the Kafka suites are mandatory.
import { randomBytes } from 'node:crypto'

export const kafkaBrokers: string[] | null = process.env.KAFKA_BROKERS === undefined || process.env.KAFKA_BROKERS === ''
  ? null
  : process.env.KAFKA_BROKERS.split(',').map(s => s.trim()).filter(s => s !== '')

if (process.env.CI === 'true' && kafkaBrokers === null) {
  throw new Error('CI=true but KAFKA_BROKERS is not set: the Kafka suites may not be skipped in CI.')
}

/** Why a Kafka suite is skipped outside CI, or false when a broker is configured. */
export const kafkaSkip: string | false = kafkaBrokers === null
  ? 'KAFKA_BROKERS is not set (start a broker: eval "$(bash scripts/services.sh up kafka)")'
  : false

/** A topic name no other test uses. */
export function uniqueTopic (prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`
}
