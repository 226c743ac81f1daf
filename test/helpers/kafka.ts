// The Kafka broker the Kafka suites run against: KAFKA_BROKERS (host:port,...), as printed by
// `bash scripts/services.sh up kafka`. In CI (CI=true) the Kafka suites are mandatory.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
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

/** Stops or starts the shared broker (with its data) through the scripts that started it. */
export function brokerScript (script: 'down.sh' | 'up.sh'): void {
  const r = spawnSync('bash', [`deploy/kafka/${script}`], { cwd: new URL('../../', import.meta.url).pathname, encoding: 'utf8', timeout: 180_000 })
  assert.equal(r.status, 0, `deploy/kafka/${script} failed:\n${r.stderr}`)
}
