// Crash safety: the worker process is killed with SIGKILL mid-run, restarted, and the stored
// windows still equal a recomputation from the raw readings. On PostgreSQL and on PGlite's data folder.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Db, openPglite, openPostgres, migrate } from '../../src/storage/index.ts'
import { checkConsistency } from '../helpers/consistency.ts'
import { createServerDatabase, serverUrl } from '../helpers/databases.ts'

const cli = new URL('../../src/cli.ts', import.meta.url).pathname
const SIMULATED = 180_000 // 2 h of 25 sensors at 1 reading/s

function run (target: string[]): { child: ChildProcess, output: () => string, stored: () => number } {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'start', ...target, '--port', '0', '--status', '200ms',
    '--log-level', 'warn', '--start', '2026-03-01T00:00:00Z', '--duration', '2h', '--speedup', 'max', '--max-batch', '2000'],
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '' } })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  return {
    child,
    output: () => out,
    stored: () => Number([...out.matchAll(/stored ([\d,]+)/g)].pop()?.[1]?.replaceAll(',', '') ?? 0)
  }
}

async function killAndRestart (target: string[], open: () => Promise<Db>): Promise<void> {
  const first = run(target)
  const deadline = Date.now() + 60_000
  while (first.stored() < 30_000) {
    assert.ok(Date.now() < deadline, `no progress before the kill: ${first.output()}`)
    assert.equal(first.child.exitCode, null, `exited early: ${first.output()}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  first.child.kill('SIGKILL')
  const [, signal] = await once(first.child, 'exit') as [number | null, string | null]
  assert.equal(signal, 'SIGKILL')

  let db = await open()
  const atKill = (await checkConsistency(db))
  assert.deepEqual(atKill.mismatches, [], 'consistent right after the kill')
  assert.ok(atKill.readings < SIMULATED, `killed mid-run (${atKill.readings} of ${SIMULATED} stored)`)
  await db.close()

  const second = run(target)
  const [code] = await once(second.child, 'exit') as [number | null]
  assert.equal(code, 0, second.output())
  assert.match(second.output(), /Stopped cleanly/)

  db = await open()
  try {
    const report = await checkConsistency(db)
    assert.deepEqual(report.mismatches, [])
    assert.equal(report.storedAndLate, 0)
    assert.equal(report.countedInWindows, report.readings, 'no reading counted twice')
    assert.equal(report.finalWindows, report.windows, 'the bounded run ended with every window final')
    assert.ok(report.readings >= atKill.readings + SIMULATED - 25, `the restarted run continued after the stored data (${report.readings})`)
    const gaps = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT timestamp - lag(timestamp) OVER (PARTITION BY sensor_id ORDER BY timestamp) AS gap
      FROM sensor_readings) g WHERE gap <= interval '0'`)
    assert.equal(gaps[0]!.n, 0, 'per sensor, event times strictly increase across the restart')
  } finally {
    await db.close()
  }
}

test('crash - SIGKILL mid-run on PostgreSQL, restart, windows still exact', { skip: serverUrl === null ? 'DATABASE_URL not set' : false }, async () => {
  const created = await createServerDatabase(serverUrl!)
  try {
    const setup = await openPostgres(created.url)
    await migrate(setup)
    await setup.close()
    await killAndRestart(['--database-url', created.url], async () => await openPostgres(created.url))
  } finally {
    await created.drop()
  }
})

test('crash - SIGKILL mid-run on the embedded PGlite data folder, restart, windows still exact', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-crash-'))
  try {
    await killAndRestart(['--data-dir', dir], async () => await openPglite(dir))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
