// Detection quality on the simulator's labelled stream: our detectors (rules, z-score, Isolation
// Forest, combined) against a reimplementation of the original design's ML detector.
import { detectionQuality, detectorNames, type DetectionQuality, type DetectorQuality, type Scores } from '../src/anomaly/index.ts'
import { DetectionCounter } from '../src/domain/index.ts'
import { PipelineDetector } from '../src/pipeline/index.ts'
import { Simulator } from '../src/sources/index.ts'
import { OriginalDetector } from './original-detector.ts'

export interface QualityOptions {
  sensors: number
  hours: number
  seed: number
}

export async function runQuality (o: QualityOptions): Promise<void> {
  const start = Date.UTC(2026, 0, 1)
  const sim = new Simulator({ sensors: o.sensors, seed: o.seed, startTs: start })
  const ours = new PipelineDetector()
  const original = new OriginalDetector()
  const oursCount = new DetectionCounter()
  const originalCount = new DetectionCounter()
  const n = Math.round(o.sensors * o.hours * 3600 * sim.ratePerSensor)
  process.stdout.write(`Simulator: seed ${o.seed}, ${o.sensors} sensors, ${o.hours} h of event time, default anomaly mix: ${n} readings.\n`)
  let oursMs = 0
  let originalMs = 0
  const CHUNK = 5000
  for (let i = 0; i < n; i += CHUNK) {
    const batch = Array.from({ length: Math.min(CHUNK, n - i) }, () => sim.next())
    let t = performance.now()
    const verdicts = ours.detectMany(batch)
    oursMs += performance.now() - t
    batch.forEach((r, k) => { oursCount.add(r, verdicts[k]!) })
    t = performance.now()
    const flags = batch.map(r => original.detect(r))
    originalMs += performance.now() - t
    // The original had only its ML verdict to compare; it fills every column of its row.
    batch.forEach((r, k) => {
      const flag = flags[k] ?? null
      originalCount.add(r, { ruleAnomaly: false, zAnomaly: false, mlAnomaly: flag, anomaly: flag === true })
    })
  }
  const q = detectionQuality(oursCount.cells())
  const b = detectionQuality(originalCount.cells())
  process.stdout.write('\n' + qualityTable(q, b) + '\n')
  const r = q.ruleVsMl
  process.stdout.write(`\nRule vs ML over ${r.scored} scored readings: both ${r.both}, rule only ${r.ruleOnly}, ML only ${r.mlOnly}, neither ${r.neither}; agreement ${pct(r.agreement)} %.\n`)
  process.stdout.write(`Detection time: iot-monitor ${(oursMs * 1000 / n).toFixed(2)} µs/reading, original ${(originalMs * 1000 / n).toFixed(2)} µs/reading.\n`)
  const spike = q.detectors.combined.byKind.spike?.f1 ?? 0
  process.stdout.write(`Combined F1 on spikes: ${(100 * spike).toFixed(1)}% (target >= 90%): ${spike >= 0.9 ? 'met' : 'NOT met'}.\n`)
}

const pct = (x: number | null): string => x === null ? '-' : (100 * x).toFixed(1)
const labels: Record<string, string> = { rule: 'rules', zscore: 'z-score', ml: 'Isolation Forest', combined: '**combined**' }

/**
 * The README's table: one row per detector, precision / recall / F1 in % over all labelled
 * readings and per anomaly kind (false positives = flagged normal readings), then the original
 * design's forest as the baseline.
 */
export function qualityTable (q: DetectionQuality, baseline: DetectionQuality): string {
  // The simulator's kinds in the README's order, any others after them.
  const order = ['spike', 'drift', 'stuck', 'dropout']
  const rank = (k: string): number => order.includes(k) ? order.indexOf(k) : order.length
  const kinds = Object.keys(q.labels).filter(k => k !== 'normal').sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
  const cell = (s: Scores | undefined): string => s === undefined ? '-' : `${pct(s.precision)} / ${pct(s.recall)} / ${pct(s.f1)}`
  const row = (name: string, d: DetectorQuality): string => `| ${name} | ${[cell(d.overall), ...kinds.map(k => cell(d.byKind[k]))].join(' | ')} |`
  const share = q.labelled === 0 ? '-' : (100 * q.anomalies / q.labelled).toFixed(1)
  return [
    `${q.labelled} labelled readings, ${share} % anomalous (${kinds.map(k => `${k} ${q.labels[k] ?? 0}`).join(', ')}); precision / recall / F1 in %, false positives = flagged normal readings:`,
    '',
    `| detector | all | ${kinds.join(' | ')} |`,
    `|---|---|${kinds.map(() => '---|').join('')}`,
    ...detectorNames.map(d => row(labels[d] ?? d, q.detectors[d])),
    row('original design\'s forest (baseline)', baseline.detectors.ml)
  ].join('\n')
}
