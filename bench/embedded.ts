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
import { startEmbedded } from '../src/pipeline/index.ts'
import { Simulator } from '../src/sources/simulator/index.ts'
import { ensureDayPartitions, insertReadings, migrate, openPglite, openPostgres } from '../src/storage/index.ts'
import { createServerDatabase } from '../test/helpers/databases.ts'

const START = Date.UTC(2026, 0, 1)
const SENSORS = 100

interface Result { label: string, readings: number, seconds: number, peakRssMb: number }

/** Runs one pipeline measurement in a child process, so its peak RSS is its own. */
async function pipeline (label: string, readings: number, databaseUrl: string | null): Promise<Result> {
  const args = ['--import', 'tsx', fileURLToPath(new URL('./index.ts', import.meta.url)), 'embedded-run', '--readings', String(readings)]
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
export async function measureEmbedded (readings: number): Promise<void> {
  const url = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === '' ? null : process.env.DATABASE_URL
  const dir = mkdtempSync(join(tmpdir(), 'iot-bench-'))
  const server = url === null ? null : await createServerDatabase(url)
  try {
    const config: Config = structuredClone(defaultConfig)
    config.databaseUrl = server?.url ?? null
    config.dataDir = dir
    config.statusIntervalMs = 0
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

/** The same rows the pipeline stores, as column arrays. */
function rows (readings: number): { cols: string[][], n: number } {
  const sim = new Simulator({ sensors: SENSORS, ratePerSensor: 1, seed: 42, startTs: START })
  const cols: string[][] = Array.from({ length: 8 }, () => [])
  for (let i = 0; i < readings; i++) {
    const r = sim.next()
    cols[0]!.push(r.sensorId); cols[1]!.push(r.sensorType); cols[2]!.push(r.location); cols[3]!.push(String(r.value))
    cols[4]!.push(new Date(r.ts).toISOString()); cols[5]!.push(r.unit); cols[6]!.push(r.anomaly === true ? 't' : 'f')
    cols[7]!.push(String(r.ts))
  }
  return { cols, n: readings }
}

async function ensurePartitions (db: postgres.Sql, days: number): Promise<void> {
  for (let d = 0; d < days; d++) {
    const from = new Date(START + d * 86_400_000).toISOString()
    const to = new Date(START + (d + 1) * 86_400_000).toISOString()
    const q = `CREATE TABLE IF NOT EXISTS bench_p${d} PARTITION OF sensor_readings FOR VALUES FROM ('${from}') TO ('${to}')`
    await db.unsafe(q)
  }
}

/** Bare COPY into PGlite of the same rows (all columns, 5000 per transaction), no pipeline. */
async function barePglite (readings: number): Promise<Result> {
  const sim = new Simulator({ sensors: SENSORS, ratePerSensor: 1, seed: 42, startTs: START })
  const verdict = { ruleAnomaly: false, zScore: 0.5, zAnomaly: false, mlScore: null, mlAnomaly: null, modelVersion: null }
  const rows = Array.from({ length: readings }, () => ({ reading: sim.next(), verdict }))
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

/** Bare COPY into PostgreSQL, the physical limit DESIGN.md compares against. */
async function barePostgresCopy (url: string, readings: number): Promise<Result> {
  const { cols, n } = rows(readings)
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  await ensurePartitions(sql, Math.ceil(readings / SENSORS / 86_400) + 1)
  const t0 = performance.now()
  const stream = await sql`COPY sensor_readings (sensor_id, sensor_type, location, value, timestamp, unit, anomaly, rule_anomaly, z_anomaly) FROM STDIN`.writable()
  const chunk = 10_000
  for (let i = 0; i < n; i += chunk) {
    let text = ''
    for (let j = i; j < Math.min(n, i + chunk); j++) {
      text += `${cols[0]![j]}\t${cols[1]![j]}\t${cols[2]![j]}\t${cols[3]![j]}\t${cols[4]![j]}\t${cols[5]![j]}\t${cols[6]![j]}\tf\tf\n`
    }
    if (!stream.write(text)) await new Promise(resolve => stream.once('drain', resolve))
  }
  await new Promise<void>((resolve, reject) => { stream.on('error', reject); stream.end(resolve) })
  const seconds = (performance.now() - t0) / 1000
  await sql.end()
  return { label: 'bare COPY into PostgreSQL (no pipeline)', readings: n, seconds, peakRssMb: NaN }
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
      const db = await openPostgres(b.url)
      await migrate(db)
      await db.close()
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
