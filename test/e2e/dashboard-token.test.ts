// The dashboard of a server that asks for a token (`iot-monitor start --host 0.0.0.0 --viewer-token
// …`), in a real browser: the page asks for the token, a wrong one is refused, the viewer token
// opens every view and the live stream (whose EventSource cannot send a header: it reads with the
// session cookie that POST /api/session set), and the token is kept for the tab only.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { browserSkipReason, chromiumPath, startSystem, tableRows, until, type RunningServer } from './browser.ts'

const cli = new URL('../../src/cli.ts', import.meta.url).pathname
const buildScript = new URL('../../scripts/build-web.mjs', import.meta.url).pathname
const VIEWER = 'viewer-token-of-the-browser-test-01'

test('dashboard - beyond loopback it asks for the token, refuses a wrong one, and with the viewer token shows data and goes live', { skip: browserSkipReason(), timeout: 180_000 }, async () => {
  const built = spawnSync(process.execPath, [buildScript], { encoding: 'utf8' })
  assert.equal(built.status, 0, `web build failed: ${built.stdout}${built.stderr}`)
  const dir = mkdtempSync(join(tmpdir(), 'iot-dashboard-token-'))
  let server: RunningServer | null = null
  let browser: Browser | null = null
  const pageErrors: string[] = []
  try {
    server = await startSystem(cli, dir, ['--host', '0.0.0.0', '--viewer-token', VIEWER, '--speedup', '60', '--no-mqtt'])
    const base = server.base.replace('0.0.0.0', '127.0.0.1')
    await until('readings stored', 30_000, async () => {
      const r = await fetch(`${base}/api/meta`, { headers: { authorization: `Bearer ${VIEWER}` } })
      const m = await r.json() as { newest: string | null }
      return m.newest !== null ? true : null
    })
    assert.equal((await fetch(`${base}/api/meta`)).status, 401)

    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] })
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    page.on('pageerror', err => { pageErrors.push(err.message) })
    await page.goto(`${base}/`)
    const prompt = page.getByTestId('token-prompt')
    await until('the token prompt', 15_000, async () => await prompt.isVisible() ? true : null)

    await prompt.getByLabel('Token', { exact: true }).fill('not-the-token-0123456789')
    await prompt.getByRole('button', { name: 'Open' }).click()
    await until('the refusal', 10_000, async () => await prompt.getByRole('alert').textContent() === 'This token is not accepted here.' ? true : null)

    await prompt.getByLabel('Token', { exact: true }).fill(VIEWER)
    await Promise.all([page.waitForEvent('load'), prompt.getByRole('button', { name: 'Open' }).click()])
    await until('the live stream', 20_000, async () => await page.getByTestId('live-status').getAttribute('data-status') === 'live' ? true : null)
    await until('recent readings', 20_000, async () => await tableRows(page, 'table-recent-readings') > 0 ? true : null)
    assert.equal(await page.getByTestId('token-prompt').count(), 0)
    // Kept for this tab (sessionStorage), not across browser restarts (localStorage) unless asked.
    assert.deepEqual(await page.evaluate("[sessionStorage.getItem('iot-monitor.token'), localStorage.getItem('iot-monitor.token')]"), [VIEWER, null])
    const cookies = await page.context().cookies()
    assert.deepEqual(cookies.map(c => [c.name, c.path, c.httpOnly, c.sameSite]), [['iot_session', '/api', true, 'Strict']])
    assert.deepEqual(pageErrors, [])
  } finally {
    await browser?.close()
    await server?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})
