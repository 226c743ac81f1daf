// End-to-end throughput of the embedded pipeline (simulator → memory bus → validate → detect →
// window → one transaction per batch), next to the physical limit of the same database: a bare
// bulk load of the same rows with no pipeline at all.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import postgres from 'postgres'
import { defaultConfig, type Config } from '../src/config/index.ts'
import { startEmbedded } from '../src/pipeline/index.ts'
import { Simulator } from '../src/sources/simulator/index.ts'
import { type Db, migrate, numberArray, openPglite, openPostgres, textArray } from '../src/storage/index.ts'
import { createServerDatabase } from '../test/helpers/databases.ts'

const START = Date.UTC(2026, 0, 1)
const SENSORS = 100

interface Result { label: string, readings: number, seconds: number, peakRssMb: number }

function rssSampler (): () => number {
  let peak = process.memoryUsage.rss()
  const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()) }, 50)
  return () => { clearInterval(t); return Math.max(peak, process.memoryUsage.rss()) / 2 ** 20 }
}

async function pipeline (label: string, readings: number, target: { databaseUrl: string | null, dataDir: string }): Promise<Result> {
  const durationMs = Math.round(readings / SENSORS) * 1000 // 1 reading/s per sensor
  const config: Config = structuredClone(defaultConfig)
  config.databaseUrl = target.databaseUrl
  config.dataDir = target.dataDir
  config.statusIntervalMs = 0
  config.simulator = { ...config.simulator, sensors: SENSORS, rate: 1, speedup: Infinity, durationMs, startMs: START }
  config.validation = { ...config.validation, maxPastMs: null, maxFutureMs: null }
  const peak = rssSampler()
  const t0 = performance.now()
  const sys = await startEmbedded(config, pino({ level: 'warn' }))
  await sys.sourceDone
  await sys.stop()
  const seconds = (performance.now() - t0) / 1000
  return { label, readings: sys.source?.produced ?? 0, seconds, peakRssMb: peak() }
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

async function ensurePartitions (db: Db | postgres.Sql, days: number): Promise<void> {
  for (let d = 0; d < days; d++) {
    const from = new Date(START + d * 86_400_000).toISOString()
    const to = new Date(START + (d + 1) * 86_400_000).toISOString()
    const q = `CREATE TABLE IF NOT EXISTS bench_p${d} PARTITION OF sensor_readings FOR VALUES FROM ('${from}') TO ('${to}')`
    if ('exec' in db) await db.exec(q); else await db.unsafe(q)
  }
}

/** Bare bulk insert into PGlite: 5000-row unnest statements, no pipeline. */
async function barePglite (readings: number): Promise<Result> {
  const { cols, n } = rows(readings)
  const db = await openPglite('memory://')
  await migrate(db)
  await ensurePartitions(db, Math.ceil(readings / SENSORS / 86_400) + 1)
  const t0 = performance.now()
  for (let i = 0; i < n; i += 5000) {
    const s = (c: number): string[] => cols[c]!.slice(i, i + 5000)
    await db.query(`INSERT INTO sensor_readings (sensor_id, sensor_type, location, value, timestamp, unit, anomaly, rule_anomaly, z_anomaly)
      SELECT a, b, c, d, to_timestamp(e / 1000.0), f, g, false, false FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::bool[]) AS x(a, b, c, d, e, f, g)`,
    [textArray(s(0)), textArray(s(1)), textArray(s(2)), numberArray(s(3).map(Number)),
      numberArray(s(7).map(Number)), textArray(s(5)), `{${s(6).join(',')}}`])
  }
  const seconds = (performance.now() - t0) / 1000
  await db.close()
  return { label: 'bare INSERT … unnest into PGlite (no pipeline)', readings: n, seconds, peakRssMb: NaN }
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
  const dir = mkdtempSync(join(tmpdir(), 'iot-bench-'))
  try {
    results.push(await pipeline('pipeline on PGlite (data folder on disk)', readings, { databaseUrl: null, dataDir: dir }))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  results.push(await barePglite(readings))
  const url = process.env.DATABASE_URL
  if (url !== undefined && url !== '') {
    const a = await createServerDatabase(url)
    try {
      results.push(await pipeline('pipeline on PostgreSQL', readings, { databaseUrl: a.url, dataDir: '' }))
    } finally { await a.drop() }
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
    process.stdout.write(`\nPGlite: pipeline reaches ${(100 * (p.readings / p.seconds) / (bare.readings / bare.seconds)).toFixed(0)}% of the bare insert rate. Target: >= 50,000 readings/s embedded (DESIGN.md section 7).\n`)
  }
  if (results.length === 4) {
    const pg = results[2]!; const copy = results[3]!
    process.stdout.write(`PostgreSQL: pipeline reaches ${(100 * (pg.readings / pg.seconds) / (copy.readings / copy.seconds)).toFixed(0)}% of bare COPY.\n`)
  }
}
