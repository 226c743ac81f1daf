// The status line a running process prints every few seconds (--status): for people, on stdout.
// A process running every role (npm start) prints the pipeline's; a process of one role (split mode)
// names it and prints what that role does.
import { type Counter } from 'prom-client'
import { HTTP_REQUESTS } from '../api/index.ts'
import { PipelineMetrics } from '../pipeline/index.ts'
import { storedReadingsTotal } from '../storage/index.ts'
import { type RunningSystem } from './system.ts'

const fmt = new Intl.NumberFormat('en-US')
const int = (n: number): string => fmt.format(Math.round(n))
const isoSecond = (ms: number): string => Number.isFinite(ms) ? new Date(ms).toISOString().slice(0, 19) + 'Z' : '-'

/** A count and its rate since the last line. */
class Rate {
  #t = Date.now()
  #n = 0
  per (now: number, n: number): number {
    const rate = (n - this.#n) / Math.max(0.001, (now - this.#t) / 1000)
    this.#t = now
    this.#n = n
    return rate
  }
}

export interface StatusLineOptions {
  intervalMs: number
  /** Where the API listens (the api role's line says what it serves). */
  address: string | null
  write: (line: string) => void
}

/** Starts the status line; the returned function stops it and prints a last line. */
export function startStatusLine (sys: RunningSystem, o: StatusLineOptions): () => Promise<void> {
  const m = sys.metrics
  const all = sys.roles.size === 3
  const received = new Rate()
  const produced = new Rate()
  const served = new Rate()
  const stored = new Rate()

  /** What the process waits for, when it does (the database away, or a failed batch being retried). */
  const waiting = (): string => {
    const now = Date.now()
    const h = sys.worker?.health
    if (h?.retryAt != null) {
      const inS = Math.max(0, Math.ceil((h.retryAt - now) / 1000))
      return h.databaseUnavailable ? ` | waiting for PostgreSQL, retry in ${inS} s` : ` | recovering from a failed batch, retry in ${inS} s`
    }
    const a = sys.availability?.state
    if (a !== undefined && !a.reachable) return ` | waiting for PostgreSQL (unreachable for ${Math.round((now - (a.downSince ?? now)) / 1000)} s)`
    return ''
  }

  const workerLine = async (): Promise<string> => {
    const [r, s, finals, anomalies, late, dead, dups] = await Promise.all([
      PipelineMetrics.total(m.received), PipelineMetrics.total(m.stored), PipelineMetrics.total(m.windowsFinalized),
      PipelineMetrics.total(m.anomalies, { detector: 'combined' }), PipelineMetrics.total(m.late), PipelineMetrics.total(m.deadLetters),
      PipelineMetrics.total(m.duplicates)
    ])
    return `${int(received.per(Date.now(), r))} readings/s | stored ${int(s)} | windows closed ${int(finals)} | anomalies ${int(anomalies)}` +
      ` | late ${int(late)} | duplicates ${int(dups)} | dead letters ${int(dead)} | watermark ${isoSecond(sys.watermark())}${waiting()}`
  }
  const ingestLine = (): string => {
    const source = sys.source
    if (source === null) return 'no source (--no-simulator)'
    return `${int(produced.per(Date.now(), source.produced))} readings/s produced | total ${int(source.produced)}` +
      ` | source time ${isoSecond(source.now())}`
  }
  const apiLine = async (): Promise<string> => {
    const requests = sys.metrics.registry.getSingleMetric(HTTP_REQUESTS) as Counter | undefined
    const n = requests === undefined ? 0 : await PipelineMetrics.total(requests)
    const now = Date.now()
    const head = `serving ${o.address ?? '-'} | ${int(sys.live?.clients ?? 0)} live clients | ${int(served.per(now, n))} requests/s`
    if (sys.availability?.reachable === false) return `${head}${waiting()}`
    const total = sys.db === null ? 0 : await storedReadingsTotal(sys.db)
    return `${head} | stored ${int(total)} (${int(stored.per(now, total))}/s) | watermark ${isoSecond(sys.watermark())}`
  }

  const line = async (): Promise<void> => {
    const clock = new Date().toISOString().slice(11, 19)
    const parts: string[] = []
    if (all) {
      parts.push(await workerLine())
    } else {
      if (sys.roles.has('ingest')) parts.push(`ingest | ${ingestLine()}`)
      if (sys.roles.has('worker')) parts.push(`worker | ${await workerLine()}`)
      if (sys.roles.has('api')) parts.push(`api | ${await apiLine()}`)
    }
    for (const p of parts) o.write(`${clock} | ${p}\n`)
  }
  const timer = o.intervalMs > 0 ? setInterval(() => { line().catch(() => {}) }, o.intervalMs) : null
  return async () => {
    if (timer !== null) clearInterval(timer)
    if (o.intervalMs > 0) await line().catch(() => {})
  }
}
