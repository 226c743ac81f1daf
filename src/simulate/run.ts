// One `simulate` run: register the devices, connect them, pace the simulator through them, stop
// cleanly on a signal or at the end of --duration, and report.
import { type Logger } from 'pino'
import { formatDuration } from '../config/index.ts'
import { Simulator, SimulatorSource } from '../sources/index.ts'
import { type SimulateOptions, startOf } from './args.ts'
import { groupFleet } from './fleet-devices.ts'
import { MqttFleet, type MqttFleetStats, redact } from './mqtt-fleet.ts'
import { fleetProducer } from './producer.ts'
import { provisionFleet } from './provision.ts'
import { counted, paceText, statusLine, summaryLine } from './report.ts'

export interface SimulateIo {
  log: Logger
  /** Text for people (stdout). */
  write: (text: string) => void
  /** Resolves with a reason (the signal's name) when a stop is asked for. */
  stopRequested: Promise<string>
  /** Resolves when a stop must not wait any longer (a second signal). */
  forced?: Promise<string>
  wallClock?: () => number
}

export interface SimulationResult {
  stats: MqttFleetStats
  /** Event time of the first reading (epoch ms). */
  start: number
  /** Readings the simulator made (taken by the devices). */
  produced: number
  /** Why it ended: 'end of the simulated duration', or the stop's reason. */
  reason: string
  /** Every reading made was published and acknowledged, within the shutdown timeout. */
  clean: boolean
}

/** iot-monitor's default far-off limits of its ingest clock (--max-past, --max-future). */
const MAX_PAST_MS = 7 * 86_400_000
const MAX_FUTURE_MS = 5 * 60_000

const never = new Promise<string>(() => {})

/**
 * Runs the simulated fleet as devices until `--duration` of event time is published and
 * acknowledged, or until a stop is asked for. Throws IotError before anything is published when
 * the devices cannot be registered or connected (IOT_ERR_MQTT, IOT_ERR_UNAUTHORIZED, ...), and
 * IOT_ERR_MQTT after the summary when the broker refuses a device mid-run.
 */
export async function runSimulation (o: SimulateOptions, io: SimulateIo): Promise<SimulationResult> {
  const wall = io.wallClock ?? Date.now
  const log = io.log
  const start = startOf(o, wall())
  const sim = new Simulator({ sensors: o.sensors, ratePerSensor: o.rate, seed: o.seed, startTs: start })
  const { devices, routes } = groupFleet(sim.fleet, o.devicePrefix)

  const external = o.broker.kind === 'external'
  const provisioning = provisionFleet(o.tokens, devices, { tokens: !external })
  provisioning.catch(() => {})
  const registering = await Promise.race([provisioning, io.stopRequested])
  if (typeof registering === 'string') {
    io.write(`Stopping (${registering}) while registering the devices: nothing was published.\n`)
    return { stats: emptyStats(devices.length), start, produced: 0, reason: registering, clean: true }
  }
  const provisioned = registering
  const where = o.tokens.kind === 'api' ? `the admin API at ${o.tokens.url}` : o.tokens.databaseUrl !== null ? 'PostgreSQL' : `the embedded database in ${o.tokens.dataDir}`
  io.write(`Registered ${counted(devices.length, 'simulated device')} through ${where}: ${provisioned.added} added, ` +
    (external ? `${provisioned.kept} already there.\n` : `${provisioned.rotated} given a new token.\n`))
  warnFarOff(o, start, wall(), log)

  const fleet = new MqttFleet({ url: o.url, broker: o.broker, members: provisioned.members, maxInFlight: o.maxInFlight, log, wallClock: wall })
  const connecting = fleet.connect()
  connecting.catch(() => {})
  const early = await Promise.race([connecting.then(() => null), io.stopRequested])
  if (early !== null) {
    await fleet.close({ graceMs: 0 })
    io.write(`Stopping (${early}) while connecting: nothing was published.\n`)
    return { stats: fleet.stats(), start, produced: 0, reason: early, clean: true }
  }

  const endTs = o.durationMs === null ? null : start + o.durationMs
  const source = new SimulatorSource(sim, fleetProducer(fleet, routes), { speedup: o.speedup, endTs, wallClock: wall })
  source.start()
  const topics = o.broker.kind === 'external'
    ? `an external broker: ${o.broker.topicPrefix}/<device id>/telemetry and .../status`
    : 'the built-in broker of iot-monitor: the device token as username, v1/devices/me/telemetry'
  io.write(`iot-monitor simulate: ${counted(devices.length, 'device')} (${counted(o.sensors, 'sensor')}) publishing to ${redact(o.url)} (${topics}); ` +
    `event time from ${new Date(start).toISOString()}${endTs === null ? '' : ` to ${new Date(endTs).toISOString()}`}, ` +
    `${o.rate} reading${o.rate === 1 ? '' : 's'}/s per sensor, ${paceText(o.speedup)}; press Ctrl-C to stop.\n`)

  let lastAt = wall()
  let lastPublished = 0
  const status = o.statusIntervalMs > 0
    ? setInterval(() => {
      const now = wall()
      const s = fleet.stats()
      const rate = (s.published - lastPublished) / Math.max(0.001, (now - lastAt) / 1000)
      lastAt = now
      lastPublished = s.published
      io.write(statusLine(now, s, rate, source.now()))
    }, o.statusIntervalMs)
    : null

  const failure = fleet.failure.then(() => 'failure')
  failure.catch(() => {})
  let reason: string
  let inTime = true
  try {
    reason = await Promise.race([source.done().then(() => 'end of the simulated duration'), io.stopRequested, failure])
    if (reason !== 'end of the simulated duration') {
      io.write(`Stopping (${reason}): publishing what the devices hold, waiting for acknowledgements (at most ${formatDuration(o.shutdownTimeoutMs)})…\n`)
      const stopped = source.stop().then(() => 'stopped')
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<string>(resolve => { timer = setTimeout(() => { resolve('deadline') }, o.shutdownTimeoutMs) })
      const outcome = await Promise.race([stopped, deadline, io.forced ?? never, failure])
      clearTimeout(timer)
      if (outcome !== 'stopped') {
        inTime = false
        io.write(outcome === 'deadline'
          ? `Not acknowledged within ${formatDuration(o.shutdownTimeoutMs)}: disconnecting anyway.\n`
          : `Second ${outcome}: disconnecting without waiting.\n`)
      }
      // Forced: no wait at all; past the deadline the devices still say offline, for a few seconds at most.
      await fleet.close(outcome === 'stopped' || outcome === 'deadline' ? {} : { graceMs: 0 })
      await stopped
    } else {
      await fleet.close()
    }
  } catch (err) {
    // A device refused for good: stop making readings, drop the connections, report, and fail.
    const stopping = source.stop()
    await fleet.close({ graceMs: 0 })
    await stopping
    if (status !== null) clearInterval(status)
    io.write(summaryLine(fleet.stats()))
    throw err
  } finally {
    if (status !== null) clearInterval(status)
  }
  const stats = fleet.stats()
  io.write(summaryLine(stats))
  log.info({ ...stats, produced: source.produced, reason }, 'Simulation ended.')
  return { stats, start, produced: source.produced, reason, clean: inTime && stats.buffered === 0 && stats.published === stats.acknowledged }
}

function emptyStats (devices: number): MqttFleetStats {
  return { devices, connected: 0, connections: 0, published: 0, messages: 0, acknowledged: 0, failed: 0, inFlight: 0, buffered: 0, waits: 0 }
}

/** Says when readings will be refused by iot-monitor's default far-off limits of its clock. */
function warnFarOff (o: SimulateOptions, start: number, now: number, log: Logger): void {
  if (start < now - MAX_PAST_MS) {
    log.warn({ start: new Date(start).toISOString() }, 'Readings more than 7 days old are refused by iot-monitor unless it runs with --max-past off.')
  }
  // Event time minus wall time, at the start and at the end of the run.
  const aheadAtStart = start - now
  const aheadAtEnd = o.durationMs === null
    ? (o.speedup > 1 ? Infinity : aheadAtStart)
    : start + o.durationMs - (now + o.durationMs / o.speedup)
  if (Math.max(aheadAtStart, aheadAtEnd) > MAX_FUTURE_MS) {
    log.warn({ speedup: o.speedup, start: new Date(start).toISOString() },
      'Event time will run more than 5 minutes ahead of the clock: iot-monitor refuses such readings unless it runs with --max-future off (an accelerated run with --duration starts in the past by default).')
  }
}
