// The live worker and `iot-monitor replay` give the same verdicts on the same readings, row for row:
// a recorded day goes through the real worker (wire text on the bus, the background training thread,
// batches of 997, the database), then each sensor's stored readings are replayed from a CSV file.
// Retraining follows event time and samples only, and a model scores from a fixed number of rows
// after the one that asked for it, so neither batch boundaries nor the thread's timing change a verdict.
// The same holds for the device-level detector (the five sensors are one simulated device): its
// stored scores equal a DeviceDetector's fitting inline on the same readings.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'csv-parse/sync'
import { pino } from 'pino'
import { DeviceDetector, defaultRuleConfig } from '../../src/anomaly/index.ts'
import { MemoryBus } from '../../src/bus/index.ts'
import { PipelineDetector } from '../../src/detection/index.ts'
import { formatTimestamp, streamKeyOf, toWire } from '../../src/domain/index.ts'
import { PipelineMetrics, ThreadTrainer, Worker } from '../../src/pipeline/index.ts'
import { parseReplayArgs, runReplay } from '../../src/replay/index.ts'
import { Simulator } from '../../src/sources/index.ts'
import { databaseNames, testDatabases } from '../helpers/databases.ts'

const START = Date.UTC(2026, 2, 1)
const DAY = 86_400_000

interface StoredRow {
  ts: number
  value: number
  anomaly: boolean
  severity: string | null
  rule: boolean
  z: number | null
  zAnomaly: boolean
  ml: number | null
  mlAnomaly: boolean | null
  version: string | null
  explanation: string | null
}

/**
 * A verdict as both sides can say it: the stored scores are float4, so the replay's are rounded
 * alike; a stored reading keeps its model version and explanation only where a detector fired (the
 * replay writes an explanation exactly then).
 */
function fromReplay (cells: string[]): unknown[] {
  const n = (x: string | undefined): number | null => x === undefined || x === '' ? null : Math.fround(Number(x))
  const fired = cells[11] !== ''
  return [cells[3] === 'true', cells[4] === '' ? null : cells[4], cells[5] === 'true', n(cells[6]), cells[7] === 'true', n(cells[8]),
    cells[9] === '' ? null : cells[9] === 'true', fired && cells[10] !== '' ? cells[10] : null, fired ? cells[11] : null]
}

function fromStore (r: StoredRow): unknown[] {
  return [r.anomaly, r.severity, r.rule, r.z, r.zAnomaly, r.ml, r.mlAnomaly, r.version, r.explanation]
}

for (const database of testDatabases) {
  test(`live vs replay on ${database.name} (of ${databaseNames}) - a recorded day: the same verdicts, row for row`, { skip: database.skip }, async () => {
    // Five sensors (one of each type, with their built-in rules) every 5 s for 24 h, anomalies injected.
    const sim = new Simulator({ sensors: 5, ratePerSensor: 0.2, seed: 11, startTs: START })
    const readings = []
    while (sim.nextTs < START + DAY) readings.push(sim.next())
    const { db, drop } = await database.create()
    const dir = mkdtempSync(join(tmpdir(), 'iot-live-replay-'))
    const trainer = new ThreadTrainer()
    try {
      await trainer.ready()
      const bus = new MemoryBus({ partitions: 2, capacity: readings.length + 1 })
      const producer = bus.producer()
      for (const r of readings) assert.ok(producer.tryProduce(streamKeyOf(r.sensorId), toWire(r)))
      // Received at the end of the recorded day: nothing is in the future.
      const ingestClock = (): number => START + DAY
      // The live configuration: rules, z-score, stuck, drift, a forest per sensor and one per device, trained on the thread.
      const detector = new PipelineDetector({ rules: defaultRuleConfig, ml: { scope: 'sensor' }, trainer, devices: {}, deviceTrainer: trainer.devices, snapshots: {} })
      const worker = new Worker({
        db, consumer: bus.consumer(), detector, ingestClock, wallClock: () => 0, log: pino({ level: 'warn' }), metrics: new PipelineMetrics(undefined, false)
      }, { maxBatch: 997 })
      await worker.start()
      await worker.stop({ drain: true, endOfInput: true })

      const sensors = [...new Map(readings.map(r => [r.sensorId, r])).values()]
      // The cadence the detectors learnt is stored with each sensor, for operators and alarms: every 5 s.
      const cadences = await db.query<{ id: string, ms: number | null }>('SELECT sensor_id AS id, cadence_ms AS ms FROM sensors ORDER BY 1')
      assert.deepEqual(cadences.map(c => ({ id: c.id, ms: c.ms })), sensors.map(s => ({ id: s.sensorId, ms: 5000 })).sort((a, b) => a.id < b.id ? -1 : 1))
      let models = 0
      let flagged = 0
      for (const s of sensors) {
        const stored = await db.query<StoredRow>(`SELECT extract(epoch FROM timestamp)::float8 * 1000 AS ts, value, combined_anomaly AS anomaly, severity,
            rule_anomaly AS rule, z_score AS z, z_anomaly AS "zAnomaly", ml_score AS ml, ml_anomaly AS "mlAnomaly", model_version AS version, explanation
          FROM sensor_readings WHERE sensor_id = $1 ORDER BY timestamp`, [s.sensorId])
        assert.equal(stored.length, readings.filter(r => r.sensorId === s.sensorId).length, `${s.sensorId}: every reading stored`)
        const input = join(dir, `${s.sensorId}.csv`)
        writeFileSync(input, 'timestamp,value\n' + stored.map(r => `${formatTimestamp(r.ts)},${r.value}`).join('\n') + '\n')
        const output = join(dir, `${s.sensorId}.scores.csv`)
        await runReplay(parseReplayArgs(['--input', input, '--output', output, '--sensor-type', s.sensorType, '--sensor-id', s.sensorId, '--location', s.location, '--unit', s.unit]))
        const replayed = (parse(readFileSync(output), { columns: false }) as string[][]).slice(1)
        assert.equal(replayed.length, stored.length)
        for (let i = 0; i < stored.length; i++) {
          const row = stored[i]!
          assert.deepEqual(fromReplay(replayed[i]!), fromStore(row), `${s.sensorId} row ${i} (${formatTimestamp(row.ts)})`)
        }
        models += new Set(stored.map(r => r.version).filter(v => v !== null)).size
        flagged += stored.filter(r => r.anomaly).length
      }
      // Not a comparison of two empty columns: models scored and detectors fired.
      assert.ok(models >= 5 * 10, `models that scored: ${models}`)
      assert.ok(flagged > 100, `flagged readings: ${flagged}`)

      // The device level: the stored scores are the inline detector's, row for row (float4 as stored;
      // model version and explanation kept on anomalies).
      const inline = new DeviceDetector().pushMany(readings).filter(v => v.score !== null)
      const device = inline[0]!.device
      const storedDevice = await db.query<{ ts: number, score: number, rowScore: number, anomaly: boolean, version: string | null, explanation: string | null }>(`
        SELECT extract(epoch FROM d.ts)::float8 * 1000 AS ts, d.score::float8 AS score, d.row_score::float8 AS "rowScore", d.anomaly, v.version, d.explanation
        FROM device_scores d JOIN device_series s USING (series_key) LEFT JOIN model_versions v ON v.model_key = d.model_key
        WHERE s.device = $1 ORDER BY d.ts`, [device])
      assert.equal(device, 'sim-server-room-01')
      assert.equal(storedDevice.length, inline.length)
      for (let i = 0; i < inline.length; i++) {
        const v = inline[i]!
        const expected = [v.ts, Math.fround(v.score!), Math.fround(v.rowScore!), v.anomaly, v.anomaly ? `device:${v.modelVersion!}` : null, v.anomaly ? v.explanation : null]
        const r = storedDevice[i]!
        assert.deepEqual([r.ts, r.score, r.rowScore, r.anomaly, r.version, r.explanation], expected, `${device} row ${i} (${formatTimestamp(v.ts)})`)
      }
      assert.ok(new Set(inline.map(v => v.modelVersion)).size >= 10, 'device models that scored')
      assert.ok(inline.some(v => v.anomaly), 'the device detector fired')
    } finally {
      await trainer.close()
      rmSync(dir, { recursive: true, force: true })
      await drop()
    }
  })
}
