// The status line a running process prints every few seconds (--status): for people, on stdout.
import { PipelineMetrics } from '../pipeline/index.ts'
import { type RunningSystem } from './system.ts'

const fmt = new Intl.NumberFormat('en-US')

/** One status line every few seconds: readings/s, windows closed, anomalies, late, dead letters. */
export function startStatusLine (sys: RunningSystem, intervalMs: number): () => Promise<void> {
  const m = sys.metrics
  let last = { t: Date.now(), count: 0 }
  const line = async (): Promise<void> => {
    const now = Date.now()
    const clock = new Date(now).toISOString().slice(11, 19)
    const wm = sys.watermark()
    const eventTime = Number.isFinite(wm) ? new Date(wm).toISOString().slice(0, 19) + 'Z' : '-'
    if (sys.worker === null) {
      // Ingest (and API) only: what the source produced.
      const produced = sys.source?.produced ?? 0
      const rate = (produced - last.count) / Math.max(0.001, (now - last.t) / 1000)
      last = { t: now, count: produced }
      const at = sys.source === null ? '-' : new Date(sys.source.now()).toISOString().slice(0, 19) + 'Z'
      process.stdout.write(`${clock} | ${fmt.format(Math.round(rate))} readings/s produced | total ${fmt.format(produced)} | source time ${at}\n`)
      return
    }
    const [received, stored, finals, anomalies, late, dead, dups] = await Promise.all([
      m.received, m.stored, m.windowsFinalized, m.anomalies, m.late, m.deadLetters, m.duplicates
    ].map(async c => await PipelineMetrics.total(c)))
    const rate = ((received ?? 0) - last.count) / Math.max(0.001, (now - last.t) / 1000)
    last = { t: now, count: received ?? 0 }
    process.stdout.write(`${clock} | ${fmt.format(Math.round(rate))} readings/s` +
      ` | stored ${fmt.format(stored ?? 0)} | windows closed ${fmt.format(finals ?? 0)} | anomalies ${fmt.format(anomalies ?? 0)}` +
      ` | late ${fmt.format(late ?? 0)} | duplicates ${fmt.format(dups ?? 0)} | dead letters ${fmt.format(dead ?? 0)}` +
      ` | event time ${eventTime}\n`)
  }
  const timer = intervalMs > 0 ? setInterval(() => { line().catch(() => {}) }, intervalMs) : null
  return async () => {
    if (timer !== null) clearInterval(timer)
    if (intervalMs > 0) await line()
  }
}
