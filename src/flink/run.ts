// `iot-monitor flink`: migrate, build, run the job's JVM until it ends or a stop is asked.
import { type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { type Logger } from 'pino'
import { ensureTopics } from '../bus/index.ts'
import { migrate, openPostgres } from '../storage/index.ts'
import { buildFlinkJob, flinkCommand, formatCommand, spawnFlinkJob } from './launch.ts'
import { type FlinkJobOptions, scriptVariables } from './options.ts'

export interface FlinkRunIo {
  log: Logger
  write: (text: string) => void
  /** Resolves with the signal's name when a stop is asked (the first SIGINT or SIGTERM). */
  stopRequested: Promise<string>
  /** Resolves when a second signal asks to stop at once. */
  forced: Promise<string>
  printCommand?: boolean
}

/** Exit code of the JVM (128 + signal number when a signal ended it). */
async function exitOf (child: ChildProcess): Promise<number> {
  if (child.exitCode !== null) return child.exitCode
  const [code, signal] = await once(child, 'exit') as [number | null, NodeJS.Signals | null]
  if (code !== null) return code
  return signal === 'SIGKILL' ? 137 : signal === 'SIGINT' ? 130 : 143
}

export async function runFlink (o: FlinkJobOptions, io: FlinkRunIo): Promise<number> {
  const classpath = buildFlinkJob(io.log)
  const cmd = flinkCommand(o, classpath)
  if (io.printCommand === true) {
    io.write(`${formatCommand(cmd)}\n`)
    io.write(`# job settings: ${JSON.stringify(scriptVariables(o))}\n`)
    return 0
  }
  // The topic as the worker creates it (Flink's source fails on a topic that does not exist), and
  // the sink table from the migrations, as the worker's tables.
  await ensureTopics(o.brokers, [{ name: o.topic, partitions: o.partitions }], 'iot-monitor-flink-admin')
  const db = await openPostgres(o.databaseUrl)
  try {
    await migrate(db)
  } finally {
    await db.close()
  }
  io.write(`iot-monitor flink: Kafka ${o.brokers.join(',')} topic ${o.topic} group ${o.group} -> PostgreSQL table ${o.sinkTable}; ` +
    `checkpoints in ${o.checkpointDir}${o.restore ? ' (the newest is restored)' : ''}; press Ctrl-C to stop.\n`)
  const child = spawnFlinkJob(cmd, false)
  io.log.info({ pid: child.pid }, 'flink job started')
  const exited = exitOf(child)
  const why = await Promise.race([exited.then(() => null), io.stopRequested])
  if (why !== null) {
    io.write(`Stopping (${why}): the job keeps its last checkpoint for the next start.\n`)
    child.kill('SIGTERM')
    const forced = await Promise.race([exited.then(() => false), io.forced.then(() => true)])
    if (forced) child.kill('SIGKILL')
  }
  const code = await exited
  io.log.info({ code }, 'flink job ended')
  return why !== null && (code === 143 || code === 130) ? 0 : code
}
