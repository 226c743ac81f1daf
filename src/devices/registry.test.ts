// DeviceRegistry.authenticate and .resolve on every test database, with an injected clock for its
// caches (no test sleeps), stale-if-error with a database that stops answering, and the TtlCache
// under it.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type Db, type Queryable } from '../storage/index.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import { IotError } from '../domain/index.ts'
import { DeviceRegistry, type DeviceRegistryOptions, type RefusalReason, addDevice, newDeviceToken, revokeDevice, rotateDeviceToken } from './index.ts'
import { TtlCache } from './ttl-cache.ts'

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0)

describe('TtlCache', () => {
  test('an entry expires ttlMs after it was set, whatever the hits', () => {
    const c = new TtlCache<string, number>(10, 1000)
    c.set('a', 1, T0)
    assert.equal(c.get('a', T0 + 999), 1)
    assert.equal(c.get('a', T0 + 1000), undefined)
    assert.equal(c.size, 0, 'an expired entry is dropped when met')
  })

  test('past maxEntries the least recently used entry goes', () => {
    const c = new TtlCache<string, number>(3, 1000)
    c.set('a', 1, T0)
    c.set('b', 2, T0)
    c.set('c', 3, T0)
    assert.equal(c.get('a', T0), 1, 'a is now the most recently used')
    c.set('d', 4, T0)
    assert.equal(c.size, 3)
    assert.equal(c.get('b', T0), undefined)
    assert.deepEqual(['a', 'c', 'd'].map(k => c.get(k, T0)), [1, 3, 4])
    c.set('c', 30, T0)
    assert.equal(c.size, 3, 'setting a key again replaces it')
    assert.equal(c.deleteWhere(v => v > 3), 2)
    assert.deepEqual(['a', 'c', 'd'].map(k => c.get(k, T0)), [1, undefined, undefined])
  })

  test('peek hands out an expired entry marked stale and keeps it; delete drops one key', () => {
    const c = new TtlCache<string, number>(10, 1000)
    c.set('a', 1, T0)
    assert.deepEqual(c.peek('a', T0 + 999), { value: 1, fresh: true })
    assert.deepEqual(c.peek('a', T0 + 5000), { value: 1, fresh: false })
    assert.equal(c.size, 1, 'kept for stale-if-error')
    assert.equal(c.peek('b', T0), undefined)
    assert.equal(c.delete('a'), true)
    assert.equal(c.delete('a'), false)
    assert.equal(c.size, 0)
  })

  test('bad sizes are refused', () => {
    assert.throws(() => new TtlCache(0, 1000), RangeError)
    assert.throws(() => new TtlCache(1.5, 1000), RangeError)
    assert.throws(() => new TtlCache(1, -1), RangeError)
    assert.throws(() => new TtlCache(1, Number.NaN), RangeError)
  })
})

for (const tdb of testDatabases) {
  describe(`DeviceRegistry on ${tdb.name}`, { skip: tdb.skip }, () => {
    const name = tdb.name
    let ctx: Awaited<ReturnType<TestDatabase['create']>>
    let db: Db
    before(async () => {
      ctx = await tdb.create()
      db = ctx.db
    })
    after(async () => { await ctx.drop() })

    /** A registry on the test database with a clock the test moves, counting its queries and refusals. */
    function setup (options: DeviceRegistryOptions = {}): { registry: DeviceRegistry, clock: { now: number }, queries: () => number, refusals: RefusalReason[] } {
      const clock = { now: T0 }
      let queries = 0
      const counting: Queryable = {
        query: async (text, params) => { queries++; return await db.query(text, params) },
        copyFrom: async (table, columns, data) => { await db.copyFrom(table, columns, data) }
      }
      const refusals: RefusalReason[] = []
      const registry = new DeviceRegistry(counting, { now: () => clock.now, onRefused: r => { refusals.push(r) }, ...options })
      return { registry, clock, queries: () => queries, refusals }
    }

    test(`${name}: the right token gives its device; a wrong one null ('unknown'); a malformed one null without a query`, async () => {
      const { token } = await addDevice(db, { id: 'auth-1', name: 'Boiler node', location: 'Basement' }, T0)
      const { registry, queries, refusals } = setup()
      assert.deepEqual(await registry.authenticate(token), { id: 'auth-1', name: 'Boiler node', location: 'Basement' })
      assert.equal(await registry.authenticate(newDeviceToken()), null)
      assert.equal(queries(), 2)
      for (const bad of ['', 'secret', token.slice(0, -1), `${token} `, token.toUpperCase()]) assert.equal(await registry.authenticate(bad), null)
      assert.equal(queries(), 2, 'malformed tokens never reach the database')
      assert.deepEqual(refusals, ['unknown', 'malformed', 'malformed', 'malformed', 'malformed', 'malformed'])
    })

    test(`${name}: a revoked device never authenticates ('revoked'); once revoked elsewhere, within the TTL`, async () => {
      const { token } = await addDevice(db, { id: 'auth-rev', name: 'R', location: 'Roof' }, T0)
      const { registry, clock, refusals } = setup({ ttlMs: 5000 })
      assert.equal((await registry.authenticate(token))?.id, 'auth-rev')
      await revokeDevice(db, 'auth-rev', T0)
      clock.now = T0 + 4999
      assert.equal((await registry.authenticate(token))?.id, 'auth-rev', 'cached: the revocation is not seen yet')
      clock.now = T0 + 5000
      assert.equal(await registry.authenticate(token), null)
      assert.deepEqual(refusals, ['revoked'])
      const fresh = setup()
      assert.equal(await fresh.registry.authenticate(token), null)
      assert.deepEqual(fresh.refusals, ['revoked'])
    })

    test(`${name}: after a rotation the old token is refused once its cache entry expires (at once after forget); the new one works`, async () => {
      const first = await addDevice(db, { id: 'auth-rot', name: 'R', location: 'Hall' }, T0)
      const { registry, clock, queries } = setup({ ttlMs: 5000 })
      assert.equal((await registry.authenticate(first.token))?.id, 'auth-rot')
      const second = await rotateDeviceToken(db, 'auth-rot', T0 + 1000)
      clock.now = T0 + 1000
      assert.equal((await registry.authenticate(first.token))?.id, 'auth-rot', 'within the TTL of its lookup')
      assert.equal(queries(), 1)
      clock.now = T0 + 5000
      assert.equal(await registry.authenticate(first.token), null)
      assert.equal((await registry.authenticate(second.token))?.id, 'auth-rot')

      const third = await rotateDeviceToken(db, 'auth-rot', T0 + 6000)
      registry.forget('auth-rot')
      assert.equal(await registry.authenticate(second.token), null, 'forget: at once')
      assert.equal((await registry.authenticate(third.token))?.id, 'auth-rot')
    })

    test(`${name}: accepted and refused tokens are cached for their TTLs: one query each until they expire`, async () => {
      const { token } = await addDevice(db, { id: 'auth-cache', name: 'C', location: 'Lab' }, T0)
      const wrong = newDeviceToken()
      const { registry, clock, queries, refusals } = setup({ ttlMs: 5000, refusedTtlMs: 60_000 })
      for (let i = 0; i < 100; i++) {
        assert.equal((await registry.authenticate(token))?.id, 'auth-cache')
        assert.equal(await registry.authenticate(wrong), null)
      }
      assert.equal(queries(), 2)
      assert.equal(refusals.length, 100, 'every refusal is reported, cached or not')
      assert.deepEqual(registry.cached, { accepted: 1, refused: 1 })
      clock.now = T0 + 5000
      await registry.authenticate(token)
      await registry.authenticate(wrong)
      assert.equal(queries(), 3, 'the accepted entry expired, the refused one not')
      clock.now = T0 + 60_000
      await registry.authenticate(wrong)
      assert.equal(queries(), 4)
    })

    test(`${name}: both caches are bounded`, async () => {
      const tokens = []
      for (let i = 0; i < 5; i++) tokens.push((await addDevice(db, { id: `auth-bound-${i}`, name: 'B', location: 'Lab' }, T0)).token)
      const { registry, queries } = setup({ maxEntries: 3, maxRefusedEntries: 2 })
      for (const t of tokens) assert.equal((await registry.authenticate(t))?.location, 'Lab')
      for (let i = 0; i < 50; i++) assert.equal(await registry.authenticate(newDeviceToken()), null)
      assert.deepEqual(registry.cached, { accepted: 3, refused: 2 })
      const before = queries()
      await registry.authenticate(tokens[4]!)
      assert.equal(queries(), before, 'the newest entries stay')
      await registry.authenticate(tokens[0]!)
      assert.equal(queries(), before + 1, 'the oldest went')
    })

    test(`${name}: concurrent lookups of one token share one query; a failed lookup throws and is not cached`, async () => {
      const { token } = await addDevice(db, { id: 'auth-flight', name: 'F', location: 'Lab' }, T0)
      const { registry, queries } = setup()
      const all = await Promise.all(Array.from({ length: 20 }, async () => await registry.authenticate(token)))
      assert.deepEqual(all.map(d => d?.id), Array(20).fill('auth-flight'))
      assert.equal(queries(), 1)

      let down = true
      const flaky = new DeviceRegistry({
        query: async (text, params) => { if (down) throw new Error('connect ECONNREFUSED'); return await db.query(text, params) },
        copyFrom: async () => {}
      })
      await assert.rejects(flaky.authenticate(token), /ECONNREFUSED/)
      assert.deepEqual(flaky.cached, { accepted: 0, refused: 0 })
      down = false
      assert.equal((await flaky.authenticate(token))?.id, 'auth-flight')
    })

    test(`${name}: resolve gives a registered device by id; unknown, revoked and malformed ids null; cached like tokens (refused ids for ttlMs)`, async () => {
      await addDevice(db, { id: 'res-1', name: 'Topic node', location: 'Lab' }, T0)
      await addDevice(db, { id: 'res-rev', name: 'R', location: 'Lab' }, T0)
      await revokeDevice(db, 'res-rev', T0)
      const { registry, clock, queries, refusals } = setup({ ttlMs: 5000 })
      for (let i = 0; i < 10; i++) {
        assert.deepEqual(await registry.resolve('res-1'), { id: 'res-1', name: 'Topic node', location: 'Lab' })
        assert.equal(await registry.resolve('res-ghost'), null)
        assert.equal(await registry.resolve('res-rev'), null)
      }
      assert.equal(await registry.resolve('bad/id'), null)
      assert.equal(await registry.resolve(''), null)
      assert.equal(queries(), 3, 'one query per id; malformed ids none')
      assert.deepEqual(refusals.slice(0, 2), ['unknown', 'revoked'])
      assert.deepEqual(refusals.slice(-2), ['malformed', 'malformed'])
      assert.deepEqual(registry.cachedIds, { accepted: 1, refused: 2 })
      // An unknown id becomes a device when it is added: seen once the refusal expires (or at once after forget).
      await addDevice(db, { id: 'res-ghost', name: 'G', location: 'Hall' }, T0)
      clock.now = T0 + 4999
      assert.equal(await registry.resolve('res-ghost'), null)
      clock.now = T0 + 5000
      assert.equal((await registry.resolve('res-ghost'))?.location, 'Hall')
      assert.equal(await registry.resolve('res-new'), null)
      await addDevice(db, { id: 'res-new', name: 'N', location: 'Roof' }, T0)
      assert.equal(await registry.resolve('res-new'), null, 'the refusal is cached')
      registry.forget('res-new')
      assert.equal((await registry.resolve('res-new'))?.location, 'Roof')
      // A revocation elsewhere is seen when the entry expires.
      assert.equal((await registry.resolve('res-1'))?.id, 'res-1', 'looked up again at T0 + 5000')
      await revokeDevice(db, 'res-1', T0 + 5000)
      assert.equal((await registry.resolve('res-1'))?.id, 'res-1')
      clock.now = T0 + 10_000
      assert.equal(await registry.resolve('res-1'), null)
    })

    test(`${name}: stale-if-error: while the database fails or is known away, expired answers (accepted and refused) are served; keys never looked up throw`, async () => {
      const { token } = await addDevice(db, { id: 'stale-1', name: 'S', location: 'Lab' }, T0)
      const wrong = newDeviceToken()
      const clock = { now: T0 }
      let failing = false
      let reachable = true
      let stale = 0
      let queries = 0
      const flaky: Queryable = {
        query: async (text, params) => {
          queries++
          if (failing) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
          return await db.query(text, params)
        },
        copyFrom: async () => {}
      }
      const registry = new DeviceRegistry(flaky, { now: () => clock.now, ttlMs: 5000, refusedTtlMs: 5000, reachable: () => reachable, onStale: () => { stale++ } })
      assert.equal((await registry.authenticate(token))?.id, 'stale-1')
      assert.equal(await registry.authenticate(wrong), null)
      assert.equal((await registry.resolve('stale-1'))?.id, 'stale-1')
      assert.equal(await registry.resolve('stale-ghost'), null)
      clock.now = T0 + 60_000
      failing = true
      // The lookup fails: the old answers.
      assert.equal((await registry.authenticate(token))?.id, 'stale-1')
      assert.equal(await registry.authenticate(wrong), null)
      assert.equal((await registry.resolve('stale-1'))?.id, 'stale-1')
      assert.equal(await registry.resolve('stale-ghost'), null)
      assert.equal(stale, 4)
      await assert.rejects(registry.resolve('stale-never-seen'), /ECONNREFUSED/)
      await assert.rejects(registry.authenticate(newDeviceToken()), /ECONNREFUSED/)
      // Known away: no lookup at all.
      reachable = false
      const before = queries
      assert.equal((await registry.resolve('stale-1'))?.id, 'stale-1')
      await assert.rejects(registry.resolve('stale-never-seen'), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_DB_UNAVAILABLE')
      assert.equal(queries, before, 'no query while the database is known to be away')
      assert.equal(stale, 5)
      // Back: fresh answers again, and a revocation made meanwhile is seen.
      await revokeDevice(db, 'stale-1', T0 + 60_000)
      reachable = true
      failing = false
      assert.equal(await registry.resolve('stale-1'), null)
      assert.equal(await registry.authenticate(token), null)
      assert.deepEqual(registry.cachedIds, { accepted: 0, refused: 2 }, 'the refusal replaced the accepted entry')
    })

    test(`${name}: a lookup that does not answer within lookupTimeoutMs serves the old answer, or fails with IOT_ERR_DB_UNAVAILABLE; it still caches what it finds`, async () => {
      await addDevice(db, { id: 'slow-1', name: 'S', location: 'Lab' }, T0)
      await addDevice(db, { id: 'slow-2', name: 'S', location: 'Lab' }, T0)
      const clock = { now: T0 }
      let hang: Promise<void> | null = null
      const hanging: Queryable = {
        query: async <T extends object>(text: string, params?: readonly unknown[]) => {
          const rows = await db.query<T>(text, params)
          if (hang !== null) await hang
          return rows
        },
        copyFrom: async () => {}
      }
      const registry = new DeviceRegistry(hanging, { now: () => clock.now, ttlMs: 5000, lookupTimeoutMs: 50 })
      assert.equal((await registry.resolve('slow-1'))?.id, 'slow-1')
      clock.now = T0 + 10_000
      let release = (): void => {}
      hang = new Promise<void>(resolve => { release = resolve })
      const t = performance.now()
      assert.equal((await registry.resolve('slow-1'))?.id, 'slow-1', 'the expired answer')
      await assert.rejects(registry.resolve('slow-2'), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_DB_UNAVAILABLE')
      assert.ok(performance.now() - t < 1000)
      hang = null
      release()
      await new Promise(resolve => setImmediate(resolve))
      assert.deepEqual(registry.cachedIds, { accepted: 2, refused: 0 }, 'the late answers were cached')
    })

    test(`${name}: a lookup under way when forget is called does not cache what it read`, async () => {
      const { token } = await addDevice(db, { id: 'auth-race', name: 'X', location: 'Lab' }, T0)
      let release = (): void => {}
      const gate = new Promise<void>(resolve => { release = resolve })
      const slow = new DeviceRegistry({
        query: async <T extends object>(text: string, params?: readonly unknown[]) => { const rows = await db.query<T>(text, params); await gate; return rows },
        copyFrom: async () => {}
      })
      const pending = slow.authenticate(token)
      await revokeDevice(db, 'auth-race', T0)
      slow.forget('auth-race')
      release()
      assert.equal((await pending)?.id, 'auth-race', 'it read the row before the revocation')
      assert.deepEqual(slow.cached, { accepted: 0, refused: 0 })
      assert.equal(await slow.authenticate(token), null)
    })
  })
}
