import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Backoff } from './backoff.ts'

test('backoff doubles from the initial wait up to the cap, jittered within the upper half of each step', () => {
  const low = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0)
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => low.next()), [50, 100, 200, 400, 500, 500])
  const high = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0.999999)
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => high.next()), [100, 200, 400, 800, 1000, 1000])
  assert.equal(high.attempts, 6)
})

test('reset starts again from the initial wait', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0.5)
  b.next(); b.next(); b.next()
  b.reset()
  assert.equal(b.attempts, 0)
  assert.equal(b.next(), 75)
})

test('a very long outage never overflows the cap', () => {
  const b = new Backoff({ initialMs: 250, maxMs: 5000 }, () => 0.999999)
  let last = 0
  for (let i = 0; i < 10_000; i++) last = b.next()
  assert.equal(last, 5000)
})
