import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPglite } from './db.ts'

test('the embedded database folder is locked to one process: another live process is refused, a dead one\'s lock taken over, the lock gone at close', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-pglite-lock-'))
  const other = spawn('sleep', ['30'], { stdio: 'ignore' })
  try {
    const lock = join(dir, 'iot-monitor.lock')
    writeFileSync(lock, `${other.pid}\n`)
    await assert.rejects(openPglite(dir), (err: Error & { code?: string }) =>
      err.code === 'IOT_ERR_STORAGE' && err.message === `the embedded database in ${dir} is in use by process ${other.pid} (iot-monitor running there?): ` +
        'stop it first; to manage devices while it runs, use the admin API (--admin-token)')
    assert.equal(readFileSync(lock, 'utf8'), `${other.pid}\n`, 'the owner keeps its lock')
    other.kill('SIGKILL')
    await once(other, 'exit')
    const db = await openPglite(dir)
    assert.equal(readFileSync(lock, 'utf8'), `${process.pid}\n`)
    assert.deepEqual(await db.query('SELECT 1 AS x'), [{ x: 1 }])
    await db.close()
    assert.equal(existsSync(lock), false)
  } finally {
    other.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})
