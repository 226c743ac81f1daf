// What a user sees: `iot-monitor start`, then the dashboard in a real browser (Debian Chromium via
// playwright-core). Every tab shows data, a filter changes the charts and lands in the URL, a live
// reading appears without a reload, anomalies are left out of the charts unless asked for, a
// reloaded URL restores the view, tables show every row and whole explanations, a phone reaches
// every tab, control and chart, a device registered and heard over HTTP shows online in the Devices
// tab, and the page logs no errors. Time axes label times of day and
// dates (rendered by ECharts in Node, no browser). Screenshots of each tab, desktop and phone, go
// to $SCREENSHOT_DIR (default: <tmp>/iot-monitor-screenshots).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import * as echarts from 'echarts'
import type { DeviceListJson, MetaJson, OverviewJson } from '../../src/api/index.ts'
import { timeAxis } from '../../web/src/charts/common.ts'
import { browserSkipReason, chartStates, chromiumPath, getJson, haveChromium, layoutProblems, rowKeys, startSystem, tableRows, until, type RunningServer } from './browser.ts'

const cli = new URL('../../src/cli.ts', import.meta.url).pathname
const buildScript = new URL('../../scripts/build-web.mjs', import.meta.url).pathname
const screenshotDir = process.env.SCREENSHOT_DIR ?? join(tmpdir(), 'iot-monitor-screenshots')

const TABS = ['realtime', 'windows', 'ml', 'analytics', 'devices'] as const

/** The charts and tables each tab must fill (by data-testid prefix / exact id). */
const EXPECT: Record<typeof TABS[number], { charts: string[], tables: string[] }> = {
  realtime: { charts: ['chart-series-', 'chart-readings-by-location', 'chart-anomalies-by-type'], tables: ['table-recent-readings', 'table-recent-anomalies'] },
  windows: { charts: ['chart-trend-'], tables: ['table-windows'] },
  ml: { charts: ['chart-score-histogram'], tables: ['table-confusion', 'table-detector-scores', 'table-ml-anomalies', 'table-models'] },
  analytics: { charts: ['chart-correlation'], tables: ['table-stats'] },
  devices: { charts: [], tables: ['table-devices'] }
}

/** The admin API's token for the run, and the devices it registers: one heard over HTTP, one never. */
const ADMIN_TOKEN = 'admin-token-of-the-dashboard-test-0123'
const HEARD = { id: 'e2e-node-1', name: 'E2E bench node', location: 'Test Lab' }
const SILENT = { id: 'e2e-node-2', name: 'Spare node', location: 'Stock room' }

const readingTime = (key: string): string => key.split('|')[1] ?? ''

/** Explanations in the anomaly tables: must be readable whole. */
const PROSE = '.why'
/** What must fit a phone's width: tabs, controls, charts, panels. */
const PHONE_IN_VIEW = ['[role=tab]', '[role=toolbar] select', '[role=toolbar] button', '[data-points]', '.panel']

test('dashboard - every tab shows data; filters, live updates and shared URLs work; no console errors', { skip: browserSkipReason(), timeout: 240_000 }, async (t) => {
  const started = Date.now()
  const phase = (what: string): void => { t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`) }
  // Checked here too: in CI (CI=true) a missing browser fails the test instead of skipping it.
  assert.ok(haveChromium(), `Chromium is required in CI: none at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`)

  const built = spawnSync(process.execPath, [buildScript], { encoding: 'utf8' })
  assert.equal(built.status, 0, `web build failed: ${built.stdout}${built.stderr}`)
  phase(built.stdout.trim())

  const dir = mkdtempSync(join(tmpdir(), 'iot-dashboard-'))
  mkdirSync(screenshotDir, { recursive: true })
  let server: RunningServer | null = null
  let browser: Browser | null = null
  const problems: string[] = []
  try {
    server = await startSystem(cli, dir, ['--speedup', '60', '--admin-token', ADMIN_TOKEN])
    const base = server.base
    phase(`system running at ${base}`)

    // Data first: readings, a trained model and labelled windows take a few seconds at 60x.
    const meta = await until('readings in /api/meta', 30_000, async () => {
      const m = await getJson<MetaJson>(`${base}/api/meta`)
      return m.newest !== null && m.sensor_types.length > 1 ? m : null
    })
    await until('readings in /api/overview', 20_000, async () => {
      const o = await getJson<OverviewJson>(`${base}/api/overview`)
      return o.readings > 0 && o.windows > 0 ? o : null
    })
    await until('a trained model', 30_000, async () => {
      const m = await getJson<{ count: number }>(`${base}/api/detection/models?limit=1`)
      return m.count > 0 ? true : null
    })

    phase('data stored and a model trained')

    // Two devices through the admin API; one sends a reading over HTTP (it is late for the
    // simulator's windows at 60x, but the device is heard all the same).
    const tokens: Record<string, string> = {}
    for (const device of [HEARD, SILENT]) {
      const res = await fetch(`${base}/api/admin/devices`, {
        method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(device)
      })
      const text = await res.text()
      assert.equal(res.status, 201, `registering ${device.id}: ${text}`)
      tokens[device.id] = (JSON.parse(text) as { token: string }).token
    }
    const sent = await fetch(`${base}/api/v1/${tokens[HEARD.id]}/telemetry`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ temperature: 22.5, humidity: 41 })
    })
    assert.equal(sent.status, 200, `telemetry of ${HEARD.id}: ${await sent.text()}`)

    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] })
    const page: Page = await browser.newPage({ viewport: { width: 1440, height: 900 } })
    const apiCalls: URL[] = []
    page.on('request', req => { const u = new URL(req.url()); if (u.pathname.startsWith('/api/')) apiCalls.push(u) })
    page.on('console', msg => {
      if (msg.type() !== 'error') return
      const where = msg.location().url
      problems.push(`console error: ${msg.text()} (${where})`)
    })
    page.on('pageerror', err => { problems.push(`page error: ${err.message}`) })

    const describe = async (): Promise<string> => {
      const charts = await chartStates(page)
      return `url ${page.url()}; charts ${charts.map(c => `${c.id}=${c.points}`).join(' ')}${problems.length > 0 ? `; page errors: ${problems.join(' | ')}` : ''}`
    }

    await page.goto(`${base}/`)
    await until('the live indicator to say live', 15_000, async () => await page.getByTestId('live-status').getAttribute('data-status') === 'live' ? true : null, describe)

    /** Opens the tab and waits for its charts to draw points and its tables to have rows. */
    const openTab = async (tab: typeof TABS[number]): Promise<void> => {
      await page.getByTestId(`tab-${tab}`).click()
      await until(`the ${tab} tab panel`, 5000, async () => await page.getByTestId(`panel-${tab}`).count() > 0 ? true : null)
      assert.match(page.url(), new RegExp(`[?&]tab=${tab}(&|$)`), `the URL names the ${tab} tab`)
      for (const prefix of EXPECT[tab].charts) {
        await until(`a chart ${prefix}* with data on the ${tab} tab`, 20_000, async () => {
          const charts = await chartStates(page)
          return charts.some(c => c.id.startsWith(prefix) && c.points > 0 && c.series !== '') ? true : null
        }, describe)
      }
      for (const table of EXPECT[tab].tables) {
        await until(`rows in ${table} on the ${tab} tab`, 20_000, async () => await tableRows(page, table) > 0 ? true : null, describe)
      }
      await page.waitForTimeout(400) // let chart animations settle for the screenshot
    }

    // Every tab: data, every table row in the page flow, whole explanations; a full-page screenshot.
    for (const tab of TABS) {
      await openTab(tab)
      const explained = { realtime: 'table-recent-anomalies', ml: 'table-ml-anomalies' } as Partial<Record<typeof tab, string>>
      if (explained[tab] !== undefined) assert.ok(await page.locator(`[data-testid=${explained[tab]}] ${PROSE}`).count() > 0, `${explained[tab]} shows explanations`)
      if (tab === 'devices') await checkDevicesTab(page, base, describe)
      assert.deepEqual(await layoutProblems(page, { prose: PROSE }), [], `the ${tab} tab at 1440 px: every table row in the page, explanations whole`)
      await page.screenshot({ path: join(screenshotDir, `${TABS.indexOf(tab) + 1}-${tab}.png`), fullPage: true })
      phase(`${tab} tab has data; screenshot in ${screenshotDir}`)
    }

    // Back on the first tab, its charts drawn (one per sensor type).
    await page.getByTestId('tab-realtime').click()
    const seriesCharts = (cs: { id: string }[]): string[] => cs.filter(c => c.id.startsWith('chart-series-')).map(c => c.id).sort()
    const chartsBefore = await until('one time-series chart per sensor type before filtering', 15_000, async () => {
      const cs = await chartStates(page)
      return seriesCharts(cs).length === meta.sensor_types.length && cs.every(c => !c.id.startsWith('chart-series-') || c.points > 0) ? cs : null
    }, describe)

    // Live: a reading newer than the current top row appears without a reload, within 2 s.
    const before = await until('recent readings', 5000, async () => (await rowKeys(page, 'table-recent-readings'))[0] ?? null)
    const t0 = Date.now()
    const newer = await until('a newer reading at the top of the recent table', 2000, async () => {
      const top = (await rowKeys(page, 'table-recent-readings'))[0]
      return top !== undefined && readingTime(top) > readingTime(before) ? top : null
    })
    assert.ok(Date.now() - t0 <= 2500, `a new reading showed within 2 s (took ${Date.now() - t0} ms: ${before} → ${newer})`)
    phase(`live reading after ${Date.now() - t0} ms`)

    // Filter: one sensor type; the charts change and the URL carries the filter.
    const sensorType = meta.sensor_types[0]?.sensor_type ?? ''
    assert.ok(sensorType !== '', 'meta lists sensor types')
    await page.getByTestId('filter-sensor-type').selectOption(sensorType)
    await until(`the charts to show only ${sensorType}`, 15_000, async () => {
      const cs = await chartStates(page)
      const only = seriesCharts(cs)
      const target = cs.find(c => c.id === `chart-series-${sensorType}`)
      return only.length === 1 && only[0] === `chart-series-${sensorType}` && target !== undefined && target.points > 0 ? cs : null
    }, describe)
    const chartsAfter = await chartStates(page)
    const signature = (cs: { id: string, points: number, series: string }[]): string => cs.map(c => `${c.id}:${c.points}:${c.series}`).join('|')
    assert.notEqual(signature(chartsAfter), signature(chartsBefore), 'the charts changed with the filter')
    const byType = chartsAfter.find(c => c.id === 'chart-anomalies-by-type')
    const byTypeBefore = chartsBefore.find(c => c.id === 'chart-anomalies-by-type')
    assert.ok(byType !== undefined && byTypeBefore !== undefined && byType.points <= 1, `anomalies by type shows one type at most after filtering (${byTypeBefore?.points} → ${byType?.points})`)
    assert.equal(new URL(page.url()).searchParams.get('sensor_type'), sensorType, 'the URL carries the sensor-type filter')
    await until(`recent readings of ${sensorType} only`, 5000, async () => {
      const types = await page.getByTestId('table-recent-readings').locator('tbody tr[data-key] td:nth-child(3)').allTextContents()
      return types.length > 0 && types.every(t => t === sensorType.replace(/_/g, ' ')) ? true : null
    }, describe)

    // Anomalies in charts: left out by default and in the URL; only /api/series gets the parameter.
    const seriesCalls = (from = 0): URL[] => apiCalls.slice(from).filter(u => u.pathname === '/api/series')
    assert.equal(await page.getByTestId('filter-anomalies').inputValue(), 'exclude', 'anomalies are left out of the charts by default')
    assert.equal(new URL(page.url()).searchParams.get('anomalies'), 'exclude', 'the URL carries "anomalies in charts"')
    assert.equal(seriesCalls()[0]?.searchParams.get('anomalies'), 'exclude', 'the first time-series request leaves anomalies out')
    const notSeries = apiCalls.filter(u => u.pathname !== '/api/series' && u.searchParams.has('anomalies')).map(String)
    assert.deepEqual(notSeries, [], 'KPIs, lists and tables are not asked to leave anomalies out')
    const asked = seriesCalls().filter(u => u.searchParams.get('anomalies') !== 'exclude').map(String)
    assert.deepEqual(asked, [], 'every time-series request left anomalies out')
    await until('the caption to say anomalies are left out', 10_000, async () => await page.getByTestId('series-anomalies').getAttribute('data-anomalies') === 'exclude' ? true : null, describe)
    const mark = apiCalls.length
    await page.getByTestId('filter-anomalies').selectOption('include')
    const shownCalls = await until('a time-series request with anomalies shown', 10_000, async () => seriesCalls(mark).length > 0 ? seriesCalls(mark) : null, describe)
    assert.deepEqual(shownCalls.filter(u => u.searchParams.get('anomalies') === 'exclude').map(String), [], 'anomalies shown: the requests do not leave them out')
    assert.equal(new URL(page.url()).searchParams.get('anomalies'), 'include', 'the URL says anomalies are shown')
    await until('the caption to say anomalies are shown', 10_000, async () => await page.getByTestId('series-anomalies').getAttribute('data-anomalies') === 'include' ? true : null, describe)
    phase(`anomalies in charts: ${seriesCalls().length} time-series requests checked`)

    // The shared URL reopens the same view.
    const shared = page.url()
    await page.goto('about:blank')
    await page.goto(shared)
    await until('the filter restored from the URL', 10_000, async () => await page.getByTestId('filter-sensor-type').inputValue() === sensorType ? true : null, describe)
    assert.equal(await page.getByTestId('filter-anomalies').inputValue(), 'include', '"anomalies in charts" is restored from the URL')
    assert.equal(await page.getByTestId('tab-realtime').getAttribute('aria-selected'), 'true', 'the tab is restored from the URL')
    await until(`the ${sensorType} chart after the reload`, 15_000, async () => {
      const only = seriesCharts(await chartStates(page))
      return only.length === 1 && only[0] === `chart-series-${sensorType}` ? true : null
    }, describe)

    phase('filter restored from the shared URL')

    // A phone (390 px): every tab, control and chart within the screen, no sideways page scroll,
    // tables as cards with whole explanations.
    await page.setViewportSize({ width: 390, height: 844 })
    await page.goto(`${base}/?records=100`)
    for (const tab of TABS) {
      assert.deepEqual(await layoutProblems(page, { inView: ['[role=tab]'] }), [], `every tab is on a 390 px screen (before opening ${tab})`)
      await openTab(tab)
      assert.deepEqual(await layoutProblems(page, { inView: PHONE_IN_VIEW, prose: PROSE }), [], `the ${tab} tab at 390 px`)
      await page.screenshot({ path: join(screenshotDir, `phone-${TABS.indexOf(tab) + 1}-${tab}.png`), fullPage: true })
    }
    phase('every tab fits a 390 px screen')

    await page.waitForTimeout(300) // errors logged by the last requests
    assert.deepEqual(problems, [], `the page logged errors:\n${problems.join('\n')}`)
  } finally {
    await browser?.close().catch(() => {})
    await server?.stop().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
})

/**
 * The Devices tab: the device heard over HTTP is online (once the ingest wrote its last seen, every
 * 5 s, and the tab re-read the list, every 5 s) with its name and location, seen seconds ago with
 * the time on hover; the silent one is never seen; the header counts 1 of 2 online.
 */
async function checkDevicesTab (page: Page, base: string, describe: () => Promise<string>): Promise<void> {
  const table = page.getByTestId('table-devices')
  const cells = async (id: string): Promise<string[]> => await table.locator(`tbody tr[data-key="${id}"] td`).allTextContents()
  const heard = await until(`${HEARD.id} online in the Devices tab`, 20_000, async () => {
    const c = await cells(HEARD.id)
    return c[5] === 'online' ? c : null
  }, async () => `${HEARD.id}: ${JSON.stringify(await cells(HEARD.id))}; ${await describe()}`)
  assert.deepEqual([heard[0], heard[1], heard[2], heard[5]], [HEARD.id, HEARD.name, HEARD.location, 'online'], `the row of ${HEARD.id}: ${JSON.stringify(heard)}`)
  assert.match(heard[4] ?? '', /^(just now|\d{1,2} s ago)$/, `${HEARD.id} was seen seconds ago`)
  // Its reading is late for the simulator's windows at 60x, so usually not stored: no sensors yet.
  assert.ok(heard[3] === '—' || heard[3] === 'humidity %temperature °C', `the sensors of ${HEARD.id}: ${heard[3]}`)
  const api = await getJson<DeviceListJson>(`${base}/api/devices`)
  const seen = api.devices.find(d => d.id === HEARD.id)?.last_seen ?? ''
  assert.equal(await table.locator(`tr[data-key="${HEARD.id}"] [data-testid=device-last-seen]`).getAttribute('title'),
    `${seen.slice(0, 10)} ${seen.slice(11, 19)} UTC`, 'the last seen time on hover')
  assert.deepEqual(await cells(SILENT.id), [SILENT.id, SILENT.name, SILENT.location, '—', 'never', 'never seen'])
  assert.equal(await page.getByTestId('kpi-devices-online').textContent(), '1 of 2')
}

/** The x-axis labels ECharts draws for the dashboard's time axis over [from, to], `width` px wide. */
function timeLabels (from: number, to: number, width: number): string[] {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height: 300 })
  try {
    const data = Array.from({ length: 200 }, (_, i) => [from + i * (to - from) / 199, Math.sin(i / 7)])
    chart.setOption({ useUTC: true, animation: false, xAxis: timeAxis(), yAxis: { type: 'value', show: false }, series: [{ type: 'line', data }] })
    const axisName = timeAxis().name
    return [...chart.renderToSVGString().matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map(m => m[1] ?? '').filter(t => t !== axisName)
  } finally {
    chart.dispose()
  }
}

test('dashboard - time axes label times of day and dates, never a lone day of the month', () => {
  const end = Date.parse('2026-12-07T00:07:00Z') // every range below crosses midnight
  const time = /^\d{2}:\d{2}(:\d{2})?$/
  const date = /^[A-Z][a-z]{2} \d{1,2}( \d{4})?$/
  const ranges = [['15 min', 15 * 60_000], ['1 h', 3_600_000], ['6 h', 6 * 3_600_000], ['24 h', 24 * 3_600_000], ['7 days', 7 * 86_400_000], ['30 days', 30 * 86_400_000]] as const
  for (const [name, span] of ranges) {
    for (const width of [340, 700, 1300]) {
      const labels = timeLabels(end - span, end, width)
      const what = `${name} on a ${width} px chart: ${labels.join(', ')}`
      assert.ok(labels.length >= 2, `at least two labels, ${what}`)
      assert.deepEqual(labels.filter(l => !time.test(l) && !date.test(l)), [], `every label is a time of day (HH:mm) or a date (Dec 7), ${what}`)
      if (span <= 86_400_000) {
        assert.ok(labels.includes('Dec 7'), `midnight is labelled with its date, ${what}`)
        assert.ok(labels.some(l => time.test(l)), `times of day label the hours, ${what}`)
      } else {
        assert.ok(labels.every(l => date.test(l)), `a multi-day range is labelled with dates, ${what}`)
      }
    }
  }
})
