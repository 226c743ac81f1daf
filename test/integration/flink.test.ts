// The Flink alternative against a real Kafka broker and a real PostgreSQL (KAFKA_BROKERS,
// DATABASE_URL) with the Flink SQL job (deploy/flink) in a local MiniCluster:
// - one hour of the simulator (25 sensors, with readings out of order within the watermark) on a
//   topic of 3 partitions; our worker and the Flink job consume it; the Flink JVM is SIGKILLed
//   mid-stream and restarted (it restores its newest checkpoint); then every final window is the
//   same in sensor_aggregates and flink_sensor_aggregates (count, min, max, label count exactly;
//   avg and stddev to 1e-9 relative);
// - readings later than the watermark: within the allowed lateness we revise the window and Flink
//   drops them (the windows then differ by exactly those readings); beyond it we keep them in
//   late_readings and Flink drops them (the windows stay equal).
// The JVM is started twice in the whole suite (the start and the restart after the kill).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { startSystem, type RunningSystem } from '../../src/app/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { formatTimestamp, type Reading, toWire } from '../../src/domain/index.ts'
import { flinkJobOptions, type FlinkJobOptions, takeFlinkFlags } from '../../src/flink/index.ts'
import { Simulator } from '../../src/sources/index.ts'
import { type Db, migrate, openPostgres } from '../../src/storage/index.ts'
import { type CliProcess, until, waitExit } from '../helpers/cli-process.ts'
import { createServerDatabase, serverUrl } from '../helpers/databases.ts'
import { completedCheckpoints, flinkClasspath, javaSkip, produceRecords, startFlink } from '../helpers/flink.ts'
import { kafkaBrokers, kafkaSkip, uniqueTopic } from '../helpers/kafka.ts'

const skip = kafkaSkip !== false ? kafkaSkip : serverUrl === null ? 'DATABASE_URL is not set' : javaSkip
const brokers = kafkaBrokers ?? []
const log = pino({ level: process.env.TEST_LOG ?? 'silent' })

const START = Date.UTC(2026, 3, 1)
const SENSORS = 25
const PARTITIONS = 3
const MINUTE = 60_000

interface Window {
  key: string
  count: number
  min: number
  max: number
  avg: number
  stddev: number
  labels: number
}

async function windows (db: Db, table: string, where: string): Promise<Map<string, Window>> {
  const rows = await db.query<{ key: string, count: number, min: number, max: number, avg: number, stddev: number, labels: number }>(`
    SELECT location || '|' || sensor_type || '|' || (extract(epoch FROM window_start) * 1000)::bigint AS key,
           count_readings AS count, min_value AS min, max_value AS max, avg_value AS avg, stddev_value AS stddev,
           label_anomaly_count AS labels
    FROM ${table} WHERE ${where}`)
  return new Map(rows.map(r => [r.key, { ...r }]))
}

const close = (a: number, b: number): boolean => a === b || Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b))

/** What differs between a window of ours and Flink's ('' when equal). */
function difference (ours: Window, theirs: Window | undefined): string {
  if (theirs === undefined) return 'missing in Flink'
  const out: string[] = []
  for (const f of ['count', 'min', 'max', 'labels'] as const) if (ours[f] !== theirs[f]) out.push(`${f} ${ours[f]} vs ${theirs[f]}`)
  for (const f of ['avg', 'stddev'] as const) if (!close(ours[f], theirs[f])) out.push(`${f} ${ours[f]} vs ${theirs[f]}`)
  return out.join(', ')
}

/**
 * The simulator's readings from `from` (count), with every 53rd reading held back by up to 8 s
 * of event time (200 readings at 25/s): out of order, yet within its partition's watermark
 * (10 s behind the partition's newest reading), so neither side may treat it as late.
 */
function * outOfOrder (sim: Simulator, count: number, clock: { now: number }): Generator<{ key: string, value: string }> {
  const held: Array<{ due: number, r: Reading }> = []
  for (let i = 0; i < count; i++) {
    const r = sim.next()
    clock.now = Math.max(clock.now, r.ts)
    if (i % 53 === 0) {
      held.push({ due: i + 1 + (i % 200), r })
    } else {
      yield { key: r.sensorId, value: toWire(r) }
    }
    while (held.length > 0 && held[0]!.due <= i) {
      const h = held.shift()!
      yield { key: h.r.sensorId, value: toWire(h.r) }
    }
  }
  for (const h of held) yield { key: h.r.sensorId, value: toWire(h.r) }
}

describe('Flink alternative (real Kafka, real PostgreSQL, Flink MiniCluster)', { skip }, () => {
  let db: Db
  let url = ''
  let drop: () => Promise<void> = async () => {}
  let sys: RunningSystem | null = null
  let flink: CliProcess | null = null
  let options: FlinkJobOptions
  let checkpoints = ''
  const topic = uniqueTopic('flink')
  const group = uniqueTopic('workers')
  const sim = new Simulator({ sensors: SENSORS, startTs: START, seed: 11 })
  const clock = { now: START }
  let produced = 0
  const produce = async (records: Iterable<{ key: string, value: string }>): Promise<void> => {
    produced += await produceRecords(brokers, topic, PARTITIONS, records, () => clock.now)
  }
  /** Offsets our worker stored, summed over the partitions. */
  const consumed = async (): Promise<number> =>
    (await db.query<{ n: number }>(`SELECT coalesce(sum(next_offset), 0)::int AS n FROM stream_offsets WHERE consumer_group = '${group}'`))[0]!.n

  before(async () => {
    const t0 = Date.now()
    flinkClasspath() // builds the job (first use on a machine: the jars from Maven Central)
    log.info({ ms: Date.now() - t0 }, 'flink job built')
    const created = await createServerDatabase(serverUrl ?? '')
    url = created.url
    drop = created.drop
    db = await openPostgres(url)
    await migrate(db)
    checkpoints = mkdtempSync(join(tmpdir(), 'iot-flink-ck-'))
    // Idleness off on both sides (10 minutes): after a pause, Flink's source marks a partition idle
    // by wall time without looking at its backlog, and would let the watermark run ahead of it.
    const common = ['--kafka-brokers', brokers.join(','), '--topic', topic, '--partitions', String(PARTITIONS), '--database-url', url, '--idle-timeout', '10m']
    const { flags, rest } = takeFlinkFlags(['--checkpoint-dir', checkpoints, '--checkpoint-interval', '1s', '--flink-group', `${group}-flink`, '--flink-heap', '512m'])
    options = flinkJobOptions(loadConfig(['flink', ...common, ...rest]).config, flags)
    const { config } = loadConfig(['worker', ...common, '--group', group, '--no-events', '--max-batch', '5000'])
    sys = await startSystem(config, log, new Set(['worker']))
  })
  after(async () => {
    flink?.child.kill('SIGKILL')
    await sys?.stop()
    await db?.close()
    if (checkpoints !== '') rmSync(checkpoints, { recursive: true, force: true })
    if (process.env.TEST_KEEP_DB === undefined) await drop()
  })

  test('an hour of the simulator, out of order within the watermark, Flink SIGKILLed and restarted: every final window equal', async () => {
    const total = SENSORS * 3600
    const first = SENSORS * 20 * 60
    await produce(outOfOrder(sim, first, clock))
    flink = startFlink('flink', options)
    const procs = (): CliProcess[] => flink === null ? [] : [flink]
    const flinkWindows = async (): Promise<number> => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM flink_sensor_aggregates'))[0]!.n
    await until('Flink writes windows and completes a checkpoint', async () => await flinkWindows() > 0 && completedCheckpoints(checkpoints) > 0, 120_000, procs())

    // The rest of the hour arrives while the job runs; it is killed as the records come in.
    const rest = produce(outOfOrder(sim, total - first, clock))
    await new Promise(resolve => setTimeout(resolve, 300))
    const killed = flink
    killed.child.kill('SIGKILL')
    assert.equal((await waitExit(killed, 10_000)).signal, 'SIGKILL')
    const atKill = await flinkWindows()
    await rest
    assert.equal(produced, total)

    flink = startFlink('flink (restarted)', options)
    await until('our worker consumed every record', async () => await consumed() === total, 120_000, procs())
    const ours = await windows(db, 'sensor_aggregates', 'is_final')
    await until('Flink has every final window of ours, with its count', async () => {
      const theirs = await windows(db, 'flink_sensor_aggregates', 'true')
      return [...ours].every(([k, w]) => theirs.get(k)?.count === w.count)
    }, Number(process.env.TEST_FLINK_WAIT ?? 120_000), procs()).catch(async (err: unknown) => {
      const theirs = await windows(db, 'flink_sensor_aggregates', 'true')
      const diffs = [...ours].map(([k, w]) => `${k}: ${difference(w, theirs.get(k))}`).filter(d => !d.endsWith(': '))
      throw new Error(`${diffs.length} of ${ours.size} windows differ, e.g. ${diffs.slice(0, 10).join('; ')}`, { cause: err })
    })
    assert.match(flink.output(), /iot-flink: restoring from checkpoint file:\/\/.*\/chk-\d+/, 'the restart restored the newest checkpoint')
    assert.ok(atKill < ours.size, `killed mid-stream: ${atKill} of ${ours.size} windows written before the kill`)

    const theirs = await windows(db, 'flink_sensor_aggregates', 'true')
    const diffs = [...ours].map(([k, w]) => [k, difference(w, theirs.get(k))]).filter(([, d]) => d !== '')
    assert.deepEqual(diffs, [], 'every final window equal')
    // An hour of 25 sensors, 1 per (location, type): 25 × 60 windows, of which the last ~70 s are not final yet.
    assert.ok(ours.size >= 25 * 58, `${ours.size} final windows`)
    const counted = [...ours.values()].reduce((s, w) => s + w.count, 0)
    assert.ok(counted >= total - 25 * 2 * 60, `${counted} readings in final windows`)
    // Flink writes a window once its end passes the watermark, ours once end + allowed lateness
    // does: Flink has the next minute already, and nothing we do not.
    assert.ok(theirs.size > ours.size && theirs.size <= ours.size + 25 * 2, `${theirs.size} Flink windows, ${ours.size} final of ours`)
    const everyOfOurs = await windows(db, 'sensor_aggregates', 'true')
    assert.deepEqual([...theirs.keys()].filter(k => !everyOfOurs.has(k)), [], 'no Flink window we do not have')
    assert.equal((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM late_readings'))[0]!.n, 0, 'nothing was late for us')
  })

  test('later than the watermark: within the allowed lateness we revise and Flink drops; beyond it we keep them in late_readings, Flink drops', async () => {
    const procs = (): CliProcess[] => flink === null ? [] : [flink]
    // Where both stand: every record of the hour consumed, the watermark ~10 s behind its end.
    const end = START + 3600_000
    // (a) beyond the allowed lateness: half an hour back, the window long final for us.
    const beyondWindow = START + 30 * MINUTE
    // (b) behind the watermark but within the allowed lateness: the window [end - 2 min, end - 1 min)
    //     has ended (Flink fired it: watermark ~ end - 10 s) and is not final for us (end - 1 min + 60 s
    //     > watermark), so we merge and revise it.
    const reviseWindow = end - 2 * MINUTE
    const late = (ts: number, sensor: number): { key: string, value: string, reading: Reading } => {
      const spec = sim.fleet[sensor]!
      const reading: Reading = {
        sensorId: spec.id, sensorType: spec.sensorType, location: spec.location, value: 5000 + sensor, ts, unit: spec.unit, anomaly: true, anomalyKind: 'spike', seq: null
      }
      return { key: spec.id, value: toWire(reading), reading }
    }
    // Times off the simulator's 40 ms grid, with microseconds (the original producer's form), so
    // they are new readings, not duplicates.
    const beyond = [0, 5, 10].map((s, i) => late(beyondWindow + 17_000 + i * 1000 + 0.123, s))
    const revise = [1, 6, 11, 16].map((s, i) => late(reviseWindow + 23_000 + i * 1000 + 0.456, s))
    await produce([...beyond, ...revise])
    // Three more minutes of the stream move the watermark past the revised window's lateness.
    await produce(outOfOrder(sim, SENSORS * 180, clock))
    await until('our worker consumed every record', async () => await consumed() === produced, 60_000, procs())

    const lateRows = await db.query<{ sensor_id: string, ts: string, lateness_ms: number }>(
      `SELECT sensor_id, to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts, lateness_ms::int AS lateness_ms
       FROM late_readings ORDER BY timestamp`)
    assert.deepEqual(lateRows.map(r => [r.sensor_id, r.ts]), beyond.map(b => [b.reading.sensorId, formatTimestamp(b.reading.ts)]),
      'readings beyond the allowed lateness are kept in late_readings')
    for (const r of lateRows) assert.ok(r.lateness_ms > 29 * MINUTE, `${r.sensor_id} is ${r.lateness_ms} ms late`)

    const ours = await windows(db, 'sensor_aggregates', 'is_final')
    const revisedKeys = new Set(revise.map(r => `${r.reading.location}|${r.reading.sensorType}|${reviseWindow}`))
    for (const k of revisedKeys) assert.ok(ours.has(k), `window ${k} is final now`)
    await until('Flink has every final window of ours', async () => {
      const theirs = await windows(db, 'flink_sensor_aggregates', 'true')
      return [...ours.keys()].every(k => theirs.has(k))
    }, 60_000, procs())
    const theirs = await windows(db, 'flink_sensor_aggregates', 'true')
    const diffs = [...ours].filter(([k]) => !revisedKeys.has(k)).map(([k, w]) => [k, difference(w, theirs.get(k))]).filter(([, d]) => d !== '')
    assert.deepEqual(diffs, [], 'every other final window equal (the half-hour-late readings are in neither)')
    for (const r of revise) {
      const k = `${r.reading.location}|${r.reading.sensorType}|${reviseWindow}`
      const o = ours.get(k)!
      const t = theirs.get(k)!
      assert.equal(o.count, t.count + 1, `${k}: ours has the late reading, Flink dropped it`)
      assert.equal(o.labels, t.labels + 1)
      assert.equal(o.max, r.reading.value, 'the late reading is the window maximum in ours')
      assert.ok(t.max < r.reading.value)
    }
    const revisions = await db.query<{ revision: number }>(`SELECT revision FROM sensor_aggregates
      WHERE window_start = to_timestamp(${reviseWindow / 1000}) AND sensor_type || location IN (${revise.map(r => `'${r.reading.sensorType}${r.reading.location}'`).join(',')})`)
    assert.equal(revisions.length, revise.length)
    for (const r of revisions) assert.ok(r.revision >= 2, 'a revised window has a higher revision')
    assert.equal(flink!.child.exitCode, null, `the Flink job is still running:\n${flink!.output().slice(-3000)}`)
  })
})
