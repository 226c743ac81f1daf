// The command line: the only place that listens on ports or exits the process.
import { pino, type Logger } from 'pino'
import { formatDuration, loadConfig, usage, type Config } from './config/index.ts'
import { type ErrorCode, IotError } from './domain/index.ts'
import { devicesUsage, parseDevicesCommand, runDevicesCommand, takeDeviceFlags } from './devices/index.ts'
import { StopSignals, allRoles, startStatusLine, startSystem, type Role, type RunningSystem } from './app/index.ts'
import { PipelineMetrics } from './pipeline/index.ts'
import { detectionQuality, formatQuality } from './anomaly/index.ts'
import { formatReplaySummary, parseReplayArgs, replayUsage, runReplay } from './replay/index.ts'
import { loadDetectionCounts, migrate, openDb } from './storage/index.ts'
import { runSimulation, simulateOptions, simulateUsage, takeSimulateFlags } from './simulate/index.ts'
import { flinkJobOptions, flinkUsage, runFlink, takeFlinkFlags } from './flink/index.ts'

const roleSets: Record<string, ReadonlySet<Role>> = {
  start: allRoles,
  ingest: new Set(['ingest']),
  worker: new Set(['worker']),
  api: new Set(['api'])
}

/** Bytes a stored reading takes with everything beside it (npm run bench -- storage), for the growth a day. */
const BYTES_PER_READING = { pglite: 130, postgres: 90 }
const fmt = new Intl.NumberFormat('en-US')

/** What the database keeps, and about how fast it grows with the simulated fleet. */
function retentionNote (config: Config, kind: 'pglite' | 'postgres'): string {
  const sim = config.simulator
  const perDay = sim.enabled ? sim.sensors * sim.rate * 86_400 * BYTES_PER_READING[kind] : null
  const growth = perDay === null
    ? `about ${BYTES_PER_READING[kind]} bytes a reading`
    : `about ${fmt.format(Math.round(perDay / 1e6))} MB a day at ${fmt.format(sim.sensors * sim.rate)} readings/s`
  return config.retentionMs === null
    ? `all readings kept (${growth}; --retention D drops older ones)`
    : `raw readings kept ${formatDuration(config.retentionMs)} (${growth}; windows and hourly roll-ups stay; --retention off keeps all)`
}

async function run (command: string, config: Config, log: Logger): Promise<number> {
  const roles = roleSets[command] ?? allRoles
  const out = (text: string): void => { process.stdout.write(text) }
  const signals = new StopSignals()
  // A signal while starting (Kafka or PostgreSQL slow to answer): nothing is accepted yet, so stop at once.
  const started = startSystem(config, log, roles)
  const early = await Promise.race([started.then(() => null), signals.requested])
  if (early !== null) {
    out(`Stopping (${early}) while starting: nothing was accepted yet.\n`)
    return early === 'SIGINT' ? 130 : 143
  }
  const sys = await started
  const parts: string[] = []
  let address: string | null = null
  if (sys.app !== null) {
    address = await sys.app.listen({ host: config.host, port: config.port })
    parts.push(`iot-monitor ${command} is running: ${address} (dashboard: ${address}/, API: /api/..., /health, /metrics)`)
  } else {
    parts.push(`iot-monitor ${command} is running`)
  }
  if (sys.db !== null) {
    const where = sys.db.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL'
    parts.push(`database: ${where}${sys.worker === null ? '' : `, ${retentionNote(config, sys.db.kind)}`}`)
  }
  if (sys.mqtt !== null) parts.push(`MQTT: ${sys.mqtt}`)
  parts.push(config.kafka.brokers === null
    ? 'bus: embedded'
    : `Kafka: ${config.kafka.brokers.join(',')} topic ${config.topic}` +
    (sys.worker === null ? '' : ` group ${config.group}`))
  out(`${parts.join('; ')}; press Ctrl-C to stop.\n`)
  const finalStatus = startStatusLine(sys, { intervalMs: config.statusIntervalMs, address, write: out })

  const why = await Promise.race([signals.requested, sys.sourceDone.then(() => 'end of the simulated duration')])
  const limit = formatDuration(config.shutdownTimeoutMs)
  out(`Stopping (${why}): storing everything accepted (at most ${limit})…\n`)
  const stopped = sys.stop(async db => {
    // What the detectors achieved on this database, where readings carry ground truth.
    if (sys.worker !== null) out(formatQuality(detectionQuality(await loadDetectionCounts(db))) + '\n')
    await finalStatus()
  }).then(() => 'stopped')
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    stopped,
    new Promise<string>(resolve => { timer = setTimeout(() => { resolve('deadline') }, config.shutdownTimeoutMs) }),
    signals.forced.then(sig => `second ${sig}`)
  ])
  clearTimeout(timer)
  if (outcome !== 'stopped') {
    const left = sys.pending()
    out(`${outcome === 'deadline' ? `Not stopped within ${limit}` : `${outcome[0]!.toUpperCase()}${outcome.slice(1)}`}: exiting without waiting.\n` +
      (left.length === 0 ? 'Nothing accepted was left unstored.\n' : left.map(l => `  ${l}\n`).join('')))
    return 1
  }
  out(`${await stopSummary(sys)}\nStopped cleanly.\n`)
  return 0
}

/** What this process took in and where it went, for the last lines. */
async function stopSummary (sys: RunningSystem): Promise<string> {
  const m = sys.metrics
  const [received, stored, late, dead, dups] = await Promise.all([m.received, m.stored, m.late, m.deadLetters, m.duplicates].map(async c => await PipelineMetrics.total(c)))
  const kept = `${fmt.format(stored!)} stored, ${fmt.format(late!)} late, ${fmt.format(dead!)} dead letters, ${fmt.format(dups!)} duplicates`
  const produced = sys.source?.produced ?? null
  if (sys.worker !== null && produced !== null) return `${fmt.format(produced)} readings accepted: ${kept}.`
  if (sys.worker !== null) return `${fmt.format(received!)} records consumed: ${kept}.`
  if (produced !== null) return `${fmt.format(produced)} readings produced, all acknowledged by Kafka.`
  return 'Nothing was taken in here.'
}

async function replay (argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(replayUsage)
    return 0
  }
  const options = parseReplayArgs(argv)
  const summary = await runReplay(options)
  // With the scores on stdout, the summary goes to stderr.
  const text = formatReplaySummary(summary)
  if (options.output === '-') process.stderr.write(text)
  else process.stdout.write(`Wrote ${options.output}.\n${text}`)
  return 0
}

/**
 * `devices …` on the configured database (the embedded one unless --database-url or DATABASE_URL),
 * migrated first like `migrate` does. Its own flags are taken out before loadConfig reads the rest.
 */
async function devices (argv: string[]): Promise<number> {
  const { flags, rest } = takeDeviceFlags(argv)
  const { args, config, help } = loadConfig(['devices', ...rest])
  if (help) {
    process.stdout.write(devicesUsage)
    return 0
  }
  const command = parseDevicesCommand(args, flags)
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
  try {
    await migrate(db)
    process.stdout.write(await runDevicesCommand(db, command, Date.now()))
  } finally {
    await db.close()
  }
  return 0
}

/**
 * `simulate …`: the simulated fleet as MQTT devices of a running iot-monitor (or of the broker it
 * subscribes to). Its own flags are taken out before loadConfig reads the rest.
 */
async function simulate (argv: string[]): Promise<number> {
  const { flags, rest } = takeSimulateFlags(argv)
  const { config, help } = loadConfig(['simulate', ...rest])
  if (help) {
    process.stdout.write(simulateUsage)
    return 0
  }
  const log = pino({ level: config.logLevel, base: { app: 'iot-monitor', command: 'simulate' } }, pino.destination(2))
  const signals = new StopSignals()
  const result = await runSimulation(simulateOptions(config, flags), {
    log,
    write: (text) => { process.stdout.write(text) },
    stopRequested: signals.requested,
    forced: signals.forced
  })
  return result.clean ? 0 : 1
}

/**
 * `flink …`: the Flink SQL job (deploy/flink) in a local MiniCluster against the configured Kafka
 * and PostgreSQL. Its own flags are taken out before loadConfig reads the rest.
 */
async function flink (argv: string[]): Promise<number> {
  const { flags, rest } = takeFlinkFlags(argv)
  const { config, help } = loadConfig(['flink', ...rest])
  if (help) {
    process.stdout.write(flinkUsage)
    return 0
  }
  const log = pino({ level: config.logLevel, base: { app: 'iot-monitor', command: 'flink' } }, pino.destination(2))
  const signals = new StopSignals()
  return await runFlink(flinkJobOptions(config, flags), {
    log,
    write: (text) => { process.stdout.write(text) },
    stopRequested: signals.requested,
    forced: signals.forced,
    printCommand: flags.printCommand
  })
}

async function main (argv: string[]): Promise<number> {
  if (argv[0] === 'replay') return await replay(argv.slice(1))
  if (argv[0] === 'devices') return await devices(argv.slice(1))
  if (argv[0] === 'simulate') return await simulate(argv.slice(1))
  if (argv[0] === 'flink') return await flink(argv.slice(1))
  const { command, config, help } = loadConfig(argv)
  if (help || command === 'help') {
    process.stdout.write(usage)
    return 0
  }
  const log = pino({ level: config.logLevel, base: { app: 'iot-monitor' } }, pino.destination(2))
  switch (command) {
    case 'start':
    case 'ingest':
    case 'worker':
    case 'api':
      return await run(command, config, log)
    case 'migrate': {
      const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
      const applied = await migrate(db)
      await db.close()
      process.stdout.write(applied.length > 0 ? `Applied: ${applied.join(', ')}\n` : 'Schema is up to date.\n')
      return 0
    }
    default:
      process.stderr.write(`Unknown command "${command}".\n\n${usage}`)
      return 2
  }
}

/**
 * Exits once what was written to stdout and stderr is out: writes to a pipe that is full wait in
 * Node's queue, and process.exit would drop them (the end of a replay's scores, say).
 */
async function exit (code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map(async s => { await new Promise<void>(resolve => { s.write('', () => { resolve() }) }) }))
  process.exit(code)
}

/** Exit codes of errors a script may want to tell apart (usage, and the devices command's); any other error exits with 1. */
const exitCodes: Partial<Record<ErrorCode, number>> = {
  IOT_ERR_CONFIG: 2,
  IOT_ERR_DEVICE_NOT_FOUND: 3,
  IOT_ERR_DEVICE_EXISTS: 4,
  IOT_ERR_DEVICE_REVOKED: 5
}

main(process.argv.slice(2)).then(exit, async (err: unknown) => {
  if (err instanceof IotError) {
    process.stderr.write(`error ${err.code}: ${err.message}\n`)
    return await exit(exitCodes[err.code] ?? 1)
  }
  process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`)
  return await exit(1)
})
