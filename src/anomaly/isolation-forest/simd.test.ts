import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom, type Random } from '../../domain/index.ts'
import { IsolationForest, float32SplitBound } from './index.ts'
import { parseModel } from './model.ts'
import { virtualize } from './simd.ts'
import { assembleKernels } from './simd-assemble.ts'
import { KERNELS } from './simd-wasm.generated.ts'

/** Rows of a drifting sensor-like signal with spikes, ties and a near-constant column. */
function rows (n: number, d: number, random: Random): Float64Array {
  const x = new Float64Array(n * d)
  let level = 0
  for (let i = 0; i < n; i++) {
    level = 0.9 * level + random.normal()
    for (let f = 0; f < d; f++) {
      const spike = random.next() < 0.02 ? 8 * random.normal() : 0
      x[i * d + f] = f === d - 1 && d > 2 ? Math.round(random.next()) : Math.round((level * (f + 1) + random.normal() + spike) * 64) / 64
    }
  }
  return x
}

/** The next float64 above x (below for negative direction). */
function nextUp (x: number): number {
  const a = new Float64Array([x])
  const b = new BigInt64Array(a.buffer)
  if (x === 0) return Number.MIN_VALUE
  b[0] = x > 0 ? b[0]! + 1n : b[0]! - 1n
  return a[0]!
}

/** Rows with each split's threshold, its float32 bound and their neighbours on the split's feature, plus extremes and NaN. */
function crafted (forest: IsolationForest, base: Float64Array, d: number): Float64Array {
  const out: number[] = []
  let k = 0
  const row = (f: number, v: number): void => {
    const r = (k++ * 7919) % (base.length / d)
    for (let g = 0; g < d; g++) out.push(g === f ? v : base[r * d + g]!)
  }
  for (const t of forest.toJSON().trees) {
    for (let i = 0; i < t.left.length; i++) {
      if (t.left[i] === -1) continue
      const th = t.threshold[i]!
      const bound = float32SplitBound(th)
      for (const v of [th, bound, nextUp(bound), -nextUp(-bound), Math.fround(th), nextUp(Math.fround(th))]) row(t.feature[i]!, v)
    }
  }
  for (let f = 0; f < d; f++) {
    for (const v of [0, -0, Number.MIN_VALUE, -Number.MAX_VALUE, Number.MAX_VALUE, Infinity, -Infinity, Number.NaN, 1e300, -1e300]) row(f, v)
  }
  return Float64Array.from(out)
}

/** `base` followed by the crafted rows. */
function withCrafted (forest: IsolationForest, base: Float64Array, d: number): Float64Array {
  const extra = crafted(forest, base, d)
  const x = new Float64Array(base.length + extra.length)
  x.set(base)
  x.set(extra, base.length)
  return x
}

/** Scores with the JS kernel: batches below the SIMD size. */
function jsScores (forest: IsolationForest, x: ArrayLike<number> & { subarray?: unknown }, d: number): Float64Array {
  const n = x.length / d
  const out = new Float64Array(n)
  for (let b = 0; b < n; b += 1000) {
    const m = Math.min(1000, n - b)
    const part = (x as Float64Array).subarray(b * d, (b + m) * d)
    out.set(forest.scoreSamples(part), b)
  }
  return out
}

function assertSameScores (forest: IsolationForest, x: Float64Array | Float32Array, d: number, what: string): void {
  const expected = jsScores(forest, x, d)
  const got = forest.scoreSamples(x)
  let bad = 0
  let first = -1
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(expected[i], got[i])) {
      bad++
      if (first < 0) first = i
    }
  }
  assert.equal(bad, 0, `${what}: ${bad} of ${expected.length} rows differ from the JS kernel (first: row ${first}, ${expected[first]} vs ${got[first]})`)
}

test('simd-wasm.generated.ts holds exactly the kernels simd-kernel.ts assembles to (run scripts/gen-forest-wasm.ts after a change)', async () => {
  const assembled = await assembleKernels()
  assert.equal(KERNELS.length, assembled.length, 'one kernel per feature count')
  assembled.forEach((bytes, i) => assert.equal(KERNELS[i], Buffer.from(bytes).toString('base64'), `kernel for d = ${i + 1}`))
})

test('SIMD batch scoring equals the JS kernel bit for bit: 100 trees, 7 features, 60,000 rows plus every split threshold, its float32 bound and neighbours, extremes and NaN', () => {
  const d = 7
  const train = rows(1000, d, createRandom(1))
  const forest = IsolationForest.fit(train, d, { contamination: 0.05, random: createRandom(42) })
  const base = rows(60_000, d, createRandom(2))
  const x = withCrafted(forest, base, d)
  assertSameScores(forest, x, d, 'float64 rows')
  assertSameScores(forest, new Float32Array(x), d, 'float32 rows')
  const decision = forest.decisionFunction(x)
  const predicted = forest.predict(x)
  const js = jsScores(forest, x, d)
  for (let i = 0; i < js.length; i += 997) {
    assert.equal(decision[i], js[i]! - forest.offset, `decision_function row ${i}`)
    assert.equal(predicted[i], js[i]! - forest.offset < 0 ? -1 : 1, `predict row ${i}`)
  }
})

test('SIMD batch scoring equals the JS kernel for 1 to 8 features, tree counts not a multiple of 4, 16 to 512 samples per tree', () => {
  for (const [d, nEstimators, maxSamples] of [[1, 10, 256], [2, 37, 256], [3, 100, 64], [5, 51, 256], [8, 100, 256], [8, 13, 512], [4, 7, 16]] as const) {
    const random = createRandom(d * 1000 + nEstimators)
    const forest = IsolationForest.fit(rows(maxSamples * 4, d, random), d, { nEstimators, maxSamples, random: createRandom(nEstimators) })
    const base = rows(8192, d, random)
    const x = withCrafted(forest, base, d)
    assertSameScores(forest, x, d, `d=${d} trees=${nEstimators} maxSamples=${maxSamples}`)
  }
})

test('trees with more than 128 leaves are split into virtual trees of at most 128 leaves, and still score exactly', () => {
  const d = 3
  const forest = IsolationForest.fit(rows(4000, d, createRandom(5)), d, { nEstimators: 20, maxSamples: 512, random: createRandom(6) })
  const trees = parseModel(forest.toJSON()).trees
  const leavesOf = (left: ArrayLike<number>): number => Array.from(left).filter(l => l === -1).length
  const big = trees.filter(t => leavesOf(t.left) > 128).length
  assert.ok(big > 0, `the forest has trees over 128 leaves (${big})`)
  const virtual = virtualize(trees)
  assert.ok(virtual.length > trees.length, `${virtual.length} virtual trees for ${trees.length}`)
  for (const v of virtual) assert.ok(leavesOf(v.left) <= 128, `a virtual tree has ${leavesOf(v.left)} leaves`)
  // Leaves worth +0 aside, the virtual trees hold exactly the original leaves' path lengths.
  const real = (vs: typeof virtual): number[] => vs.flatMap(v => Array.from(v.value).filter((x, i) => v.left[i] === -1 && x !== 0)).sort((a, b) => a - b)
  const originals = virtualize(trees.map(t => ({ ...t }))).length
  assert.equal(originals, virtual.length, 'deterministic')
  assert.equal(real(virtual).length, trees.reduce((n, t) => n + leavesOf(t.left), 0), 'every real leaf once')
  const base = rows(8192, d, createRandom(7))
  const x = withCrafted(forest, base, d)
  assertSameScores(forest, x, d, 'forest with big trees')
})

test('a forest the kernel cannot take (more than 8 features) scores large batches with the JS kernel', () => {
  const d = 9
  const forest = IsolationForest.fit(rows(500, d, createRandom(8)), d, { nEstimators: 10, random: createRandom(9) })
  assertSameScores(forest, rows(5000, d, createRandom(10)), d, '9 features')
})

test('forests scoring in turn share the kernel without mixing their layouts', () => {
  const d = 7
  const a = IsolationForest.fit(rows(1000, d, createRandom(11)), d, { random: createRandom(12) })
  const b = IsolationForest.fit(rows(1000, d, createRandom(13)), d, { random: createRandom(14) })
  const x = rows(5000, d, createRandom(15))
  const ja = jsScores(a, x, d)
  const jb = jsScores(b, x, d)
  for (let round = 0; round < 3; round++) {
    assert.deepEqual(Array.from(a.scoreSamples(x)), Array.from(ja), `forest a, round ${round}`)
    assert.deepEqual(Array.from(b.scoreSamples(x)), Array.from(jb), `forest b, round ${round}`)
  }
})
