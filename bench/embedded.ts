// End-to-end throughput of the embedded pipeline (simulator → memory bus → validate → detect →
// window → one transaction per batch), next to the physical limit of the same database: a bare
// bulk load of the same rows with no pipeline at all.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import postgres from 'postgres'
import { defaultConfig, type Config } from '../src/config/index.ts'
import { startEmbedded } from '../src/app/index.ts'
import { Simulator } from '../src/sources/index.ts'
import { type ScoredReading } from '../src/domain/index.ts'
import { ensureDayPartitions, insertReadings, migrate, openPglite, openPostgres, readingColumns, resolveKeys, BinaryCopy, copyReadingRows } from '../src/storage/index.ts'
import { createServerDatabase } from '../test/helpers/databases.ts'
import { isPostgres, withCpu } from './cpu.ts'

const START = Date.UTC(2026, 0, 1)
const SENSORS = 100

export interface Result { label: string, readings: number, seconds: number, peakRssMb: number }

/** Runs one pipeline measurement in a child process, so its peak RSS is its own. */
export async function pipeline (label: string, readings: number, databaseUrl: string | null, opts: { ml?: boolean } = {}): Promise<Result> {
  const args = ['--import', 'tsx', fileURLToPath(new URL('./index.ts', import.meta.url)), 'embedded-run', '--readings', String(readings),
    ...(opts.ml === false ? ['--no-ml'] : [])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, DATABASE_URL: databaseUrl ?? '' } })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`${label}: the measurement exited with ${code}`)
  const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { readings: number, seconds: number, startupSeconds: number, peakRssMb: number }
  process.stdout.write(`  ${label}: start-up (open + migrate) ${r.startupSeconds.toFixed(2)} s, excluded below\n`)
  return { label, readings: r.readings, seconds: r.seconds, peakRssMb: r.peakRssMb }
}

/** One measurement (in its own process): the embedded system on PGlite in a temp folder, or on DATABASE_URL. */
export async function measureEmbedded (readings: number, ml = true, devices: Config['detection']['devices'] = 'devices'): Promise<void> {
  const url = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === '' ? null : process.env.DATABASE_URL
  const dir = mkdtempSync(join(tmpdir(), 'iot-bench-'))
  const server = url === null ? null : await createServerDatabase(url)
  try {
    const config: Config = structuredClone(defaultConfig)
    config.databaseUrl = server?.url ?? null
    config.dataDir = dir
    config.statusIntervalMs = 0
    config.detection.ml = ml
    config.detection.devices = devices
    config.simulator = { ...config.simulator, sensors: SENSORS, rate: 1, speedup: Infinity, durationMs: Math.round(readings / SENSORS) * 1000, startMs: START }
    const t0 = performance.now()
    const sys = await startEmbedded(config, pino({ level: 'warn' }))
    // Sustained rate: from the first reading produced until everything is stored.
    const t1 = performance.now()
    await sys.sourceDone
    await sys.stop()
    const t2 = performance.now()
    process.stdout.write(JSON.stringify({
      readings: sys.source?.produced ?? 0,
      seconds: (t2 - t1) / 1000,
      startupSeconds: (t1 - t0) / 1000,
      peakRssMb: process.resourceUsage().maxRSS / 1024
    }) + '\n')
  } finally {
    await server?.drop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The rows the pipeline stores: simulated readings with a verdict (a normal one, with a model's score). */
function scoredRows (readings: number): ScoredReading[] {
  const sim = new Simulator({ sensors: SENSORS, ratePerSensor: 1, seed: 42, startTs: START })
  const verdict = { ruleAnomaly: false, zScore: 0.5, zAnomaly: false, mlScore: 0.42, mlAnomaly: false, modelVersion: 'temperature#3', stuck: false, drift: false, anomalyScore: 0.04, anomaly: false, severity: null, explanation: null }
  return Array.from({ length: readings }, () => ({ reading: sim.next(), verdict }))
}

/** Bare COPY into PGlite of the same rows (all columns, 5000 per transaction), no pipeline. */
async function barePglite (readings: number): Promise<Result> {
  const rows = scoredRows(readings)
  const dir = mkdtempSync(join(tmpdir(), 'iot-bench-'))
  const db = await openPglite(dir)
  try {
    await migrate(db)
    await ensureDayPartitions(db, rows.map(r => r.reading.ts))
    const t0 = performance.now()
    for (let i = 0; i < rows.length; i += 5000) {
      await db.transaction(async tx => { await insertReadings(tx, rows.slice(i, i + 5000)) })
    }
    return { label: 'bare COPY into PGlite (no pipeline)', readings, seconds: (performance.now() - t0) / 1000, peakRssMb: NaN }
  } finally {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Bare COPY into PostgreSQL of the same rows in one stream: the physical limit DESIGN.md compares against. */
export async function barePostgresCopy (url: string, readings: number): Promise<Result> {
  const rows = scoredRows(readings)
  const db = await openPostgres(url)
  await migrate(db)
  await ensureDayPartitions(db, rows.map(r => r.reading.ts))
  // The sensors the rows refer to, and the names of their verdicts, as the pipeline records them first.
  const keys = await db.transaction(async tx => await resolveKeys(tx, rows))
  await db.close()
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  const t0 = performance.now()
  // One binary COPY (the pipeline's format), written 10,000 rows at a time: Node encodes the next
  // part while PostgreSQL loads the last.
  const stream = await sql.unsafe(`COPY readings (${readingColumns.join(', ')}) FROM STDIN (FORMAT binary)`).writable()
  const copy = new BinaryCopy(10_000 * 64).begin()
  for (let i = 0; i < rows.length; i += 10_000) {
    copyReadingRows(copy, rows.slice(i, i + 10_000), keys)
    if (!stream.write(copy.take())) await new Promise(resolve => stream.once('drain', resolve))
  }
  await new Promise<void>((resolve, reject) => {
    stream.on('error', reject)
    stream.end(copy.end(), (err?: Error | null) => { if (err == null) resolve(); else reject(err) })
  })
  const seconds = (performance.now() - t0) / 1000
  await sql.end()
  return { label: 'bare COPY into PostgreSQL (no pipeline)', readings, seconds, peakRssMb: NaN }
}

function print (results: Result[]): void {
  const w = Math.max(...results.map(r => r.label.length))
  process.stdout.write(`\n${'benchmark'.padEnd(w)}  readings   seconds   readings/s   peak RSS\n`)
  for (const r of results) {
    const rate = r.readings / r.seconds
    process.stdout.write(`${r.label.padEnd(w)}  ${String(r.readings).padStart(8)}  ${r.seconds.toFixed(2).padStart(8)}  ${Math.round(rate).toLocaleString('en-US').padStart(11)}  ${Number.isNaN(r.peakRssMb) ? '       -' : `${r.peakRssMb.toFixed(0).padStart(5)} MB`}\n`)
  }
}

export async function runEmbedded ({ readings }: { readings: number }): Promise<void> {
  process.stdout.write(`Embedded pipeline benchmark: ${readings.toLocaleString('en-US')} readings from ${SENSORS} simulated sensors, as fast as possible.\n`)
  const results: Result[] = []
  results.push(await pipeline('pipeline on PGlite (data folder on disk)', readings, null))
  results.push(await barePglite(readings))
  const url = process.env.DATABASE_URL
  if (url !== undefined && url !== '') {
    results.push(await pipeline('pipeline on PostgreSQL', readings, url))
    const b = await createServerDatabase(url)
    try {
      results.push(await barePostgresCopy(b.url, readings))
    } finally { await b.drop() }
  } else {
    process.stdout.write('DATABASE_URL is not set: PostgreSQL rows skipped (npm run services:up starts a server).\n')
  }
  print(results)
  const [p, bare] = results
  if (p !== undefined && bare !== undefined) {
    process.stdout.write(`\nPGlite: pipeline reaches ${(100 * (p.readings / p.seconds) / (bare.readings / bare.seconds)).toFixed(0)}% of a bare COPY of the same rows. Target: >= 50,000 readings/s embedded (DESIGN.md section 7).\n`)
  }
  if (results.length === 4) {
    const pg = results[2]!; const copy = results[3]!
    process.stdout.write(`PostgreSQL: pipeline reaches ${(100 * (pg.readings / pg.seconds) / (copy.readings / copy.seconds)).toFixed(0)}% of bare COPY.\n`)
  }
}

/**
 * The limit the Kafka and Flink benches print: a bare binary COPY of the same rows into a fresh
 * PostgreSQL database, with the CPU of PostgreSQL and of this process over it.
 */
export async function bareCopyRun (url: string, readings: number): Promise<{ label: string, readings: number, seconds: number, cpu: Map<string, number>, machine: number }> {
  const b = await createServerDatabase(url)
  try {
    const { value: r, cpu, machine } = await withCpu(p => isPostgres(p) ? 'PostgreSQL' : p.pid === process.pid ? 'this process (binary COPY rows)' : null,
      async () => await barePostgresCopy(b.url, readings))
    return { label: 'limit: bare COPY into PostgreSQL, same rows', readings: r.readings, seconds: r.seconds, cpu, machine }
  } finally { await b.drop() }
}
