// The Flink job for the tests and the Flink benchmark: built once per process (deploy/flink/build.sh,
// jars cached outside the repository), its JVM started directly (the command `iot-monitor flink`
// runs, without the Node parent) so that a test can SIGKILL the MiniCluster itself; and a producer
// of wire JSON to a topic. In CI (CI=true) a missing Java fails the suite instead of skipping it.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { KafkaBus } from '../../src/bus/index.ts'
import { buildFlinkJob, flinkCommand, type FlinkJobOptions, spawnFlinkJob } from '../../src/flink/index.ts'
import { type CliProcess } from './cli-process.ts'

const javaFound = spawnSync('java', ['-version'], { encoding: 'utf8' }).status === 0 &&
  spawnSync('javac', ['-version'], { encoding: 'utf8' }).status === 0

if (process.env.CI === 'true' && !javaFound) {
  throw new Error('CI=true but java/javac (17+) is not on PATH: the Flink suite may not be skipped in CI.')
}

/** Why the Flink suite is skipped outside CI, or false when Java is there. */
export const javaSkip: string | false = javaFound ? false : 'java/javac 17+ not found (the Flink job runs in a JVM)'

let classpath: string | null = null
/** The job's class path, built on first use (jars from Maven Central the first time ever). */
export function flinkClasspath (): string {
  classpath ??= buildFlinkJob()
  return classpath
}

/** Starts the job's JVM with its output kept (as a CliProcess, for `until` and `waitExit`). */
export function startFlink (name: string, options: FlinkJobOptions): CliProcess {
  const child = spawnFlinkJob(flinkCommand(options, flinkClasspath()), true)
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  return { child, name, output: () => out, stored: [], lastStored: () => 0 }
}

/** Completed checkpoints (chk-N folders with _metadata) under a checkpoint folder. */
export function completedCheckpoints (dir: string): number {
  if (!existsSync(dir)) return 0
  let n = 0
  for (const job of readdirSync(dir)) {
    const p = join(dir, job)
    try {
      for (const c of readdirSync(p)) if (c.startsWith('chk-') && existsSync(join(p, c, '_metadata'))) n++
    } catch { /* not a folder */ }
  }
  return n
}

/**
 * Produces wire JSON records (key = sensor id) to `topic` with our producer, creating the topic
 * with `partitions`; the ingest clock header is `clock` (the event time's own clock for a
 * simulated past), so far-off checks pass on both sides.
 */
export async function produceRecords (brokers: string[], topic: string, partitions: number, records: Iterable<{ key: string, value: string }>,
  clock: () => number): Promise<number> {
  const bus = await KafkaBus.connect({ brokers, topic, partitions, log: pino({ level: 'silent' }), ingestClock: clock })
  const producer = bus.producer()
  let n = 0
  try {
    for (const r of records) {
      while (!producer.tryProduce(r.key, r.value)) await producer.writable()
      n++
    }
    await producer.flush()
  } finally {
    await bus.close()
  }
  return n
}
