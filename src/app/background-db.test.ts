// BackgroundDb: the ingest role's database, opened without holding up the start. Stand-in Dbs (no
// server): attempts that fail as an unreachable server does, then succeed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { IotError } from '../domain/index.ts'
import { Backoff } from '../pipeline/index.ts'
import { type Db, type Queryable } from '../storage/index.ts'
import { BackgroundDb } from './background-db.ts'

const log = pino({ level: process.env.TEST_LOG ?? 'silent' })
const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
const fast = (): Backoff => new Backoff({ initialMs: 5, maxMs: 10 })

function fakeDb (): Db & { closed: boolean } {
  const db = {
    kind: 'postgres' as const,
    closed: false,
    query: async <T extends object>() => [{ answer: 1 }] as unknown as T[],
    copyFrom: async () => {},
    exec: async () => {},
    transaction: async <T>(fn: (tx: Queryable) => Promise<T>): Promise<T> => await fn({ query: db.query, copyFrom: db.copyFrom }),
    close: async () => { db.closed = true }
  }
  return db
}

test('connected at once: open resolves with the database in use', async () => {
  const real = fakeDb()
  const bg = await BackgroundDb.open({ open: async () => real, log })
  assert.equal(bg.connected, true)
  assert.deepEqual(await bg.db.query('SELECT 1 AS answer'), [{ answer: 1 }])
  await bg.db.close()
  assert.equal(real.closed, true)
})

test('unreachable at the start: open resolves at once; statements fail with IOT_ERR_DB_UNAVAILABLE until an attempt succeeds', async () => {
  const real = fakeDb()
  let attempts = 0
  const t = performance.now()
  const bg = await BackgroundDb.open({
    open: async () => { if (++attempts < 4) throw refused(); return real },
    log,
    backoff: fast()
  })
  assert.ok(performance.now() - t < 1000)
  if (!bg.connected) {
    await assert.rejects(bg.db.query('SELECT 1'), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_DB_UNAVAILABLE')
    assert.equal((bg.lastError as { code?: string }).code, 'ECONNREFUSED')
  }
  const deadline = Date.now() + 5000
  while (!bg.connected) {
    assert.ok(Date.now() < deadline, 'connected in the background')
    await sleep(5)
  }
  assert.equal(attempts, 4)
  assert.deepEqual(await bg.db.query('SELECT 1 AS answer'), [{ answer: 1 }])
  await bg.close()
  assert.equal(real.closed, true)
})

test('a first attempt that does not answer within firstAttemptMs does not hold up the start', async () => {
  const real = fakeDb()
  let answer = (): void => {}
  const bg = await BackgroundDb.open({ open: async () => { await new Promise<void>(resolve => { answer = resolve }); return real }, log, firstAttemptMs: 20 })
  assert.equal(bg.connected, false)
  answer()
  await sleep(0)
  assert.equal(bg.connected, true)
  await bg.close()
})

test('a refusal other than unreachability (a wrong password) at the first attempt fails the start', async () => {
  const wrong = Object.assign(new Error('password authentication failed for user "iot"'), { code: '28P01' })
  let attempts = 0
  await assert.rejects(BackgroundDb.open({ open: async () => { attempts++; throw wrong }, log, backoff: fast() }), /password authentication failed/)
  await sleep(50)
  assert.equal(attempts, 1, 'no attempts after the failed start')
})

test('close during the attempts stops them; a connection that arrives after close is closed', async () => {
  let attempts = 0
  const bg = await BackgroundDb.open({ open: async () => { attempts++; throw refused() }, log, backoff: fast() })
  await sleep(30)
  await bg.close()
  const after = attempts
  await sleep(50)
  assert.equal(attempts, after)
  await assert.rejects(bg.db.query('SELECT 1'), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_DB_UNAVAILABLE')

  const late = fakeDb()
  let answer = (): void => {}
  const slow = await BackgroundDb.open({ open: async () => { await new Promise<void>(resolve => { answer = resolve }); return late }, log, firstAttemptMs: 10 })
  await slow.close()
  answer()
  await sleep(0)
  assert.equal(late.closed, true)
  assert.equal(slow.connected, false)
})
