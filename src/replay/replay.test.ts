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
  const s = await runReplay(parseReplayArgs(['--input', input, '--output', output, '--label-column', 'label', '--unit', '°C']))
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
  // The first model comes once the z baseline (30 readings) and 50 samples exist: row 80; then every 5 minutes.
  assert.equal(rows[80]![10], '')
  assert.equal(rows[81]![10], 'replay#1')
  assert.equal(rows[20_000]![10], `replay#${1 + Math.floor((20_000 - 81) / 300)}`)
  assert.equal(s.models, 1 + Math.floor((20_000 - 81) / 300))
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
  assert.ok(precision > 0.9, `combined precision on spikes ${precision}`)
  assert.match(formatReplaySummary(s), /^Replayed 20000 rows in [\d.]+ s: 20000 scored, \d+ anomalies, \d+ models trained, 0 unreadable rows\.\nAgainst the label column over 20000 labelled readings/)
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
