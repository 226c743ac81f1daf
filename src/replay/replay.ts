// Backtesting: the detectors over a recorded series (one sensor, or one device of several value
// columns), as fast as the CPU allows.
import { createReadStream, createWriteStream, readFileSync } from 'node:fs'
import { type Writable } from 'node:stream'
import { parseArgs } from 'node:util'
import { parse } from 'csv-parse'
import {
  CadenceTracker, DeviceDetector, anomalyScore, detectionQuality, formatCadence, formatQuality, scores, validateRuleConfig,
  type DetectionQuality, type DeviceVerdict, type RuleConfig, type Scores
} from '../anomaly/index.ts'
import { DetectionCounter, IotError, formatTimestamp, parseTimestamp, toMicrosecondPrecision, type Reading, type Severity, type Verdict } from '../domain/index.ts'
// The detection module alone, not the worker, bus and storage adapters: ~80 MB less RSS (the replay bench).
import { PipelineDetector } from '../detection/index.ts'
import { CsvOut } from './csv-out.ts'

export interface ReplayOptions {
  input: string
  /** Output CSV path; '-' writes to stdout. */
  output: string
  timestampColumn: string
  /** One column: one sensor. Several: one device, each column one of its measurements. */
  valueColumns: string[]
  /** Optional ground-truth column (true/false/1/0/yes/no, or an anomaly kind): precision, recall and F1 are printed. */
  labelColumn: string | null
  /**
   * The sensor type of each value column, as named with --sensor-type; null when none was named:
   * each column's type is then its own name, and no rule thresholds apply unless --rules.
   */
  sensorTypes: string[] | null
  /** Sensor id of a single column. */
  sensorId: string
  /** Device id of several columns: their sensors are `<device>.<column>`. */
  device: string
  location: string
  unit: string
  /** The rule thresholds the detectors get (`{ defaults: {} }`: none). */
  rules: RuleConfig | undefined
  /** Where they come from, for the summary: `off`, `built-in` or the --rules file. */
  rulesSource: string
  ml: boolean
  /** The device-level (multivariate) detector over several value columns. */
  deviceLevel: boolean
}

export const replayUsage = `Usage: iot-monitor replay --input history.csv [--output scores.csv] [flags]

Runs the detectors over a recorded series, in file order, with the same event-time rules as the
live pipeline (baselines, model training on samples and event time), and writes every row with its
verdicts. One value column is one sensor; several (--value-column a,b,c) are one device: each
column gets the per-sensor detectors, and the rows get the device-level detector too (an Isolation
Forest over the columns together). Rows that cannot be read are written with an "error".

  --input FILE             CSV with a header row (required)
  --output FILE            where to write (default "-": stdout)
  --timestamp-column NAME  default "timestamp": ISO 8601 (no zone = UTC), or epoch seconds/milliseconds
  --value-column NAMES     default "value"; several, comma-separated: one device (a,b,c)
  --label-column NAME      optional ground truth (true/false, 1/0, or an anomaly kind such as "spike")
  --sensor-type TYPES      the sensor type of the value column(s): one for all, or one per column.
                           Selects built-in rule thresholds (temperature, humidity, air_quality,
                           pressure, co2; other types have none). Default: none named, each column's
                           type is its name and no rule thresholds apply (data of unknown units)
  --rules FILE             rule thresholds (JSON), as for start/worker
  --location NAME          for location overrides of the thresholds (default "replay")
  --sensor-id ID           sensor id of a single column (default "replay")
  --device ID              device id of several columns (default "replay"): sensors <ID>.<column>
  --unit UNIT              shown in explanations (default none)
  --no-ml                  without the Isolation Forests (per sensor and device-level)
  --no-device              several columns without the device-level detector

Output columns, one value column: timestamp, value, anomaly_score (0..1, 0.5 = the decision
threshold: see docs/ARCHITECTURE.md), anomaly (combined verdict), severity, rule_anomaly, z_score,
z_anomaly, ml_score, ml_anomaly, model_version, explanation, error.
Several: timestamp, the value columns, anomaly_score (the highest of the row), anomaly (any
detector), severity, device_score, device_anomaly, device_model_version, contributors (the
measurements behind a device-level anomaly, with their share), <column>_score and
<column>_anomaly per column, explanation, error.
`

function list (text: string, flag: string): string[] {
  const items = text.split(',').map(s => s.trim())
  if (items.some(s => s === '')) throw new IotError('IOT_ERR_CONFIG', `replay: ${flag} "${text}" has an empty name`)
  return items
}

export function parseReplayArgs (argv: readonly string[]): ReplayOptions {
  let values
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        input: { type: 'string' },
        output: { type: 'string', default: '-' },
        'timestamp-column': { type: 'string', default: 'timestamp' },
        'value-column': { type: 'string', default: 'value' },
        'label-column': { type: 'string' },
        'sensor-type': { type: 'string' },
        'sensor-id': { type: 'string', default: 'replay' },
        device: { type: 'string', default: 'replay' },
        location: { type: 'string', default: 'replay' },
        unit: { type: 'string', default: '' },
        rules: { type: 'string' },
        'no-ml': { type: 'boolean', default: false },
        'no-device': { type: 'boolean', default: false }
      }
    }))
  } catch (err) {
    throw new IotError('IOT_ERR_CONFIG', `replay: ${(err as Error).message}`)
  }
  if (values.input === undefined) throw new IotError('IOT_ERR_CONFIG', 'replay: --input FILE is required')
  const valueColumns = list(values['value-column'], '--value-column')
  if (new Set(valueColumns).size !== valueColumns.length) throw new IotError('IOT_ERR_CONFIG', `replay: --value-column "${values['value-column']}" names a column twice`)
  const timestampColumn = values['timestamp-column']
  if (valueColumns.includes(timestampColumn)) throw new IotError('IOT_ERR_CONFIG', `replay: "${timestampColumn}" is the timestamp column and a value column`)
  let sensorTypes: string[] | null = null
  if (values['sensor-type'] !== undefined) {
    const types = list(values['sensor-type'], '--sensor-type')
    if (types.length !== 1 && types.length !== valueColumns.length) {
      throw new IotError('IOT_ERR_CONFIG', `replay: --sensor-type names ${types.length} types for ${valueColumns.length} value columns (give one for all, or one per column)`)
    }
    sensorTypes = valueColumns.map((_, i) => types[types.length === 1 ? 0 : i] as string)
  }
  let rules: RuleConfig | undefined
  let rulesSource: string
  if (values.rules !== undefined) {
    try {
      rules = validateRuleConfig(JSON.parse(readFileSync(values.rules, 'utf8')))
    } catch (err) {
      throw new IotError('IOT_ERR_CONFIG', `--rules ${values.rules}: ${(err as Error).message}`, { cause: err })
    }
    rulesSource = values.rules
  } else if (sensorTypes !== null) {
    rules = undefined // the built-in thresholds, for the types that have them
    rulesSource = 'built-in'
  } else {
    rules = { defaults: {} }
    rulesSource = 'off'
  }
  return {
    input: values.input,
    output: values.output,
    timestampColumn,
    valueColumns,
    labelColumn: values['label-column'] ?? null,
    sensorTypes,
    sensorId: values['sensor-id'],
    device: values.device,
    location: values.location,
    unit: values.unit,
    rules,
    rulesSource,
    ml: !values['no-ml'],
    deviceLevel: !values['no-device'] && !values['no-ml']
  }
}

const CHUNK = 1024
const singleColumns = ['timestamp', 'value', 'anomaly_score', 'anomaly', 'severity', 'rule_anomaly', 'z_score', 'z_anomaly',
  'ml_score', 'ml_anomaly', 'model_version', 'explanation', 'error']

/** The output header: one value column keeps the original layout; several get the device layout. */
export function replayColumns (valueColumns: readonly string[]): string[] {
  if (valueColumns.length === 1) return singleColumns
  return ['timestamp', ...valueColumns, 'anomaly_score', 'anomaly', 'severity', 'device_score', 'device_anomaly', 'device_model_version',
    'contributors', ...valueColumns.flatMap(c => [`${c}_score`, `${c}_anomaly`]), 'explanation', 'error']
}

/** Epoch seconds below 1e11 (until year 5138), milliseconds above; otherwise ISO 8601. Kept to the microsecond. */
function parseTime (text: string): number {
  const t = text.trim()
  if (/^-?\d+(\.\d+)?$/.test(t)) {
    const n = Number(t)
    return toMicrosecondPrecision(Math.abs(n) < 1e11 ? n * 1000 : n)
  }
  return parseTimestamp(t)
}

function parseLabel (text: string | undefined): { anomaly: boolean | null, kind: string | null } {
  const t = (text ?? '').trim().toLowerCase()
  if (t === '') return { anomaly: null, kind: null }
  const n = Number(t)
  if (Number.isFinite(n)) return { anomaly: n !== 0, kind: null } // 0/1, 0.0/1.0 (SKAB)
  if (['false', 'no', 'normal', 'f', 'n'].includes(t)) return { anomaly: false, kind: null }
  if (['true', 'yes', 't', 'y', 'anomaly'].includes(t)) return { anomaly: true, kind: null }
  return { anomaly: true, kind: t }
}

/** What the device-level detector did over a replay of several columns. */
export interface DeviceReplaySummary {
  measurements: string[]
  /** Rows it scored (complete rows once its first model existed). */
  scored: number
  anomalies: number
  models: number
}

export interface ReplaySummary {
  rows: number
  scored: number
  /** Rows with an error (an unreadable timestamp, or an unreadable value in some column). */
  errors: number
  /** First few errors: line number and reason. */
  firstErrors: string[]
  anomalies: number
  /** Isolation Forest models trained per sensor. */
  models: number
  /** Per-sensor quality against the label column (every column's readings). */
  quality: DetectionQuality | null
  /** Row-level quality against the label column with several columns: the device-level detector, and any detector. */
  rowQuality: { device: Scores | null, any: Scores } | null
  /** Median interval between rows (ms), null with fewer than three intervals. */
  cadenceMs: number | null
  /** Rule thresholds in force, for people: `off (...)`, `built-in for temperature`, ... */
  rules: string
  /** The per-sensor detectors that ran. */
  detectors: string[]
  /** Sensors replayed (value columns). */
  sensors: number
  /** Null with one column or without the device-level detector. */
  device: DeviceReplaySummary | null
  elapsedMs: number
}

const num = (x: number | null): string => x === null ? '' : String(x)
const rank: Record<Severity, number> = { minor: 1, major: 2, critical: 3 }

/** One CSV row waiting in a chunk: its cells, and the readings made of it (one per readable value). */
interface PendingRow {
  tsText: string
  ts: number
  cells: string[]
  readings: Array<Reading | null>
  label: boolean | null
  error: string
}

/** Replays a CSV file through the detectors and writes the scored rows. */
export async function runReplay (o: ReplayOptions, stdout: Writable = process.stdout): Promise<ReplaySummary> {
  const started = performance.now()
  const detector = new PipelineDetector({ rules: o.rules, ml: o.ml ? { scope: 'sensor' } : false, storeModels: false })
  const multi = o.valueColumns.length > 1
  const device = multi && o.deviceLevel ? new DeviceDetector() : null
  const cadence = new CadenceTracker()
  const sensorTypes = o.sensorTypes ?? o.valueColumns
  const sensorIds = multi ? o.valueColumns.map(c => `${o.device}.${c}`) : [o.sensorId]
  const input = createReadStream(o.input)
  const parser = input.pipe(parse({ columns: true, skip_empty_lines: true, trim: true, bom: true, relax_column_count: true }))
  input.on('error', (err) => { parser.destroy(err) })
  const sink: Writable = o.output === '-' ? stdout : createWriteStream(o.output)
  const out = new CsvOut(sink, replayColumns(o.valueColumns), o.output !== '-')
  const counter = new DetectionCounter()
  let labelled = 0
  const rowCounts = { device: { tp: 0, fp: 0, fn: 0 }, any: { tp: 0, fp: 0, fn: 0 }, deviceRows: 0, rows: 0 }
  const s: ReplaySummary = {
    rows: 0,
    scored: 0,
    errors: 0,
    firstErrors: [],
    anomalies: 0,
    models: 0,
    quality: null,
    rowQuality: null,
    cadenceMs: null,
    rules: '',
    detectors: [],
    sensors: o.valueColumns.length,
    device: null,
    elapsedMs: 0
  }
  const deviceSummary: DeviceReplaySummary | null = device === null ? null : { measurements: [...o.valueColumns], scored: 0, anomalies: 0, models: 0 }
  let checkedHeader = false
  const write = async (row: string[]): Promise<void> => {
    await out.write(row)
  }
  const tally = (c: { tp: number, fp: number, fn: number }, label: boolean, flag: boolean): void => {
    if (flag && label) c.tp++
    else if (flag) c.fp++
    else if (label) c.fn++
  }
  // Rows wait in chunks so the detectors score them together (the Isolation Forest batches per model).
  let chunk: PendingRow[] = []
  const flush = async (): Promise<void> => {
    const readings: Reading[] = []
    for (const p of chunk) for (const r of p.readings) if (r !== null) readings.push(r)
    const verdicts = detector.detectMany(readings)
    let k = 0
    for (const p of chunk) {
      if (Number.isNaN(p.ts)) {
        await write(multi ? [p.tsText, ...p.cells, ...new Array<string>(replayColumns(o.valueColumns).length - 2 - p.cells.length).fill(''), p.error] : [p.tsText, p.cells[0] ?? '', '', '', '', '', '', '', '', '', '', '', p.error])
        continue
      }
      const vs: Array<Verdict | null> = p.readings.map(r => r === null ? null : verdicts[k++] as Verdict)
      for (let c = 0; c < vs.length; c++) {
        const v = vs[c]
        const r = p.readings[c]
        if (v === null || v === undefined || r === null || r === undefined) continue
        if (r.anomaly !== null) {
          counter.add(r, v)
          labelled++
        }
      }
      const scoredHere = vs.some(v => v !== null)
      if (scoredHere) s.scored++
      if (!multi) {
        const v = vs[0]
        const r = p.readings[0]
        if (v === null || v === undefined || r === null || r === undefined) {
          await write([p.tsText, p.cells[0] ?? '', '', '', '', '', '', '', '', '', '', '', p.error])
          continue
        }
        if (v.anomaly) s.anomalies++
        await write([formatTimestamp(r.ts), String(r.value), anomalyScore(v).toFixed(6), String(v.anomaly), v.severity ?? '',
          String(v.ruleAnomaly), num(v.zScore), String(v.zAnomaly), num(v.mlScore), v.mlAnomaly === null ? '' : String(v.mlAnomaly),
          v.modelVersion ?? '', v.explanation ?? '', ''])
        continue
      }
      const dv: DeviceVerdict | null = device === null
        ? null
        : device.scoreRow(o.device, p.ts, o.valueColumns, p.readings.map(r => r === null ? NaN : r.value))
      let score = dv?.score ?? 0
      let anomaly = dv?.anomaly === true
      let severity: Severity | null = dv?.anomaly === true ? 'major' : null
      const explanations: string[] = []
      const perColumn: string[] = []
      o.valueColumns.forEach((col, c) => {
        const v = vs[c]
        if (v === null || v === undefined) {
          perColumn.push('', '')
          return
        }
        const a = anomalyScore(v)
        if (a > score) score = a
        if (v.anomaly) anomaly = true
        if (v.severity !== null && (severity === null || rank[v.severity] > rank[severity])) severity = v.severity
        if (v.explanation !== null) explanations.push(`${col}: ${v.explanation}`)
        perColumn.push(a.toFixed(6), String(v.anomaly))
      })
      if (dv?.explanation != null) explanations.push(dv.explanation)
      if (dv !== null && dv.score !== null) {
        deviceSummary!.scored++
        if (dv.anomaly) deviceSummary!.anomalies++
      }
      if (anomaly) s.anomalies++
      if (p.label !== null && scoredHere) {
        rowCounts.rows++
        tally(rowCounts.any, p.label, anomaly)
        if (dv !== null) {
          rowCounts.deviceRows++
          tally(rowCounts.device, p.label, dv.anomaly)
        }
      }
      await write([formatTimestamp(p.ts), ...p.cells, scoredHere ? score.toFixed(6) : '', scoredHere ? String(anomaly) : '', severity ?? '',
        dv?.score == null ? '' : dv.score.toFixed(6), dv?.score == null ? '' : String(dv.anomaly), dv?.modelVersion ?? '',
        dv === null ? '' : dv.contributions.map(x => `${x.measurement} ${Math.round(x.share * 100)}%`).join(', '),
        ...perColumn, explanations.join(' | '), p.error])
    }
    chunk = []
  }
  const noteError = (row: number, error: string): void => {
    s.errors++
    if (s.firstErrors.length < 5) s.firstErrors.push(`row ${row}: ${error}`)
  }
  try {
    for await (const record of parser as AsyncIterable<Record<string, string>>) {
      if (!checkedHeader) {
        checkedHeader = true
        for (const col of [o.timestampColumn, ...o.valueColumns, ...(o.labelColumn === null ? [] : [o.labelColumn])]) {
          if (!(col in record)) throw new IotError('IOT_ERR_VALIDATION', `${o.input}: no column "${col}" (columns: ${Object.keys(record).join(', ')})`)
        }
      }
      s.rows++
      const tsText = record[o.timestampColumn] ?? ''
      const ts = parseTime(tsText)
      const cells = o.valueColumns.map(c => record[c] ?? '')
      if (Number.isNaN(ts)) {
        const error = `bad timestamp "${tsText}"`
        noteError(s.rows, error)
        chunk.push({ tsText, ts, cells, readings: cells.map(() => null), label: null, error })
        continue
      }
      cadence.observe('rows', ts)
      const label = o.labelColumn === null ? { anomaly: null, kind: null } : parseLabel(record[o.labelColumn])
      const bad: string[] = []
      const readings = cells.map((text, c): Reading | null => {
        const value = text.trim() === '' ? NaN : Number(text)
        if (!Number.isFinite(value)) {
          bad.push(multi ? `bad value "${text}" in ${o.valueColumns[c] as string}` : `bad value "${text}"`)
          return null
        }
        return {
          sensorId: sensorIds[c] as string,
          sensorType: sensorTypes[c] as string,
          location: o.location,
          value,
          ts,
          unit: o.unit,
          anomaly: label.anomaly,
          anomalyKind: label.kind,
          seq: null
        }
      })
      const error = bad.join('; ')
      if (error !== '') noteError(s.rows, error)
      chunk.push({ tsText, ts, cells, readings, label: label.anomaly, error })
      if (chunk.length >= CHUNK) await flush()
    }
    await flush()
  } catch (err) {
    if (err instanceof IotError) throw err
    const code = (err as { code?: string }).code
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw new IotError('IOT_ERR_CONFIG', `--input: ${(err as Error).message}`, { cause: err })
    throw new IotError('IOT_ERR_VALIDATION', `${o.input}: ${(err as Error).message}`, { cause: err })
  } finally {
    await out.end()
  }
  s.models = detector.modelsTrained
  if (labelled > 0) s.quality = detectionQuality(counter.cells())
  if (multi && rowCounts.rows > 0) {
    const d = rowCounts.device
    const a = rowCounts.any
    s.rowQuality = { device: rowCounts.deviceRows > 0 ? scores(d.tp, d.fp, d.fn) : null, any: scores(a.tp, a.fp, a.fn) }
  }
  s.cadenceMs = cadence.median('rows')
  s.rules = describeRules(o, detector, sensorTypes)
  s.detectors = perSensorDetectors(detector)
  if (deviceSummary !== null && device !== null) {
    deviceSummary.models = device.modelsTrained
    s.device = deviceSummary
  }
  s.elapsedMs = performance.now() - started
  return s
}

function describeRules (o: ReplayOptions, detector: PipelineDetector, types: readonly string[]): string {
  if (o.rulesSource === 'off') return 'off (no --sensor-type or --rules: the data\'s units are unknown)'
  const distinct = [...new Set(types)]
  const withThresholds = distinct.filter(t => detector.detector.rules.thresholdFor(t, o.location) !== null)
  const without = distinct.filter(t => !withThresholds.includes(t))
  const from = o.rulesSource === 'built-in' ? 'built-in' : `from ${o.rulesSource}`
  const parts: string[] = []
  if (withThresholds.length > 0) parts.push(`${from} for ${withThresholds.join(', ')}`)
  if (without.length > 0) parts.push(`none for ${without.join(', ')} (no thresholds ${o.rulesSource === 'built-in' ? 'built in' : 'in the file'})`)
  return parts.join('; ')
}

function perSensorDetectors (p: PipelineDetector): string[] {
  const d = p.detector
  const out = ['z-score']
  if (d.stuck !== null) out.push('stuck')
  if (d.drift !== null) out.push('drift')
  if (d.seasonal !== null) out.push('daily profile')
  if (p.forest !== null) out.push('Isolation Forest')
  return out
}

const fmtPct = (x: number | null): string => x === null ? '-' : (100 * x).toFixed(1)

/** The lines the CLI prints after a replay (to stderr when the scores go to stdout). */
export function formatReplaySummary (s: ReplaySummary): string {
  const lines = [`Replayed ${s.rows} rows in ${(s.elapsedMs / 1000).toFixed(2)} s: ${s.scored} scored, ${s.anomalies} anomalies, ` +
    `${s.models} models trained, ${s.errors} unreadable rows.`]
  for (const e of s.firstErrors) lines.push(`  ${e}`)
  lines.push(`Cadence: ${s.cadenceMs === null ? 'unknown (fewer than 3 intervals)' : formatCadence(s.cadenceMs)} (median interval between rows).`)
  const forest = s.detectors.includes('Isolation Forest') ? ` (${s.sensors} ${s.sensors === 1 ? 'sensor' : 'sensors'}, ${s.models} models)` : ''
  lines.push(`Ran: rule thresholds ${s.rules}; per sensor: ${s.detectors.join(', ')}${forest}` +
    (s.device === null
      ? '.'
      : `; device-level Isolation Forest over ${s.device.measurements.join(', ')} (${s.device.models} models, ${s.device.scored} rows scored, ${s.device.anomalies} anomalous).`))
  if (s.quality !== null) lines.push(formatQuality(s.quality, 'Against the label column'))
  if (s.rowQuality !== null) {
    const row = (name: string, q: Scores): string => `  ${name}: precision ${fmtPct(q.precision)} %, recall ${fmtPct(q.recall)} %, F1 ${fmtPct(q.f1)} % (${q.tp} true, ${q.fp} false alarms, ${q.fn} missed)`
    lines.push('Rows against the label column:')
    if (s.rowQuality.device !== null) lines.push(row('device-level', s.rowQuality.device))
    lines.push(row('any detector', s.rowQuality.any))
  }
  return lines.join('\n') + '\n'
}
