// End-to-end throughput through Apache Kafka into PostgreSQL: `ingest` (simulator → Kafka) and
// 1 or 2 `worker` processes (Kafka → detect, window → PostgreSQL) running at once, each its own
// process as in production, next to the embedded pipeline on the same PostgreSQL and to the two
// physical limits DESIGN.md names (a bare COPY of the same rows, Kafka's own producer perf tool
// with the same messages), in one run. For each, the CPU it took per 100,000 readings, by part:
// at 100,000 readings/s on 2 cores the parts together have 2 core-seconds per 100,000.
// Needs KAFKA_BROKERS and DATABASE_URL (`eval "$(npm run -s services:up)"`).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { ensureTopics } from '../src/bus/index.ts'
import { toWire } from '../src/domain/index.ts'
import { Simulator } from '../src/sources/index.ts'
import { createServerDatabase } from '../test/helpers/databases.ts'
import { machineCpu, printCpuPer100k, serverParts, withCpu, type Groups } from './cpu.ts'
import { bareCopyRun, pipeline } from './embedded.ts'

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
const kafkaTool = fileURLToPath(new URL('../deploy/kafka/tool.sh', import.meta.url))
const SENSORS = 100
const PARTITIONS = 6

interface Row {
  label: string
  readings: number
  seconds: number
  /** Core-seconds per part over the measured interval. */
  cpu: Map<string, number>
  /** Core-seconds the whole machine was busy over the interval (other load included). */
  machine: number
}

function spawnCli (args: string[]): { child: ChildProcess, output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args, '--log-level', 'warn', '--status', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '' } })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  return { child, output: () => out }
}

/** Ingest and `workers` worker processes on a fresh topic and database; the sustained rate from the first stored reading to the last. */
async function throughKafka (brokers: string, serverUrl: string, workers: number, readings: number): Promise<Row> {
  const db = await createServerDatabase(serverUrl)
  const sql = postgres(db.url, { max: 1, onnotice: () => {} })
  const topic = `bench_${randomBytes(4).toString('hex')}`
  const common = ['--kafka-brokers', brokers, '--topic', topic, '--partitions', String(PARTITIONS), '--no-events']
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
    const role = new Map<number, string>(procs.map(p => [p.child.pid!, p === ingest ? 'ingest (node)' : 'worker (node)']))
    const groups: Groups = p => role.get(p.pid) ?? serverParts(p)
    // Stored readings from detection_counts (one small row per verdict cell, written in each batch's
    // transaction, equal to the readings stored): counting sensor_readings itself every 50 ms would
    // cost PostgreSQL more CPU than the pipeline's own writes as the table grows.
    const count = async (): Promise<number> => (await sql<Array<{ n: number }>>`SELECT coalesce(sum(readings), 0)::int AS n FROM detection_counts`)[0]!.n
    while (await count() === 0) await new Promise(resolve => setTimeout(resolve, 20))
    const { value: { stored, seconds }, cpu, machine } = await withCpu(groups, async () => {
      const first = performance.now()
      const deadline = Date.now() + 600_000
      let n = 0
      while ((n = await count()) < readings) {
        if (Date.now() > deadline) throw new Error(`stalled at ${n} of ${readings}:\n${procs.map(p => p.output().slice(-2000)).join('\n')}`)
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      return { stored: n, seconds: (performance.now() - first) / 1000 }
    })
    return { label: `Kafka + PostgreSQL, ${workers} worker${workers > 1 ? 's' : ''} (+ ingest)`, readings: stored, seconds, cpu, machine }
  } finally {
    for (const p of procs) p.child.kill('SIGKILL')
    await sql.end()
    await db.drop()
  }
}

/** Kafka's ProducerPerformance sending the readings' own JSON (random lines of a payload file) with our producer's settings. */
async function producerPerf (brokers: string, readings: number): Promise<Row> {
  const topic = `bench_perf_${randomBytes(4).toString('hex')}`
  await ensureTopics(brokers.split(','), [{ name: topic, partitions: PARTITIONS }])
  const dir = mkdtempSync(join(tmpdir(), 'iot-bench-'))
  try {
    const sim = new Simulator({ sensors: SENSORS, ratePerSensor: 1, seed: 42, startTs: Date.UTC(2026, 0, 1) })
    const payloads = join(dir, 'readings.jsonl')
    writeFileSync(payloads, Array.from({ length: 20_000 }, () => toWire(sim.next())).join('\n'))
    const child = spawn('bash', [kafkaTool, 'ProducerPerformance', '--topic', topic, '--num-records', String(readings), '--payload-file', payloads,
      '--throughput', '-1', '--producer-props', `bootstrap.servers=${brokers}`, 'acks=all', 'enable.idempotence=true', 'compression.type=lz4',
      'linger.ms=5', 'batch.size=1048576'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const { value: code, cpu, machine } = await withCpu(p => p.pid === child.pid ? 'producer perf tool (JVM, start-up included)' : serverParts(p), async () => {
      const [c] = await once(child, 'exit') as [number | null]
      return c
    })
    // Its own rate (from the first record sent to the last acknowledged): the last summary line.
    const m = /(\d+) records sent, ([\d.]+) records\/sec/.exec(out.trim().split('\n').filter(l => l.includes('records sent')).pop() ?? '')
    if (code !== 0 || m === null) throw new Error(`ProducerPerformance failed (exit ${code}):\n${out.slice(-2000)}`)
    const rate = Number(m[2])
    return { label: 'limit: Kafka producer perf tool, same JSON', readings: Number(m[1]), seconds: Number(m[1]) / rate, cpu, machine }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function print (rows: Row[], base: Row): void {
  const w = Math.max(...rows.map(r => r.label.length))
  const baseRate = base.readings / base.seconds
  process.stdout.write(`\n${'benchmark'.padEnd(w)}  readings   seconds   readings/s   vs bare COPY   machine busy\n`)
  for (const r of rows) {
    const rate = r.readings / r.seconds
    process.stdout.write(`${r.label.padEnd(w)}  ${String(r.readings).padStart(8)}  ${r.seconds.toFixed(2).padStart(8)}  ${Math.round(rate).toLocaleString('en-US').padStart(11)}  ` +
      `${(rate / baseRate).toFixed(2).padStart(12)}x  ${(100 * r.machine / r.seconds / 2).toFixed(0).padStart(11)}%\n`)
  }
  printCpuPer100k('CPU per 100,000 readings (core-seconds; at 100,000 readings/s on 2 cores all parts together have 2.0):', rows)
}

export async function runKafka ({ readings }: { readings: number }): Promise<void> {
  const brokers = process.env.KAFKA_BROKERS
  const url = process.env.DATABASE_URL
  if (brokers === undefined || brokers === '' || url === undefined || url === '') {
    process.stderr.write('The Kafka benchmark needs KAFKA_BROKERS and DATABASE_URL: eval "$(bash scripts/services.sh up)"\n')
    process.exit(2)
  }
  process.stdout.write(`Kafka benchmark: ${readings.toLocaleString('en-US')} readings from ${SENSORS} simulated sensors, topic of ${PARTITIONS} partitions, ` +
    'each role in its own process, as fast as possible.\n')
  const rows: Row[] = []
  const copy = await bareCopyRun(url, readings)
  rows.push(copy)
  rows.push(await producerPerf(brokers, readings))
  const m0 = machineCpu()
  const embedded = await pipeline('embedded pipeline on PostgreSQL (memory bus)', readings, url)
  const m1 = machineCpu()
  // Its CPU split is not measured (one child process): the machine's average busy cores over the
  // child's whole life (start-up included), applied to the measured interval.
  rows.push({ ...embedded, cpu: new Map(), machine: (m1.busy - m0.busy) / ((m1.total - m0.total) / 2) * embedded.seconds })
  rows.push(await throughKafka(brokers, url, 1, readings))
  rows.push(await throughKafka(brokers, url, 2, readings))
  print(rows, copy)
  process.stdout.write('\nTarget: >= 100,000 readings/s end to end through Kafka into PostgreSQL (DESIGN.md section 7).\n')
}
