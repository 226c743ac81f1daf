import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SnapshotSchedule } from './snapshots.ts'

const MIN = 60_000

test('SnapshotSchedule: a key is due after `every` readings, or after everyMs of event time with at least one', () => {
  const s = new SnapshotSchedule({ everyMs: 60 * MIN })
  for (let i = 0; i < 99; i++) s.touch('fast', i * 1000)
  s.touch('slow', 0)
  assert.deepEqual(s.due(), [])
  s.touch('fast', 99_000)
  s.touch('slow', 59 * MIN)
  assert.deepEqual(s.due(), [{ key: 'fast', lastTs: 99_000 }])
  assert.deepEqual(s.due(), [])
  s.touch('slow', 60 * MIN)
  assert.deepEqual(s.due(), [{ key: 'slow', lastTs: 60 * MIN }])
  // Nothing new: never due, however much time passes elsewhere.
  for (let i = 0; i < 300; i++) s.touch('fast', 100_000 + i * 1000)
  assert.deepEqual(s.due(), [{ key: 'fast', lastTs: 399_000 }])
})

test('SnapshotSchedule: at most maxPerDrain at once, least recently snapshotted first; restored keys count as snapshotted', () => {
  const s = new SnapshotSchedule({ maxPerDrain: 2 })
  s.restored('a', 5000)
  s.restored('b', 1000)
  s.restored('c', 3000)
  for (const key of ['a', 'b', 'c']) for (let i = 1; i <= 100; i++) s.touch(key, 10_000 + i)
  assert.deepEqual(s.due(), [{ key: 'b', lastTs: 10_100 }, { key: 'c', lastTs: 10_100 }])
  assert.deepEqual(s.due(), [{ key: 'a', lastTs: 10_100 }])
  s.clear()
  for (let i = 0; i < 100; i++) s.touch('a', 20_000)
  assert.deepEqual(s.due(), [{ key: 'a', lastTs: 20_000 }])
})
