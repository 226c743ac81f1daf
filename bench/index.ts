// Benchmarks: `npm run bench -- <name> [--readings N]`. Ratios within one run are what to compare:
// this machine is shared and noisy, absolute figures move between runs.
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { runAlarmsBench } from './alarms.ts'
import { runApi } from './api.ts'
import { BenchSetupError, DEFAULT_READINGS, loadDataset } from './api-load.ts'
import { runDetect } from './detect.ts'
import { measureEmbedded, runEmbedded } from './embedded.ts'
import { runIngest, serveIngest } from './ingest.ts'
import { runKafka } from './kafka.ts'
import { runFlinkBench } from './flink.ts'
import { runLive, serveLive } from './live.ts'
import { runCalibration } from './calibration.ts'
import { runQuality } from './quality.ts'
import { defaultSkabDir, runSkab } from './skab.ts'
import { runReplayBench } from './replay.ts'
import { measureStorageRun, runStorage } from './storage.ts'

const { positionals, values } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    readings: { type: 'string' },
    rounds: { type: 'string' },
    sensors: { type: 'string' },
    hours: { type: 'string' },
    seed: { type: 'string' },
    'no-ml': { type: 'boolean' },
    'device-detection': { type: 'string' },
    reload: { type: 'boolean' },
    requests: { type: 'string' },
    url: { type: 'string' },
    dir: { type: 'string' },
    clients: { type: 'string' },
    paused: { type: 'boolean' },
    hold: { type: 'string' },
    batches: { type: 'string' },
    writers: { type: 'string' },
    messages: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    'database-url': { type: 'string' },
    skab: { type: 'string' },
    calibration: { type: 'boolean' },
    'per-file': { type: 'boolean' },
    days: { type: 'string' }
  }
})
const name = positionals[0] ?? 'embedded'
const calibration = async (): Promise<void> => {
  await runCalibration({ days: Number(values.days ?? 7), cadenceS: 60, seed: Number(values.seed ?? 42), skabDir: resolve(values.skab ?? defaultSkabDir) })
}
const benches: Record<string, () => Promise<void>> = {
  embedded: async () => { await runEmbedded({ readings: Number(values.readings ?? 500_000) }) },
  // worker throughput with alarm evaluation on vs off, 10,000 sensors (--readings N, default 400,000; --rounds N of off/on, default 3; --no-ml; DATABASE_URL: PostgreSQL)
  alarms: async () => { await runAlarmsBench({ readings: Number(values.readings ?? 400_000), rounds: Number(values.rounds ?? 3), ml: values['no-ml'] !== true }) },
  kafka: async () => { await runKafka({ readings: Number(values.readings ?? 500_000) }) },
  // our worker and the Flink SQL job (deploy/flink) on one pre-filled topic, with the producer perf tool and a bare COPY as limits (--readings N, default 300,000)
  flink: async () => { await runFlinkBench({ readings: Number(values.readings ?? 300_000) }) },
  // Isolation Forest fit and scoring; --readings sets the rows scored (default 1,000,000)
  detect: async () => { await runDetect({ rows: Number(values.readings ?? 1_000_000) }) },
  // Dashboard API over a stored data set (DATABASE_URL's server, database <name>_bench): loads it
  // when missing (--readings N, default 50,000,000; --reload forces), then --requests N per endpoint (default 60)
  api: async () => {
    await runApi({ readings: Number(values.readings ?? DEFAULT_READINGS), seed: Number(values.seed ?? 42), reload: values.reload === true, requests: Number(values.requests ?? 60) })
  },
  // the load of the api bench alone
  'api-load': async () => {
    await loadDataset({ readings: Number(values.readings ?? DEFAULT_READINGS), seed: Number(values.seed ?? 42), reload: values.reload === true })
  },
  // detection quality: the simulator's table (--sensors, --hours, --seed); --skab DIR: SKAB's labelled files instead
  // (--per-file: a line per file); --calibration: anomaly_score on anomaly-free series (--days D at 1 min, default 7)
  quality: async () => {
    if (values.skab === undefined && values.calibration !== true) {
      await runQuality({ sensors: Number(values.sensors ?? 25), hours: Number(values.hours ?? 24), seed: Number(values.seed ?? 42) })
    }
    if (values.skab !== undefined) await runSkab({ dir: resolve(values.skab), perFile: values['per-file'] === true })
    if (values.calibration === true) await calibration()
  },
  // the same, with SKAB from its default place (../shared/datasets/skab beside the project) unless --skab DIR
  skab: async () => { await runSkab({ dir: resolve(values.skab ?? defaultSkabDir), perFile: values['per-file'] === true }) },
  calibration: async () => { await calibration() },
  // bytes per stored reading on PGlite and PostgreSQL (--sensors N, default 25; --hours H, default 24), with the ingest rate
  storage: async () => { await runStorage({ sensors: Number(values.sensors ?? 25), hours: Number(values.hours ?? 24) }) },
  'storage-run': async () => {
    await measureStorageRun({ sensors: Number(values.sensors ?? 25), hours: Number(values.hours ?? 24), url: values.url ?? null, dir: values.dir ?? '' })
  },
  // live-stream (SSE) clients against the caps of GET /api/live (--clients N, default 2,000; --hold S seconds
  // connected, default 10; --paused: they read nothing): 200 vs 503, /health latency while they are
  // connected, the API's RSS before, with and after them
  live: async () => {
    await runLive({ clients: Number(values.clients ?? 2000), holdMs: 1000 * Number(values.hold ?? 10), settleMs: 5000, paused: values.paused === true })
  },
  // internal: the API process of the live bench (its RSS is its own)
  'live-server': serveLive,
  // Device ingest into the embedded system (--no-simulator, --no-ml) in a child process: InfluxDB line
  // protocol over HTTP (--batches N of 5,000 lines, default 40; --writers N at once, default 4), MQTT QoS 1
  // from --clients N devices (default 1,000) publishing --messages N each at once (default 100), then a steady
  // --rate N messages/s (default 1,000) for --seconds S (default 20) for the publish-to-stored latency.
  // PGlite in a temp folder (also when DATABASE_URL is set); --database-url URL: a throwaway database on that server instead
  ingest: async () => {
    const url = values['database-url']
    await runIngest({
      batches: Number(values.batches ?? 40),
      writers: Number(values.writers ?? 4),
      clients: Number(values.clients ?? 1000),
      messages: Number(values.messages ?? 100),
      rate: Number(values.rate ?? 1000),
      seconds: Number(values.seconds ?? 20),
      databaseUrl: url === undefined || url === '' ? null : url
    })
  },
  // internal: the system under test of the ingest bench (its CPU time is its own)
  'ingest-server': serveIngest,
  // internal: one measurement in a child process (so its peak RSS is its own); --device-detection all|devices|off
  'embedded-run': async () => {
    const devices = values['device-detection'] ?? 'devices'
    if (devices !== 'devices' && devices !== 'all' && devices !== 'off') throw new Error(`--device-detection: devices, all or off, not ${devices}`)
    await measureEmbedded(Number(values.readings ?? 500_000), values['no-ml'] !== true, devices)
  },
  // iot-monitor replay's code path (forest on) over a seeded synthetic series of --readings N rows (default 100,000)
  // and 4N, at 1 s, 1 min and 5 min cadence, one child process each: rows/s, models trained, peak RSS (--seconds S: limit per run, default 300)
  replay: async () => {
    const n = Number(values.readings ?? 100_000)
    await runReplayBench({ readings: [n, 4 * n], seconds: Number(values.seconds ?? 300) })
  }
}
const bench = benches[name]
if (bench === undefined) {
  process.stderr.write(`Unknown benchmark "${name}". Available: ${Object.keys(benches).join(', ')}\n`)
  process.exit(2)
}
try {
  await bench()
} catch (err) {
  if (!(err instanceof BenchSetupError)) throw err
  process.stderr.write(`${err.message}\n`)
  process.exit(2)
}
