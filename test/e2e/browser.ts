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

// The DOM as the layout checks see it (the root tsconfig has no DOM library).
interface Rect { left: number, right: number, top: number, bottom: number, width: number, height: number }
interface DomEl {
  tagName: string
  className: string
  textContent: string | null
  parentElement: DomEl | null
  scrollWidth: number
  clientWidth: number
  scrollHeight: number
  clientHeight: number
  getBoundingClientRect: () => Rect
  getAttribute: (name: string) => string | null
}
interface DomWindow {
  document: { documentElement: DomEl, body: DomEl, querySelectorAll: (selector: string) => ArrayLike<DomEl> }
  getComputedStyle: (el: DomEl) => { overflowX: string, overflowY: string, display: string }
}

export interface LayoutCheck {
  /** Elements that must lie within the viewport's width (tabs, controls, charts). */
  inView?: string[]
  /** Prose that must be whole and visible: not cut by a scroll box, the panel or the viewport. */
  prose?: string
}

/**
 * What a reader could miss in the page's layout: a horizontal page scroll, elements off the
 * viewport's sides, tables inside scroll boxes that hide rows, prose cut off. Empty when none.
 */
export async function layoutProblems (page: Page, check: LayoutCheck = {}): Promise<string[]> {
  // tsx compiles with esbuild's keepNames, which wraps the named functions below in __name():
  // the page has no such helper.
  await page.evaluate('globalThis.__name ??= (fn) => fn')
  return await page.evaluate((c: LayoutCheck) => {
    const w = globalThis as unknown as DomWindow
    const doc = w.document
    const width = doc.documentElement.clientWidth
    const out: string[] = []
    const name = (e: DomEl): string => `${e.tagName.toLowerCase()}${e.getAttribute('data-testid') !== null ? `[data-testid=${e.getAttribute('data-testid')}]` : e.className !== '' ? `.${e.className.trim().split(/\s+/).join('.')}` : ''} "${(e.textContent ?? '').trim().slice(0, 40)}"`
    const shown = (e: DomEl): boolean => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 }
    /** Ancestors (below body) whose overflow clips in the given axis. */
    const clippers = (e: DomEl, axis: 'x' | 'y'): DomEl[] => {
      const found: DomEl[] = []
      for (let p = e.parentElement; p !== null && p !== doc.body && p !== doc.documentElement; p = p.parentElement) {
        const s = w.getComputedStyle(p)
        if ((axis === 'x' ? s.overflowX : s.overflowY) !== 'visible') found.push(p)
      }
      return found
    }
    if (doc.documentElement.scrollWidth > width + 1) out.push(`the page scrolls sideways: ${doc.documentElement.scrollWidth} px wide in a ${width} px viewport`)
    for (const sel of c.inView ?? []) {
      for (const e of Array.from(doc.querySelectorAll(sel))) {
        if (!shown(e)) continue
        const r = e.getBoundingClientRect()
        if (r.left < -0.5 || r.right > width + 0.5) out.push(`${name(e)} is off-screen: x ${Math.round(r.left)}..${Math.round(r.right)} in a ${width} px viewport`)
      }
    }
    // Every row in the page flow: no table inside a box that scrolls (or clips) vertically.
    for (const t of Array.from(doc.querySelectorAll('table[data-testid]'))) {
      for (const box of clippers(t, 'y')) {
        if (box.scrollHeight > box.clientHeight + 1) out.push(`${name(t)} hides rows in a scroll box (${name(box)}: ${box.scrollHeight} px of content in ${box.clientHeight} px)`)
      }
    }
    if (c.prose !== undefined) {
      for (const e of Array.from(doc.querySelectorAll(c.prose))) {
        if (!shown(e)) continue
        const r = e.getBoundingClientRect()
        if (e.scrollWidth > e.clientWidth + 1) out.push(`${name(e)} overflows its own box`)
        if (r.left < -0.5 || r.right > width + 0.5) out.push(`${name(e)} runs off the viewport: x ${Math.round(r.left)}..${Math.round(r.right)}`)
        for (const box of clippers(e, 'x')) {
          const b = box.getBoundingClientRect()
          if (r.left < b.left - 0.5 || r.right > b.right + 0.5) out.push(`${name(e)} is cut off by ${name(box)}: x ${Math.round(r.left)}..${Math.round(r.right)} in ${Math.round(b.left)}..${Math.round(b.right)}`)
        }
      }
    }
    return out
  }, check)
}
