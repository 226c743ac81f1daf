import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'csv-parse/sync'
import { createRandom } from '../domain/index.ts'
import { formatReplaySummary, parseReplayArgs, runReplay } from './index.ts'

const T0 = Date.UTC(2026, 2, 1)
const header = ['timestamp', 'value', 'anomaly_score', 'anomaly', 'severity', 'rule_anomaly', 'z_score', 'z_anomaly',
  'ml_score', 'ml_anomaly', 'model_version', 'explanation', 'error']

/** A temperature series at 1 Hz with a daily cycle, noise, and a spike every 100th row (labelled). */
function series (rows: number, cols = 'timestamp,value,label'): string {
  const rnd = createRandom(5)
  const lines = [cols]
  for (let i = 0; i < rows; i++) {
    const ts = T0 + i * 1000
    const normal = 22 + 3 * Math.sin(2 * Math.PI * i / 86_400) + 0.5 * rnd.normal()
    const spike = i % 100 === 99
    lines.push(`${new Date(ts).toISOString()},${(spike ? normal * 2 : normal).toFixed(3)},${spike ? 'spike' : 'false'}`)
  }
  return lines.join('\n') + '\n'
}

function withDir (fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iot-replay-'))
    try { await fn(dir) } finally { rmSync(dir, { recursive: true, force: true }) }
  }
}

test('replay - 20,000 rows: every row written in order with verdicts; spikes found; quality against the labels', withDir(async dir => {
  const input = join(dir, 'history.csv')
  const output = join(dir, 'scores.csv')
  writeFileSync(input, series(20_000))
  const s = await runReplay(parseReplayArgs(['--input', input, '--output', output, '--label-column', 'label', '--unit', '°C', '--sensor-type', 'temperature']))
  const rows = parse(readFileSync(output), { columns: false }) as string[][]
  assert.deepEqual(rows[0], header)
  assert.equal(rows.length, 20_001)
  const inputRows = readFileSync(input, 'utf8').trim().split('\n').slice(1).map(l => l.split(','))
  for (let i = 1; i < rows.length; i++) {
    const r = rows[i]!
    assert.equal(r.length, header.length)
    assert.equal(r[0], inputRows[i - 1]![0])
    assert.equal(Number(r[1]), Number(inputRows[i - 1]![1]))
    const score = Number(r[2])
    assert.ok(score >= 0 && score <= 1, `row ${i}: anomaly_score ${r[2]}`)
    assert.ok(['true', 'false'].includes(r[3]!))
    assert.ok(['', 'minor', 'major', 'critical'].includes(r[4]!))
    assert.equal(r[12], '')
    assert.equal(r[11] === '', r[4] === '', `row ${i}: an explanation exactly when a detector fired`)
  }
  // The first model is asked for once the z baseline (30 readings) and 50 samples exist: row 81; then at most
  // every 5 minutes and once as many new rows as the last model saw arrived (RetrainPolicy): rows 381 (350
  // rows), 731 (700), 1431 (1000), then every 1000 rows: 19431 asks for the 22nd. Each scores from 256 rows
  // (installAfterRows) after the row that asked for it.
  assert.equal(rows[336]![10], '')
  assert.equal(rows[337]![10], 'replay#1')
  assert.equal(rows[636]![10], 'replay#1')
  assert.equal(rows[637]![10], 'replay#2')
  assert.equal(rows[20_000]![10], 'replay#22')
  assert.equal(s.models, 22)
  assert.equal(s.rows, 20_000)
  assert.equal(s.scored, 20_000)
  assert.equal(s.errors, 0)
  // Doubling a 22 °C reading breaks the 35 °C maximum and the 5 °C/s rate: every spike is critical.
  const spikes = rows.slice(1).filter((_, i) => i % 100 === 99)
  assert.deepEqual(new Set(spikes.map(r => r[4])), new Set(['critical']))
  const q = s.quality!
  assert.equal(q.labels.spike, 200)
  assert.equal(q.detectors.combined.byKind.spike!.recall, 1)
  const precision = q.detectors.combined.byKind.spike!.precision!
  // The false positives are 3-4σ noise where the z-score and the forest agree: 20-33 of 20,000 rows over seeds 1-8 (27 here).
  assert.ok(precision > 0.85, `combined precision on spikes ${precision}`)
  assert.match(formatReplaySummary(s), /^Replayed 20000 rows in [\d.]+ s: 20000 scored, \d+ anomalies, \d+ models trained, 0 unreadable rows\.\nCadence: 1 s \(median interval between rows\)\.\nRan: rule thresholds built-in for temperature; per sensor: [^\n]+\nAgainst the label column over 20000 labelled readings/)
}))

test('replay - other column names, epoch seconds, unreadable rows written with an error, no ML', withDir(async dir => {
  const input = join(dir, 'h.csv')
  writeFileSync(input, 'time;reading\n'.replace(';', ',') + [
    `${T0 / 1000},21.5`, `${T0 / 1000 + 1},abc`, 'yesterday,21', `${T0 / 1000 + 3},`, `${T0 + 4000},22`
  ].join('\n') + '\n')
  const out = join(dir, 'o.csv')
  const s = await runReplay(parseReplayArgs(['--input', input, '--output', out, '--timestamp-column', 'time', '--value-column', 'reading', '--no-ml', '--sensor-type', 'pressure']))
  const rows = parse(readFileSync(out), { columns: true }) as Array<Record<string, string>>
  assert.deepEqual(rows.map(r => [r.timestamp, r.value, r.anomaly, r.severity, r.error]), [
    [new Date(T0).toISOString(), '21.5', 'true', 'critical', ''], // 21.5 hPa is below 980
    [String(T0 / 1000 + 1), 'abc', '', '', 'bad value "abc"'],
    ['yesterday', '21', '', '', 'bad timestamp "yesterday"'],
    [String(T0 / 1000 + 3), '', '', '', 'bad value ""'],
    [new Date(T0 + 4000).toISOString(), '22', 'true', 'critical', '']
  ])
  assert.equal(rows[0]!.explanation, 'rule: below min 980')
  assert.equal(s.errors, 3)
  assert.deepEqual(s.firstErrors, ['row 2: bad value "abc"', 'row 3: bad timestamp "yesterday"', 'row 4: bad value ""'])
  assert.equal(s.quality, null)
}))

test('replay - clear errors: missing column, missing file, missing --input, unknown flag', withDir(async dir => {
  const input = join(dir, 'h.csv')
  writeFileSync(input, 'ts,v\n1,2\n')
  await assert.rejects(runReplay(parseReplayArgs(['--input', input, '--output', join(dir, 'o.csv')])),
    { code: 'IOT_ERR_VALIDATION', message: `${input}: no column "timestamp" (columns: ts, v)` })
  await assert.rejects(runReplay(parseReplayArgs(['--input', join(dir, 'nope.csv'), '--output', join(dir, 'o.csv')])), { code: 'IOT_ERR_CONFIG' })
  assert.throws(() => parseReplayArgs([]), { code: 'IOT_ERR_CONFIG', message: 'replay: --input FILE is required' })
  assert.throws(() => parseReplayArgs(['--input', input, '--colour']), { code: 'IOT_ERR_CONFIG' })
}))

test('replay - the CLI writes scores to stdout and the summary to stderr', withDir(async dir => {
  const input = join(dir, 'history.csv')
  writeFileSync(input, series(300))
  const root = new URL('../../', import.meta.url)
  const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'replay', '--input', input], { cwd: root })
  const rows = parse(stdout, { columns: false }) as string[][]
  assert.deepEqual(rows[0], header)
  assert.equal(rows.length, 301)
  assert.match(stderr, /^Replayed 300 rows in [\d.]+ s: 300 scored/)
}))

test('replay - defaults for unknown data: no rule thresholds without --sensor-type or --rules; the cadence and what ran are printed', withDir(async dir => {
  const input = join(dir, 'h.csv')
  const output = join(dir, 'o.csv')
  writeFileSync(input, series(2000))
  const s = await runReplay(parseReplayArgs(['--input', input, '--output', output]))
  const rows = parse(readFileSync(output), { columns: true }) as Array<Record<string, string>>
  assert.equal(rows.length, 2000)
  // Doubled readings of 44 °C would break the built-in temperature maximum: no rule runs here.
  assert.deepEqual(new Set(rows.map(r => r.rule_anomaly)), new Set(['false']))
  assert.ok(!rows.some(r => r.severity === 'critical'))
  assert.equal(s.rules, 'off (no --sensor-type or --rules: the data\'s units are unknown)')
  assert.equal(s.cadenceMs, 1000)
  assert.equal(s.device, null)
  const text = formatReplaySummary(s)
  assert.match(text, /\nCadence: 1 s \(median interval between rows\)\.\n/)
  assert.match(text, /\nRan: rule thresholds off \(no --sensor-type or --rules: the data's units are unknown\); per sensor: z-score, [^\n]*Isolation Forest \(1 sensor, \d+ models\)\.\n/)
  // Naming a type selects its built-in thresholds; a type without any says so.
  const typed = await runReplay(parseReplayArgs(['--input', input, '--output', output, '--sensor-type', 'temperature']))
  assert.equal(typed.rules, 'built-in for temperature')
  const power = await runReplay(parseReplayArgs(['--input', input, '--output', output, '--sensor-type', 'power', '--no-ml']))
  assert.equal(power.rules, 'none for power (no thresholds built in)')
  assert.deepEqual(power.detectors.includes('Isolation Forest'), false)
}))

/** One device of three measurements at 1 Hz (b = 2a, c = a/2, with noise); b flips sign in rows 1050-1069 (label 1). */
function deviceCsv (rows: number): string {
  const rnd = createRandom(3)
  const lines = ['time,a,b,c,label']
  for (let i = 0; i < rows; i++) {
    const a = Math.sin(2 * Math.PI * i / 200) + 0.1 * rnd.normal()
    const b = 2 * a + 0.1 * rnd.normal()
    const c = 0.5 * a + 0.05 * rnd.normal()
    const broken = i >= 1050 && i < 1070
    lines.push(`${new Date(T0 + i * 1000).toISOString()},${a},${broken ? -b : b},${c},${broken ? 1 : 0}`)
  }
  return lines.join('\n') + '\n'
}

test('replay - several value columns are one device: per-column verdicts, the device-level verdict and its contributors', withDir(async dir => {
  const input = join(dir, 'device.csv')
  const output = join(dir, 'o.csv')
  writeFileSync(input, deviceCsv(1200) + `${new Date(T0 + 1_200_000).toISOString()},1,x,0.5,0\nnot a time,1,2,3,0\n`)
  const s = await runReplay(parseReplayArgs(['--input', input, '--output', output, '--timestamp-column', 'time', '--value-column', 'a,b,c',
    '--device', 'lab', '--label-column', 'label']))
  const rows = parse(readFileSync(output), { columns: false }) as string[][]
  assert.deepEqual(rows[0], ['timestamp', 'a', 'b', 'c', 'anomaly_score', 'anomaly', 'severity', 'device_score', 'device_anomaly',
    'device_model_version', 'contributors', 'a_score', 'a_anomaly', 'b_score', 'b_anomaly', 'c_score', 'c_anomaly', 'explanation', 'error'])
  assert.equal(rows.length, 1 + 1202)
  const body = rows.slice(1).map(r => Object.fromEntries((rows[0] as string[]).map((h, i) => [h, r[i] as string])))
  const inputRows = readFileSync(input, 'utf8').trim().split('\n').slice(1).map(l => l.split(','))
  body.slice(0, 1200).forEach((r, i) => {
    assert.deepEqual([Number(r.a), Number(r.b), Number(r.c)], inputRows[i]!.slice(1, 4).map(Number))
    assert.equal(r.timestamp, new Date(T0 + i * 1000).toISOString())
    assert.equal(Number(r.anomaly_score) >= 0.5, r.anomaly === 'true', `row ${i}`)
  })
  // The device-level detector: no model before row 416 (asked for at row 400, scoring 16 rows later), then its alarm exactly over the broken
  // rows (from the 5th to 4 rows after the last: the median of 9 row scores), b named.
  assert.deepEqual([body[415]!.device_score, body[415]!.device_anomaly, body[416]!.device_model_version], ['', '', 'lab#1'])
  assert.deepEqual(body.flatMap((r, i) => r.device_anomaly === 'true' ? [i] : []), Array.from({ length: 20 }, (_, k) => 1054 + k))
  const first = body[1054]!
  assert.deepEqual([first.device_score, first.device_model_version, first.contributors, first.severity, first.anomaly], ['0.955353', 'lab#7', 'b 83%, a 17%', 'major', 'true'])
  assert.match(first.explanation!, /device 0\.96 \(lab#7\): b -0\.79σ \(others imply \+0\.81σ\) 83%, a \+0\.81σ \(others imply -0\.5σ\) 17%$/)
  // An unreadable value: the other columns are scored, the device row is not.
  const bad = body[1200]!
  assert.deepEqual([bad.b, bad.b_score, bad.b_anomaly, bad.device_score, bad.error], ['x', '', '', '', 'bad value "x" in b'])
  assert.notEqual(bad.a_score, '')
  const badTime = body[1201]!
  assert.deepEqual([badTime.timestamp, badTime.a, badTime.anomaly_score, badTime.error], ['not a time', '1', '', 'bad timestamp "not a time"'])
  assert.equal(s.rows, 1202)
  assert.equal(s.scored, 1201)
  assert.equal(s.errors, 2)
  assert.deepEqual(s.firstErrors, ['row 1201: bad value "x" in b', 'row 1202: bad timestamp "not a time"'])
  assert.equal(s.sensors, 3)
  assert.deepEqual(s.device, { measurements: ['a', 'b', 'c'], scored: 784, anomalies: 20, models: 8 })
  assert.deepEqual([s.rowQuality?.device?.tp, s.rowQuality?.device?.fp, s.rowQuality?.device?.fn], [16, 4, 4])
  assert.equal(s.cadenceMs, 1000)
  assert.match(formatReplaySummary(s), /; device-level Isolation Forest over a, b, c \(8 models, 784 rows scored, 20 anomalous\)\.\n/)
  assert.match(formatReplaySummary(s), /\nRows against the label column:\n {2}device-level: precision 80\.0 %, recall 80\.0 %, F1 80\.0 % \(16 true, 4 false alarms, 4 missed\)\n/)
  // --no-device: the same columns, per sensor only.
  const alone = await runReplay(parseReplayArgs(['--input', input, '--output', output, '--timestamp-column', 'time', '--value-column', 'a,b,c', '--no-device']))
  assert.equal(alone.device, null)
  const plain = parse(readFileSync(output), { columns: true }) as Array<Record<string, string>>
  assert.ok(plain.every(r => r.device_score === '' && r.contributors === ''))
}))

test('replay - several columns: options are checked', () => {
  assert.throws(() => parseReplayArgs(['--input', 'x', '--value-column', 'a,b', '--sensor-type', 'co2,humidity,power']),
    { code: 'IOT_ERR_CONFIG', message: 'replay: --sensor-type names 3 types for 2 value columns (give one for all, or one per column)' })
  assert.throws(() => parseReplayArgs(['--input', 'x', '--value-column', 'a,a']), { code: 'IOT_ERR_CONFIG', message: 'replay: --value-column "a,a" names a column twice' })
  assert.throws(() => parseReplayArgs(['--input', 'x', '--value-column', 'a,,b']), { code: 'IOT_ERR_CONFIG' })
  assert.throws(() => parseReplayArgs(['--input', 'x', '--value-column', 'timestamp,a']), { code: 'IOT_ERR_CONFIG' })
  const o = parseReplayArgs(['--input', 'x', '--value-column', 'a,b,c', '--sensor-type', 'temperature,humidity,co2'])
  assert.deepEqual([o.valueColumns, o.sensorTypes, o.rulesSource, o.rules, o.deviceLevel], [['a', 'b', 'c'], ['temperature', 'humidity', 'co2'], 'built-in', undefined, true])
  const d = parseReplayArgs(['--input', 'x'])
  assert.deepEqual([d.valueColumns, d.sensorTypes, d.rulesSource, d.rules], [['value'], null, 'off', { defaults: {} }])
  assert.deepEqual(parseReplayArgs(['--input', 'x', '--value-column', 'a,b', '--sensor-type', 'power']).sensorTypes, ['power', 'power'])
  assert.equal(parseReplayArgs(['--input', 'x', '--value-column', 'a,b', '--no-ml']).deviceLevel, false)
})
