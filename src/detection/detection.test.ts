import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { createRandom, type Reading } from '../domain/index.ts'
import { Simulator } from '../sources/index.ts'
import { PipelineDetector } from './detection.ts'

const T0 = Date.UTC(2026, 0, 1)

test('PipelineDetector - models round-trip through their stored form; a damaged one is skipped, not fatal', () => {
  const sim = new Simulator({ sensors: 5, seed: 1, startTs: Date.UTC(2026, 0, 1) })
  const a = new PipelineDetector({ ml: { nEstimators: 5 } })
  const readings = Array.from({ length: 5 * 400 }, () => sim.next())
  a.detectMany(readings)
  const stored = a.drainModels()
  assert.deepEqual(stored.map(m => m.version).sort(), ['air_quality#1', 'co2#1', 'humidity#1', 'pressure#1', 'temperature#1'])
  assert.deepEqual(a.drainModels(), [])
  const b = new PipelineDetector({ ml: { nEstimators: 5 } })
  const damaged = { ...stored[0]!, model: gzipSync(JSON.stringify({ version: 99 })) }
  const garbled = { ...stored[1]!, model: Buffer.from('not gzip') }
  assert.deepEqual(b.restoreModels([damaged, garbled, ...stored.slice(2)]), [damaged.version, garbled.version])
  assert.deepEqual(b.forest!.models().map(m => m.version).sort(), stored.slice(2).map(m => m.version).sort())
  // Restored models are the trained ones, tree for tree.
  const c = new PipelineDetector({ ml: { nEstimators: 5 } })
  c.restoreModels(stored)
  assert.deepEqual(new PipelineDetector({ ml: false }).restoreModels(stored), [])
  for (const m of a.forest!.models()) {
    const twin = c.forest!.models().find(x => x.version === m.version)!
    assert.deepEqual(twin.forest.toJSON(), m.forest.toJSON())
  }
})

test('PipelineDetector - learns each sensor\'s cadence; without storage it keeps one model per key and counts them', () => {
  // 5 sensors at 1 Hz (round robin), every 10th reading of the first missing (a gap of 2 s).
  const sim = new Simulator({ sensors: 5, seed: 2, startTs: Date.UTC(2026, 0, 1) })
  const readings = Array.from({ length: 5 * 3000 }, () => sim.next()).filter((_, i) => i % 50 !== 0)
  const d = new PipelineDetector({ ml: { scope: 'sensor', nEstimators: 5 }, storeModels: false })
  for (let i = 0; i < readings.length; i += 1000) d.detectMany(readings.slice(i, i + 1000))
  const ids = [...new Set(readings.map(r => r.sensorId))].sort()
  assert.deepEqual(ids.map(id => d.cadence.median(id)), [1000, 1000, 1000, 1000, 1000])
  // Per sensor (scope sensor) 2700 or 3000 readings, 30 of them warming the z baseline: models at rows 50, 350, 700, 1400, 2400.
  assert.equal(d.modelsTrained, 5 * 5)
  assert.deepEqual(d.drainModels(), [])
  assert.equal(d.forest!.pendingTrained, 0)
  assert.deepEqual(d.forest!.models().map(m => m.version).sort(), ids.map(id => `${id}#5`))
  d.clear()
  assert.equal(d.cadence.size, 0)
  assert.equal(new PipelineDetector({ ml: false }).modelsTrained, 0)
})

test('PipelineDetector - device models are stored as device:<id> beside the per-sensor ones and restored; device rows are drained once; a warm-up drops its device rows', () => {
  // Two measurements of one connected device, correlated, one row a second.
  const rnd = createRandom(3)
  const readings: Reading[] = []
  for (let i = 0; i < 600; i++) {
    const load = rnd.normal()
    for (const [type, value] of [['flow', 30 + 3 * load], ['current', 12 + 1.2 * load + 0.1 * rnd.normal()]] as const) {
      readings.push({ sensorId: `pump-1.${type}`, sensorType: type, location: 'Plant', value, ts: T0 + i * 1000, unit: '', anomaly: null, anomalyKind: null, seq: null })
    }
  }
  const a = new PipelineDetector({ ml: false, devices: {} })
  a.detectMany(readings.slice(0, 1000))
  const rows = a.drainDeviceScores()
  // The first model is asked for at row 400 and scores from row 416: rows 416-499 scored.
  assert.deepEqual([rows.length, rows[0]!.ts - T0, rows[0]!.measurements], [84, 416_000, ['flow', 'current']])
  assert.deepEqual(a.drainDeviceScores(), [])
  const stored = a.drainModels()
  assert.deepEqual(stored.map(m => [m.key, m.version, m.trainedAt - T0]), [['device:pump-1', 'device:pump-1#1', 400_000]])
  // Restored from its stored form (made now: a function until the trees are kept), it scores at once.
  const bytes = (stored[0]!.model as () => Uint8Array)()
  const b = new PipelineDetector({ ml: false, devices: {} })
  assert.deepEqual(b.restoreModels([{ ...stored[0]!, model: bytes }]), [])
  assert.deepEqual(b.devices!.devices().map(d => [d.device, d.modelVersion]), [['pump-1', 'pump-1#1']])
  b.warmUp(readings.slice(1000, 1010))
  assert.deepEqual(b.drainDeviceScores(), [])
  b.detectMany(readings.slice(1010, 1020))
  assert.deepEqual(b.drainDeviceScores().map(r => [r.ts - T0, r.score > 0]), [[505_000, true], [506_000, true], [507_000, true], [508_000, true], [509_000, true]])
  // A damaged device model is skipped, not fatal.
  assert.deepEqual(new PipelineDetector({ ml: false, devices: {} }).restoreModels([{ ...stored[0]!, model: bytes.subarray(0, 100) }]), ['device:pump-1#1'])
})
