// What a new user does: `npm start` (here `iot-monitor start` on a fresh data folder), then asks
// the API for health and windows, then presses Ctrl-C.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const cli = new URL('../../src/cli.ts', import.meta.url).pathname

async function until<T> (what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe().catch(() => null)
    if (v !== null) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

test('start - serves /health, then windows, and stops cleanly on SIGINT', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-start-'))
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'start', '--data-dir', dir, '--port', '0', '--speedup', '120', '--status', '1s'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '' } })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  try {
    const t0 = Date.now()
    const base = await until('the listening address', 30_000, async () => /running: (http:\/\/[^\s]+)/.exec(out)?.[1] ?? null)
    const health = await until('/health', 30_000, async () => {
      const r = await fetch(`${base}/health`)
      return r.ok ? await r.json() as { status: string, database: string } : null
    })
    assert.equal(health.status, 'ok')
    assert.equal(health.database, 'pglite')
    assert.ok(Date.now() - t0 < 30_000, 'healthy within 30 s')

    const windows = await until('windows', 30_000, async () => {
      const body = await (await fetch(`${base}/api/aggregates?limit=50`)).json() as { count: number, aggregates: { count_readings: number, window_start: string }[] }
      return body.aggregates.some(a => a.count_readings > 0) ? body : null
    })
    assert.ok(windows.count > 0)
    const readings = await (await fetch(`${base}/api/readings?limit=15`)).json() as { count: number }
    assert.equal(readings.count, 15)
    await until('a status line', 10_000, async () => /readings\/s \| stored [\d,]+ \| windows closed/.test(out) ? true : null)

    child.kill('SIGINT')
    const [code] = await once(child, 'exit') as [number | null]
    assert.equal(code, 0, out)
    assert.match(out, /Stopped cleanly/)
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})
