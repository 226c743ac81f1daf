// Replay benchmark: `iot-monitor replay`'s own code path (parseReplayArgs + runReplay with the CLI's
// defaults, the forest on) over a seeded synthetic series at 1 s, 1 min and 5 min cadence, each in a
// child process of its own (this file run as a script) so its peak RSS is its own. Targets (issue
// 16): >= 50,000 rows/s at every cadence and a peak RSS under 300 MB whatever the length (run at N
// and 4N rows to see it stay flat). Rows/s is wall time of the replay alone (module loading and the
// series' generation excluded); rows per CPU second is the child's own CPU over the same span, the
// figure to read when the machine is busy with other work.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { createRandom, formatTimestamp } from '../src/domain/index.ts'
import { parseReplayArgs, runReplay } from '../src/replay/index.ts'

const START = Date.UTC(2026, 0, 1)
/** A run using more than this is stopped (and reported as cut off): the machine is shared. */
const RSS_LIMIT_MB = 3000
export const CADENCES: ReadonlyArray<{ label: string, ms: number }> = [
  { label: '1 s', ms: 1000 }, { label: '1 min', ms: 60_000 }, { label: '5 min', ms: 300_000 }
]

/**
 * A temperature-like series of `rows` readings `cadenceMs` apart, seeded: a daily cycle (21 ± 4 °C,
 * peak mid-afternoon), AR(1) noise (σ ≈ 0.4 °C), and a spike of 6-15 °C on about 1 row in 10,000.
 * Written as `timestamp,value` (ISO 8601 UTC) to `path`.
 */
export function writeSeries (path: string, rows: number, cadenceMs: number, seed = 42): void {
  const random = createRandom(seed)
  const fd = openSync(path, 'w')
  try {
    let buf = 'timestamp,value\n'
    let noise = 0
    for (let i = 0; i < rows; i++) {
      const ts = START + i * cadenceMs
      const hour = (ts % 86_400_000) / 3_600_000
      noise = 0.8 * noise + 0.25 * random.normal()
      let value = 21 + 4 * Math.sin(2 * Math.PI * (hour - 9) / 24) + noise
      if (random.next() < 1e-4) value += (random.next() < 0.5 ? -1 : 1) * (6 + 9 * random.next())
      buf += `${formatTimestamp(ts)},${value.toFixed(3)}\n`
      if (buf.length > 1 << 20) {
        writeSync(fd, buf)
        buf = ''
      }
    }
    writeSync(fd, buf)
  } finally {
    closeSync(fd)
  }
}

export interface ReplayRun {
  /** Rows replayed (all of them, or as far as it got when cut off). */
  rows: number
  seconds: number
  /** CPU time of the child process (all its threads) over the replay. */
  cpuSeconds: number
  models: number | null
  peakRssMb: number
  /** RSS of the child before the replay started (Node, tsx, the modules). */
  startRssMb: number
  /** Why the run was stopped before the end (time or memory limit), or null. */
  cutOff: string | null
}

/** One measurement, in the child process: the replay CLI's defaults on `input`, output discarded. */
export async function measureReplay (input: string, limits: { seconds: number, rssMb?: number }): Promise<void> {
  const rssLimitMb = limits.rssMb ?? RSS_LIMIT_MB
  let lines = 0
  // Counts the written rows (header included), so a run cut off still says how far it got.
  const sink = new Writable({
    write (chunk: Buffer | string, _enc, cb) {
      const s = typeof chunk === 'string' ? chunk : chunk.toString('latin1')
      for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) lines++
      cb()
    }
  })
  const startRssMb = process.memoryUsage.rss() / 2 ** 20
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const cpuSeconds = (): number => {
    const c = process.cpuUsage(cpu0)
    return (c.user + c.system) / 1e6
  }
  const report = (r: ReplayRun): void => { process.stdout.write(JSON.stringify(r) + '\n') }
  const peak = (): number => process.resourceUsage().maxRSS / 1024
  const guard = setInterval(() => {
    const seconds = (performance.now() - t0) / 1000
    const rssMb = process.memoryUsage.rss() / 2 ** 20
    const why = seconds > limits.seconds ? `time limit ${limits.seconds} s` : rssMb > rssLimitMb ? `memory limit ${rssLimitMb} MB` : null
    if (why === null) return
    report({ rows: Math.max(0, lines - 1), seconds, cpuSeconds: cpuSeconds(), models: null, peakRssMb: peak(), startRssMb, cutOff: why })
    process.exit(0)
  }, 200)
  const options = parseReplayArgs(['--input', input])
  const s = await runReplay(options, sink)
  clearInterval(guard)
  report({ rows: s.rows, seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds(), models: s.models, peakRssMb: peak(), startRssMb, cutOff: null })
}

async function child (input: string, limits: { seconds: number }): Promise<ReplayRun> {
  // The V8 flag bin/iot-monitor.js runs `replay` with (its REPLAY_NODE_FLAGS).
  const args = ['--max-semi-space-size=16', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', input, '--seconds', String(limits.seconds)]
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const [code] = await once(proc, 'exit') as [number | null]
  const last = out.trim().split('\n').pop() ?? ''
  if (code !== 0 || last === '') throw new Error(`replay bench: the measurement of ${input} exited with ${code}`)
  return JSON.parse(last) as ReplayRun
}

export async function runReplayBench (o: { readings: number[], seconds: number }): Promise<void> {
  process.stdout.write('Replay benchmark: iot-monitor replay\'s defaults (forest on, one model per sensor), synthetic series ' +
    `(daily cycle + noise + spikes, seed 42), one child process per run. Limits per run: ${o.seconds} s, ${RSS_LIMIT_MB} MB.\n`)
  const dir = mkdtempSync(join(tmpdir(), 'iot-replay-bench-'))
  const results: Array<{ cadence: string, run: ReplayRun }> = []
  try {
    for (const rows of o.readings) {
      for (const c of CADENCES) {
        const file = join(dir, `series-${rows}-${c.ms}.csv`)
        writeSeries(file, rows, c.ms)
        const run = await child(file, o)
        rmSync(file)
        results.push({ cadence: c.label, run })
        process.stdout.write(`  ${c.label}, ${rows.toLocaleString('en-US')} rows: done\n`)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US')
  process.stdout.write('\ncadence       rows   seconds      rows/s   rows/CPU-s   models   peak RSS   (at start)\n')
  for (const { cadence, run: r } of results) {
    process.stdout.write(`${cadence.padEnd(7)} ${fmt(r.rows).padStart(9)}  ${r.seconds.toFixed(2).padStart(8)}  ${fmt(r.rows / r.seconds).padStart(10)}  ` +
      `${fmt(r.rows / r.cpuSeconds).padStart(11)}  ${(r.models === null ? '?' : fmt(r.models)).padStart(7)}  ${r.peakRssMb.toFixed(0).padStart(6)} MB` +
      `   ${r.startRssMb.toFixed(0).padStart(5)} MB${r.cutOff === null ? '' : `  (cut off: ${r.cutOff})`}\n`)
  }
  const ok = results.every(({ run: r }) => r.cutOff === null && r.rows / r.seconds >= 50_000 && r.peakRssMb < 300)
  process.stdout.write(`\nTargets: >= 50,000 rows/s and peak RSS < 300 MB at every cadence and length: ${ok ? 'met' : 'NOT met'}.\n`)
}

// As a script: one measurement (the child process of runReplayBench).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { child: { type: 'boolean' }, seconds: { type: 'string' } } })
  const input = positionals[0]
  if (values.child !== true || input === undefined) throw new Error('usage: node --import tsx bench/replay.ts --child FILE [--seconds S]')
  await measureReplay(input, { seconds: Number(values.seconds ?? 300) })
}
