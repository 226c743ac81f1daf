// Parity with scikit-learn, from the fixtures scripts/sklearn-fixtures.py writes (see its docstring).
// 1. Exact scoring: sklearn's fitted trees, loaded with fromJSON, must give sklearn's score_samples
//    (to 1e-9, in practice ~1e-16), decision_function and predict.
// 2. Training: our own fit (different random numbers) must land inside sklearn's seed-to-seed band.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRandom } from '../../domain/index.ts'
import { IsolationForest, type IsolationForestModel } from './index.ts'

type JsonNumber = number | null | 'Infinity' | '-Infinity'

interface Datasets { datasets: Record<string, { nFeatures: number, nRows: number, data: JsonNumber[] }> }
interface ScoringCase {
  name: string
  dataset: string
  model: IsolationForestModel
  probes: JsonNumber[]
  scoreSamples: number[]
  decisionFunction: number[]
  predict: number[]
  probeScoreSamples: number[]
  probeDecisionFunction: number[]
  probePredict: number[]
}
interface TrainingCase {
  dataset: string
  contamination: number
  reference: { offset: number, scoreSamples: number[], flagged: number[] }
  band: {
    spearman: { min: number, median: number }
    overlap: { min: number, median: number }
    offset: { min: number, max: number }
    offset200: { min: number, max: number, mean: number, sd: number }
  }
}

function fixture<T> (name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as T
}

/** JSON has no NaN or infinities: the fixtures write null and strings. */
function decode (values: JsonNumber[]): Float64Array {
  return Float64Array.from(values, v => v === null ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v)
}

/** Ranks 1..n, ties get their average rank (as scipy's rankdata). */
function ranks (x: ArrayLike<number>): Float64Array {
  const idx = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => (x[a] as number) - (x[b] as number))
  const r = new Float64Array(x.length)
  for (let i = 0; i < idx.length;) {
    let j = i
    while (j + 1 < idx.length && x[idx[j + 1] as number] === x[idx[i] as number]) j++
    for (let k = i; k <= j; k++) r[idx[k] as number] = (i + j) / 2 + 1
    i = j + 1
  }
  return r
}

function spearman (a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ra = ranks(a)
  const rb = ranks(b)
  const n = ra.length
  let ma = 0
  let mb = 0
  for (let i = 0; i < n; i++) { ma += ra[i] as number; mb += rb[i] as number }
  ma /= n
  mb /= n
  let sab = 0
  let saa = 0
  let sbb = 0
  for (let i = 0; i < n; i++) {
    const da = (ra[i] as number) - ma
    const db = (rb[i] as number) - mb
    sab += da * db
    saa += da * da
    sbb += db * db
  }
  return sab / Math.sqrt(saa * sbb)
}

const datasets = fixture<Datasets>('datasets.json').datasets
const scoring = fixture<{ cases: ScoringCase[] }>('sklearn-scoring.json').cases
const training = fixture<{ cases: TrainingCase[] }>('sklearn-training.json').cases

function dataset (name: string): { data: Float64Array, nFeatures: number } {
  const ds = datasets[name]
  assert.ok(ds !== undefined, `dataset ${name}`)
  return { data: decode(ds.data), nFeatures: ds.nFeatures }
}

for (const c of scoring) {
  test(`sklearn exact scoring - ${c.name}`, t => {
    const { data } = dataset(c.dataset)
    const forest = IsolationForest.fromJSON(c.model)
    assert.equal(forest.offset, c.model.offset)
    assert.deepEqual(forest.toJSON(), c.model, 'toJSON gives back the model it was read from')
    let maxDelta = 0
    for (const [rows, expScores, expDecision, expPredict] of [
      [data, c.scoreSamples, c.decisionFunction, c.predict],
      [decode(c.probes), c.probeScoreSamples, c.probeDecisionFunction, c.probePredict]
    ] as const) {
      const scores = forest.scoreSamples(rows)
      const decision = forest.decisionFunction(rows)
      const predict = forest.predict(rows)
      assert.equal(scores.length, expScores.length)
      for (let i = 0; i < scores.length; i++) {
        const delta = Math.abs((scores[i] as number) - (expScores[i] as number))
        maxDelta = Math.max(maxDelta, delta)
        assert.ok(delta <= 1e-9, `row ${i}: score ${scores[i]} vs sklearn ${expScores[i]}`)
        assert.ok(Math.abs((decision[i] as number) - (expDecision[i] as number)) <= 1e-9, `row ${i}: decision ${decision[i]} vs sklearn ${expDecision[i]}`)
        // One row at a time is bit-for-bit the batch.
        assert.equal(forest.scoreSample(rows, i * forest.nFeatures), scores[i])
      }
      assert.deepEqual(Array.from(predict), expPredict, 'predict')
    }
    t.diagnostic(`max |score - sklearn| = ${maxDelta.toExponential(2)}`)
  })
}

// Fixed a priori (not picked after looking at the results).
const SEEDS = [1, 2, 3]

// For every seed: Spearman rho and the flagged overlap must reach the min of sklearn's band over 20
// seeds. The offset is checked two-sided, where the [min, max] of 20 seeds is too narrow a band: a
// forest drawn from exactly sklearn's distribution lands outside it with probability 2/21 per seed,
// and dups seeds 2 and 3 do (-0.5219, -0.5220 vs max -0.5242: sklearn's 20-seed max happens to sit
// only 0.9 sd above its mean). So the offset must lie in sklearn's range over 200 seeds (2/201);
// the 20-seed verdict is printed. Over 200 seeds of ours and 200 of sklearn's, the offsets are
// indistinguishable (dups: mean -0.52991 vs -0.52996, sd 0.0060 vs 0.0061, KS p = 0.92).
for (const c of training) {
  test(`sklearn training parity - ${c.dataset}: inside sklearn's seed-to-seed band`, t => {
    const { data, nFeatures } = dataset(c.dataset)
    const flaggedRef = new Set(c.reference.flagged)
    for (const seed of SEEDS) {
      const forest = IsolationForest.fit(data, nFeatures, { contamination: c.contamination, random: createRandom(seed) })
      const scores = forest.scoreSamples(data)
      const predict = forest.predict(data)
      const rho = spearman(scores, c.reference.scoreSamples)
      let flagged = 0
      let overlap = 0
      for (let i = 0; i < predict.length; i++) {
        if (predict[i] === -1) {
          flagged++
          if (flaggedRef.has(i)) overlap++
        }
      }
      const in20 = forest.offset >= c.band.offset.min && forest.offset <= c.band.offset.max
      const o200 = c.band.offset200
      t.diagnostic(`seed ${seed}: rho ${rho.toFixed(4)} (sklearn min ${c.band.spearman.min.toFixed(4)}, median ${c.band.spearman.median.toFixed(4)}), ` +
        `overlap ${overlap}/${flaggedRef.size}, ${flagged} flagged (sklearn min ${c.band.overlap.min}, median ${c.band.overlap.median}), ` +
        `offset ${forest.offset.toFixed(4)} (sklearn seed 42: ${c.reference.offset.toFixed(4)}; ${in20 ? 'inside' : 'OUTSIDE'} sklearn's 20-seed [${c.band.offset.min.toFixed(4)}, ${c.band.offset.max.toFixed(4)}]; ` +
        `200-seed [${o200.min.toFixed(4)}, ${o200.max.toFixed(4)}], mean ${o200.mean.toFixed(4)}, sd ${o200.sd.toFixed(4)})`)
      assert.ok(rho >= c.band.spearman.min, `seed ${seed}: Spearman rho ${rho} below sklearn's band min ${c.band.spearman.min}`)
      assert.ok(overlap >= c.band.overlap.min, `seed ${seed}: overlap ${overlap} below sklearn's band min ${c.band.overlap.min}`)
      assert.ok(forest.offset >= o200.min && forest.offset <= o200.max, `seed ${seed}: offset ${forest.offset} outside sklearn's 200-seed [${o200.min}, ${o200.max}]`)
    }
  })
}
