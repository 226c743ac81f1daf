// Backtesting: the detectors over a recorded univariate series, as fast as the CPU allows.
import { createReadStream, createWriteStream, readFileSync } from 'node:fs'
import { once } from 'node:events'
import { type Writable } from 'node:stream'
import { parseArgs } from 'node:util'
import { parse } from 'csv-parse'
import { stringify } from 'csv-stringify'
import {
  anomalyScore, detectionQuality, formatQuality, validateRuleConfig, type DetectionQuality, type RuleConfig
} from '../anomaly/index.ts'
import { DetectionCounter, IotError, formatTimestamp, parseTimestamp, toMicrosecondPrecision, type Reading, type Verdict } from '../domain/index.ts'
import { PipelineDetector } from '../pipeline/index.ts'

export interface ReplayOptions {
  input: string
  /** Output CSV path; '-' writes to stdout. */
  output: string
  timestampColumn: string
  valueColumn: string
  /** Optional ground-truth column (true/false/1/0/yes/no, or an anomaly kind): precision, recall and F1 are printed. */
  labelColumn: string | null
  sensorType: string
  sensorId: string
  location: string
  unit: string
  rules: RuleConfig | undefined
  ml: boolean
}

export const replayUsage = `Usage: iot-monitor replay --input history.csv [--output scores.csv] [flags]

Runs the detectors over a recorded series (one sensor), in file order, with the same event-time
rules as the live pipeline (baselines, model training every 5 minutes of event time), and writes
every row with its verdicts. Rows that cannot be read are written with an "error" and no verdict.

  --input FILE             CSV with a header row (required)
  --output FILE            where to write (default "-": stdout)
  --timestamp-column NAME  default "timestamp": ISO 8601 (no zone = UTC), or epoch seconds/milliseconds
  --value-column NAME      default "value"
  --label-column NAME      optional ground truth (true/false, 1/0, or an anomaly kind such as "spike")
  --sensor-type TYPE       selects the rule thresholds (default "temperature"; any other name has none
                           unless --rules defines it)
  --location NAME          for location overrides of the thresholds (default "replay")
  --sensor-id ID           default "replay"
  --unit UNIT              shown in explanations (default none)
  --rules FILE             rule thresholds (JSON), as for start/worker
  --no-ml                  without the Isolation Forest

Output columns: timestamp, value, anomaly_score (0..1: the strongest detector on a common scale,
see docs/ARCHITECTURE.md), anomaly (combined verdict), severity, rule_anomaly, z_score,
z_anomaly, ml_score, ml_anomaly, model_version, explanation, error.
`

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
        'sensor-type': { type: 'string', default: 'temperature' },
        'sensor-id': { type: 'string', default: 'replay' },
        location: { type: 'string', default: 'replay' },
        unit: { type: 'string', default: '' },
        rules: { type: 'string' },
        'no-ml': { type: 'boolean', default: false }
      }
    }))
  } catch (err) {
    throw new IotError('IOT_ERR_CONFIG', `replay: ${(err as Error).message}`)
  }
  if (values.input === undefined) throw new IotError('IOT_ERR_CONFIG', 'replay: --input FILE is required')
  let rules: RuleConfig | undefined
  if (values.rules !== undefined) {
    try {
      rules = validateRuleConfig(JSON.parse(readFileSync(values.rules, 'utf8')))
    } catch (err) {
      throw new IotError('IOT_ERR_CONFIG', `--rules ${values.rules}: ${(err as Error).message}`, { cause: err })
    }
  }
  return {
    input: values.input,
    output: values.output,
    timestampColumn: values['timestamp-column'],
    valueColumn: values['value-column'],
    labelColumn: values['label-column'] ?? null,
    sensorType: values['sensor-type'],
    sensorId: values['sensor-id'],
    location: values.location,
    unit: values.unit,
    rules,
    ml: !values['no-ml']
  }
}

const CHUNK = 1024
const outputColumns = ['timestamp', 'value', 'anomaly_score', 'anomaly', 'severity', 'rule_anomaly', 'z_score', 'z_anomaly',
  'ml_score', 'ml_anomaly', 'model_version', 'explanation', 'error']

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
  if (['0', 'false', 'no', 'normal', 'f', 'n'].includes(t)) return { anomaly: false, kind: null }
  if (['1', 'true', 'yes', 't', 'y', 'anomaly'].includes(t)) return { anomaly: true, kind: null }
  return { anomaly: true, kind: t }
}

export interface ReplaySummary {
  rows: number
  scored: number
  errors: number
  /** First few unreadable rows: line number and reason. */
  firstErrors: string[]
  anomalies: number
  models: number
  quality: DetectionQuality | null
  elapsedMs: number
}

const num = (x: number | null): string => x === null ? '' : String(x)

/** Replays a CSV file through the detectors and writes the scored rows. */
export async function runReplay (o: ReplayOptions, stdout: Writable = process.stdout): Promise<ReplaySummary> {
  const started = performance.now()
  const detector = new PipelineDetector({ rules: o.rules, ml: o.ml ? { scope: 'sensor' } : false })
  const input = createReadStream(o.input)
  const parser = input.pipe(parse({ columns: true, skip_empty_lines: true, trim: true, bom: true, relax_column_count: true }))
  input.on('error', (err) => { parser.destroy(err) })
  const out = stringify({ header: true, columns: outputColumns })
  const sink: Writable = o.output === '-' ? stdout : createWriteStream(o.output)
  out.pipe(sink)
  // Standard output is never ended: the scores are out once the writer has handed over its last
  // chunk (the CLI exits right after; waiting for less cut rows off the end).
  const done = o.output === '-' ? once(out, 'end') : once(sink, 'finish')
  const counter = new DetectionCounter()
  let labelled = 0
  const s: ReplaySummary = { rows: 0, scored: 0, errors: 0, firstErrors: [], anomalies: 0, models: 0, quality: null, elapsedMs: 0 }
  let checkedHeader = false
  const write = async (row: string[]): Promise<void> => {
    if (!out.write(row)) await once(out, 'drain')
  }
  // Rows wait in chunks so the detectors score them together (the Isolation Forest batches per model).
  let chunk: Array<string[] | Reading> = []
  const flush = async (): Promise<void> => {
    const readings = chunk.filter((x): x is Reading => !Array.isArray(x))
    const verdicts = detector.detectMany(readings)
    let k = 0
    for (const x of chunk) {
      if (Array.isArray(x)) {
        await write(x)
        continue
      }
      const v = verdicts[k++] as Verdict
      s.scored++
      if (v.anomaly) s.anomalies++
      if (x.anomaly !== null) {
        counter.add(x, v)
        labelled++
      }
      await write([formatTimestamp(x.ts), String(x.value), anomalyScore(v).toFixed(6), String(v.anomaly), v.severity ?? '',
        String(v.ruleAnomaly), num(v.zScore), String(v.zAnomaly), num(v.mlScore), v.mlAnomaly === null ? '' : String(v.mlAnomaly),
        v.modelVersion ?? '', v.explanation ?? '', ''])
    }
    chunk = []
  }
  try {
    for await (const record of parser as AsyncIterable<Record<string, string>>) {
      if (!checkedHeader) {
        checkedHeader = true
        for (const col of [o.timestampColumn, o.valueColumn, ...(o.labelColumn === null ? [] : [o.labelColumn])]) {
          if (!(col in record)) throw new IotError('IOT_ERR_VALIDATION', `${o.input}: no column "${col}" (columns: ${Object.keys(record).join(', ')})`)
        }
      }
      s.rows++
      const tsText = record[o.timestampColumn] ?? ''
      const valueText = record[o.valueColumn] ?? ''
      const ts = parseTime(tsText)
      const value = valueText.trim() === '' ? NaN : Number(valueText)
      const error = Number.isNaN(ts) ? `bad timestamp "${tsText}"` : !Number.isFinite(value) ? `bad value "${valueText}"` : null
      if (error !== null) {
        s.errors++
        if (s.firstErrors.length < 5) s.firstErrors.push(`row ${s.rows}: ${error}`)
        chunk.push([tsText, valueText, '', '', '', '', '', '', '', '', '', '', error])
        continue
      }
      const label = o.labelColumn === null ? { anomaly: null, kind: null } : parseLabel(record[o.labelColumn])
      const reading: Reading = {
        sensorId: o.sensorId,
        sensorType: o.sensorType,
        location: o.location,
        value,
        ts,
        unit: o.unit,
        anomaly: label.anomaly,
        anomalyKind: label.kind,
        seq: null
      }
      chunk.push(reading)
      if (chunk.length >= CHUNK) await flush()
    }
    await flush()
  } catch (err) {
    if (err instanceof IotError) throw err
    const code = (err as { code?: string }).code
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw new IotError('IOT_ERR_CONFIG', `--input: ${(err as Error).message}`, { cause: err })
    throw new IotError('IOT_ERR_VALIDATION', `${o.input}: ${(err as Error).message}`, { cause: err })
  } finally {
    out.end()
    await done
  }
  s.models = detector.drainModels().length
  if (labelled > 0) s.quality = detectionQuality(counter.cells())
  s.elapsedMs = performance.now() - started
  return s
}

/** The lines the CLI prints after a replay (to stderr when the scores go to stdout). */
export function formatReplaySummary (s: ReplaySummary): string {
  const lines = [`Replayed ${s.rows} rows in ${(s.elapsedMs / 1000).toFixed(2)} s: ${s.scored} scored, ${s.anomalies} anomalies, ` +
    `${s.models} models trained, ${s.errors} unreadable rows.`]
  for (const e of s.firstErrors) lines.push(`  ${e}`)
  if (s.quality !== null) lines.push(formatQuality(s.quality, 'Against the label column'))
  return lines.join('\n') + '\n'
}
