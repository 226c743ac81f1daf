// The Alarms tab in a real browser (Debian Chromium via playwright-core), on `iot-monitor start` with
// a PostgreSQL database (the test writes two alarms into it as the worker's alarm core would): the
// tab lists them (critical first), the header counts them, an operator acknowledges one with a
// comment (the admin token asked for on the server's refusal) and sees its status change without a
// reload, an acknowledgement made elsewhere (the API) arrives over the live stream, and the history
// shows the comment. No console errors.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { openPostgres } from '../../src/storage/index.ts'
import { insertAlarm, testAlarm } from '../helpers/alarms.ts'
import { createServerDatabase, serverUrl } from '../helpers/databases.ts'
import { browserSkipReason, chromiumPath, startSystem, until, type RunningServer } from './browser.ts'

const cli = new URL('../../src/cli.ts', import.meta.url).pathname
const buildScript = new URL('../../scripts/build-web.mjs', import.meta.url).pathname
const ADMIN_TOKEN = 'admin-token-of-the-alarms-test-0123'

const skip = browserSkipReason() || (serverUrl === null ? 'DATABASE_URL is not set (the test writes alarms into the server database)' : false)

test('alarms tab - lists, counts, acknowledges with a comment, and follows changes live without a reload', { skip, timeout: 180_000 }, async () => {
  const built = spawnSync(process.execPath, [buildScript], { encoding: 'utf8' })
  assert.equal(built.status, 0, `web build failed: ${built.stdout}${built.stderr}`)
  const created = await createServerDatabase(serverUrl!)
  const dir = mkdtempSync(join(tmpdir(), 'iot-alarms-e2e-'))
  let server: RunningServer | null = null
  let browser: Browser | null = null
  const problems: string[] = []
  try {
    server = await startSystem(cli, dir, ['--database-url', created.url, '--no-simulator', '--no-mqtt', '--admin-token', ADMIN_TOKEN])
    const base = server.base
    const db = await openPostgres(created.url, 1)
    const now = Date.now()
    const hot = await insertAlarm(db, testAlarm({ sensor: 'temp-server-01', type: 'threshold:temperature_high', severity: 'critical', sensorType: 'temperature', location: 'Server Room', startMs: now - 600_000 }))
    const stale = await insertAlarm(db, testAlarm({ sensor: 'co2-lab-01', severity: 'warning', startMs: now - 120_000 }))
    await db.close()

    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] })
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } })
    page.on('console', msg => {
      // The refusal of the first acknowledgement (no admin token yet) is expected: the browser logs the 401.
      if (msg.type() === 'error' && !/status of 401/.test(msg.text())) problems.push(`console error: ${msg.text()}`)
    })
    page.on('pageerror', err => { problems.push(`page error: ${err.message}`) })
    await page.goto(`${base}/?tab=alarms`)
    // A mark that a reload would wipe.
    await page.evaluate('window.__noReload = true')
    const statusOf = async (id: string): Promise<string | null> =>
      await page.locator(`tr[data-key="${id}"] [data-testid=alarm-status]`).getAttribute('data-status', { timeout: 1000 }).catch(() => null)
    const rows = async (): Promise<string[]> => await page.locator('[data-testid=table-alarms] tbody tr[data-key]').evaluateAll(
      (els: { getAttribute: (n: string) => string | null }[]) => els.map(e => e.getAttribute('data-key') ?? ''))

    await until('both alarms listed, critical first', 20_000, async () => { const r = await rows(); return r.length === 2 ? r : null })
    assert.deepEqual(await rows(), [hot.id, stale.id])
    assert.equal(await page.getByTestId('header-alarms').getAttribute('data-unack'), '2')
    assert.equal(await statusOf(hot.id), 'active_unack')
    await until('the live stream', 15_000, async () => await page.getByTestId('live-status').getAttribute('data-status') === 'live' ? true : null)

    // Acknowledge with a comment; the server asks for the admin token, given in the form.
    await page.locator(`tr[data-key="${hot.id}"] [data-testid=alarm-ack]`).click()
    await page.getByTestId('alarm-comment').fill('fan replaced, watching it')
    await page.getByTestId('alarm-confirm').click()
    await page.getByTestId('alarm-admin-token').fill(ADMIN_TOKEN)
    await page.getByTestId('alarm-confirm').click()
    await until('the acknowledged status', 10_000, async () => await statusOf(hot.id) === 'active_ack' ? true : null)
    assert.match(await page.locator(`tr[data-key="${hot.id}"]`).innerText(), /fan replaced, watching it/)

    // Acknowledged elsewhere: the live stream brings it.
    const res = await fetch(`${base}/api/alarms/${encodeURIComponent(stale.id)}/ack`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ comment: 'seen on call', by: 'dana' })
    })
    assert.equal(res.status, 200, await res.text())
    await until('the other alarm acknowledged over the live stream', 10_000, async () => await statusOf(stale.id) === 'active_ack' ? true : null)
    await until('the header count', 10_000, async () => await page.getByTestId('header-alarms').getAttribute('data-unack') === '0' ? true : null)
    assert.equal(await page.evaluate('window.__noReload === true'), true, 'no reload happened')

    await page.locator(`tr[data-key="${hot.id}"] [data-testid=alarm-expand]`).click()
    const history = await until('the history', 10_000, async () => {
      const t = await page.getByTestId('alarm-history').innerText({ timeout: 1000 })
      return /acknowledged/.test(t) ? t : null
    })
    assert.match(history, /acknowledged .* by admin: “fan replaced, watching it”/)
    assert.deepEqual(problems, [])
  } finally {
    await browser?.close()
    await server?.stop()
    rmSync(dir, { recursive: true, force: true })
    await created.drop()
  }
})
