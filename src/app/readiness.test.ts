import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type WorkerHealth } from '../pipeline/index.ts'
import { readiness } from './readiness.ts'

const up = { reachable: true, downSince: null, reason: null, reconnects: 0 }
const healthy: WorkerHealth = { consecutiveFailures: 0, retryAt: null, lastError: null, databaseUnavailable: false, lastStoredAt: 1_000 }

test('ready when the database answers, the worker stores and nothing waits', () => {
  assert.deepEqual(readiness({ now: 100_000, startedAt: 0, database: up, worker: healthy, backlog: 0 }), { ready: true, reasons: [] })
  // An ingest role alone has neither database nor worker.
  assert.deepEqual(readiness({ now: 100_000, startedAt: 0, database: null, worker: null, backlog: null }), { ready: true, reasons: [] })
})

test('not ready while the database is unreachable, saying for how long and why', () => {
  const down = { reachable: false, downSince: 40_000, reason: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:5432', reconnects: 2 }
  assert.deepEqual(readiness({ now: 52_400, startedAt: 0, database: down, worker: null, backlog: null }), {
    ready: false, reasons: ['the database has been unreachable for 12 s: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:5432']
  })
})

test('not ready after repeated failures, from the third in a row', () => {
  const failing = (n: number): WorkerHealth => ({ ...healthy, consecutiveFailures: n, lastError: 'duplicate key' })
  assert.equal(readiness({ now: 2_000, startedAt: 0, database: up, worker: failing(2), backlog: 0 }).ready, true)
  assert.deepEqual(readiness({ now: 2_000, startedAt: 0, database: up, worker: failing(3), backlog: 0 }).reasons,
    ['3 attempts to store a batch failed in a row; the last: duplicate key'])
})

test('not ready when readings wait and nothing was stored for longer than the stall time (from the start before the first batch)', () => {
  const input = { startedAt: 0, database: up, backlog: 500 }
  assert.equal(readiness({ ...input, now: 61_000, worker: healthy }).ready, true, '60 s since the last batch: not longer')
  assert.deepEqual(readiness({ ...input, now: 61_001, worker: healthy }).reasons, ['500 readings are waiting and nothing was stored for 60 s'])
  assert.equal(readiness({ ...input, now: 61_001, worker: healthy, backlog: 0 }).ready, true, 'nothing waits: idle, not stalled')
  assert.deepEqual(readiness({ ...input, now: 90_000, worker: { ...healthy, lastStoredAt: null } }).reasons,
    ['500 readings are waiting and nothing was stored for 90 s'])
})
