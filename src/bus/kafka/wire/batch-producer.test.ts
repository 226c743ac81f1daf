// Our Produce path against a real broker (KAFKA_BROKERS): the idempotent producer's batches
// (KIP-98) are stored once when sent again, and a gap in sequence numbers is refused. The readings
// producer as a whole (partitions, order, ingest header) is tested through the bus in kafka-bus.test.ts.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { ConnectionPool, Producer, stringSerializers } from '@platformatic/kafka'
import { kafkaBrokers, kafkaSkip, uniqueTopic } from '../../../../test/helpers/kafka.ts'
import { ensureTopics } from '../kafka-bus.ts'
import { produce, produceVersion } from './batch-producer.ts'
import { OpenBatch, encodeBatch } from './record-batch.ts'

/** One line per record of a topic from the beginning, read with kcat in its `-f` format (`%s`: value). */
function kcat (topic: string, format: string): string[] {
  const r = spawnSync('kcat', ['-b', (kafkaBrokers ?? []).join(','), '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', `${format}\\n`], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(r.status, 0, r.stderr)
  return r.stdout.trim().split('\n').filter(Boolean)
}

describe('BatchProducer wire (real broker)', { skip: kafkaSkip }, () => {
  const brokers = kafkaBrokers ?? []

  test('a batch sent again with the same producer id and sequence is stored once; a gap in sequences is refused', async () => {
    const topic = uniqueTopic('bus_idempotent')
    await ensureTopics(brokers, [{ name: topic, partitions: 1 }])
    const client = new Producer({ clientId: 'idempotence-test', bootstrapBrokers: brokers, serializers: stringSerializers, idempotent: true })
    const pool = new ConnectionPool('idempotence-test')
    try {
      const { producerId, producerEpoch } = await client.initIdempotentProducer({})
      const version = await produceVersion(client)
      const meta = await client.metadata({ topics: [topic] })
      const connection = await pool.get(meta.brokers.get(meta.topics.get(topic)!.partitions[0]!.leader)!)
      const batch = (first: number, count: number): [number, Buffer][] => {
        const b = new OpenBatch(1 << 16, Date.now(), null)
        for (let i = first; i < first + count; i++) assert.ok(b.append(Date.now(), 'k', `{"i":${i}}`))
        return [[0, encodeBatch(b.seal(0, 'lz4'), producerId, producerEpoch, first)]]
      }
      const send = async (encoded: [number, Buffer][]): Promise<number> => (await produce(connection, version, topic, 10_000, encoded))[0]!.errorCode
      const first = batch(0, 10)
      assert.equal(await send(first), 0)
      assert.ok([0, 46].includes(await send(first)), 'the same batch again: taken as a duplicate, not stored')
      assert.equal(await send(batch(10, 10)), 0)
      assert.ok([0, 46].includes(await send(first)), 'an older batch again: still a duplicate')
      assert.equal(await send(batch(30, 10)), 45, 'sequence 30 after 20: OUT_OF_ORDER_SEQUENCE_NUMBER')
      assert.deepEqual(kcat(topic, '%s'), Array.from({ length: 20 }, (_, i) => `{"i":${i}}`), 'each record once, in order')
    } finally {
      await pool.close()
      await client.close()
    }
  })
})
