// The command line: the only place that listens on ports or exits the process.
import { pino, type Logger } from 'pino'
import { loadConfig, usage, type Config } from './config/index.ts'
import { IotError } from './domain/index.ts'
import { allRoles, startStatusLine, startSystem, type Role } from './app/index.ts'
import { detectionQuality, formatQuality } from './anomaly/index.ts'
import { formatReplaySummary, parseReplayArgs, replayUsage, runReplay } from './replay/index.ts'
import { loadDetectionCounts, migrate, openDb } from './storage/index.ts'

const roleSets: Record<string, ReadonlySet<Role>> = {
  start: allRoles,
  ingest: new Set(['ingest']),
  worker: new Set(['worker']),
  api: new Set(['api'])
}

async function run (command: string, config: Config, log: Logger): Promise<number> {
  const roles = roleSets[command] ?? allRoles
  const sys = await startSystem(config, log, roles)
  const parts: string[] = []
  if (sys.app !== null) {
    const address = await sys.app.listen({ host: config.host, port: config.port })
    parts.push(`iot-monitor ${command} is running: ${address} (dashboard: ${address}/, API: /api/..., /health, /metrics)`)
  } else {
    parts.push(`iot-monitor ${command} is running`)
  }
  if (sys.db !== null) parts.push(`database: ${sys.db.kind === 'pglite' ? `embedded PGlite in ${config.dataDir}` : 'PostgreSQL'}`)
  parts.push(config.kafka.brokers === null
    ? 'bus: embedded'
    : `Kafka: ${config.kafka.brokers.join(',')} topic ${config.topic}` +
    (sys.worker === null ? '' : ` group ${config.group}`))
  process.stdout.write(`${parts.join('; ')}; press Ctrl-C to stop.\n`)
  const finalStatus = startStatusLine(sys, config.statusIntervalMs)

  const stopped = new Promise<string>(resolve => {
    let first = 0
    const onSignal = (sig: string): void => {
      // Ctrl-C under `npm start` reaches us twice at once (from the terminal and relayed by tsx):
      // only a second press, a moment later, means "exit now".
      if (first === 0) {
        first = Date.now()
        resolve(sig)
      } else if (Date.now() - first > 1000) {
        process.stderr.write('Second signal: exiting without waiting.\n')
        process.exit(130)
      }
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
  const why = await Promise.race([stopped, sys.sourceDone.then(() => 'end of the simulated duration')])
  process.stdout.write(`Stopping (${why}): storing everything accepted…\n`)
  await sys.stop(async db => {
    // What the detectors achieved on this database, where readings carry ground truth.
    if (sys.worker !== null) process.stdout.write(formatQuality(detectionQuality(await loadDetectionCounts(db))) + '\n')
  })
  await finalStatus()
  process.stdout.write('Stopped cleanly.\n')
  return 0
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

async function main (argv: string[]): Promise<number> {
  if (argv[0] === 'replay') return await replay(argv.slice(1))
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

main(process.argv.slice(2)).then(code => process.exit(code), (err: unknown) => {
  if (err instanceof IotError) {
    process.stderr.write(`error ${err.code}: ${err.message}\n`)
    process.exit(err.code === 'IOT_ERR_CONFIG' ? 2 : 1)
  }
  process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
