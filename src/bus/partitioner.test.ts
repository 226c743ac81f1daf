import { test } from 'node:test'
import assert from 'node:assert/strict'
import { murmur2, partitionFor } from './partitioner.ts'

// Vectors from Kafka's UtilsTest.testMurmur2.
test('murmur2 - matches the Java client', () => {
  const cases: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107]
  ]
  for (const [s, h] of cases) assert.equal(murmur2(new TextEncoder().encode(s)), h, s)
})

test('partitionFor - positive modulo of the masked hash', () => {
  assert.equal(partitionFor('21', 6), (-973932308 & 0x7fffffff) % 6)
  for (let i = 0; i < 100; i++) {
    const p = partitionFor(`sensor-${i}`, 4)
    assert.ok(p >= 0 && p < 4)
  }
})
