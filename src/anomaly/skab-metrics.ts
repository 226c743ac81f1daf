// Row-level detection metrics as the SKAB leaderboard defines them, and a reader of SKAB's CSV files.
// Pure: text in, numbers out (the benchmark reads the files; the data stays outside the project).
import { IotError, parseTimestamp } from '../domain/index.ts'

/** Confusion counts of a binary detector against binary labels, one per row. */
export interface BinaryCounts {
  tp: number
  fp: number
  fn: number
  tn: number
}

/**
 * SKAB's outlier-detection measures (upstream `core/metrics.py`, metric `binary`): F1 = TP / (TP +
 * (FN + FP) / 2), FAR = FP / (FP + TN) in %, MAR = FN / (FN + TP) in %. Null where the denominator
 * is 0. Upstream rounds to two decimals; these are unrounded.
 */
export interface SkabScores {
  f1: number | null
  /** False alarm rate, % of the normal rows that were flagged. */
  far: number | null
  /** Missed alarm rate, % of the anomalous rows that were not flagged. */
  mar: number | null
}

export const emptyCounts = (): BinaryCounts => ({ tp: 0, fp: 0, fn: 0, tn: 0 })

/** Counts of `flags` against `labels`, row by row (truthy = anomalous). Both must have the same length. */
export function binaryCounts (labels: ArrayLike<number | boolean>, flags: ArrayLike<number | boolean>): BinaryCounts {
  if (labels.length !== flags.length) {
    throw new IotError('IOT_ERR_VALIDATION', `labels and flags differ in length (${labels.length} vs ${flags.length})`)
  }
  const c = emptyCounts()
  for (let i = 0; i < labels.length; i++) {
    const truth = Boolean(labels[i])
    const flag = Boolean(flags[i])
    if (truth) {
      if (flag) c.tp++
      else c.fn++
    } else if (flag) c.fp++
    else c.tn++
  }
  return c
}

/** Adds `b` into `a` (SKAB sums the counts of all files before computing the measures). */
export function addCounts (a: BinaryCounts, b: BinaryCounts): BinaryCounts {
  a.tp += b.tp
  a.fp += b.fp
  a.fn += b.fn
  a.tn += b.tn
  return a
}

export function skabScores (c: BinaryCounts): SkabScores {
  const f1Den = c.tp + (c.fn + c.fp) / 2
  return {
    f1: f1Den === 0 ? null : c.tp / f1Den,
    far: c.fp + c.tn === 0 ? null : 100 * c.fp / (c.fp + c.tn),
    mar: c.fn + c.tp === 0 ? null : 100 * c.fn / (c.fn + c.tp)
  }
}

/** One SKAB experiment: a CSV file of one pump testbed run. */
export interface SkabFile {
  /** Where it came from, e.g. `valve1/0`. */
  name: string
  /** The value columns in file order (`datetime`, `anomaly` and `changepoint` excluded). */
  columns: string[]
  /** Event time of each row, ms since the epoch (SKAB's zone-less `datetime` read as UTC). */
  ts: Float64Array
  /** `values[c][r]`: column `c` of row `r`. */
  values: Float64Array[]
  /** The `anomaly` label per row (1 = anomalous); null in files without it (anomaly-free). */
  anomaly: Uint8Array | null
  /** The `changepoint` label per row; null in files without it. */
  changepoint: Uint8Array | null
}

export const SKAB_TIME_COLUMN = 'datetime'
const LABEL_COLUMNS = new Set(['anomaly', 'changepoint'])

function label (text: string, name: string, line: number, column: string): number {
  const n = Number(text)
  if (text === '' || (n !== 0 && n !== 1)) throw new IotError('IOT_ERR_VALIDATION', `${name}:${line}: ${column} must be 0 or 1, got "${text}"`)
  return n
}

/**
 * Reads one SKAB CSV file: `;`-separated, one header row, LF or CRLF line endings, `datetime` as
 * `YYYY-MM-DD hh:mm:ss` without a zone (read as UTC), numeric value columns, optional `anomaly` and
 * `changepoint` columns of `0.0`/`1.0`. Strict: a short row, a bad number or time throws
 * `IOT_ERR_VALIDATION` with its line number (SKAB has none).
 */
export function parseSkabCsv (text: string, name: string): SkabFile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  const header = (lines[0] ?? '').split(';')
  const timeAt = header.indexOf(SKAB_TIME_COLUMN)
  if (timeAt === -1) throw new IotError('IOT_ERR_VALIDATION', `${name}: no "${SKAB_TIME_COLUMN}" column (header: ${header.join(';')})`)
  const anomalyAt = header.indexOf('anomaly')
  const changepointAt = header.indexOf('changepoint')
  const valueAt: number[] = []
  header.forEach((h, i) => { if (i !== timeAt && !LABEL_COLUMNS.has(h)) valueAt.push(i) })
  const n = lines.length - 1
  const file: SkabFile = {
    name,
    columns: valueAt.map(i => header[i] as string),
    ts: new Float64Array(n),
    values: valueAt.map(() => new Float64Array(n)),
    anomaly: anomalyAt === -1 ? null : new Uint8Array(n),
    changepoint: changepointAt === -1 ? null : new Uint8Array(n)
  }
  for (let r = 0; r < n; r++) {
    const line = r + 2
    const cells = (lines[r + 1] as string).split(';')
    if (cells.length !== header.length) {
      throw new IotError('IOT_ERR_VALIDATION', `${name}:${line}: ${cells.length} fields, the header has ${header.length}`)
    }
    const timeText = cells[timeAt] as string
    const ts = parseTimestamp(timeText)
    if (Number.isNaN(ts)) throw new IotError('IOT_ERR_VALIDATION', `${name}:${line}: bad ${SKAB_TIME_COLUMN} "${timeText}"`)
    file.ts[r] = ts
    valueAt.forEach((i, c) => {
      const t = cells[i] as string
      const v = t.trim() === '' ? NaN : Number(t)
      if (!Number.isFinite(v)) throw new IotError('IOT_ERR_VALIDATION', `${name}:${line}: ${header[i] as string} is not a number: "${t}"`)
      ;(file.values[c] as Float64Array)[r] = v
    })
    if (file.anomaly !== null) file.anomaly[r] = label(cells[anomalyAt] as string, name, line, 'anomaly')
    if (file.changepoint !== null) file.changepoint[r] = label(cells[changepointAt] as string, name, line, 'changepoint')
  }
  return file
}
