import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { Simulator } from '../sources/index.ts'
import { PipelineDetector } from './detection.ts'

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
