import { test } from 'node:test'
import assert from 'node:assert/strict'
import { IotError } from '../domain/index.ts'
import { DbAvailability, isUnavailable, startProbe, watchDb } from './availability.ts'
import { type Db, openPglite } from './db.ts'

const coded = (code: string, message = code): Error => Object.assign(new Error(message), { code })

test('isUnavailable: a server down, restarting or out of reach, not a wrong statement', () => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT', '57P01', '57P03', '08006', '08001', '53300', 'IOT_ERR_DB_UNAVAILABLE']) {
    assert.equal(isUnavailable(coded(code)), true, code)
  }
  for (const code of ['23505', '42P01', '28P01', '3D000', 'IOT_ERR_FENCED']) assert.equal(isUnavailable(coded(code)), false, code)
  assert.equal(isUnavailable(new Error('plain')), false)
  assert.equal(isUnavailable('ECONNREFUSED'), false)
  // Wrapped, as openPostgres wraps the driver's error.
  assert.equal(isUnavailable(new IotError('IOT_ERR_STORAGE', 'cannot connect', { cause: coded('ECONNREFUSED') })), true)
})

test('DbAvailability: unreachable on the first connection failure, reachable again on the next success, each change heard once', () => {
  let now = 1000
  const a = new DbAvailability(() => now)
  const heard: unknown[] = []
  a.onChange(e => { heard.push(e) })
  assert.equal(a.failed(coded('23505', 'duplicate key')), false, 'a statement error says nothing about reachability')
  assert.equal(a.reachable, true)
  assert.equal(a.failed(coded('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')), true)
  now = 4000
  a.failed(coded('57P03', 'the database system is starting up'))
  assert.deepEqual(a.state, { reachable: false, downSince: 1000, reason: '57P03: the database system is starting up', reconnects: 0 })
  now = 6500
  a.succeeded()
  a.succeeded()
  assert.deepEqual(a.state, { reachable: true, downSince: null, reason: null, reconnects: 1 })
  assert.deepEqual(heard, [
    { reachable: false, reason: 'connect ECONNREFUSED 127.0.0.1:5432', downForMs: 0 },
    { reachable: true, reason: null, downForMs: 5500 }
  ])
})

test('watchDb reports every statement and transaction, and passes results and errors through unchanged', async () => {
  const pg = await openPglite('memory://')
  let down = false
  const flaky: Db = { ...pg, query: async (text, params) => { if (down) throw coded('ECONNRESET'); return await pg.query(text, params) } }
  const a = new DbAvailability()
  const db = watchDb(flaky, a)
  try {
    assert.deepEqual(await db.query('SELECT 1 AS x'), [{ x: 1 }])
    down = true
    await assert.rejects(db.query('SELECT 1'), { code: 'ECONNRESET' })
    assert.equal(a.reachable, false)
    down = false
    assert.equal(await db.transaction(async tx => (await tx.query<{ x: number }>('SELECT 2 AS x'))[0]!.x), 2)
    assert.equal(a.reachable, true, 'a transaction that commits says the database answers')
    await assert.rejects(db.query('SELEC 1'), (err: Error) => !isUnavailable(err))
    assert.equal(a.reachable, true)
  } finally {
    await db.close()
  }
})

test('the probe marks a database that does not answer within its timeout unreachable, and reachable once it answers', async () => {
  const pg = await openPglite('memory://')
  let hang = true
  const slow: Db = { ...pg, query: async (text, params) => { if (hang) await new Promise(() => {}); return await pg.query(text, params) } }
  const a = new DbAvailability()
  const stop = startProbe(slow, a, { upMs: 10, downMs: 10, timeoutMs: 50 })
  try {
    const until = async (what: string, ok: () => boolean): Promise<void> => {
      const deadline = Date.now() + 5000
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
        await new Promise(resolve => setTimeout(resolve, 5))
      }
    }
    await until('unreachable', () => !a.reachable)
    assert.equal(a.state.reason, 'IOT_ERR_DB_UNAVAILABLE: the database did not answer within 50 ms')
    hang = false
    await until('reachable', () => a.reachable)
    assert.equal(a.state.reconnects, 1)
  } finally {
    stop()
    await pg.close()
  }
})
