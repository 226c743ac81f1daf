// Calibration of anomaly_score on anomaly-free series: the share of readings scoring >= 0.5 (the
// decision threshold of the common scale), target <= 1 % (issue 16). Synthetic series from the
// project's seeded random, and SKAB's anomaly-free recording when it is at hand.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { anomalyScore, type SkabFile } from '../src/anomaly/index.ts'
import { createRandom, type Reading, type Verdict } from '../src/domain/index.ts'
import { PipelineDetector } from '../src/pipeline/index.ts'
import { NO_RULES, readSkabFile, skabDataDir, skabReadings } from './skab.ts'

/** The threshold of the calibrated scale and the share of anomaly-free readings allowed past it. */
const THRESHOLD = 0.5
const TARGET_PCT = 1

export interface CalibrationOptions {
  /** Days of each synthetic series (at `cadenceS`). */
  days: number
  cadenceS: number
  seed: number
  /** SKAB folder (with data/anomaly-free/anomaly-free.csv); skipped with a note when missing. */
  skabDir: string | null
}

export interface CalibrationRow {
  name: string
  readings: number
  /** Readings with anomaly_score >= 0.5. */
  pastThreshold: number
  /** Readings the combined verdict calls anomalous. */
  combined: number
  z: number
  ml: number
  /** Multi-sensor series: rows where any sensor's reading scores >= 0.5 (null for one sensor). */
  rows: number | null
  rowsPastThreshold: number | null
  ms: number
}

const DAY_MS = 86_400_000

interface Series {
  name: string
  /** The value at step i (called once per step, in order). */
  value: (i: number, ts: number) => number
}

/** Anomaly-free synthetic series: values around 21 (a room temperature, though no rules apply). */
export function syntheticSeries (seed: number): Series[] {
  const cycle = (ts: number): number => 21 + 3 * Math.sin(2 * Math.PI * ((ts % DAY_MS) / DAY_MS - 0.25)) // low at midnight, high at noon
  const noise = createRandom(seed)
  const walk = createRandom(seed + 1)
  let level = 21
  return [
    { name: 'constant 21.5', value: () => 21.5 },
    { name: 'daily cycle ±3, no noise', value: (_i, ts) => cycle(ts) },
    { name: 'daily cycle ±3, noise σ 0.3', value: (_i, ts) => cycle(ts) + 0.3 * noise.normal() },
    { name: 'random walk, steps σ 0.05', value: (i) => { if (i > 0) level += 0.05 * walk.normal(); return level } }
  ]
}

/**
 * The reading's anomaly_score as the replay writes it: the verdict's own calibrated score where
 * verdicts carry one (issue 16), else `anomalyScore` of src/anomaly.
 */
export function scoreOf (v: Verdict): number {
  const own = (v as Verdict & { anomalyScore?: unknown }).anomalyScore
  return typeof own === 'number' ? own : anomalyScore(v)
}

function tally (row: CalibrationRow, v: Verdict): number {
  const score = scoreOf(v)
  if (score >= THRESHOLD) row.pastThreshold++
  if (v.anomaly) row.combined++
  if (v.zAnomaly) row.z++
  if (v.mlAnomaly === true) row.ml++
  return score
}

const detector = (): PipelineDetector => new PipelineDetector({ rules: NO_RULES, ml: { scope: 'sensor' } })

const BATCH = 1024

function runSeries (s: Series, o: CalibrationOptions, start: number): CalibrationRow {
  const t = performance.now()
  const row: CalibrationRow = { name: s.name, readings: 0, pastThreshold: 0, combined: 0, z: 0, ml: 0, rows: null, rowsPastThreshold: null, ms: 0 }
  const d = detector()
  const n = Math.round(o.days * DAY_MS / (o.cadenceS * 1000))
  for (let i = 0; i < n; i += BATCH) {
    const batch: Reading[] = []
    for (let k = i; k < Math.min(n, i + BATCH); k++) {
      const ts = start + k * o.cadenceS * 1000
      batch.push({ sensorId: 'calibration', sensorType: 'calibration', location: 'bench', value: s.value(k, ts), ts, unit: '', anomaly: false, anomalyKind: null, seq: null })
    }
    for (const v of d.detectMany(batch)) tally(row, v)
    row.readings += batch.length
    d.forest?.drainTrained() // trained models are not kept
  }
  row.ms = performance.now() - t
  return row
}

function runSkabFree (file: SkabFile): CalibrationRow {
  const t = performance.now()
  const k = file.columns.length
  const row: CalibrationRow = { name: `SKAB anomaly-free (${k} sensors, 1 s)`, readings: 0, pastThreshold: 0, combined: 0, z: 0, ml: 0, rows: file.ts.length, rowsPastThreshold: 0, ms: 0 }
  const d = detector()
  const ROWS = 512
  for (let r = 0; r < file.ts.length; r += ROWS) {
    const verdicts = d.detectMany(skabReadings(file, r, Math.min(file.ts.length, r + ROWS)))
    for (let i = 0; i < verdicts.length; i += k) {
      let past = false
      for (let c = 0; c < k; c++) if (tally(row, verdicts[i + c] as Verdict) >= THRESHOLD) past = true
      if (past) row.rowsPastThreshold = (row.rowsPastThreshold ?? 0) + 1
    }
    row.readings += verdicts.length
    d.forest?.drainTrained()
  }
  row.ms = performance.now() - t
  return row
}

const pct = (n: number, d: number): string => d === 0 ? '-' : (100 * n / d).toFixed(2)

export async function runCalibration (o: CalibrationOptions): Promise<CalibrationRow[]> {
  const start = Date.UTC(2026, 0, 1)
  const rows: CalibrationRow[] = []
  process.stdout.write(`Calibration: anomaly-free series, share of readings with anomaly_score >= ${THRESHOLD} (target <= ${TARGET_PCT} %).\n` +
    `Synthetic: ${o.days} days at one reading every ${o.cadenceS} s from ${new Date(start).toISOString()}, seed ${o.seed}; ` +
    'rules off (no thresholds), z-score and Isolation Forest (one model per sensor) learning online from the first reading, as `iot-monitor replay`.\n')
  for (const s of syntheticSeries(o.seed)) {
    rows.push(runSeries(s, o, start))
    await new Promise(resolve => setImmediate(resolve))
  }
  let skabNote: string | null = null
  if (o.skabDir !== null) {
    try {
      const path = join(skabDataDir(o.skabDir), 'anomaly-free', 'anomaly-free.csv')
      if (existsSync(path)) rows.push(runSkabFree(readSkabFile({ name: 'anomaly-free/anomaly-free', path })))
      else skabNote = `SKAB anomaly-free file not found at ${path}: skipped.`
    } catch (err) {
      skabNote = `SKAB skipped: ${(err as Error).message}`
    }
  }
  process.stdout.write('\n| anomaly-free series | readings | score >= 0.5, % | combined anomaly, % | z-score, % | Isolation Forest, % | target | time |\n|---|---|---|---|---|---|---|---|\n')
  for (const r of rows) {
    const share = 100 * r.pastThreshold / r.readings
    process.stdout.write(`| ${r.name} | ${r.readings} | ${pct(r.pastThreshold, r.readings)} | ${pct(r.combined, r.readings)} | ${pct(r.z, r.readings)} | ${pct(r.ml, r.readings)} | ` +
      `${share <= TARGET_PCT ? 'met' : 'NOT met'} | ${(r.ms / 1000).toFixed(1)} s |\n`)
  }
  for (const r of rows) {
    if (r.rows !== null) process.stdout.write(`\n${r.name}: ${pct(r.rowsPastThreshold ?? 0, r.rows)} % of its ${r.rows} rows have at least one sensor scoring >= ${THRESHOLD}.`)
  }
  if (skabNote !== null) process.stdout.write(`\n${skabNote}`)
  process.stdout.write('\nanomaly_score is the replay\'s (the verdict\'s own score where it has one, else `anomalyScore` of src/anomaly); rows count from the first reading, warm-up included.\n')
  return rows
}
