// Device-level detection in a real browser (Debian Chromium via playwright-core), on `iot-monitor
// start` with the embedded bus and PGlite and the simulator at 120x: once the simulator's devices
// (its co-located sensors, `sim-<node>`) have their models (about 400 rows each, some seconds of
// wall time at 120x), the ML tab lists them, anomalous first, each with a numeric score; selecting
// one draws its score over time (with the 0.5 threshold) in an ECharts canvas. No console errors.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { DeviceScoresListJson } from '../../src/api/index.ts'
import { browserSkipReason, chartStates, chromiumPath, getJson, rowKeys, startSystem, until, type RunningServer } from './browser.ts'

const cli = new URL('../../src/cli.ts', import.meta.url).pathname
const buildScript = new URL('../../scripts/build-web.mjs', import.meta.url).pathname

const CHART = 'chart-device-scores'

test('device-level detection - the ML tab lists the simulator\'s devices with scores; a selected device\'s scores are charted', { skip: browserSkipReason(), timeout: 240_000 }, async (t) => {
  const started = Date.now()
  const phase = (what: string): void => { t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`) }
  const built = spawnSync(process.execPath, [buildScript], { encoding: 'utf8' })
  assert.equal(built.status, 0, `web build failed: ${built.stdout}${built.stderr}`)

  const dir = mkdtempSync(join(tmpdir(), 'iot-device-scores-e2e-'))
  let server: RunningServer | null = null
  let browser: Browser | null = null
  const problems: string[] = []
  try {
    // The simulator's co-located sensors as devices (connected devices' sensors are by default).
    server = await startSystem(cli, dir, ['--speedup', '120', '--no-mqtt', '--device-detection', 'all'])
    const base = server.base
    phase(`system running at ${base}`)

    // The server first: a simulated device scored by its own model.
    const listed = await until('a sim-… device with a score in /api/detection/devices', 120_000, async () => {
      const l = await getJson<DeviceScoresListJson>(`${base}/api/detection/devices`)
      return l.devices.some(d => d.device.startsWith('sim-') && typeof d.last_score === 'number') ? l : null
    }, async () => server?.output().slice(-2000) ?? '')
    phase(`devices scored: ${listed.devices.map(d => `${d.device}=${d.last_score}`).join(' ')}`)

    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] })
    const page: Page = await browser.newPage({ viewport: { width: 1440, height: 900 } })
    page.on('console', msg => { if (msg.type() === 'error') problems.push(`console error: ${msg.text()} (${msg.location().url})`) })
    page.on('pageerror', err => { problems.push(`page error: ${err.message}`) })
    const describe = async (): Promise<string> => {
      const charts = await chartStates(page)
      return `url ${page.url()}; devices ${(await rowKeys(page, 'table-device-scores')).join(' ')}; charts ${charts.map(c => `${c.id}=${c.points}`).join(' ')}` +
        `${problems.length > 0 ? `; page errors: ${problems.join(' | ')}` : ''}`
    }

    await page.goto(`${base}/?tab=ml`)
    const table = page.getByTestId('table-device-scores')
    /** The listed devices, top first: key, score text, whether flagged anomalous. */
    const listedRows = async (): Promise<{ device: string, score: string, anomalous: boolean }[]> =>
      await table.locator('tbody tr[data-key]').evaluateAll((els: { getAttribute: (n: string) => string | null, querySelector: (s: string) => { textContent: string | null } | null }[]) =>
        els.map(e => ({
          device: e.getAttribute('data-key') ?? '',
          score: e.querySelector('[data-testid=device-score-value]')?.textContent ?? '',
          anomalous: (e.getAttribute('class') ?? '').split(/\s+/).includes('row-critical')
        })))
    const device = await until('a sim-… device with a numeric score in the ML tab', 30_000, async () => {
      const found = (await listedRows()).find(r => r.device.startsWith('sim-') && /^\d+\.\d+$/.test(r.score))
      return found ?? null
    }, describe)
    phase(`listed: ${device.device} with score ${device.score}`)
    const rows = await listedRows()
    const firstNormal = rows.findIndex(r => !r.anomalous)
    assert.ok(firstNormal === -1 || rows.slice(firstNormal).every(r => !r.anomalous), `anomalous devices first: ${rows.map(r => `${r.device}${r.anomalous ? '!' : ''}`).join(' ')}`)

    // Selecting it (another one when the panel already shows it) draws its scores.
    const select = async (id: string): Promise<void> => { await table.locator(`tbody tr[data-key="${id}"] [data-testid=device-score-select]`).click() }
    const other = rows.find(r => r.device !== device.device)
    if (other !== undefined) {
      await select(other.device)
      await until(`${other.device} selected`, 10_000, async () => await page.getByTestId('device-score-detail').getAttribute('data-device') === other.device ? true : null, describe)
    }
    await select(device.device)
    await until(`${device.device} selected`, 10_000, async () => await page.getByTestId('device-score-detail').getAttribute('data-device') === device.device ? true : null, describe)
    assert.equal(await table.locator(`tbody tr[data-key="${device.device}"] [data-testid=device-score-select]`).getAttribute('aria-pressed'), 'true')
    const chart = await until(`the score chart of ${device.device} with points`, 20_000, async () => {
      const c = (await chartStates(page)).find(x => x.id === CHART)
      return c !== undefined && c.points > 0 ? c : null
    }, describe)
    assert.match(chart.series, /device score/, 'the device score is drawn')
    assert.match(chart.series, /threshold 0\.5/, 'the 0.5 threshold is drawn')
    assert.ok(await page.locator(`[data-testid=${CHART}] canvas`).count() > 0, 'ECharts drew on a canvas')
    assert.ok(await page.getByTestId('table-device-anomalies').count() === 1, 'the anomalous rows are listed (or the list says there are none)')
    phase(`${device.device}: ${chart.points} scores charted`)

    await page.waitForTimeout(300) // errors logged by the last requests
    assert.deepEqual(problems, [], `the page logged errors:\n${problems.join('\n')}`)
  } finally {
    await browser?.close().catch(() => {})
    await server?.stop().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
})
