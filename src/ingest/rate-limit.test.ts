import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { RateLimiter, burstFor, defaultDeviceRateLimit } from './rate-limit.ts'
import { TokenBucket } from './token-bucket.ts'

describe('TokenBucket', () => {
  test('take lends: a burst is free, then each token waits for the refill, queued behind the last', () => {
    const bucket = new TokenBucket(10, 2, 0)
    assert.deepEqual([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)], [0, 0, 100, 200])
    // 400 ms later the debt of 2 is repaid and the burst of 2 is back (no more: it is capped).
    assert.deepEqual([bucket.take(400), bucket.take(400), bucket.take(400)], [0, 0, 100])
  })

  test('tryTake refuses without taking: the answer is when a token will be there, and it is', () => {
    const bucket = new TokenBucket(10, 2, 0)
    assert.deepEqual([bucket.tryTake(0), bucket.tryTake(0), bucket.tryTake(0), bucket.tryTake(0)], [0, 0, 100, 100])
    assert.deepEqual([bucket.tryTake(99), bucket.tryTake(100), bucket.tryTake(100)], [1, 0, 100])
    // Half a token: 50 ms to the next one.
    assert.equal(bucket.tryTake(150), 50)
  })

  test('a clock that goes back refills nothing and forgets nothing', () => {
    const bucket = new TokenBucket(10, 1, 1000)
    assert.equal(bucket.tryTake(1000), 0)
    assert.equal(bucket.tryTake(500), 100)
    assert.equal(bucket.tryTake(1100), 0)
  })

  test('full: the bucket has its whole burst again', () => {
    const bucket = new TokenBucket(10, 2, 0)
    bucket.take(0)
    assert.deepEqual([bucket.full(50), bucket.full(100)], [false, true])
  })
})

describe('RateLimiter', () => {
  test('one bucket per key: one device over its limit does not slow another', () => {
    const limiter = new RateLimiter({ perSecond: 2, burst: 2 })
    assert.deepEqual([limiter.tryTake('a', 0), limiter.tryTake('a', 0), limiter.tryTake('a', 0)], [0, 0, 500])
    assert.deepEqual([limiter.tryTake('b', 0), limiter.tryTake('b', 0)], [0, 0])
    assert.equal(limiter.tryTake('a', 500), 0)
  })

  test('buckets that filled up again are dropped at the next sweep (a minute on)', () => {
    const limiter = new RateLimiter({ perSecond: 1, burst: 1 })
    for (let i = 0; i < 1000; i++) limiter.tryTake(`d${i}`, 0)
    assert.equal(limiter.size, 1000)
    limiter.tryTake('d0', 59_999)
    assert.equal(limiter.size, 1000, 'no sweep before a minute')
    // d0 took a token at 59,999 and is not full at 60,000; the others are.
    limiter.tryTake('new', 60_000)
    assert.equal(limiter.size, 2)
  })

  test('bad limits are refused; the burst of a rate is two seconds of it, at least 1', () => {
    assert.throws(() => new RateLimiter({ perSecond: 0, burst: 1 }), RangeError)
    assert.throws(() => new RateLimiter({ perSecond: 1, burst: 0.5 }), RangeError)
    assert.deepEqual([burstFor(50), burstFor(0.2), burstFor(1.3)], [100, 1, 3])
    assert.deepEqual(defaultDeviceRateLimit, { perSecond: 50, burst: 100 })
  })
})
