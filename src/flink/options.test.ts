import { test } from 'node:test'
import assert from 'node:assert/strict'
import { takeFlinkFlags } from './options.ts'

test('flink flags - taken out of argv, the rest left for loadConfig; bad values refused with IOT_ERR_CONFIG', () => {
  const { flags, rest } = takeFlinkFlags(['--parallelism', '2', '--no-restore', '--kafka-brokers', 'k:9092', '--flink-heap=1g', '--checkpoint-interval', '30s',
    '--checkpoint-dir', '/var/lib/iot-flink', '--flink-group', 'g-1', '--print-command'])
  assert.deepEqual(flags, { noRestore: true, printCommand: true, parallelism: 2, heap: '1g', checkpointIntervalMs: 30_000, checkpointDir: '/var/lib/iot-flink', group: 'g-1' })
  assert.deepEqual(rest, ['--kafka-brokers', 'k:9092'])
  for (const bad of [['--parallelism', '0'], ['--flink-heap', 'lots'], ['--checkpoint-interval', '50ms'], ['--flink-group', 'a b'], ['--checkpoint-dir', ' '], ['--parallelism'],
    ['--parallelism', '1', '--parallelism', '2']]) {
    assert.throws(() => takeFlinkFlags(bad), { code: 'IOT_ERR_CONFIG' }, bad.join(' '))
  }
})
