import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { Simulator } from '../sources/index.ts'
import { PipelineDetector } from './detection.ts'

test('PipelineDetector - models round-trip through their stored form; a damaged one is skipped, not fatal', () => {
  const sim = new Simulator({ sensors: 5, seed: 1, startTs: Date.UTC(2026, 0, 1) })
  const a = new PipelineDetector({ ml: { nEstimators: 5 } })
  const readings = Array.from({ length: 5 * 120 }, () => sim.next())
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
