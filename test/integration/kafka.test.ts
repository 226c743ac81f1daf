// Distributed mode against a real Kafka broker and a real PostgreSQL (KAFKA_BROKERS, DATABASE_URL):
// - scale-out and crash safety: `ingest` and two `worker` processes on a topic of 6 partitions;
//   one worker is SIGKILLed mid-stream and restarted later, the broker is restarted once; then
//   every produced reading is stored exactly once and every window equals a recomputation;
// - interoperability with Debian's kcat: the original producer's JSON in, our topics out;
// - malformed messages written straight to the topic end in the dead letters, with reasons.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { pino } from 'pino'
import { partitionFor } from '../../src/bus/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { startSystem, type RunningSystem } from '../../src/app/index.ts'
import { type Db, openPostgres } from '../../src/storage/index.ts'
import { type CliProcess as Proc, spawnCli, stopProc, until, waitExit } from '../helpers/cli-process.ts'
import { checkConsistency } from '../helpers/consistency.ts'
import { createServerDatabase, serverUrl } from '../helpers/databases.ts'
import { brokerScript, kafkaBrokers, kafkaSkip, uniqueTopic } from '../helpers/kafka.ts'

const root = new URL('../../', import.meta.url).pathname
const cli = new URL('../../src/cli.ts', import.meta.url).pathname
const skip = kafkaSkip !== false ? kafkaSkip : serverUrl === null ? 'DATABASE_URL is not set' : false
const brokers = (kafkaBrokers ?? []).join(',')
const log = pino({ level: process.env.TEST_LOG ?? 'silent' })

async function count (db: Db, sql: string): Promise<number> {
  return (await db.query<{ n: number }>(sql))[0]!.n
}

function kcat (args: string[], input?: string): string {
  const r = spawnSync('kcat', ['-b', brokers, ...args], { input, encoding: 'utf8', timeout: 30_000, maxBuffer: 256 * 1024 * 1024 })
  assert.equal(r.status, 0, `kcat ${args.join(' ')} failed: ${r.stderr}`)
  return r.stdout
}

describe('Kafka distributed mode (real broker, real PostgreSQL)', { skip }, () => {
  let db: Db
  let url = ''
  let drop: () => Promise<void> = async () => {}

  before(async () => {
    const created = await createServerDatabase(serverUrl ?? '')
    url = created.url
    drop = created.drop
    // Migrate once up front: the workers (and the api role) find the schema ready.
    const m = spawnSync(process.execPath, ['--import', 'tsx', cli, 'migrate', '--database-url', url], { cwd: root, encoding: 'utf8' })
    assert.equal(m.status, 0, m.stderr)
    db = await openPostgres(url)
  })
  after(async () => {
    await db?.close()
    if (process.env.TEST_KEEP_DB === undefined) await drop()
  })

  test('two workers share 6 partitions; one is SIGKILLed and restarted, the broker restarts; every reading stored once, windows exact', async () => {
    const topic = uniqueTopic('scale')
    const group = uniqueTopic('workers')
    // 25 sensors × 1 reading/s × 100 min = 150,000 readings, produced over ~40 s of wall time.
    const produced = 150_000
    const common = ['--kafka-brokers', brokers, '--topic', topic, '--partitions', '6']
    const workerArgs = ['worker', ...common, '--group', group, '--database-url', url, '--session-timeout', '6s', '--max-batch', '2000']
    const ingest = spawnCli('ingest', ['ingest', ...common, '--start', '2026-04-01T00:00:00Z', '--duration', '100m', '--speedup', '150', '--seed', '7'])
    const a = spawnCli('worker A', workerArgs)
    const b = spawnCli('worker B', workerArgs)
    // The dashboard's process: no worker of its own, it follows what the workers store.
    const api = spawnCli('api', ['api', '--database-url', url, '--port', '0', '--group', group, '--topic', topic])
    let a2: Proc | null = null
    const procs = (): Proc[] => [ingest, a, b, api, ...(a2 === null ? [] : [a2])]
    try {
      const stored = async (): Promise<number> => await count(db, 'SELECT count(*)::int AS n FROM sensor_readings')
      await until('30,000 readings stored', async () => await stored() >= 30_000, 90_000, procs())

      // The api process pushes what the workers store to a live dashboard.
      const base = /running: (http:\/\/[^\s]+)/.exec(api.output())?.[1]
      assert.ok(base !== undefined, `the api process listens:\n${api.output()}`)
      const abort = new AbortController()
      try {
        const res = await fetch(`${base}/api/live?location=Server%20Room`, { signal: abort.signal })
        const reader = res.body!.getReader()
        let text = ''
        const deadline = Date.now() + 15_000
        while (!/event: readings\ndata: /.test(text)) {
          assert.ok(Date.now() < deadline, `live readings from the api process within 15 s; got: ${text.slice(0, 500)}`)
          text += new TextDecoder().decode((await reader.read()).value)
        }
        const batch = JSON.parse(/event: readings\ndata: (.*)\n\n/.exec(text)![1]!) as { location: string }[]
        assert.ok(batch.length > 0 && batch.every(r => r.location === 'Server Room'), 'filtered live readings')
      } finally {
        abort.abort()
      }
      // It reports what the workers do (from their rows in worker_status): throughput, latency, lag.
      let pipeline: { readings_per_s: number, latency_ms: { p50: number, p99: number } | null, consumer_lag: number | null } | null = null
      await until('the pipeline as the workers report it', async () => {
        pipeline = await (await fetch(`${base}/api/pipeline`)).json() as typeof pipeline
        return pipeline !== null && pipeline.readings_per_s > 0 && pipeline.latency_ms !== null && pipeline.consumer_lag !== null
      }, 15_000, procs())
      // Each process's status line names its role and says what it does.
      assert.match(api.output(), /\| api \| serving http:\/\/[^ ]+ \| \d+ live clients \| [\d,]+ requests\/s \| stored [\d,]+/)
      assert.match(a.output(), /\| worker \| [\d,]+ readings\/s \| stored [\d,]+ \| windows closed/)
      assert.match(ingest.output(), /\| ingest \| [\d,]+ readings\/s produced \| total [\d,]+/)
      // Both workers took part: each stored progress for its own partitions.
      const owners = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stream_offsets WHERE consumer_group = '${group}' AND next_offset > 0`)
      assert.equal(owners[0]!.n, 6, 'all six partitions make progress')

      assert.equal(a.child.exitCode, null, `worker A still running:\n${a.output()}`)
      a.child.kill('SIGKILL')
      assert.equal((await waitExit(a, 10_000)).signal, 'SIGKILL')
      const atKill = await checkConsistency(db)
      assert.deepEqual(atKill.mismatches, [], 'consistent right after the kill')

      // B takes over A's partitions once A's session expires, and keeps going.
      const afterKill = await stored()
      await until('progress after the kill', async () => await stored() >= afterKill + 30_000, 90_000, procs())

      brokerScript('down.sh')
      brokerScript('up.sh')
      await until('progress after the broker restart', async () => await stored() >= afterKill + 50_000, 120_000, procs())

      a2 = spawnCli('worker A (restarted)', workerArgs)
      assert.equal((await waitExit(ingest, 120_000)).code, 0, `ingest flushed and exited cleanly:\n${ingest.output()}`)
      assert.match(ingest.output(), /Stopped cleanly/)

      await until('every produced reading stored', async () => await stored() >= produced, 120_000, procs())
      // Let anything still in flight land, then stop the workers.
      await new Promise(resolve => setTimeout(resolve, 1500))
      for (const p of [b, a2, api]) assert.equal(await stopProc(p), 0, `${p.name} stopped cleanly:\n${p.output()}`)

      // The broker's own count of records on the topic: what was accepted.
      const offsets = kcat(['-Q', '-t', `${topic}:0:-1`, '-t', `${topic}:1:-1`, '-t', `${topic}:2:-1`, '-t', `${topic}:3:-1`, '-t', `${topic}:4:-1`, '-t', `${topic}:5:-1`])
      const accepted = [...offsets.matchAll(/\[\d+\] offset (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0)
      assert.ok(accepted >= produced, `the broker holds ${accepted} records, ${produced} produced`)

      assert.equal(await stored(), produced, 'every produced reading stored')
      assert.equal(await count(db, 'SELECT count(*)::int AS n FROM (SELECT DISTINCT sensor_id, timestamp FROM sensor_readings) d'), produced, 'no reading twice')
      assert.equal(await count(db, 'SELECT count(*)::int AS n FROM late_readings'), 0, 'nothing was late: a dead worker holds the watermark')
      assert.equal(await count(db, 'SELECT count(*)::int AS n FROM dead_letters'), 0)
      const report = await checkConsistency(db)
      assert.deepEqual(report.mismatches, [])
      assert.equal(report.countedInWindows, produced, 'no reading counted twice in the windows')
      assert.ok(report.finalWindows > 0.9 * report.windows, `most windows final (${report.finalWindows} of ${report.windows})`)
      const sum = await db.query<{ p: number, o: number }>(`SELECT sum(next_offset)::int AS o, count(*)::int AS p FROM stream_offsets WHERE consumer_group = '${group}'`)
      assert.deepEqual([...sum], [{ o: accepted, p: 6 }], 'stored offsets reach the end of every partition')
    } finally {
      for (const p of procs()) p.child.kill('SIGKILL')
    }
  })

  describe('one worker in process', () => {
    let sys: RunningSystem
    let own: Db
    let dropOwn: () => Promise<void> = async () => {}
    const topic = uniqueTopic('interop')
    const group = uniqueTopic('interop_group')
    const aggregatesTopic = uniqueTopic('aggregates')
    const anomaliesTopic = uniqueTopic('anomalies')

    before(async () => {
      const created = await createServerDatabase(serverUrl ?? '')
      dropOwn = created.drop
      const { config } = loadConfig(['worker', '--kafka-brokers', brokers, '--topic', topic, '--partitions', '3', '--group', group,
        '--database-url', created.url, '--max-future', '5m', '--max-past', 'off', '--aggregates-topic', aggregatesTopic, '--anomalies-topic', anomaliesTopic])
      sys = await startSystem(config, log, new Set(['worker']))
      own = await openPostgres(created.url)
    })
    after(async () => {
      await sys?.stop()
      await own?.close()
      await dropOwn()
    })

    test('kcat: the original producer JSON (naive ISO time, microseconds, °C) is stored; kcat reads our event topics', async () => {
      const lines = [
        'temp_001|{"sensor_id": "temp_001", "sensor_type": "temperature", "location": "server_room", "value": 22.5, "timestamp": "2026-05-01T10:30:00.123456", "unit": "°C", "anomaly": false}',
        'temp_001|{"sensor_id": "temp_001", "sensor_type": "temperature", "location": "server_room", "value": 95.0, "timestamp": "2026-05-01T10:30:05", "unit": "°C", "anomaly": true}',
        'hum_002|{"sensor_id": "hum_002", "sensor_type": "humidity", "location": "office", "value": 41.25, "timestamp": "2026-05-01T10:30:01.5", "unit": "%"}'
      ]
      kcat(['-P', '-t', topic, '-K', '|', '-X', 'partitioner=murmur2_random'], lines.join('\n') + '\n')
      await until('3 readings stored', async () => await count(own, 'SELECT count(*)::int AS n FROM sensor_readings') === 3, 30_000)
      const rows = await own.query<Record<string, unknown>>(`SELECT sensor_id, location, value, unit, anomaly,
        to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS ts FROM sensor_readings ORDER BY timestamp`)
      assert.deepEqual(rows.map(r => ({ ...r })), [
        { sensor_id: 'temp_001', location: 'server_room', value: 22.5, unit: '°C', anomaly: false, ts: '2026-05-01T10:30:00.123' },
        { sensor_id: 'hum_002', location: 'office', value: 41.25, unit: '%', anomaly: null, ts: '2026-05-01T10:30:01.500' },
        { sensor_id: 'temp_001', location: 'server_room', value: 95, unit: '°C', anomaly: true, ts: '2026-05-01T10:30:05.000' }
      ])
      // Partitioned like the Java client: kcat's murmur2 and ours agree, so one sensor is on one worker.
      const parts = await own.query<{ partition: number, next_offset: number }>(`SELECT partition, next_offset FROM stream_offsets
        WHERE consumer_group = '${group}' AND next_offset > 0 ORDER BY partition`)
      const expected = new Map<number, number>()
      for (const key of ['temp_001', 'temp_001', 'hum_002']) expected.set(partitionFor(key, 3), (expected.get(partitionFor(key, 3)) ?? 0) + 1)
      assert.deepEqual(new Map(parts.map(p => [p.partition, p.next_offset])), expected)

      // Window results and the anomaly (95 °C breaks the temperature rule) on our topics, readable by kcat.
      const aggregates = kcat(['-C', '-t', aggregatesTopic, '-o', 'beginning', '-e', '-q', '-f', '%k\\t%s\\n'])
      const mine = aggregates.split('\n').filter(l => l.startsWith('server_room|temperature|2026-05-01T10:30:00.000Z'))
      assert.ok(mine.length >= 1, aggregates.slice(0, 2000))
      const last = JSON.parse(mine.at(-1)!.split('\t')[1]!) as Record<string, unknown>
      assert.equal(last.count_readings, 2)
      assert.equal(last.avg_value, 58.75)
      const anomalies = kcat(['-C', '-t', anomaliesTopic, '-o', 'beginning', '-e', '-q', '-f', '%k\\t%s\\n'])
      const hot = anomalies.split('\n').find(l => l.includes('"timestamp":"2026-05-01T10:30:05.000Z"') && l.startsWith('temp_001\t'))
      assert.ok(hot !== undefined, anomalies.slice(0, 2000))
      const event = JSON.parse(hot.split('\t')[1]!) as { rule_based_anomaly: boolean, anomaly: boolean, severity: string, explanation: string }
      assert.equal(event.rule_based_anomaly, true)
      assert.equal(event.anomaly, true)
      assert.equal(event.severity, 'critical')
      assert.match(event.explanation, /^rule: above max 35 °C/)
      // Our readings topic is plain JSON in the original format for any consumer.
      const ours = kcat(['-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%k\\n'])
      assert.deepEqual(ours.trim().split('\n').sort(), ['hum_002', 'temp_001', 'temp_001'])
    })

    test('malformed messages written straight to the topic land in the dead letters with reasons; the worker keeps going', async () => {
      const before = await count(own, 'SELECT count(*)::int AS n FROM sensor_readings')
      const future = new Date(Date.now() + 3_600_000).toISOString()
      const good = (i: number): string => `{"sensor_id":"ok_${i}","sensor_type":"pressure","location":"lab","value":1013.${i},"timestamp":"2026-05-01T11:00:0${i}Z","unit":"hPa"}`
      const bad: [string, string][] = [
        ['{"sensor_id": "x", "value": 1, "timestamp": ', 'invalid_json'],
        ['{"sensor_id":"x","sensor_type":"temperature","location":"lab","value":"warm","timestamp":"2026-05-01T11:00:00Z"}', 'schema'],
        ['{"sensor_id":"x","sensor_type":"temperature","location":"lab","value":NaN,"timestamp":"2026-05-01T11:00:00Z"}', 'non_finite_value'],
        [`{"sensor_id":"x","sensor_type":"temperature","location":"lab","value":1,"timestamp":"2026-05-01T11:00:00Z","pad":"${'x'.repeat(20_000)}"}`, 'too_large'],
        [`{"sensor_id":"x","sensor_type":"temperature","location":"lab","value":1,"timestamp":"${future}"}`, 'timestamp_in_future'],
        ['{"sensor_id":"x","sensor_type":"temperature","location":"lab","value":1,"timestamp":"yesterday"}', 'bad_timestamp']
      ]
      const input = [good(1), ...bad.map(b => b[0]), good(2)].map(v => `x|${v}`).join('\n') + '\n'
      kcat(['-P', '-t', topic, '-K', '|', '-X', 'partitioner=murmur2_random'], input)
      await until('the dead letters', async () => await count(own, 'SELECT count(*)::int AS n FROM dead_letters') === bad.length, 30_000)
      await until('the good readings around them', async () => await count(own, 'SELECT count(*)::int AS n FROM sensor_readings') === before + 2, 30_000)
      const letters = await own.query<{ reason: string, source: string }>('SELECT reason, source FROM dead_letters ORDER BY id')
      // In the order they were written to the partition (the source names topic/partition@offset).
      const offset = (source: string): number => Number(source.split('@')[1])
      assert.ok(letters.every(l => l.source.startsWith(`${topic}/`)), JSON.stringify(letters))
      assert.deepEqual(letters.sort((x, y) => offset(x.source) - offset(y.source)).map(l => l.reason), bad.map(b => b[1]), JSON.stringify(letters))
      const dlq = kcat(['-C', '-t', `${topic}.dlq`, '-o', 'beginning', '-e', '-q', '-f', '%s\\n'])
      const published = dlq.trim().split('\n').map(l => JSON.parse(l) as { reason: string, source: string, raw: string })
      assert.deepEqual(published.sort((x, y) => offset(x.source) - offset(y.source)).map(l => l.reason), bad.map(b => b[1]))
      assert.equal(published.find(l => l.reason === 'invalid_json')?.raw, bad[0]![0])
    })
  })
})
