// Our worker and the Flink SQL job (deploy/flink, local MiniCluster) on the same pre-filled topic,
// one after the other in one run, each into a database of its own, beside the two physical limits
// DESIGN.md names (a bare COPY of the same rows, Kafka's producer perf tool with the same JSON).
// For each: readings/s from the moment the process is consuming (our "is running" banner, the
// job's "running" line: start-up is printed apart) to its last result, and the CPU core-seconds
// per 100,000 readings of each part over that interval. Our worker does what it does in
// production (validate, de-duplicate, detect, store every reading and its verdicts, windows); the
// Flink job computes the windows only. Needs KAFKA_BROKERS, DATABASE_URL and Java 17.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { loadConfig } from '../src/config/index.ts'
import { ensureTopics } from '../src/bus/index.ts'
import { toWire } from '../src/domain/index.ts'
import { flinkJobOptions, takeFlinkFlags } from '../src/flink/index.ts'
import { Simulator } from '../src/sources/index.ts'
import { migrate, openPostgres } from '../src/storage/index.ts'
import { createServerDatabase } from '../test/helpers/databases.ts'
import { flinkClasspath, produceRecords, startFlink } from '../test/helpers/flink.ts'
import { uniqueTopic } from '../test/helpers/kafka.ts'
import { printCpuPer100k, serverParts, withCpu, type Groups } from './cpu.ts'
import { bareCopyRun } from './embedded.ts'

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url))
const kafkaTool = fileURLToPath(new URL('../deploy/kafka/tool.sh', import.meta.url))
const SENSORS = 100
const PARTITIONS = 6
const START = Date.UTC(2026, 0, 1)
const WINDOW_MS = 60_000
const OUT_OF_ORDERNESS_MS = 10_000

interface Row {
  label: string
  readings: number
  seconds: number
  /** Process start to consuming (null: not a process of its own). */
  startup: number | null
  cpu: Map<string, number>
  machine: number
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function waitFor (what: string, probe: () => Promise<boolean> | boolean, ms: number, output: () => string): Promise<void> {
  const deadline = Date.now() + ms
  while (!await probe()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s:\n${output().slice(-3000)}`)
    await sleep(50)
  }
}

function kept (child: ChildProcess): () => string {
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  return () => out
}

/** Our worker (its own process, as in production) from the start of the topic into a fresh database. */
async function ourWorker (brokers: string, serverUrl: string, topic: string, readings: number): Promise<Row> {
  const db = await createServerDatabase(serverUrl)
  const sql = postgres(db.url, { max: 1, onnotice: () => {} })
  const spawned = performance.now()
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'worker', '--kafka-brokers', brokers, '--topic', topic, '--group', uniqueTopic('bench'),
    '--database-url', db.url, '--no-events', '--log-level', 'warn', '--status', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '' } })
  const output = kept(child)
  try {
    await waitFor('the worker starts', () => output().includes('is running'), 120_000, output)
    const startup = (performance.now() - spawned) / 1000
    const count = async (): Promise<number> => (await sql<Array<{ n: number }>>`SELECT coalesce(sum(readings), 0)::int AS n FROM detection_counts`)[0]!.n
    const groups: Groups = p => p.pid === child.pid ? 'worker (node)' : serverParts(p)
    const { value: seconds, cpu, machine } = await withCpu(groups, async () => {
      const t0 = performance.now()
      await waitFor('every reading stored', async () => await count() >= readings, 600_000, output)
      return (performance.now() - t0) / 1000
    })
    return { label: 'our worker (detect + store readings + windows)', readings, seconds, startup, cpu, machine }
  } finally {
    child.kill('SIGKILL')
    await sql.end()
    await db.drop()
  }
}

/** The Flink job (its own JVM) from the start of the topic; done when every window the watermark closes is written. */
async function flinkJob (brokers: string, serverUrl: string, topic: string, readings: number, closedReadings: number): Promise<Row> {
  const db = await createServerDatabase(serverUrl)
  const sql = postgres(db.url, { max: 1, onnotice: () => {} })
  const checkpoints = mkdtempSync(join(tmpdir(), 'iot-bench-flink-'))
  const { flags, rest } = takeFlinkFlags(['--checkpoint-dir', checkpoints, '--flink-group', uniqueTopic('bench_flink')])
  const options = flinkJobOptions(loadConfig(['flink', '--kafka-brokers', brokers, '--topic', topic, '--database-url', db.url, ...rest]).config, flags)
  const d = await openPostgres(db.url)
  await migrate(d)
  await d.close()
  const spawned = performance.now()
  const job = startFlink('flink', options)
  try {
    await waitFor('the job runs', () => /iot-flink: job \w+ running/.test(job.output()), 180_000, job.output)
    const startup = (performance.now() - spawned) / 1000
    const counted = async (): Promise<number> => (await sql<Array<{ n: number }>>`SELECT coalesce(sum(count_readings), 0)::int AS n FROM flink_sensor_aggregates`)[0]!.n
    const groups: Groups = p => p.pid === job.child.pid ? 'Flink job (JVM)' : serverParts(p)
    const { value: seconds, cpu, machine } = await withCpu(groups, async () => {
      const t0 = performance.now()
      await waitFor('every closed window written', async () => await counted() >= closedReadings, 600_000, job.output)
      return (performance.now() - t0) / 1000
    })
    return { label: 'Flink SQL job (windows only; MiniCluster)', readings, seconds, startup, cpu, machine }
  } finally {
    job.child.kill('SIGKILL')
    rmSync(checkpoints, { recursive: true, force: true })
    await sql.end()
    await db.drop()
  }
}

/** Kafka's ProducerPerformance sending the readings' own JSON with our producer's settings. */
async function producerPerf (brokers: string, readings: number, payload: string[]): Promise<Row> {
  const topic = uniqueTopic('bench_perf')
  await ensureTopics(brokers.split(','), [{ name: topic, partitions: PARTITIONS }])
  const dir = mkdtempSync(join(tmpdir(), 'iot-bench-'))
  try {
    const payloads = join(dir, 'readings.jsonl')
    writeFileSync(payloads, payload.slice(0, 20_000).join('\n'))
    const child = spawn('bash', [kafkaTool, 'ProducerPerformance', '--topic', topic, '--num-records', String(readings), '--payload-file', payloads,
      '--throughput', '-1', '--producer-props', `bootstrap.servers=${brokers}`, 'acks=all', 'enable.idempotence=true', 'compression.type=lz4',
      'linger.ms=5', 'batch.size=1048576'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const output = kept(child)
    const { value: code, cpu, machine } = await withCpu(p => p.pid === child.pid ? 'producer perf tool (JVM, start-up included)' : serverParts(p), async () => {
      const [c] = await once(child, 'exit') as [number | null]
      return c
    })
    const m = /(\d+) records sent, ([\d.]+) records\/sec/.exec(output().trim().split('\n').filter(l => l.includes('records sent')).pop() ?? '')
    if (code !== 0 || m === null) throw new Error(`ProducerPerformance failed (exit ${code}):\n${output().slice(-2000)}`)
    return { label: 'limit: Kafka producer perf tool, same JSON', readings: Number(m[1]), seconds: Number(m[1]) / Number(m[2]), startup: null, cpu, machine }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function print (rows: Row[]): void {
  const w = Math.max(...rows.map(r => r.label.length))
  process.stdout.write(`\n${'benchmark'.padEnd(w)}  readings   seconds   readings/s   start-up s   machine busy\n`)
  for (const r of rows) {
    process.stdout.write(`${r.label.padEnd(w)}  ${String(r.readings).padStart(8)}  ${r.seconds.toFixed(2).padStart(8)}  ` +
      `${Math.round(r.readings / r.seconds).toLocaleString('en-US').padStart(11)}  ${(r.startup === null ? '-' : r.startup.toFixed(1)).padStart(11)}  ` +
      `${(100 * r.machine / r.seconds / 2).toFixed(0).padStart(12)}%\n`)
  }
  printCpuPer100k('CPU per 100,000 readings (core-seconds, over the measured interval):', rows)
}

export async function runFlinkBench ({ readings }: { readings: number }): Promise<void> {
  const brokers = process.env.KAFKA_BROKERS
  const url = process.env.DATABASE_URL
  if (brokers === undefined || brokers === '' || url === undefined || url === '') {
    process.stderr.write('The Flink benchmark needs KAFKA_BROKERS and DATABASE_URL: eval "$(bash scripts/services.sh up)"\n')
    process.exit(2)
  }
  process.stdout.write(`Flink benchmark: ${readings.toLocaleString('en-US')} readings from ${SENSORS} simulated sensors on a pre-filled topic of ${PARTITIONS} partitions; ` +
    'our worker, then the Flink job, each from the start of the topic.\n')
  flinkClasspath()
  const sim = new Simulator({ sensors: SENSORS, startTs: START, seed: 42 })
  const payload: string[] = []
  let maxTs = START
  const keys: string[] = []
  const times: number[] = []
  for (let i = 0; i < readings; i++) {
    const r = sim.next()
    payload.push(toWire(r))
    keys.push(r.sensorId)
    times.push(r.ts)
    if (r.ts > maxTs) maxTs = r.ts
  }
  // The job writes a window once the watermark (newest event time - 10 s) passes its end.
  const watermark = maxTs - OUT_OF_ORDERNESS_MS
  const closedReadings = times.filter(ts => Math.floor(ts / WINDOW_MS) * WINDOW_MS + WINDOW_MS - 1 <= watermark).length
  const topic = uniqueTopic('bench_flink')
  const t0 = performance.now()
  let clock = START
  await produceRecords(brokers.split(','), topic, PARTITIONS, (function * () {
    for (let i = 0; i < readings; i++) {
      clock = times[i]!
      yield { key: keys[i]!, value: payload[i]! }
    }
  })(), () => clock)
  process.stdout.write(`Topic ${topic} filled in ${((performance.now() - t0) / 1000).toFixed(1)} s.\n`)
  const rows: Row[] = []
  rows.push({ ...await bareCopyRun(url, readings), startup: null })
  rows.push(await producerPerf(brokers, readings, payload))
  rows.push(await ourWorker(brokers, url, topic, readings))
  rows.push(await flinkJob(brokers, url, topic, readings, closedReadings))
  print(rows)
  process.stdout.write(`\nThe Flink row counts the ${readings.toLocaleString('en-US')} readings consumed; its end is when the windows holding ` +
    `${closedReadings.toLocaleString('en-US')} of them (those the watermark closes) are written.\n`)
}
