import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LatencyTracker } from './latency.ts'

test('LatencyTracker - median and 99th percentile of the batches stored within the last minute', () => {
  let now = 10_000
  const t = new LatencyTracker(() => now)
  assert.equal(t.latency(), null, 'nothing stored yet')
  t.add({ stored: [1], oldestProducedAt: 9_000 })
  t.add({ stored: [1, 2], oldestProducedAt: 9_500 })
  t.add({ stored: [], oldestProducedAt: 1_000 }) // nothing stored: not a latency
  t.add({ stored: [1], oldestProducedAt: null }) // the bus does not know
  assert.deepEqual(t.latency(), { p50: 500, p99: 1000 }, 'the stored batches were 1000 and 500 ms behind their oldest record')
  now += 61_000
  assert.equal(t.latency(), null, 'older than the span')
  t.add({ stored: [1], oldestProducedAt: now + 5 })
  assert.deepEqual(t.latency(), { p50: 0, p99: 0 }, 'a clock a little behind the producer\'s counts as 0')
})

test('LatencyTracker - memory stays bounded whatever the batch rate', () => {
  const t = new LatencyTracker(() => 0)
  for (let i = 0; i < 25_000; i++) t.add({ stored: [1], oldestProducedAt: -i })
  const l = t.latency()
  assert.ok(l !== null && l.p99 >= 15_000, 'the newest batches are kept')
})
