// What `iot-monitor flink` runs: its own flags (taken out before loadConfig reads the rest) and
// the job's settings derived from the configuration the worker uses (Kafka, topic, PostgreSQL,
// window size, out-of-orderness, idle timeout, far-off limits), so both compute the same windows.
import { join, resolve } from 'node:path'
import { type Config, parseDuration, takeOwnFlags } from '../config/index.ts'
import { IotError } from '../domain/index.ts'

/** The flags only `iot-monitor flink` has. */
export interface FlinkFlags {
  /** Kafka consumer group of the job (default: the worker's group + "-flink"). */
  group?: string
  /** Folder of retained checkpoints (default: <data dir>/flink-checkpoints/<topic>). */
  checkpointDir?: string
  /** Checkpoint interval in ms (default 10 s). */
  checkpointIntervalMs?: number
  /** Start fresh (the group's committed offsets) instead of restoring the newest checkpoint. */
  noRestore: boolean
  /** Operator parallelism (default 1). */
  parallelism?: number
  /** JVM heap, e.g. 768m (default). */
  heap?: string
  /** Print the java command and the settings, start nothing. */
  printCommand: boolean
}

export interface FlinkJobOptions {
  brokers: string[]
  topic: string
  /** Partitions of the topic when the job creates it (as the worker would). */
  partitions: number
  group: string
  /** postgres://… of the database holding flink_sensor_aggregates. */
  databaseUrl: string
  sinkTable: string
  windowMs: number
  outOfOrdernessMs: number
  idleTimeoutMs: number
  /** Far-off limits of the wire validation; null: off. */
  maxPastMs: number | null
  maxFutureMs: number | null
  checkpointDir: string
  checkpointIntervalMs: number
  restore: boolean
  parallelism: number
  heap: string
}

export const FLINK_SINK_TABLE = 'flink_sensor_aggregates'

export const flinkUsage = `Usage: iot-monitor flink [options]

Builds the Flink SQL job (deploy/flink: jars from Maven Central, cached outside the repository)
and runs it in a local Flink MiniCluster: topic --topic of --kafka-brokers, event-time windows of
--window with the watermark --out-of-orderness behind (partitions idle after --idle-timeout), the
far-off limits --max-past/--max-future, upserted into table flink_sensor_aggregates of
--database-url (PostgreSQL; migrated first). Readings behind the watermark are dropped by Flink
(the worker keeps them: docs/ARCHITECTURE.md, "Flink alternative"). Needs Java 17+ and, for the
first build, Maven.

Options of this command:
  --flink-group G           Kafka consumer group of the job (default: --group + "-flink")
  --checkpoint-dir DIR      retained checkpoints (default: <--data-dir>/flink-checkpoints/<topic>);
                            a restart restores the newest one (window state and Kafka offsets)
  --checkpoint-interval D   checkpoint every D (default 10s)
  --no-restore              ignore checkpoints: start from the group's committed offsets
  --parallelism N           operator parallelism (default 1)
  --flink-heap SIZE         JVM heap (default 768m)
  --print-command           print the java command (and the job's settings) and exit

Shared with the other commands: --kafka-brokers, --topic, --group, --database-url, --data-dir,
--window, --out-of-orderness, --idle-timeout, --max-past, --max-future, --log-level.
`

function usageError (message: string): IotError {
  return new IotError('IOT_ERR_CONFIG', `flink: ${message}`)
}

/** Takes this command's own flags out of argv; the rest goes to loadConfig. */
export function takeFlinkFlags (argv: readonly string[]): { flags: FlinkFlags, rest: string[] } {
  const own = takeOwnFlags(argv, ['flink-group', 'checkpoint-dir', 'checkpoint-interval', 'parallelism', 'flink-heap'], ['no-restore', 'print-command'], usageError)
  const flags: FlinkFlags = { noRestore: own.switches.has('no-restore'), printCommand: own.switches.has('print-command') }
  for (const [flag, value] of own.values) {
    switch (flag) {
      case 'flink-group':
        if (!/^[A-Za-z0-9._-]{1,200}$/.test(value)) throw usageError(`--flink-group: 1-200 of [A-Za-z0-9._-], got "${value}"`)
        flags.group = value
        break
      case 'checkpoint-dir':
        if (value.trim() === '') throw usageError('--checkpoint-dir is empty')
        flags.checkpointDir = value
        break
      case 'checkpoint-interval': {
        const ms = parseDuration(value, '--checkpoint-interval')
        if (ms < 100) throw usageError(`--checkpoint-interval: at least 100ms, got "${value}"`)
        flags.checkpointIntervalMs = ms
        break
      }
      case 'parallelism': {
        const n = Number(value)
        if (!Number.isInteger(n) || n < 1 || n > 1024) throw usageError(`--parallelism: an integer from 1 to 1024, got "${value}"`)
        flags.parallelism = n
        break
      }
      default:
        if (!/^\d+[kKmMgG]?$/.test(value)) throw usageError(`--flink-heap: a size such as 768m or 2g, got "${value}"`)
        flags.heap = value
    }
  }
  return { flags, rest: own.rest }
}

/** The job's settings from the configuration and this command's flags. */
export function flinkJobOptions (config: Config, flags: FlinkFlags): FlinkJobOptions {
  if (config.kafka.brokers === null) throw usageError('needs Kafka: --kafka-brokers or KAFKA_BROKERS')
  if (config.databaseUrl === null) {
    throw usageError('needs PostgreSQL: --database-url or DATABASE_URL (the embedded database cannot be reached from the JVM)')
  }
  const w = config.windowing
  return {
    brokers: config.kafka.brokers,
    topic: config.topic,
    partitions: config.partitions,
    group: flags.group ?? `${config.group}-flink`,
    databaseUrl: config.databaseUrl,
    sinkTable: FLINK_SINK_TABLE,
    windowMs: w.sizeMs,
    outOfOrdernessMs: w.maxOutOfOrdernessMs,
    idleTimeoutMs: w.idleTimeoutMs,
    maxPastMs: config.validation.maxPastMs,
    maxFutureMs: config.validation.maxFutureMs,
    checkpointDir: resolve(flags.checkpointDir ?? join(config.dataDir, 'flink-checkpoints', config.topic)),
    checkpointIntervalMs: flags.checkpointIntervalMs ?? 10_000,
    restore: !flags.noRestore,
    parallelism: flags.parallelism ?? 1,
    heap: flags.heap ?? '768m'
  }
}

/**
 * A postgres:// URL as the JDBC driver's URL (user and password as parameters; other parameters
 * such as sslmode are passed on).
 */
export function jdbcUrl (databaseUrl: string): string {
  let u: URL
  try {
    u = new URL(databaseUrl)
  } catch {
    throw usageError('--database-url is not a URL')
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw usageError(`--database-url: expected postgres://…, got ${u.protocol}`)
  const params = new URLSearchParams()
  const user = decodeURIComponent(u.username)
  params.set('user', user === '' ? 'postgres' : user)
  if (u.password !== '') params.set('password', decodeURIComponent(u.password))
  for (const [k, v] of u.searchParams) if (k !== 'user' && k !== 'password') params.set(k, v)
  const host = u.hostname === '' ? 'localhost' : u.hostname
  return `jdbc:postgresql://${host}:${u.port === '' ? '5432' : u.port}${u.pathname === '' ? '/' : u.pathname}?${params.toString()}`
}

/** A duration as the body of the script's INTERVAL '…' DAY TO SECOND(3) literals: '0 00:00:10.000'. */
export function intervalLiteral (ms: number): string {
  const t = Math.round(ms)
  if (!(t >= 0 && t < 100 * 86_400_000)) throw usageError(`a duration of ${ms} ms does not fit the job's intervals (0 to 99 days)`)
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0')
  const d = Math.floor(t / 86_400_000)
  const h = Math.floor(t / 3_600_000) % 24
  const m = Math.floor(t / 60_000) % 60
  const s = Math.floor(t / 1000) % 60
  return `${d} ${pad(h)}:${pad(m)}:${pad(s)}.${pad(t % 1000, 3)}`
}

/**
 * The script's placeholders. JDBC_URL is not here: it may hold a password, so it travels in the
 * environment (IOT_FLINK_JDBC_URL), never on the command line.
 */
export function scriptVariables (o: FlinkJobOptions): Record<string, string> {
  return {
    KAFKA_BROKERS: o.brokers.join(','),
    TOPIC: o.topic,
    GROUP_ID: o.group,
    SINK_TABLE: o.sinkTable,
    WINDOW: intervalLiteral(o.windowMs),
    OUT_OF_ORDERNESS: intervalLiteral(o.outOfOrdernessMs),
    IDLE_TIMEOUT_MS: String(Math.round(o.idleTimeoutMs)),
    MAX_PAST_MS: String(o.maxPastMs ?? -1),
    MAX_FUTURE_MS: String(o.maxFutureMs ?? -1),
    CHECKPOINT_DIR: `file://${o.checkpointDir}`,
    CHECKPOINT_INTERVAL_MS: String(Math.round(o.checkpointIntervalMs)),
    PARALLELISM: String(o.parallelism)
  }
}
