// End-to-end throughput through Apache Kafka into PostgreSQL: `ingest` (simulator → Kafka) and
// 1 or 2 `worker` processes (Kafka → detect, window → PostgreSQL) running at once, each its own
// process as in production, next to the embedded pipeline on the same PostgreSQL, in one run.
// Needs KAFKA_BROKERS and DATABASE_URL (`eval "$(npm run -s services:up)"`).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { createServerDatabase } from '../test/helpers/databases.ts'
import { pipeline, type Result } from './embedded.ts'

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
const SENSORS = 100

function spawnCli (args: string[]): { child: ChildProcess, output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args, '--log-level', 'warn', '--status', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '' } })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  return { child, output: () => out }
}

/** Ingest and `workers` worker processes on a fresh topic and database; the sustained rate from the first stored reading to the last. */
async function throughKafka (brokers: string, serverUrl: string, workers: number, readings: number): Promise<Result> {
  const db = await createServerDatabase(serverUrl)
  const sql = postgres(db.url, { max: 1, onnotice: () => {} })
  const topic = `bench_${randomBytes(4).toString('hex')}`
  const common = ['--kafka-brokers', brokers, '--topic', topic, '--partitions', '6', '--no-events']
  const procs: ReturnType<typeof spawnCli>[] = []
  try {
    const migrated = spawnCli(['migrate', '--database-url', db.url])
    await once(migrated.child, 'exit')
    for (let i = 0; i < workers; i++) procs.push(spawnCli(['worker', ...common, '--database-url', db.url, '--group', topic]))
    // Workers joined (they print their banner once consuming), then the source starts.
    while (!procs.every(p => p.output().includes('is running'))) await new Promise(resolve => setTimeout(resolve, 100))
    const ingest = spawnCli(['ingest', ...common, '--sensors', String(SENSORS), '--speedup', 'max', '--start', '2026-01-01T00:00:00Z',
      '--duration', `${Math.round(readings / SENSORS)}s`])
    procs.push(ingest)
    const count = async (): Promise<number> => (await sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM sensor_readings`)[0]!.n
    let first = 0
    while (await count() === 0) await new Promise(resolve => setTimeout(resolve, 20))
    first = performance.now()
    const deadline = Date.now() + 600_000
    let stored = 0
    while ((stored = await count()) < readings) {
      if (Date.now() > deadline) throw new Error(`stalled at ${stored} of ${readings}:\n${procs.map(p => p.output().slice(-2000)).join('\n')}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    const seconds = (performance.now() - first) / 1000
    return { label: `Kafka + PostgreSQL, ${workers} worker${workers > 1 ? 's' : ''} (+ ingest)`, readings: stored, seconds, peakRssMb: Number.NaN }
  } finally {
    for (const p of procs) p.child.kill('SIGKILL')
    await sql.end()
    await db.drop()
  }
}

export async function runKafka ({ readings }: { readings: number }): Promise<void> {
  const brokers = process.env.KAFKA_BROKERS
  const url = process.env.DATABASE_URL
  if (brokers === undefined || brokers === '' || url === undefined || url === '') {
    process.stderr.write('The Kafka benchmark needs KAFKA_BROKERS and DATABASE_URL: eval "$(bash scripts/services.sh up)"\n')
    process.exit(2)
  }
  process.stdout.write(`Kafka benchmark: ${readings.toLocaleString('en-US')} readings from ${SENSORS} simulated sensors, topic of 6 partitions, ` +
    'each role in its own process, as fast as possible.\n')
  const rows: Result[] = []
  const embedded = await pipeline('embedded pipeline on PostgreSQL (memory bus)', readings, url)
  rows.push(embedded)
  rows.push(await throughKafka(brokers, url, 1, readings))
  rows.push(await throughKafka(brokers, url, 2, readings))
  const w = Math.max(...rows.map(r => r.label.length))
  process.stdout.write(`\n${'benchmark'.padEnd(w)}  readings   seconds   readings/s   vs embedded\n`)
  const base = embedded.readings / embedded.seconds
  for (const r of rows) {
    const rate = r.readings / r.seconds
    process.stdout.write(`${r.label.padEnd(w)}  ${String(r.readings).padStart(8)}  ${r.seconds.toFixed(2).padStart(8)}  ${Math.round(rate).toLocaleString('en-US').padStart(11)}  ${(rate / base).toFixed(2).padStart(10)}x\n`)
  }
  process.stdout.write('\nTarget: >= 100,000 readings/s end to end through Kafka into PostgreSQL (DESIGN.md section 7).\n')
}
