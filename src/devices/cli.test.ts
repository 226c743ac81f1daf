// `iot-monitor devices …`: its argument parsing and table, then the real command line as a child
// process (node --import tsx src/cli.ts) on a temporary PGlite folder, and on PostgreSQL when
// DATABASE_URL is set.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Db, openPglite } from '../storage/index.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import { type StoredDevice, devicesUsage, formatDeviceTable, hashToken, parseDevicesCommand, takeDeviceFlags } from './index.ts'

const root = new URL('../../', import.meta.url).pathname
const cli = new URL('../cli.ts', import.meta.url).pathname
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0)
const TOKEN_LINE = /^iotd_[A-Za-z0-9_-]{43}$/

interface Run { code: number | null, stdout: string, stderr: string }

/** The CLI with the test's database flags, without the database settings of the test's environment. */
function devices (dbArgs: readonly string[], ...args: string[]): Run {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '' }
  delete env.IOT_DATA_DIR
  delete env.IOT_ADMIN_TOKEN
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'devices', ...args, ...dbArgs, '--log-level', 'warn'],
    { cwd: root, env, encoding: 'utf8', timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('devices command line: arguments and table', () => {
  test('--name and --location are taken out (both forms); the rest is left for loadConfig in order', () => {
    assert.deepEqual(takeDeviceFlags(['add', 'd1', '--name', 'Boiler node', '--data-dir', '/tmp/x', '--location=Basement']),
      { flags: { name: 'Boiler node', location: 'Basement' }, rest: ['add', 'd1', '--data-dir', '/tmp/x'] })
    assert.deepEqual(takeDeviceFlags(['list']), { flags: {}, rest: ['list'] })
    assert.deepEqual(takeDeviceFlags(['add', '--', '--name']), { flags: {}, rest: ['add', '--', '--name'] }, 'after --, nothing is a flag')
    assert.deepEqual(takeDeviceFlags(['--name=']), { flags: { name: '' }, rest: [] })
    assert.throws(() => takeDeviceFlags(['add', 'd1', '--name']), { code: 'IOT_ERR_CONFIG', message: 'devices: --name needs a value (iot-monitor devices --help)' })
    assert.throws(() => takeDeviceFlags(['--location', 'a', '--location', 'b']), { code: 'IOT_ERR_CONFIG' })
  })

  test('each action with its operands; anything else is IOT_ERR_CONFIG', () => {
    assert.deepEqual(parseDevicesCommand(['add', 'd1'], { name: 'N', location: 'L' }), { action: 'add', id: 'd1', name: 'N', location: 'L' })
    assert.deepEqual(parseDevicesCommand(['list'], {}), { action: 'list' })
    assert.deepEqual(parseDevicesCommand(['rotate', 'd1'], {}), { action: 'rotate', id: 'd1' })
    assert.deepEqual(parseDevicesCommand(['revoke', 'd1'], {}), { action: 'revoke', id: 'd1' })
    const usage = (args: string[], flags: Record<string, string>, message: string): void => {
      assert.throws(() => parseDevicesCommand(args, flags), { code: 'IOT_ERR_CONFIG', message: `devices: ${message} (iot-monitor devices --help)` }, args.join(' '))
    }
    usage([], {}, 'expected an action: add, list, rotate or revoke')
    usage(['remove', 'd1'], {}, 'unknown action "remove"; expected add, list, rotate or revoke')
    usage(['add', 'd1'], { name: 'N' }, 'add needs --name and --location')
    usage(['add'], { name: 'N', location: 'L' }, 'add takes one device id, got 0')
    usage(['add', 'd1', 'd2'], { name: 'N', location: 'L' }, 'add takes one device id, got 2')
    usage(['add', 'bad id'], { name: 'N', location: 'L' }, 'a device id is 1-64 of A-Z a-z 0-9 . _ -, got "bad id"')
    usage(['add', 'd1'], { name: ' ', location: 'L' }, 'a device name is 1-128 characters, not blank, without control characters, got " "')
    usage(['list', 'd1'], {}, 'list takes no arguments, got "d1"')
    usage(['list'], { name: 'N' }, '--name is only for add')
    usage(['rotate'], {}, 'rotate takes one device id, got 0')
    usage(['revoke', 'a/b'], {}, 'a device id is 1-64 of A-Z a-z 0-9 . _ -, got "a/b"')
  })

  test('the table: a header, columns as wide as their widest cell, times to the second in UTC, "-" for none', () => {
    const d = (over: Partial<StoredDevice> & Pick<StoredDevice, 'id'>): StoredDevice =>
      ({ name: 'Node', location: 'Lab', createdAt: T0, tokenIssuedAt: T0, revokedAt: null, lastSeenAt: null, connection: null, connectionAt: null, ...over })
    const now = T0 + 3_600_000
    assert.equal(formatDeviceTable([
      d({ id: 'a', name: 'Boiler node', location: 'Basement', lastSeenAt: now - 1000 }),
      d({ id: 'hall-sensor-2', lastSeenAt: T0 + 1234 }),
      d({ id: 'old', revokedAt: T0 + 60_000 })
    ], now),
    'ID             NAME         LOCATION  CREATED               LAST SEEN             STATUS   REVOKED\n' +
    'a              Boiler node  Basement  2026-01-15T12:00:00Z  2026-01-15T12:59:59Z  online   -\n' +
    'hall-sensor-2  Node         Lab       2026-01-15T12:00:00Z  2026-01-15T12:00:01Z  offline  -\n' +
    'old            Node         Lab       2026-01-15T12:00:00Z  -                     unknown  2026-01-15T12:01:00Z\n')
    assert.equal(formatDeviceTable([], now), 'No devices. Add one: iot-monitor devices add <id> --name NAME --location LOCATION\n')
  })

  test('usage errors exit with 2 before any database is opened; --help prints the usage', () => {
    const nowhere = ['--database-url', 'postgres://nobody@127.0.0.1:1/none']
    assert.deepEqual(devices(nowhere, 'add', 'bad id', '--name', 'N', '--location', 'L'),
      { code: 2, stdout: '', stderr: 'error IOT_ERR_CONFIG: devices: a device id is 1-64 of A-Z a-z 0-9 . _ -, got "bad id" (iot-monitor devices --help)\n' })
    assert.deepEqual(devices(nowhere, 'add', 'd1', '--name', 'N'),
      { code: 2, stdout: '', stderr: 'error IOT_ERR_CONFIG: devices: add needs --name and --location (iot-monitor devices --help)\n' })
    // The rest of the message is Node's (parseArgs) and differs between versions.
    const unknown = devices(nowhere, 'list', '--colour')
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /^error IOT_ERR_CONFIG: Unknown option '--colour'/)
    assert.deepEqual(devices(nowhere, '--help'), { code: 0, stdout: devicesUsage, stderr: '' })
  })
})

for (const tdb of testDatabases) {
  describe(`devices command line on ${tdb.name}`, { skip: tdb.skip }, () => {
    const name = tdb.name
    let ctx: Awaited<ReturnType<TestDatabase['create']>> | null = null
    let dir = ''
    let dbArgs: string[] = []
    /** The database the children wrote (PGlite: opened once they are done: one process at a time). */
    let inspect: () => Promise<{ db: Db, close: () => Promise<void> }>
    before(async () => {
      if (name === 'pglite') {
        dir = mkdtempSync(join(tmpdir(), 'iot-devices-cli-'))
        dbArgs = ['--data-dir', dir]
        inspect = async () => { const db = await openPglite(dir); return { db, close: async () => { await db.close() } } }
      } else {
        ctx = await tdb.create()
        dbArgs = ['--database-url', ctx.url!]
        const db = ctx.db
        inspect = async () => ({ db, close: async () => {} })
      }
    })
    after(async () => {
      await ctx?.drop()
      if (dir !== '') rmSync(dir, { recursive: true, force: true })
    })

    test(`${name}: add, list, rotate, revoke; tokens printed once, stored as digests; typed errors with their exit codes`, async () => {
      const added = devices(dbArgs, 'add', 'cli-1', '--name', 'Boiler node', '--location', 'Basement')
      assert.equal(added.stderr, '')
      assert.equal(added.code, 0)
      const lines = added.stdout.split('\n')
      assert.deepEqual(lines.slice(0, 2), [
        'Added device cli-1 (name "Boiler node", location "Basement").',
        'Its token follows; it is shown only this once (only a digest is stored): configure the device with it now.'
      ])
      assert.equal(lines.length, 4)
      assert.match(lines[2]!, TOKEN_LINE)
      assert.equal(lines[3], '')
      const token1 = lines[2]!

      assert.deepEqual(devices(dbArgs, 'add', 'cli-1', '--name', 'Other', '--location', 'Hall'),
        { code: 4, stdout: '', stderr: 'error IOT_ERR_DEVICE_EXISTS: a device "cli-1" exists already (revoked devices keep their ids)\n' })

      const listed = devices(dbArgs, 'list')
      assert.equal(listed.code, 0)
      assert.match(listed.stdout, /^ID {5}NAME {9}LOCATION {2}CREATED {15}LAST SEEN {2}STATUS {3}REVOKED\ncli-1 {2}Boiler node {2}Basement {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}- {10}unknown {2}-\n$/)
      assert.equal(listed.stdout.includes('iotd_'), false, 'list shows no token')

      const rotated = devices(dbArgs, 'rotate', 'cli-1')
      assert.equal(rotated.code, 0)
      const rotatedLines = rotated.stdout.split('\n')
      assert.deepEqual(rotatedLines.slice(0, 2), [
        'New token for device cli-1; the old one is refused from now on (by running processes within 5 s).',
        'It is shown only this once:'
      ])
      assert.match(rotatedLines[2]!, TOKEN_LINE)
      const token2 = rotatedLines[2]!
      assert.notEqual(token2, token1)

      assert.deepEqual(devices(dbArgs, 'rotate', 'no-such-device'), { code: 3, stdout: '', stderr: 'error IOT_ERR_DEVICE_NOT_FOUND: no device "no-such-device"\n' })
      assert.deepEqual(devices(dbArgs, 'revoke', 'cli-1'),
        { code: 0, stdout: 'Revoked device cli-1: its token is refused from now on (by running processes within 5 s).\n', stderr: '' })
      const again = devices(dbArgs, 'rotate', 'cli-1')
      assert.equal(again.code, 5)
      assert.match(again.stderr, /^error IOT_ERR_DEVICE_REVOKED: device "cli-1" was revoked at \d{4}-\d\d-\d\dT[\d:.]+Z; a revoked device gets no new token\n$/)

      const { db, close } = await inspect()
      try {
        const rows = await db.query<{ hash: string, revoked: boolean, text: string }>(
          'SELECT encode(token_hash, \'hex\') AS hash, revoked_at IS NOT NULL AS revoked, d::text AS text FROM devices d')
        assert.equal(rows.length, 1)
        assert.equal(rows[0]!.hash, hashToken(token2).toString('hex'))
        assert.equal(rows[0]!.revoked, true)
        for (const t of [token1, token2]) assert.equal(rows[0]!.text.includes(t.slice(5)), false, 'no token text in the table')
      } finally {
        await close()
      }
    })
  })
}
