import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RecentKeys } from './recent-keys.ts'

test('RecentKeys - in-order, out-of-order and duplicate readings per sensor', () => {
  const k = new RecentKeys()
  assert.equal(k.add('a', 1000), true)
  assert.equal(k.add('a', 2000), true)
  assert.equal(k.add('b', 1000), true, 'another sensor at the same time is not a duplicate')
  assert.equal(k.add('a', 2000), false)
  assert.equal(k.add('a', 1500), true, 'out of order but new')
  assert.equal(k.add('a', 1500), false)
  assert.equal(k.add('a', 1000), false)
  assert.equal(k.has('a', 1500), true)
  assert.equal(k.has('a', 1600), false)
  assert.equal(k.size, 4)
})

test('RecentKeys - prune forgets times before the boundary and empty sensors', () => {
  const k = new RecentKeys()
  for (let t = 0; t < 100; t++) k.add('a', t * 1000)
  k.add('b', 5000)
  k.pruneBefore(50_000)
  assert.equal(k.size, 50)
  assert.equal(k.has('a', 49_000), false)
  assert.equal(k.has('a', 50_000), true)
  assert.equal(k.has('b', 5000), false)
  k.pruneBefore(10_000)
  assert.equal(k.size, 50, 'the boundary never goes back')
})

test('RecentKeys - stays sorted and exact through growth and compaction (against a Set)', () => {
  const k = new RecentKeys()
  const ref = new Set<number>()
  let x = 7
  let boundary = 0
  for (let i = 0; i < 50_000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648
    const ts = i * 10 + (x % 100 < 5 ? -(x % 400) : 0) // mostly in order, 5% up to 400 ms late
    if (ts < boundary) continue
    assert.equal(k.add('s', ts), !ref.has(ts))
    ref.add(ts)
    if (i % 1000 === 999) {
      boundary = i * 10 - 2000
      k.pruneBefore(boundary)
      for (const t of ref) if (t < boundary) ref.delete(t)
      assert.equal(k.size, ref.size)
    }
  }
  for (const t of ref) assert.equal(k.has('s', t), true)
})

test('RecentKeys - an out-of-order insert that triggers compaction lands in the right place', () => {
  const k = new RecentKeys()
  for (let t = 1; t <= 16; t++) k.add('a', t * 10) // fills the initial 16 slots
  k.pruneBefore(100) // head moves to 10 of 16: the next insert compacts
  assert.equal(k.add('a', 125), true)
  assert.equal(k.add('a', 125), false)
  for (const t of [100, 110, 120, 125, 130, 140, 150, 160]) assert.equal(k.has('a', t), true, String(t))
  assert.equal(k.has('a', 90), false)
  assert.equal(k.size, 8)
})
