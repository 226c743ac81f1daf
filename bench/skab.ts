// Detection quality on SKAB (Skoltech Anomaly Benchmark): every labelled experiment replayed through
// our detectors, row-level F1 / FAR / MAR as SKAB's leaderboard defines them, next to its table.
// The data is read from where it lies (--skab DIR, default ../shared/datasets/skab from the project
// root): it is GPL-3.0 and never copied into this project.
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DeviceDetector, addCounts, binaryCounts, emptyCounts, parseSkabCsv, skabScores, type BinaryCounts, type RuleConfig, type SkabFile } from '../src/anomaly/index.ts'
import { type Reading, type Verdict } from '../src/domain/index.ts'
import { PipelineDetector } from '../src/pipeline/index.ts'
import { BenchSetupError } from './api-load.ts'

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const defaultSkabDir = resolve(projectRoot, '../shared/datasets/skab')

/** No rule thresholds: SKAB's sensors are none of our types (a `Temperature` of 90 °C is an engine, not a room). */
export const NO_RULES: RuleConfig = { defaults: {} }

/**
 * Something that labels every row of a SKAB file: one flag per row, in file order (truthy =
 * anomalous). Adding a detector to the table is adding one of these to `skabScorers`.
 */
export interface SkabScorer {
  readonly name: string
  flags(file: SkabFile): ArrayLike<number | boolean>
}

/** The device a SKAB file is replayed as: its columns are that device's sensors (`skab-valve1-0.Current`). */
export function deviceOf (file: SkabFile): string {
  return `skab-${file.name.replace(/[^A-Za-z0-9]+/g, '-')}`
}

/**
 * The file's readings in arrival order: row by row, each row's columns in file order. Sensor id
 * `<device>.<column>`, sensor type = the column's name (no rule thresholds apply to it), event
 * time from `datetime`, the row's `anomaly` label as ground truth.
 */
export function skabReadings (file: SkabFile, from = 0, to = file.ts.length): Reading[] {
  const device = deviceOf(file)
  const out: Reading[] = []
  for (let r = from; r < to; r++) {
    const label = file.anomaly === null ? null : file.anomaly[r] === 1
    file.columns.forEach((column, c) => {
      out.push({
        sensorId: `${device}.${column}`,
        sensorType: column,
        location: 'SKAB',
        value: (file.values[c] as Float64Array)[r] as number,
        ts: file.ts[r] as number,
        unit: '',
        anomaly: label,
        anomalyKind: null,
        seq: null
      })
    })
  }
  return out
}

const ROWS_PER_BATCH = 512

/**
 * Verdicts of every reading of a file (row-major, as `skabReadings`), from detectors that start
 * empty for the file and learn online from its first row: rules off, z-score, Isolation Forest one
 * model per sensor (as `iot-monitor replay`), the combined verdict.
 */
export function perSensorVerdicts (file: SkabFile): Verdict[] {
  const detector = new PipelineDetector({ rules: NO_RULES, ml: { scope: 'sensor' } })
  const out: Verdict[] = []
  for (let r = 0; r < file.ts.length; r += ROWS_PER_BATCH) {
    for (const v of detector.detectMany(skabReadings(file, r, Math.min(r + ROWS_PER_BATCH, file.ts.length)))) out.push(v)
    detector.forest?.drainTrained() // the models trained so far are not kept (nothing stores them here)
  }
  return out
}

const verdictCache = new WeakMap<SkabFile, Verdict[]>()

/** A row is flagged when `pick` flags the verdict of any of its sensors. The file's verdicts are computed once for all such scorers. */
export function anySensor (name: string, pick: (v: Verdict) => boolean): SkabScorer {
  return {
    name,
    flags (file) {
      let verdicts = verdictCache.get(file)
      if (verdicts === undefined) {
        verdicts = perSensorVerdicts(file)
        verdictCache.set(file, verdicts)
      }
      const k = file.columns.length
      const flags = new Uint8Array(file.ts.length)
      for (let r = 0; r < flags.length; r++) {
        for (let c = 0; c < k; c++) {
          if (pick(verdicts[r * k + c] as Verdict)) {
            flags[r] = 1
            break
          }
        }
      }
      return flags
    }
  }
}

/**
 * The device-level detector's verdict per row: the file's readings (`skabReadings`, the file as one
 * device) aligned into rows and scored by one `DeviceDetector` that starts empty for the file.
 */
export function deviceFlags (file: SkabFile): Uint8Array {
  const detector = new DeviceDetector()
  const rowAt = new Map<number, number>()
  file.ts.forEach((ts, r) => rowAt.set(ts, r))
  const flags = new Uint8Array(file.ts.length)
  for (const v of [...detector.pushMany(skabReadings(file)), ...detector.flush()]) {
    const r = rowAt.get(v.ts)
    if (r !== undefined && v.anomaly) flags[r] = 1
  }
  return flags
}

export const skabScorers: SkabScorer[] = [
  anySensor('z-score (any sensor)', v => v.zAnomaly),
  anySensor('Isolation Forest per sensor (any sensor)', v => v.mlAnomaly === true),
  anySensor('**combined** (any sensor)', v => v.anomaly),
  { name: 'device-level Isolation Forest (multivariate)', flags: deviceFlags }
]

/** Shown as "not built yet" until a scorer of that name prefix is in `skabScorers`. */
const DEVICE_LEVEL = 'device-level'

/** Reference rows computed on the same files (they show what F1 alone hides). */
const references: SkabScorer[] = [
  { name: 'reference: every row anomalous', flags: file => new Uint8Array(file.ts.length).fill(1) },
  { name: 'reference: no row anomalous (null detector)', flags: file => new Uint8Array(file.ts.length) }
]

export interface SkabFileRef {
  /** `valve1/0` */
  name: string
  path: string
}

/** The folder that holds valve1/, valve2/, other/ and anomaly-free/: DIR/data, or DIR itself. */
export function skabDataDir (dir: string): string {
  const data = join(dir, 'data')
  if (existsSync(join(data, 'valve1'))) return data
  if (existsSync(join(dir, 'valve1'))) return dir
  throw new BenchSetupError(`SKAB not found in ${dir} (expected data/valve1/0.csv ...; give --skab DIR, the folder with SKAB's README.md and data/).`)
}

/** The labelled files in SKAB's order (valve1, valve2, other; numerically within a folder). */
export function labelledFiles (dataDir: string): SkabFileRef[] {
  const out: SkabFileRef[] = []
  for (const folder of ['valve1', 'valve2', 'other']) {
    const dir = join(dataDir, folder)
    if (!existsSync(dir)) continue
    const names = readdirSync(dir).filter(f => /^\d+\.csv$/.test(f)).sort((a, b) => parseInt(a, 10) - parseInt(b, 10))
    for (const f of names) out.push({ name: `${folder}/${f.slice(0, -4)}`, path: join(dir, f) })
  }
  return out
}

export function readSkabFile (ref: SkabFileRef): SkabFile {
  return parseSkabCsv(readFileSync(ref.path, 'utf8'), ref.name)
}

/**
 * The rows of the "Outlier detection" table of the README next to the data (SKAB's published
 * leaderboard as copied there), or null when there is none.
 */
export function publishedLeaderboard (dir: string): string[] | null {
  const readme = join(dir, 'README.md')
  if (!existsSync(readme)) return null
  const lines = readFileSync(readme, 'utf8').split(/\r?\n/)
  const start = lines.findIndex(l => /^outlier detection/i.test(l.trim()))
  if (start === -1) return null
  const rows: string[] = []
  for (const l of lines.slice(start + 1)) {
    if (l.trim().startsWith('|')) rows.push(l.trim())
    else if (rows.length > 0) break
  }
  return rows.length > 2 ? rows : null
}

const f2 = (x: number | null): string => x === null ? '-' : x.toFixed(2)

export interface SkabResult {
  name: string
  counts: BinaryCounts
  ms: number
}

export interface SkabOptions {
  dir: string
  /** Print a line per file (counts of each scorer). */
  perFile?: boolean
  scorers?: readonly SkabScorer[]
  write?: (text: string) => void
}

export async function runSkab (o: SkabOptions): Promise<SkabResult[]> {
  const write = o.write ?? ((t: string) => { process.stdout.write(t) })
  const dataDir = skabDataDir(o.dir)
  const files = labelledFiles(dataDir)
  if (files.length === 0) throw new BenchSetupError(`No labelled SKAB files in ${dataDir}.`)
  const scorers = [...(o.scorers ?? skabScorers), ...references]
  const results: SkabResult[] = scorers.map(s => ({ name: s.name, counts: emptyCounts(), ms: 0 }))
  let rows = 0
  let anomalous = 0
  let readings = 0
  write(`SKAB from ${o.dir}: ${files.length} labelled files, replayed one at a time.\n`)
  for (const ref of files) {
    const file = readSkabFile(ref)
    if (file.anomaly === null) throw new BenchSetupError(`${ref.path}: no "anomaly" column.`)
    rows += file.ts.length
    readings += file.ts.length * file.columns.length
    for (const a of file.anomaly) anomalous += a
    const line: string[] = []
    scorers.forEach((s, i) => {
      const t = performance.now()
      const c = binaryCounts(file.anomaly as Uint8Array, s.flags(file))
      const res = results[i] as SkabResult
      res.ms += performance.now() - t
      addCounts(res.counts, c)
      line.push(`${s.name.replace(/\*/g, '')} ${c.tp}/${c.fp}/${c.fn}/${c.tn}`)
    })
    if (o.perFile === true) write(`  ${ref.name.padEnd(10)} ${file.ts.length} rows: ${line.join('; ')}\n`)
    await new Promise(resolve => setImmediate(resolve)) // let a ^C through between files
  }
  write(`${rows} rows (${readings} readings of ${readings / rows} sensors), ${anomalous} labelled anomalous (${(100 * anomalous / rows).toFixed(1)} %).\n\n`)
  write('| detector (ours, online) | F1 | FAR, % | MAR, % | TP / FP / FN / TN rows | time |\n|---|---|---|---|---|---|\n')
  for (const r of results) {
    const s = skabScores(r.counts)
    const c = r.counts
    write(`| ${r.name} | ${f2(s.f1)} | ${f2(s.far)} | ${f2(s.mar)} | ${c.tp} / ${c.fp} / ${c.fn} / ${c.tn} | ${(r.ms / 1000).toFixed(1)} s |\n`)
  }
  if (!scorers.some(s => s.name.startsWith(DEVICE_LEVEL))) write(`| ${DEVICE_LEVEL} (multivariate): not built yet | - | - | - | - | - |\n`)
  write('\n"(any sensor)": a row is flagged when any of its sensors\' readings is; those rows share one replay of the per-sensor detectors, timed on the first.\n')
  const board = publishedLeaderboard(o.dir)
  write('\nPublished (SKAB leaderboard, outlier detection, from the README next to the data):\n\n')
  write(board === null ? `(no leaderboard table found in ${join(o.dir, 'README.md')})\n` : board.join('\n') + '\n')
  write(`
Protocol (ours vs the leaderboard's):
- Measures as upstream's \`binary\` metric: each file's row-level confusion counts are summed over all
  ${files.length} labelled files, then F1 = TP / (TP + (FP + FN) / 2), FAR = FP / (FP + TN), MAR = FN / (FN + TP)
  (both in %). Rows shared by overlapping recordings (other/2-3-4, other/10-11, other/12-13) count in
  each file, with each file's label, as upstream does.
- Learning: ours learn online. Every file starts with empty detectors and is replayed from its
  first row on event time, as \`iot-monitor replay\` and the live worker would: each row is scored by
  what the rows before it taught, then joins the baselines and training rows. Rows seen while a
  detector warms up count as not flagged by it. SKAB's baseline notebooks instead fit each model
  on the first 400 rows of the file (standardised) and then label every row of it, the training
  rows included; the README next to the data notes that upstream does not name its test set.
- Per-sensor detectors on SKAB's multi-sensor rows: each column is one sensor (its name is its
  sensor type, so no rule thresholds apply: rules are off); a row is flagged if any of its
  ${readings / rows} sensors' readings is flagged. "combined" is the live combined verdict (docs/ARCHITECTURE.md,
  Detection). Nothing was tuned on SKAB.
- Device-level: the file is one device of ${readings / rows} measurements; its rows (aligned by \`datetime\`) are
  scored by one multivariate model (docs/ARCHITECTURE.md, Detection) that learns only from the
  file's own rows before the one it scores, without labels (no model before 400 rows, the
  notebooks' training size; those rows count as not flagged), rows it alarmed on kept out of its
  training. Unlike the per-sensor detectors, its design was chosen on SKAB: a
  handful of variants (rotation or not, smoothing, trees, alarm rule) were compared on these files'
  F1 and on the anomaly-free recording's alarm rate (docs/ARCHITECTURE.md), so read its F1 as a
  development figure, not a held-out one.
- Only the outlier-detection table is computed; SKAB's changepoint-detection table is not.
`)
  return results
}
