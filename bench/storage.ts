// Bytes per stored reading: the default fleet (25 sensors at 1 Hz) for 24 simulated hours through
// the embedded pipeline (detection with the Isolation Forest on, no retention), then every table
// of PostgreSQL with its indexes and TOAST (pg_total_relation_size), and the whole PGlite data
// folder on disk, divided by the readings stored; beside the ingest rate of the same run.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { startEmbedded } from '../src/app/index.ts'
import { defaultConfig, type Config } from '../src/config/index.ts'
import { openPostgres } from '../src/storage/index.ts'
import { createServerDatabase } from '../test/helpers/databases.ts'

const START = Date.UTC(2026, 0, 5)

interface Run { readings: number, stored: number, seconds: number }
interface TableSize { table: string, bytes: number, rows: number }

/** One pipeline run in this process (the child of `runStorage`), on `url` or the PGlite folder `dir`. */
export async function measureStorageRun (opts: { sensors: number, hours: number, url: string | null, dir: string }): Promise<void> {
  const config: Config = structuredClone(defaultConfig)
  config.databaseUrl = opts.url
  config.dataDir = opts.dir
  config.statusIntervalMs = 0
  config.retentionMs = null
  config.simulator = { ...config.simulator, sensors: opts.sensors, rate: 1, speedup: Infinity, durationMs: opts.hours * 3_600_000, startMs: START }
  const sys = await startEmbedded(config, pino({ level: 'warn' }))
  const t0 = performance.now()
  await sys.sourceDone
  await sys.stop()
  const seconds = (performance.now() - t0) / 1000
  const stored = (await sys.metrics.stored.get()).values[0]?.value ?? 0
  process.stdout.write(JSON.stringify({ readings: sys.source?.produced ?? 0, stored, seconds }) + '\n')
}

async function child (args: string[]): Promise<Run> {
  const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./index.ts', import.meta.url)), 'storage-run', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const [code] = await once(proc, 'exit') as [number | null]
  if (code !== 0) throw new Error(`the storage run exited with ${code}`)
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Run
}

function folderBytes (dir: string): number {
  let sum = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    sum += e.isDirectory() ? folderBytes(p) : statSync(p).size
  }
  return sum
}

/** Every table with its indexes and TOAST; partitions of sensor_readings summed under their parent. */
async function tableSizes (url: string): Promise<TableSize[]> {
  const db = await openPostgres(url, 1)
  try {
    await db.query('VACUUM ANALYZE')
    return await db.query<TableSize>(`
      SELECT coalesce(parent.relname, c.relname) AS "table", sum(pg_total_relation_size(c.oid))::float8 AS bytes,
             sum(greatest(c.reltuples, 0))::float8 AS rows
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class parent ON parent.oid = i.inhparent
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')
      GROUP BY 1 ORDER BY 2 DESC`)
  } finally {
    await db.close()
  }
}

const kb = (n: number): string => `${(n / 1024).toLocaleString('en-US', { maximumFractionDigits: 0 })} KB`

export async function runStorage ({ sensors, hours }: { sensors: number, hours: number }): Promise<void> {
  process.stdout.write(`Storage benchmark: ${sensors} simulated sensors at 1 Hz for ${hours} h of event time ` +
    `(${(sensors * hours * 3600).toLocaleString('en-US')} readings), as fast as the pipeline takes them, no retention.\n`)
  const args = ['--sensors', String(sensors), '--hours', String(hours)]
  const rows: { label: string, run: Run, bytes: number }[] = []

  const dir = mkdtempSync(join(tmpdir(), 'iot-storage-bench-'))
  try {
    const run = await child([...args, '--dir', dir])
    rows.push({ label: 'PGlite (whole data folder)', run, bytes: folderBytes(dir) })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }

  const server = process.env.DATABASE_URL
  let tables: TableSize[] = []
  if (server !== undefined && server !== '') {
    const db = await createServerDatabase(server)
    try {
      const run = await child([...args, '--url', db.url])
      tables = await tableSizes(db.url)
      rows.push({ label: 'PostgreSQL (all tables and indexes)', run, bytes: tables.reduce((s, t) => s + t.bytes, 0) })
    } finally {
      await db.drop()
    }
  } else {
    process.stdout.write('DATABASE_URL is not set: the PostgreSQL row is skipped (npm run services:up starts a server).\n')
  }

  process.stdout.write(`\n${'database'.padEnd(36)} ${'stored'.padStart(10)} ${'bytes'.padStart(14)} ${'bytes/reading'.padStart(14)} ${'ingest readings/s'.padStart(18)}\n`)
  for (const r of rows) {
    process.stdout.write(`${r.label.padEnd(36)} ${r.run.stored.toLocaleString('en-US').padStart(10)} ${r.bytes.toLocaleString('en-US').padStart(14)} ` +
      `${(r.bytes / r.run.stored).toFixed(1).padStart(14)} ${Math.round(r.run.stored / r.run.seconds).toLocaleString('en-US').padStart(18)}\n`)
  }
  const pg = rows.find(r => r.label.startsWith('PostgreSQL'))
  if (pg !== undefined) {
    process.stdout.write('\nPostgreSQL by table (with indexes and TOAST):\n')
    for (const t of tables) {
      process.stdout.write(`  ${t.table.padEnd(28)} ${kb(t.bytes).padStart(12)} ${(t.bytes / pg.run.stored).toFixed(1).padStart(8)} bytes/reading  ${Math.round(t.rows).toLocaleString('en-US').padStart(12)} rows\n`)
    }
    process.stdout.write('\nTarget (DESIGN.md section 7): <= 100 bytes per reading on PostgreSQL, the PGlite folder <= 2x that.\n')
  }
}
