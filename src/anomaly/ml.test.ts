import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom, type Reading } from '../domain/index.ts'
import { AnomalyConfigError, FEATURES, ForestScorer, IsolationForest, type FittedForest, type ForestTrainer, type TrainingJob } from './index.ts'

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
  const s = new ForestScorer({ nEstimators: 20 })
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
    const s = new ForestScorer()
    const rnd = createRandom(11)
    for (let i = 0; i < 1000; i++) s.score(reading(i), features(rnd))
    const out: Array<[number, boolean]> = []
    for (let i = 0; i < 200; i++) {
      const r = s.score(reading(1000 + i), features(rnd, i % 20 === 0 ? 12 : 0))!
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
  assert.ok(outliers.filter(([, f]) => f).length >= 8)
  assert.ok(normal.filter(([, f]) => f).length <= 25)
  assert.deepEqual(run(), out)
})

test('forest scorer - per-sensor scope, restore keeps the newest per key, clear drops everything', () => {
  const s = new ForestScorer({ scope: 'sensor', minSamples: 10, nEstimators: 5 })
  const rnd = createRandom(3)
  for (let i = 0; i < 11; i++) s.score(reading(i, { sensorId: 'a' }), features(rnd))
  const [a1] = s.drainTrained()
  assert.equal(a1!.version, 'a#1')
  const t = new ForestScorer({ scope: 'sensor', minSamples: 10, nEstimators: 5 })
  t.restore([a1!, { ...a1!, sequence: 0, version: 'a#0' }])
  assert.deepEqual(t.models().map(m => m.version), ['a#1'])
  assert.equal(t.score(reading(20, { sensorId: 'a' }), features(rnd))!.modelVersion, 'a#1')
  t.clear()
  assert.deepEqual(t.models(), [])
  // A named instance (one of several workers) suffixes its versions.
  const w = new ForestScorer({ scope: 'sensor', minSamples: 10, nEstimators: 5, instance: 'host-42' })
  for (let i = 0; i < 11; i++) w.score(reading(i, { sensorId: 'a' }), features(rnd))
  assert.deepEqual(w.drainTrained().map(m => m.version), ['a#1@host-42'])
})

test('forest scorer - bad options throw AnomalyConfigError', () => {
  for (const bad of [{ scope: 'site' as 'type' }, { minSamples: 1 }, { trainingSize: 10, minSamples: 50 }, { retrainMs: 0 },
    { contamination: 0.6 }, { nEstimators: 0 }, { maxSamples: 1.5 }, { seed: NaN }, { instance: 'a b' }]) {
    assert.throws(() => new ForestScorer(bad), AnomalyConfigError, JSON.stringify(bad))
  }
})

test('forest scorer - background trainer: the old model scores until the new one arrives; clear drops late results', async () => {
  const jobs: Array<{ job: TrainingJob, resolve: (f: FittedForest) => void, reject: (e: Error) => void }> = []
  const trainer: ForestTrainer = {
    async train (job) { return await new Promise((resolve, reject) => { jobs.push({ job, resolve, reject }) }) }
  }
  const s = new ForestScorer({ nEstimators: 10 }, trainer)
  const rnd = createRandom(9)
  for (let i = 0; i < 50; i++) s.score(reading(i), features(rnd))
  // Due at reading 50: asked for, not there yet.
  assert.equal(s.score(reading(50), features(rnd)), null)
  assert.equal(jobs.length, 1)
  const { job } = jobs[0]!
  assert.deepEqual([job.key, job.sequence, job.trainedAt, job.samples, job.rows.length, job.nEstimators, job.maxSamples, job.contamination],
    ['temperature', 1, T0 + 50_000, 50, 50 * FEATURES, 10, 256, 0.05])
  // No second job while one runs.
  assert.equal(s.score(reading(51), features(rnd)), null)
  assert.equal(jobs.length, 1)
  // The same fit inline, from the job: what a thread would return.
  const forest = IsolationForest.fit(job.rows, FEATURES, { nEstimators: 10, contamination: 0.05, random: createRandom(job.seed) })
  jobs[0]!.resolve({ forest })
  await s.settled()
  assert.equal(s.score(reading(52), features(rnd))!.modelVersion, 'temperature#1')
  assert.deepEqual(s.drainTrained().map(m => [m.version, m.trainedAt]), [['temperature#1', T0 + 50_000]])
  // The next is due 5 minutes of event time after the first was ASKED for; a failure is counted,
  // the current model keeps scoring, and the next attempt comes at the next due time.
  s.score(reading(350), features(rnd))
  assert.equal(jobs.length, 2)
  jobs[1]!.reject(new Error('boom'))
  await s.settled()
  assert.equal(s.trainingFailures, 1)
  assert.equal(s.score(reading(351), features(rnd))!.modelVersion, 'temperature#1')
  assert.equal(jobs.length, 2)
  s.score(reading(650), features(rnd))
  assert.equal(jobs.length, 3)
  assert.equal(jobs[2]!.job.sequence, 2)
  // clear() while a job runs: its result is dropped.
  s.clear()
  jobs[2]!.resolve({ forest })
  await s.settled()
  assert.deepEqual(s.models(), [])
  assert.deepEqual(s.drainTrained(), [])
})
