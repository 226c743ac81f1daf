// Crash safety: the worker process is killed with SIGKILL mid-run on PostgreSQL, restarted, and
// the stored windows still equal a recomputation from the raw readings.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { openPostgres, migrate } from '../../src/storage/index.ts'
import { checkConsistency } from '../helpers/consistency.ts'
import { createServerDatabase, serverUrl } from '../helpers/databases.ts'

const cli = new URL('../../src/cli.ts', import.meta.url).pathname

function run (url: string): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', cli, 'start', '--database-url', url, '--port', '0', '--status', '0',
    '--log-level', 'warn', '--start', '2026-03-01T00:00:00Z', '--duration', '2h', '--speedup', 'max', '--max-batch', '2000'],
  { stdio: ['ignore', 'pipe', 'pipe'] })
}

test('crash - SIGKILL of the worker mid-run on PostgreSQL, restart, windows still exact', { skip: serverUrl === null ? 'DATABASE_URL not set' : false }, async () => {
  const created = await createServerDatabase(serverUrl!)
  const db = await openPostgres(created.url)
  try {
    await migrate(db)
    const count = async (): Promise<number> => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sensor_readings'))[0]!.n
    const first = run(created.url)
    let stderr = ''
    first.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const deadline = Date.now() + 60_000
    while (await count() < 30_000) {
      assert.ok(Date.now() < deadline, `no progress before the kill: ${stderr}`)
      assert.equal(first.exitCode, null, `exited early: ${stderr}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    first.kill('SIGKILL')
    const [, signal] = await once(first, 'exit') as [number | null, string | null]
    assert.equal(signal, 'SIGKILL')
    const atKill = await count()
    assert.ok(atKill < 180_000, `killed mid-run (${atKill} readings stored of 180,000)`)
    const mid = await checkConsistency(db)
    assert.deepEqual(mid.mismatches, [], 'consistent right after the kill')

    const second = run(created.url)
    let out = ''
    second.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    second.stderr!.on('data', (d: Buffer) => { out += d.toString() })
    const [code] = await once(second, 'exit') as [number | null]
    assert.equal(code, 0, out)
    assert.match(out, /Stopped cleanly/)

    const report = await checkConsistency(db)
    assert.deepEqual(report.mismatches, [])
    assert.equal(report.storedAndLate, 0)
    assert.equal(report.countedInWindows, report.readings, 'no reading counted twice')
    assert.equal(report.finalWindows, report.windows, 'the bounded run ended with every window final')
    assert.ok(report.readings >= atKill + 180_000 - 25, `the restarted run continued after the stored data (${report.readings})`)
    const gaps = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT sensor_id, timestamp - lag(timestamp) OVER (PARTITION BY sensor_id ORDER BY timestamp) AS gap
      FROM sensor_readings) g WHERE gap <= interval '0'`)
    assert.equal(gaps[0]!.n, 0, 'per sensor, event times strictly increase across the restart')
  } finally {
    await db.close()
    await created.drop()
  }
})
