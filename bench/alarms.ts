// Worker throughput with alarm evaluation on vs off (issue 17: under 5 % slower), for 10,000
// simulated sensors, in one run: the same readings through the same worker (memory bus →
// validate → detect → window → alarms → one transaction per batch) on a fresh database each time,
// alternating off/on so that a busy machine slows both alike. Also the alarm core's own time,
// measured around each evaluation in the runs with alarms on.
import { pino } from 'pino'
import { type AlarmBatch, AlarmEvaluator, defaultAlarmRules } from '../src/alarms/index.ts'
import { MemoryBus } from '../src/bus/index.ts'
import { type Reading } from '../src/domain/index.ts'
import { PipelineDetector, PipelineMetrics, Worker } from '../src/pipeline/index.ts'
import { Simulator } from '../src/sources/index.ts'
import { type Db, migrate, openPglite, openPostgres, writeAlarmBatch } from '../src/storage/index.ts'
import { createServerDatabase } from '../test/helpers/databases.ts'

const START = Date.UTC(2026, 0, 1)
const SENSORS = 10_000

interface Run { alarms: boolean, seconds: number, cpuSeconds: number, evaluateSeconds: number, alarmRows: number, outboxRows: number, conditionWrites: number, alarmWrites: number, writeSeconds: number }

async function openFresh (url: string | null): Promise<{ db: Db, drop: () => Promise<void> }> {
  if (url === null) {
    const db = await openPglite('memory://')
    await migrate(db)
    return { db, drop: async () => { await db.close() } }
  }
  const created = await createServerDatabase(url)
  const db = await openPostgres(created.url)
  await migrate(db)
  return { db, drop: async () => { await db.close(); await created.drop() } }
}

async function once (readings: readonly Reading[], alarmsOn: boolean, url: string | null, ml: boolean): Promise<Run> {
  const { db, drop } = await openFresh(url)
  try {
    const bus = new MemoryBus({ partitions: 4, capacity: readings.length + 1 })
    const producer = bus.producer()
    for (const r of readings) producer.tryProduce(r.sensorId, r)
    let evaluateSeconds = 0
    let conditionWrites = 0
    let alarmWrites = 0
    const batches: AlarmBatch[] = []
    let alarms: AlarmEvaluator | null = null
    if (alarmsOn) {
      alarms = new AlarmEvaluator(defaultAlarmRules)
      // The core's own share: timed around each call.
      const evaluate = alarms.evaluate.bind(alarms)
      alarms.evaluate = (scored, wall) => {
        const t0 = performance.now()
        const out = evaluate(scored, wall)
        evaluateSeconds += (performance.now() - t0) / 1000
        conditionWrites += out?.conditions.length ?? 0
        alarmWrites += out?.alarms.length ?? 0
        if (out !== null) batches.push(out)
        return out
      }
    }
    const worker = new Worker({
      db,
      consumer: bus.consumer(),
      detector: new PipelineDetector({ ml: ml ? {} : false, storeModels: false }),
      ingestClock: () => START,
      wallClock: () => Date.now(),
      log: pino({ level: 'warn' }),
      metrics: new PipelineMetrics(undefined, false),
      alarms
    }, { validation: { maxBytes: 16_384, maxPastMs: null, maxFutureMs: null } })
    let stored = 0
    let resolveDone: () => void = () => {}
    const done = new Promise<void>(resolve => { resolveDone = resolve })
    worker.on('batch', b => {
      stored += b.stored.length + b.late.length
      if (stored >= readings.length) resolveDone()
    })
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    await worker.start()
    await done
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    await worker.stop()
    const [counts] = await db.query<{ a: number, o: number }>('SELECT (SELECT count(*)::int FROM alarms) AS a, (SELECT count(*)::int FROM alarm_outbox) AS o')
    const writeSeconds = alarmsOn ? await timeWrites(batches, url) : 0
    return { alarms: alarmsOn, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, evaluateSeconds, alarmRows: counts!.a, outboxRows: counts!.o, conditionWrites, alarmWrites, writeSeconds }
  } finally {
    await drop()
  }
}

/** The alarm writes of a run alone: each batch's, in a transaction of its own, into a fresh database. */
async function timeWrites (batches: readonly AlarmBatch[], url: string | null): Promise<number> {
  const { db, drop } = await openFresh(url)
  try {
    const t0 = performance.now()
    for (const b of batches) await db.transaction(async tx => { await writeAlarmBatch(tx, b) })
    return (performance.now() - t0) / 1000
  } finally {
    await drop()
  }
}

export async function runAlarmsBench ({ readings, rounds, ml }: { readings: number, rounds: number, ml: boolean }): Promise<void> {
  const url = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === '' ? null : process.env.DATABASE_URL
  process.stdout.write(`Alarm evaluation on vs off: ${readings.toLocaleString('en-US')} readings of ${SENSORS.toLocaleString('en-US')} simulated sensors through the worker, ` +
    `on ${url === null ? 'PGlite (in memory; set DATABASE_URL for PostgreSQL)' : 'PostgreSQL'}, Isolation Forest ${ml ? 'on' : 'off'}, ${rounds} rounds of off/on.\n`)
  const sim = new Simulator({ sensors: SENSORS, ratePerSensor: 1, seed: 42, startTs: START })
  const data: Reading[] = Array.from({ length: readings }, () => sim.next())
  // A first run warms the JIT up (and is not counted): the first run of a process was the slowest.
  await once(data.slice(0, Math.min(data.length, 50_000)), true, url, ml)
  const runs: Run[] = []
  for (let i = 0; i < rounds; i++) {
    for (const on of i % 2 === 0 ? [false, true] : [true, false]) {
      const r = await once(data, on, url, ml)
      runs.push(r)
      process.stdout.write(`  alarms ${on ? 'on ' : 'off'}: ${r.seconds.toFixed(2)} s, ${Math.round(readings / r.seconds).toLocaleString('en-US')} readings/s, ` +
        `${(1e6 * r.cpuSeconds / readings).toFixed(2)} µs CPU a reading${on ? `; alarm core ${(1e6 * r.evaluateSeconds / readings).toFixed(3)} µs a reading, ${r.alarmRows} alarms, ${r.outboxRows} outbox rows, ${r.alarmWrites} alarm and ${r.conditionWrites} condition rows written; these writes alone ${r.writeSeconds.toFixed(2)} s` : ''}\n`)
    }
  }
  const best = (on: boolean): Run => runs.filter(r => r.alarms === on).reduce((a, b) => b.seconds < a.seconds ? b : a)
  const median = (on: boolean, of: (r: Run) => number = r => r.seconds): number => {
    const s = runs.filter(r => r.alarms === on).map(of).sort((a, b) => a - b)
    return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
  }
  const cpu = (r: Run): number => 1e6 * r.cpuSeconds / readings
  const off = best(false)
  const on = best(true)
  const onRuns = runs.filter(r => r.alarms)
  const coreShare = onRuns.reduce((sum, r) => sum + r.evaluateSeconds / r.seconds, 0) / onRuns.length
  const writeShare = onRuns.reduce((sum, r) => sum + r.writeSeconds / r.seconds, 0) / onRuns.length
  process.stdout.write('\n                 best readings/s   median readings/s   median µs CPU a reading (worker process)\n')
  for (const [label, x] of [['alarms off', false], ['alarms on ', true]] as const) {
    process.stdout.write(`${label}       ${Math.round(readings / best(x).seconds).toLocaleString('en-US').padStart(15)}   ${Math.round(readings / median(x)).toLocaleString('en-US').padStart(17)}   ${median(x, cpu).toFixed(2).padStart(8)}\n`)
  }
  process.stdout.write(`\nThroughput with alarms on / off: ${(off.seconds / on.seconds).toFixed(3)} (best runs), ${(median(false) / median(true)).toFixed(3)} (medians); ` +
    `slower by ${(100 * (on.seconds / off.seconds - 1)).toFixed(1)} % (best), ${(100 * (median(true) / median(false) - 1)).toFixed(1)} % (medians); ` +
    `CPU a reading ${(100 * (median(true, cpu) / median(false, cpu) - 1)).toFixed(1)} % more (medians). The alarm core itself took ${(100 * coreShare).toFixed(2)} % of the worker's wall time, ` +
    `its writes (timed alone, in a transaction per batch) ${(100 * writeShare).toFixed(2)} %: ${(100 * (coreShare + writeShare)).toFixed(1)} % in all. Target: under 5 % slower.\n`)
}
