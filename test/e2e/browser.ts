// Helpers for the browser tests: start the embedded system, wait for conditions, read the
// dashboard's data-* attributes. Chromium comes from the OS (Debian `chromium`), driven by
// playwright-core: no browser download.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { type Page } from 'playwright-core'

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export const haveChromium = (): boolean => existsSync(chromiumPath)

/** False when the test can run; a reason to skip otherwise. In CI a missing browser is a failure, not a skip. */
export function browserSkipReason (): string | false {
  if (haveChromium() || process.env.CI === 'true') return false
  return `no Chromium at ${chromiumPath}: install it (apt-get install chromium) or set CHROMIUM_PATH; skipped outside CI`
}

/** Polls `probe` until it returns non-null; fails with `what` and the last value seen. */
export async function until<T> (what: string, timeoutMs: number, probe: () => Promise<T | null>, describe?: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError = ''
  for (;;) {
    try {
      const v = await probe()
      if (v !== null) return v
    } catch (err) {
      lastError = (err as Error).message
    }
    if (Date.now() > deadline) {
      const state = describe === undefined ? '' : await describe().catch(() => '')
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === '' ? '' : ` (last error: ${lastError})`}${state === '' ? '' : `; state: ${state}`}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

export interface RunningServer {
  base: string
  child: ChildProcess
  output: () => string
  stop: () => Promise<void>
}

/** `iot-monitor start` on a fresh data folder (embedded bus and PGlite), as a child process. */
export async function startSystem (cli: string, dataDir: string, args: string[] = []): Promise<RunningServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'start', '--data-dir', dataDir, '--port', '0', '--status', '0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '' } })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGINT')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  try {
    const base = await until('the listening address on stdout', 60_000, async () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${out}`)
      return /running: (http:\/\/[^\s]+)/.exec(out)?.[1] ?? null
    })
    return { base, child, output: () => out, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

export async function getJson<T> (url: string): Promise<T> {
  const r = await fetch(url)
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`)
  return await r.json() as T
}

export interface ChartState { id: string, points: number, series: string }

/** Every chart container on the page: its test id, data-points and data-series. */
export async function chartStates (page: Page): Promise<ChartState[]> {
  return await page.locator('[data-points]').evaluateAll((els: { getAttribute: (n: string) => string | null }[]) =>
    els.map(e => ({ id: e.getAttribute('data-testid') ?? '', points: Number(e.getAttribute('data-points')), series: e.getAttribute('data-series') ?? '' })))
}

/** Rows of the table with data-testid `id` (0 when absent), from its data-rows attribute. */
export async function tableRows (page: Page, id: string): Promise<number> {
  const t = page.getByTestId(id)
  if (await t.count() === 0) return 0
  return Number(await t.getAttribute('data-rows'))
}

/** data-key of the table's rows, top first. */
export async function rowKeys (page: Page, id: string): Promise<string[]> {
  return await page.getByTestId(id).locator('tbody tr[data-key]').evaluateAll((els: { getAttribute: (n: string) => string | null }[]) =>
    els.map(e => e.getAttribute('data-key') ?? ''))
}
