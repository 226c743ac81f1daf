// Devices on every test database (PGlite always, PostgreSQL when DATABASE_URL is set): add, list,
// rotate, revoke, last seen and connection state, and that no token is stored in clear; plus the
// pure parts (ids, labels, sensor ids, status, tokens).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { type Db, type Queryable } from '../storage/index.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import {
  LastSeenRecorder, ONLINE_WITHIN_MS, type StoredDevice, TOKEN_PREFIX, addDevice, deviceStatus, findDevice, hashToken, isWellFormedToken,
  listDevices, markOnlineDevicesOffline, newDeviceToken, revokeDevice, rotateDeviceToken, setDeviceConnection, validateDeviceId, validateLabel
} from './index.ts'
import { recordDevicesSeen } from '../storage/index.ts'

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0)
const TOKEN = /^iotd_[A-Za-z0-9_-]{43}$/

/** postgres.js returns arrays of its own class (Result): compare as plain values. */
const plain = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T

function stored (over: Partial<StoredDevice> & Pick<StoredDevice, 'id' | 'name' | 'location'>): StoredDevice {
  return { createdAt: T0, tokenIssuedAt: T0, revokedAt: null, lastSeenAt: null, connection: null, connectionAt: null, ...over }
}

describe('device ids, labels, sensor ids and tokens', () => {
  test('a device id is 1-64 of [A-Za-z0-9._-]; anything else is IOT_ERR_VALIDATION', () => {
    for (const id of ['a', 'boiler-1', 'Hall_2.north', 'x'.repeat(64), '-leading', '...']) assert.equal(validateDeviceId(id), id)
    for (const id of ['', 'x'.repeat(65), 'with space', 'slash/no', 'plus+', 'ü', 'a\nb', 'semi;colon']) {
      assert.throws(() => validateDeviceId(id), { code: 'IOT_ERR_VALIDATION' }, JSON.stringify(id))
    }
  })

  test('a name or location is 1-128 characters, not blank, without control characters', () => {
    for (const v of ['Boiler room', 'Küche 2', 'x'.repeat(128), '🌡'.repeat(128)]) assert.equal(validateLabel(v, 'name'), v)
    for (const v of ['', '   ', 'x'.repeat(129), 'tab\there', 'nul\u0000', 'del\u007f', 'c1\u0085']) {
      assert.throws(() => validateLabel(v, 'location'), { code: 'IOT_ERR_VALIDATION' }, JSON.stringify(v))
    }
  })

  test('a token is the prefix and 32 random bytes as base64url; its digest is SHA-256 of the whole text', () => {
    const bytes = Buffer.alloc(32, 0xfb)
    const token = newDeviceToken(n => { assert.equal(n, 32); return bytes })
    assert.equal(token, TOKEN_PREFIX + '-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s')
    assert.ok(isWellFormedToken(token))
    assert.deepEqual(hashToken(token), createHash('sha256').update(token).digest())
    assert.equal(hashToken(token).length, 32)
    const a = newDeviceToken()
    const b = newDeviceToken()
    assert.match(a, TOKEN)
    assert.notEqual(a, b)
    for (const bad of ['', 'iotd_', token.slice(0, -1), token + 'x', 'IOTD_' + token.slice(5), token.replace('_', '-'), ` ${token}`, token.slice(0, -1) + '=']) {
      assert.equal(isWellFormedToken(bad), false, JSON.stringify(bad))
    }
  })

  test('status: the MQTT state when newer than the last reading, else a reading within 2 minutes, else unknown', () => {
    const now = T0 + 3_600_000
    const d = { lastSeenAt: null, connection: null, connectionAt: null }
    assert.equal(deviceStatus(d, now), 'unknown')
    assert.equal(deviceStatus({ ...d, lastSeenAt: now - ONLINE_WITHIN_MS }, now), 'online')
    assert.equal(deviceStatus({ ...d, lastSeenAt: now - ONLINE_WITHIN_MS - 1 }, now), 'offline')
    assert.equal(deviceStatus({ ...d, connection: 'offline', connectionAt: now - 10, lastSeenAt: now - 20 }, now), 'offline', 'Last Will after the last reading')
    assert.equal(deviceStatus({ ...d, connection: 'offline', connectionAt: now - 20, lastSeenAt: now - 10 }, now), 'online', 'a reading after the Last Will')
    assert.equal(deviceStatus({ ...d, connection: 'online', connectionAt: now - 3 * ONLINE_WITHIN_MS }, now), 'online', 'connected, nothing sent yet')
    assert.equal(deviceStatus({ ...d, connection: 'online', connectionAt: now - 3 * ONLINE_WITHIN_MS, lastSeenAt: now - ONLINE_WITHIN_MS - 1 }, now), 'offline',
      'connected once but silent since its last reading')
  })
})

for (const tdb of testDatabases) {
  describe(`devices on ${tdb.name}`, { skip: tdb.skip }, () => {
    const name = tdb.name
    let ctx: Awaited<ReturnType<TestDatabase['create']>>
    let db: Db
    before(async () => {
      ctx = await tdb.create()
      db = ctx.db
    })
    after(async () => { await ctx.drop() })

    test(`${name}: add stores the device with the digest of a new token; the table holds no token text`, async () => {
      const { device, token } = await addDevice(db, { id: 'add-1', name: 'Boiler node', location: 'Basement' }, T0)
      assert.match(token, TOKEN)
      assert.deepEqual(plain(device), stored({ id: 'add-1', name: 'Boiler node', location: 'Basement' }))
      const [row] = await db.query<{ hash: string }>('SELECT encode(token_hash, \'hex\') AS hash FROM devices WHERE device_id = $1', ['add-1'])
      assert.equal(row!.hash, createHash('sha256').update(token).digest('hex'))
      // Every column of every row as PostgreSQL prints it (bytea as hex): neither the token, nor its
      // random part, nor their bytes in hex.
      const text = (await db.query<{ t: string }>('SELECT d::text AS t FROM devices d')).map(r => r.t).join('\n')
      for (const secret of [token, token.slice(TOKEN_PREFIX.length), Buffer.from(token).toString('hex'), Buffer.from(token.slice(5), 'base64url').toString('hex')]) {
        assert.equal(text.includes(secret), false, `the table holds ${secret}`)
      }
    })

    test(`${name}: an id is added once (IOT_ERR_DEVICE_EXISTS, also for a revoked device); bad input is IOT_ERR_VALIDATION and stores nothing`, async () => {
      await addDevice(db, { id: 'dup-1', name: 'A', location: 'Lab' }, T0)
      await assert.rejects(addDevice(db, { id: 'dup-1', name: 'B', location: 'Hall' }, T0 + 1), { code: 'IOT_ERR_DEVICE_EXISTS' })
      await revokeDevice(db, 'dup-1', T0 + 2)
      await assert.rejects(addDevice(db, { id: 'dup-1', name: 'B', location: 'Hall' }, T0 + 3), { code: 'IOT_ERR_DEVICE_EXISTS' })
      assert.deepEqual(plain(await findDevice(db, 'dup-1')), stored({ id: 'dup-1', name: 'A', location: 'Lab', revokedAt: T0 + 2 }))
      await assert.rejects(addDevice(db, { id: 'bad id', name: 'A', location: 'Lab' }, T0), { code: 'IOT_ERR_VALIDATION' })
      await assert.rejects(addDevice(db, { id: 'ok-id', name: '', location: 'Lab' }, T0), { code: 'IOT_ERR_VALIDATION' })
      await assert.rejects(addDevice(db, { id: 'ok-id', name: 'A', location: 'x'.repeat(129) }, T0), { code: 'IOT_ERR_VALIDATION' })
      assert.equal(await findDevice(db, 'ok-id'), null)
    })

    test(`${name}: rotate replaces the digest and the issue time; the old token's digest is gone`, async () => {
      const first = await addDevice(db, { id: 'rot-1', name: 'R', location: 'Roof' }, T0)
      const second = await rotateDeviceToken(db, 'rot-1', T0 + 60_000)
      assert.match(second.token, TOKEN)
      assert.notEqual(second.token, first.token)
      assert.deepEqual(plain(second.device), stored({ id: 'rot-1', name: 'R', location: 'Roof', tokenIssuedAt: T0 + 60_000 }))
      const hashes = await db.query<{ hash: string }>('SELECT encode(token_hash, \'hex\') AS hash FROM devices WHERE device_id = $1', ['rot-1'])
      assert.deepEqual(plain(hashes), [{ hash: hashToken(second.token).toString('hex') }])
      const old = await db.query('SELECT 1 FROM devices WHERE token_hash = decode($1, \'hex\')', [hashToken(first.token).toString('hex')])
      assert.equal(old.length, 0)
      await assert.rejects(rotateDeviceToken(db, 'no-such-device', T0), { code: 'IOT_ERR_DEVICE_NOT_FOUND' })
      await assert.rejects(rotateDeviceToken(db, 'bad/id', T0), { code: 'IOT_ERR_VALIDATION' })
    })

    test(`${name}: revoke sets the time once (again: unchanged); a revoked device gets no new token; unknown ids are IOT_ERR_DEVICE_NOT_FOUND`, async () => {
      await addDevice(db, { id: 'rev-1', name: 'V', location: 'Vault' }, T0)
      const first = await revokeDevice(db, 'rev-1', T0 + 1000)
      assert.deepEqual(plain(first), { device: stored({ id: 'rev-1', name: 'V', location: 'Vault', revokedAt: T0 + 1000 }), changed: true })
      const again = await revokeDevice(db, 'rev-1', T0 + 2000)
      assert.deepEqual(plain(again), { device: stored({ id: 'rev-1', name: 'V', location: 'Vault', revokedAt: T0 + 1000 }), changed: false })
      await assert.rejects(rotateDeviceToken(db, 'rev-1', T0 + 3000), { code: 'IOT_ERR_DEVICE_REVOKED' })
      await assert.rejects(revokeDevice(db, 'no-such-device', T0), { code: 'IOT_ERR_DEVICE_NOT_FOUND' })
    })

    test(`${name}: last seen for many devices in one statement, never moving back; connection state in order of its reports`, async () => {
      await addDevice(db, { id: 'seen-1', name: 'S1', location: 'Lab' }, T0)
      await addDevice(db, { id: 'seen-2', name: 'S2', location: 'Lab' }, T0)
      assert.equal(await recordDevicesSeen(db, new Map()), 0)
      assert.equal(await recordDevicesSeen(db, new Map([['seen-2', T0 + 5000], ['seen-1', T0 + 4000], ['not-a-device', T0 + 5000]])), 2)
      assert.equal(await recordDevicesSeen(db, new Map([['seen-1', T0 + 3000], ['seen-2', T0 + 5000]])), 0, 'older or equal: unchanged')
      assert.equal(await recordDevicesSeen(db, new Map([['seen-1', T0 + 6001]])), 1)
      assert.equal((await findDevice(db, 'seen-1'))!.lastSeenAt, T0 + 6001)
      assert.equal((await findDevice(db, 'seen-2'))!.lastSeenAt, T0 + 5000)

      assert.equal(await setDeviceConnection(db, 'seen-1', 'online', T0 + 10_000), true)
      assert.equal(await setDeviceConnection(db, 'seen-1', 'offline', T0 + 9000), false, 'an older report is ignored')
      assert.equal(await setDeviceConnection(db, 'seen-1', 'offline', T0 + 11_000), true)
      assert.equal(await setDeviceConnection(db, 'not-a-device', 'online', T0), false)
      assert.deepEqual(plain(await findDevice(db, 'seen-1')),
        stored({ id: 'seen-1', name: 'S1', location: 'Lab', lastSeenAt: T0 + 6001, connection: 'offline', connectionAt: T0 + 11_000 }))

      // A broker starting: states left online (cut by a crash) become offline; offline ones stay as they were.
      assert.equal(await setDeviceConnection(db, 'seen-2', 'online', T0 + 12_000), true)
      assert.equal(await markOnlineDevicesOffline(db, T0 + 20_000), 1)
      assert.deepEqual([(await findDevice(db, 'seen-2'))!.connection, (await findDevice(db, 'seen-2'))!.connectionAt], ['offline', T0 + 20_000])
      assert.equal((await findDevice(db, 'seen-1'))!.connectionAt, T0 + 11_000)
      assert.equal(await markOnlineDevicesOffline(db, T0 + 21_000), 0)
    })

    test(`${name}: LastSeenRecorder keeps the newest mark per device and writes them in one statement; a failed flush keeps them`, async () => {
      await addDevice(db, { id: 'rec-1', name: 'R1', location: 'Lab' }, T0)
      await addDevice(db, { id: 'rec-2', name: 'R2', location: 'Lab' }, T0)
      let statements = 0
      let fail = false
      const counting: Queryable = {
        query: async (text, params) => {
          statements++
          if (fail) throw new Error('connection lost')
          return await db.query(text, params)
        },
        copyFrom: async (table, columns, data) => { await db.copyFrom(table, columns, data) }
      }
      const recorder = new LastSeenRecorder(counting)
      assert.equal(await recorder.flush(), 0)
      assert.equal(statements, 0, 'nothing to write: no statement')
      for (let i = 0; i < 1000; i++) recorder.mark(i % 2 === 0 ? 'rec-1' : 'rec-2', T0 + i)
      recorder.mark('rec-1', T0 + 10)
      assert.equal(recorder.pending, 2)
      fail = true
      await assert.rejects(recorder.flush(), /connection lost/)
      assert.equal(recorder.pending, 2)
      recorder.mark('rec-2', T0 + 2000)
      fail = false
      statements = 0
      assert.equal(await recorder.flush(), 2)
      assert.equal(statements, 1)
      assert.equal(recorder.pending, 0)
      assert.equal((await findDevice(db, 'rec-1'))!.lastSeenAt, T0 + 998)
      assert.equal((await findDevice(db, 'rec-2'))!.lastSeenAt, T0 + 2000)
    })

    test(`${name}: LastSeenRecorder holds connection states through a failed flush and writes the newest per device after it`, async () => {
      await addDevice(db, { id: 'conn-1', name: 'C1', location: 'Lab' }, T0)
      await addDevice(db, { id: 'conn-2', name: 'C2', location: 'Lab' }, T0)
      let fail = true
      const flaky: Queryable = {
        query: async (text, params) => {
          if (fail) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
          return await db.query(text, params)
        },
        copyFrom: async (table, columns, data) => { await db.copyFrom(table, columns, data) }
      }
      const recorder = new LastSeenRecorder(flaky)
      recorder.connection('conn-1', 'online', T0 + 1000)
      recorder.connection('conn-2', 'online', T0 + 1000)
      recorder.mark('conn-1', T0 + 1500)
      assert.equal(recorder.pending, 3)
      // Concurrent flushes during the outage: each fails, none loses what it took.
      const results = await Promise.allSettled([recorder.flush(), recorder.flush()])
      assert.deepEqual(results.map(r => r.status), ['rejected', 'rejected'])
      assert.equal(recorder.pending, 3)
      recorder.connection('conn-1', 'offline', T0 + 2000)
      recorder.connection('conn-2', 'offline', T0 + 500) // older than the one held: ignored
      fail = false
      assert.equal(await recorder.flush(), 1)
      assert.equal(recorder.pending, 0)
      const c1 = (await findDevice(db, 'conn-1'))!
      const c2 = (await findDevice(db, 'conn-2'))!
      assert.deepEqual([c1.connection, c1.connectionAt, c1.lastSeenAt], ['offline', T0 + 2000, T0 + 1500])
      assert.deepEqual([c2.connection, c2.connectionAt], ['online', T0 + 1000])
    })

    test(`${name}: list returns every device by id, revoked ones too`, async () => {
      const ids = (await listDevices(db)).map(d => d.id)
      assert.deepEqual(ids, [...ids].sort())
      for (const id of ['add-1', 'dup-1', 'rev-1', 'rot-1', 'seen-1']) assert.ok(ids.includes(id), id)
      assert.equal((await listDevices(db)).find(d => d.id === 'rev-1')!.revokedAt, T0 + 1000)
    })

    test(`${name}: a token is found through the unique index on its digest`, async () => {
      const rows = await db.query<{ def: string }>('SELECT indexdef AS def FROM pg_indexes WHERE tablename = \'devices\' AND indexname = \'devices_token_hash\'')
      assert.equal(rows.length, 1)
      assert.match(rows[0]!.def, /^CREATE UNIQUE INDEX devices_token_hash ON (public\.)?devices USING btree \(token_hash\)$/)
    })
  })
}
