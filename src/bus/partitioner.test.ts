import { test } from 'node:test'
import assert from 'node:assert/strict'
import { murmur2 } from '@platformatic/kafka'
import { KeyPartitioner, partitionFor } from './partitioner.ts'

// Vectors from Kafka's UtilsTest.testMurmur2: the library's hash, which partitionFor uses, is the Java client's.
test('murmur2 - matches the Java client', () => {
  const cases: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107]
  ]
  for (const [s, h] of cases) assert.equal(murmur2(s), h, s)
})

test('partitionFor - positive modulo of the masked hash', () => {
  assert.equal(partitionFor('21', 6), (-973932308 & 0x7fffffff) % 6)
  for (let i = 0; i < 100; i++) {
    const p = partitionFor(`sensor-${i}`, 4)
    assert.ok(p >= 0 && p < 4)
  }
})

// Partitions of 4, 6 and 12 computed by the hash this project carried before it used the
// library's (a Math.imul port of the Java code over TextEncoder's UTF-8): keys stay where they were.
test('partitionFor - the partitions keys had before, UTF-8 and empty keys included', () => {
  const cases: [string, [number, number, number]][] = [
    ['', [1, 3, 9]],
    ['a', [0, 4, 4]],
    ['temperature-server-room-017', [3, 5, 11]],
    ['humidity-office-east-003', [3, 3, 3]],
    ['TEMP_001', [3, 3, 3]],
    ['s-1', [3, 1, 7]],
    ['sensor-42', [1, 1, 1]],
    ['capteur-température-1', [1, 1, 1]],
    ['датчик-7', [3, 5, 11]],
    ['温度-3', [0, 4, 4]],
    ['🌡️-1', [3, 5, 11]],
    ['\ud800x', [2, 0, 6]] // a lone surrogate is encoded as U+FFFD
  ]
  for (const [key, want] of cases) assert.deepEqual([4, 6, 12].map(n => partitionFor(key, n)), want, key)
})

test('KeyPartitioner - the partitions of partitionFor, with at most maxKeys keys held', () => {
  const keys = Array.from({ length: 5000 }, (_, i) => `temperature-room-${i % 1500}`)
  const partitioner = new KeyPartitioner(6, 1000)
  assert.equal(partitioner.partitions, 6)
  let most = 0
  for (const key of [...keys, ...keys]) {
    assert.equal(partitioner.partitionOf(key), partitionFor(key, 6), key)
    most = Math.max(most, partitioner.size)
  }
  assert.equal(most, 1000, 'two generations of 500')
  const long = 'x'.repeat(129)
  assert.equal(partitioner.partitionOf(long), partitionFor(long, 6), 'a key too long to remember is still partitioned')
})

test('KeyPartitioner - a fleet of up to half of maxKeys is always found: the newer generation is kept', () => {
  const partitioner = new KeyPartitioner(4, 8)
  for (const key of ['a', 'b', 'c', 'd']) partitioner.partitionOf(key)
  assert.equal(partitioner.size, 4)
  for (let round = 0; round < 3; round++) for (const key of ['a', 'b', 'c', 'd']) assert.equal(partitioner.partitionOf(key), partitionFor(key, 4))
  assert.equal(partitioner.size, 4, 'only hits: nothing moved')
  partitioner.partitionOf('e') // the newer generation is full: it becomes the older one
  assert.equal(partitioner.size, 5)
  for (const key of ['a', 'b', 'c']) partitioner.partitionOf(key) // found in the older one, moved up
  assert.equal(partitioner.size, 8)
  partitioner.partitionOf('f') // full again: the older generation (with 'd') is dropped
  assert.equal(partitioner.size, 5)
})
