// DeviceRegistry.authenticate on every test database, with an injected clock for its caches (no
// test sleeps), and the TtlCache under it.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type Db, type Queryable } from '../storage/index.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
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
