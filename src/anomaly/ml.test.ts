import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom, type Reading } from '../domain/index.ts'
import {
  AnomalyConfigError, FEATURES, ForestScorer, IsolationForest, RetrainPolicy, defaultForestOptions, inlineTrainer, type ForestTrainer, type TrainedModel,
  type TrainingJob
} from './index.ts'
import { SnapshotReader } from './snapshot.ts'

const T0 = Date.UTC(2026, 0, 1)

function reading (i: number, over: Partial<Reading> = {}): Reading {
  return { sensorId: 't1', sensorType: 'temperature', location: 'Lab', value: 20, ts: T0 + i * 1000, unit: '°C', anomaly: null, anomalyKind: null, seq: null, ...over }
}

function features (rnd: ReturnType<typeof createRandom>, spike = 0): Float32Array {
  const f = new Float32Array(FEATURES)
  for (let j = 0; j < FEATURES; j++) f[j] = rnd.normal()
  f[0] = (f[0] as number) + spike
  return f
}

test('forest scorer - first model after minSamples, retrained on event time, versions per key', () => {
  const s = new ForestScorer({ nEstimators: 20, installAfterRows: 0 })
  const rnd = createRandom(7)
  const out: Array<ReturnType<ForestScorer['score']>> = []
  for (let i = 0; i < 60; i++) out.push(s.score(reading(i), features(rnd)))
  // Readings 0-49 had no model; reading 50 trained temperature#1 on those 50 and was scored by it.
  assert.ok(out.slice(0, 50).every(x => x === null))
  assert.equal(out[50]!.modelVersion, 'temperature#1')
  const trained = s.drainTrained()
  assert.deepEqual(trained.map(m => [m.version, m.samples, m.trainedAt]), [['temperature#1', 50, T0 + 50_000]])
  assert.deepEqual(s.drainTrained(), [])
  // The next training: 5 minutes of event time later, on the newest 1000 (here all 350).
  for (let i = 60; i <= 349; i++) s.score(reading(i), features(rnd))
  assert.deepEqual(s.drainTrained(), [])
  const at350 = s.score(reading(350), features(rnd))
  assert.equal(at350!.modelVersion, 'temperature#2')
  assert.deepEqual(s.drainTrained().map(m => [m.version, m.samples]), [['temperature#2', 350]])
  // Another type has its own key and schedule.
  assert.equal(s.score(reading(351, { sensorType: 'co2', sensorId: 'c1' }), features(rnd)), null)
  assert.deepEqual(s.models().map(m => m.version), ['temperature#2'])
})

test('forest scorer - scores in (0, 1); far outliers score higher and are mostly flagged; deterministic per seed', () => {
  const run = (): Array<[number, boolean]> => {
    const s = new ForestScorer({ installAfterRows: 0 })
    const rnd = createRandom(11)
    // Models at rows 50, 350, 700 and 1400: the last on a full window of 1000.
    for (let i = 0; i < 1500; i++) s.score(reading(i), features(rnd))
    assert.equal(s.modelsTrained, 4)
    const out: Array<[number, boolean]> = []
    for (let i = 0; i < 200; i++) {
      const r = s.score(reading(1500 + i), features(rnd, i % 20 === 0 ? 12 : 0))!
      assert.ok(r.score > 0 && r.score < 1)
      out.push([r.score, r.anomaly])
    }
    return out
  }
  const out = run()
  // A forest never saw these values: they land with the extreme training rows (shorter paths), not alone.
  const outliers = out.filter((_, i) => i % 20 === 0)
  const normal = out.filter((_, i) => i % 20 !== 0)
  const mean = (xs: Array<[number, boolean]>): number => xs.reduce((a, [x]) => a + x, 0) / xs.length
  assert.ok(mean(outliers) > mean(normal) + 0.05, `${mean(outliers)} vs ${mean(normal)}`)
  // A shift on one of 7 noise features: about 40% of them flagged over 20 seeds (this one: 4 of 10), about 5% of the rest.
  assert.equal(outliers.filter(([, f]) => f).length, 4)
  assert.ok(normal.filter(([, f]) => f).length <= 25)
  assert.deepEqual(run(), out)
})

test('forest scorer - per-sensor scope, restore keeps the newest per key, clear drops everything', () => {
  const s = new ForestScorer({ scope: 'sensor', minSamples: 10, nEstimators: 5, installAfterRows: 0 })
  const rnd = createRandom(3)
  for (let i = 0; i < 11; i++) s.score(reading(i, { sensorId: 'a' }), features(rnd))
  const [a1] = s.drainTrained()
  assert.equal(a1!.version, 'a#1')
  const t = new ForestScorer({ scope: 'sensor', minSamples: 10, nEstimators: 5, installAfterRows: 0 })
  t.restore([a1!, { ...a1!, sequence: 0, version: 'a#0' }])
  assert.deepEqual(t.models().map(m => m.version), ['a#1'])
  assert.equal(t.score(reading(20, { sensorId: 'a' }), features(rnd))!.modelVersion, 'a#1')
  t.clear()
  assert.deepEqual(t.models(), [])
  // A named instance (one of several workers) suffixes its versions.
  const w = new ForestScorer({ scope: 'sensor', minSamples: 10, nEstimators: 5, instance: 'host-42', installAfterRows: 0 })
  for (let i = 0; i < 11; i++) w.score(reading(i, { sensorId: 'a' }), features(rnd))
  assert.deepEqual(w.drainTrained().map(m => m.version), ['a#1@host-42'])
})

test('forest scorer - bad options throw AnomalyConfigError', () => {
  for (const bad of [{ scope: 'site' as 'type' }, { minSamples: 1 }, { trainingSize: 10, minSamples: 50 }, { retrainMs: 0 }, { retrainFraction: 0 }, { retrainFraction: 1.5 },
    { contamination: 0.6 }, { nEstimators: 0 }, { maxSamples: 1.5 }, { seed: NaN }, { instance: 'a b' }]) {
    assert.throws(() => new ForestScorer(bad), AnomalyConfigError, JSON.stringify(bad))
  }
})

test('forest scorer - a model scores from the installAfterRows-th row of its key after the one that asked for it; a failed fit keeps the old model', () => {
  const started: TrainingJob[] = []
  const taken: number[] = []
  let failNext = false
  const trainer: ForestTrainer = {
    start (job) {
      started.push({ ...job, rows: job.rows.slice() })
      const forest = IsolationForest.fit(job.rows, FEATURES, { nEstimators: 10, contamination: 0.05, random: createRandom(job.seed) })
      const fail = failNext
      return {
        take: () => {
          taken.push(job.sequence)
          if (fail) throw new Error('boom')
          return { forest }
        },
        cancel: () => {}
      }
    }
  }
  const s = new ForestScorer({ nEstimators: 10, installAfterRows: 3 }, trainer)
  const rnd = createRandom(9)
  const versions: Array<string | null> = []
  for (let i = 0; i < 60; i++) versions.push(s.score(reading(i), features(rnd))?.modelVersion ?? null)
  // Asked for at row 50 (on rows 0-49), first scoring row 53.
  assert.equal(started.length, 1)
  assert.deepEqual([started[0]!.key, started[0]!.sequence, started[0]!.trainedAt, started[0]!.samples, started[0]!.rows.length],
    ['temperature', 1, T0 + 50_000, 50, 50 * FEATURES])
  assert.deepEqual(versions.slice(49, 56), [null, null, null, null, 'temperature#1', 'temperature#1', 'temperature#1'])
  assert.deepEqual(taken, [1])
  assert.deepEqual(s.drainTrained().map(m => [m.version, m.trainedAt]), [['temperature#1', T0 + 50_000]])
  // The next is due 5 minutes of event time after the first was asked for (and 50 new rows): row 350.
  for (let i = 60; i < 350; i++) s.score(reading(i), features(rnd))
  assert.equal(started.length, 1)
  failNext = true
  for (let i = 350; i < 354; i++) assert.equal(s.score(reading(i), features(rnd))!.modelVersion, 'temperature#1')
  assert.equal(started.length, 2)
  assert.deepEqual(taken, [1, 2])
  assert.equal(s.trainingFailures, 1)
  // After a failure the next attempt comes at the next due time: 5 minutes and 350 new rows later (row 700).
  failNext = false
  for (let i = 354; i < 700; i++) s.score(reading(i), features(rnd))
  assert.equal(started.length, 2)
  for (let i = 700; i < 704; i++) s.score(reading(i), features(rnd))
  assert.equal(started.length, 3)
  assert.equal(s.score(reading(704), features(rnd))!.modelVersion, 'temperature#2')
  // clear() drops a fit under way: it is never taken.
  for (let i = 705; i < 2000; i++) s.score(reading(i), features(rnd))
  assert.equal(started.length, 4)
  const before = taken.length
  s.clear()
  assert.deepEqual(s.models(), [])
  assert.deepEqual(s.drainTrained(), [])
  assert.equal(taken.length, before)
})

test('retrain policy - models for 100,000 rows of one key: about one per 1000 rows at 1 s, 1 min and 5 min cadence', () => {
  const p = new RetrainPolicy(defaultForestOptions)
  // 1 s: first at row 50, then 5 minutes later (row 350, 350 rows), then the rows of the last training
  // renewed: 700, 1400, then every 1000 (16.7 minutes of event time).
  assert.equal(p.count(100_000, 1000), 102)
  // 1 min and 5 min: the interval always holds, the rows decide: 50, 100, 200, 400, 800, 1600, 2600, ...
  assert.equal(p.count(100_000, 60_000), 104)
  assert.equal(p.count(100_000, 300_000), 104)
  assert.equal(p.count(400_000, 300_000), 404)
  // The rule before (every 5 minutes of event time) trained 334, 19,990 and 99,950 models here.
  // Fast keys keep the 5-minute interval: 20 readings a second (a type of the embedded bench's fleet).
  assert.equal(p.count(24 * 3600 * 20, 50), 1 + Math.floor((24 * 3600 * 20 - 50) / 6000))
  // The rows needed: the last training's, at least minSamples, at most the window.
  assert.deepEqual([10, 50, 51, 350, 999, 1000, 5000].map(n => p.freshNeeded(n)), [50, 50, 51, 350, 999, 1000, 1000])
  const half = new RetrainPolicy({ ...defaultForestOptions, retrainFraction: 0.5 })
  assert.deepEqual([half.count(100_000, 1000), half.count(100_000, 300_000)], [202, 205])
  assert.equal(half.freshNeeded(1000), 500)
})

test('retrain policy - drives the scorer: the models trained are the policy count, inline and per key', () => {
  const rnd = createRandom(21)
  for (const [cadence, expected] of [[1000, 22], [60_000, 24], [300_000, 24]] as const) {
    const s = new ForestScorer({ scope: 'sensor', nEstimators: 2, maxSamples: 16, installAfterRows: 0 }, null, { retainTrained: false })
    for (let i = 0; i < 20_000; i++) {
      s.score(reading(0, { sensorId: 'a', ts: T0 + i * cadence }), features(rnd))
      s.score(reading(0, { sensorId: 'b', ts: T0 + i * cadence }), features(rnd))
    }
    assert.equal(s.policy.count(20_000, cadence), expected)
    assert.equal(s.modelsTrained, 2 * expected, `cadence ${cadence}`)
    // One live model per key, nothing else held: the old ones are garbage.
    assert.equal(s.size, 2)
    assert.deepEqual(s.models().map(m => m.version), [`a#${expected}`, `b#${expected}`])
    assert.equal(s.pendingTrained, 0)
    assert.deepEqual(s.drainTrained(), [])
  }
})

test('forest scorer - models kept for storage until drained, then only the current one per key', () => {
  const s = new ForestScorer({ nEstimators: 2, maxSamples: 16 })
  const rnd = createRandom(22)
  for (let i = 0; i < 3000; i++) s.score(reading(i), features(rnd))
  // Rows 50, 350, 700, 1400, 2400.
  assert.equal(s.pendingTrained, 5)
  assert.deepEqual(s.drainTrained().map(m => [m.version, m.samples, m.trainedAt - T0]),
    [['temperature#1', 50, 50_000], ['temperature#2', 350, 350_000], ['temperature#3', 700, 700_000], ['temperature#4', 1000, 1_400_000], ['temperature#5', 1000, 2_400_000]])
  assert.equal(s.pendingTrained, 0)
  assert.equal(s.modelsTrained, 5)
  assert.deepEqual(s.models().map(m => m.version), ['temperature#5'])
})

test('forest scorer - a restored model: the schedule goes on from its training time and rows', () => {
  const a = new ForestScorer({ nEstimators: 2, maxSamples: 16, installAfterRows: 0 })
  const rnd = createRandom(23)
  for (let i = 0; i < 800; i++) a.score(reading(i), features(rnd))
  const [, , m3] = a.drainTrained()
  assert.deepEqual([m3!.version, m3!.samples, m3!.trainedAt - T0], ['temperature#3', 700, 700_000])
  const b = new ForestScorer({ nEstimators: 2, maxSamples: 16, installAfterRows: 0 })
  b.restore([m3!])
  // Restored (trained at 700 s on 700 rows): the next needs 700 new rows (and 5 minutes): rows 800 to 1499.
  for (let i = 800; i < 1500; i++) assert.equal(b.score(reading(i), features(rnd))!.modelVersion, 'temperature#3')
  assert.equal(b.score(reading(1500), features(rnd))!.modelVersion, 'temperature#4')
})

test('forest scorer - inline training is deterministic: same stream, same seeds, same scores and versions', () => {
  const run = (seed = 42): Array<[string, number]> => {
    const s = new ForestScorer({ scope: 'sensor', nEstimators: 20, seed }, null, { retainTrained: false })
    const rnd = createRandom(24)
    const out: Array<[string, number]> = []
    for (let i = 0; i < 2500; i++) {
      for (const id of ['a', 'b']) {
        const r = s.score(reading(i, { sensorId: id }), features(rnd, i % 97 === 0 ? 8 : 0))
        if (r !== null) out.push([r.modelVersion, r.score])
      }
    }
    return out
  }
  const first = run()
  // Each key's first model scores from row 50 + installAfterRows (256).
  assert.equal(first.length, 2 * (2500 - 50 - 256))
  assert.deepEqual(run(), first)
  // Asked for at rows 50, 350, 700, 1400 and 2400 of each key; the fifth would score from row 2656.
  assert.equal(new Set(first.map(([v]) => v)).size, 2 * 4)
  // A model's seed comes from the base seed, its key and its number: another base seed, the same
  // schedule, other scores.
  const other = run(43)
  assert.deepEqual(other.map(([v]) => v), first.map(([v]) => v))
  assert.notDeepEqual(other.map(([, x]) => x), first.map(([, x]) => x))
})

/** The inline trainer, counting the fits it started. */
function countingTrainer (): ForestTrainer & { started: number } {
  return { started: 0, start (job) { this.started++; return inlineTrainer.start(job) } }
}

/** The schedule a key snapshot holds: count, head, fresh, sequence, lastTrainedAt, lastSamples, and whether a fit is pending. */
function scheduleOf (bytes: Uint8Array): number[] {
  const r = new SnapshotReader(bytes, 'forestKey')
  r.string('key')
  r.uint('features')
  const size = r.uint('trainingSize')
  const out = [r.uint('count'), r.uint('head'), r.uint('fresh'), r.uint('sequence'), r.f64('lastTrainedAt'), r.uint('lastSamples')]
  r.f32s('rows', new Float32Array(size * FEATURES), 0, (out[0] as number) * FEATURES)
  return [...out, r.bool('pending') ? 1 : 0]
}

test('forest scorer - snapshotKey / restoreKey: the window, the schedule and a pending fit come back; the same model installs at the same row', () => {
  const options = { minSamples: 20, trainingSize: 60, installAfterRows: 25, nEstimators: 5, retrainMs: 1000 }
  const rnd = createRandom(21)
  const rows = Array.from({ length: 300 }, (_, i) => features(rnd, i % 37 === 0 ? 8 : 0))
  const outcome = (s: ForestScorer, i: number): [number, boolean, string] | null => {
    const r = s.score(reading(i), rows[i] as Float32Array)
    return r === null ? null : [r.score, r.anomaly, r.modelVersion]
  }
  const a = new ForestScorer(options)
  const expected = rows.map((_, i) => outcome(a, i))
  // Fits asked for at rows 20, 46, 92 and 152 (each once the one before installed, 25 rows on; the
  // window full from 92: 60 rows); the cut is 8 rows into the last one's wait.
  const trainer = countingTrainer()
  const b = new ForestScorer(options, trainer)
  const cut = 160
  for (let i = 0; i < cut; i++) outcome(b, i)
  assert.equal(trainer.started - b.modelsTrained, 1, 'a fit pending')
  const bytes = b.snapshotKey('temperature') as Uint8Array
  assert.deepEqual(scheduleOf(bytes), [60, 40, 8, 3, T0 + 152_000, 60, 1])
  // Header 6; key 12; sizes 2; schedule 4 + 8 + 1; window 60 rows × 28; pending 1 + 1 + 14 (its version) + 8 + 4,
  // the 8 rows of its job the window overwrote since × 28; checksum 4.
  assert.equal(bytes.length, 6 + 12 + 2 + 13 + 60 * 28 + 28 + 8 * 28 + 4)
  for (const modelsFirst of [true, false]) {
    const restarted = countingTrainer()
    const c = new ForestScorer(options, restarted)
    if (modelsFirst) c.restore(b.models())
    c.restoreKey('temperature', bytes)
    if (!modelsFirst) c.restore(b.models())
    assert.equal(restarted.started, 1, 'the pending fit started again')
    assert.deepEqual(rows.slice(cut).map((_, k) => outcome(c, cut + k)), expected.slice(cut))
    assert.deepEqual(c.snapshotKey('temperature'), a.snapshotKey('temperature'))
    assert.deepEqual(c.keys(), ['temperature'])
  }
  // A model newer than the snapshot (stored after it): the schedule goes on from that model, whichever
  // comes first; the pending fit is dropped.
  const late = a.models()[0] as TrainedModel
  assert.equal(late.version, 'temperature#6')
  const first = new ForestScorer(options)
  first.restore([late])
  first.restoreKey('temperature', bytes)
  const second = new ForestScorer(options)
  second.restoreKey('temperature', bytes)
  second.restore([late])
  assert.deepEqual(first.snapshotKey('temperature'), second.snapshotKey('temperature'))
  assert.deepEqual(scheduleOf(first.snapshotKey('temperature') as Uint8Array), [60, 40, 0, 6, late.trainedAt, late.samples, 0])
  assert.deepEqual(first.models(), [late])
})
