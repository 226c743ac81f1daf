import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom, type Random } from '../../domain/index.ts'
import { AnomalyStateError } from '../errors.ts'
import { averagePathLength, float32SplitBound, IsolationForest, linearPercentile, type IsolationForestModel } from './index.ts'

function close (actual: number, expected: number, tol: number, msg?: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${msg ?? ''} expected ${expected}, got ${actual}`)
}

/** n rows x d standard normal features, row-major. */
function gaussian (n: number, d: number, random: Random): Float64Array {
  const x = new Float64Array(n * d)
  for (let i = 0; i < x.length; i++) x[i] = random.normal()
  return x
}

function maxDepth (t: IsolationForestModel['trees'][number]): number {
  const depth = [0]
  let max = 0
  for (let i = 0; i < t.left.length; i++) {
    const d = depth[i] as number
    if (t.left[i] !== -1) {
      depth[t.left[i] as number] = d + 1
      depth[t.right[i] as number] = d + 1
    } else if (d > max) {
      max = d
    }
  }
  return max
}

test('averagePathLength - sklearn values', () => {
  assert.equal(averagePathLength(0), 0)
  assert.equal(averagePathLength(1), 0)
  assert.equal(averagePathLength(2), 1)
  close(averagePathLength(3), 1.207392, 1e-6)
  close(averagePathLength(4), 1.851656, 1e-6)
  close(averagePathLength(256), 10.244770, 1e-6)
  close(averagePathLength(1000), 12.969941, 1e-6)
  // The formula itself: 2(ln(n-1) + γ) - 2(n-1)/n.
  assert.equal(averagePathLength(256), 2 * (Math.log(255) + 0.5772156649015329) - 2 * 255 / 256)
})

test('linearPercentile - numpy linear interpolation', () => {
  // n = 1000, q = 5: virtual index 999 * 0.05 = 49.95, so s49 + 0.95 (s50 - s49), taken from s50 (weight >= 0.5).
  const sorted = Float64Array.from({ length: 1000 }, (_, i) => i * i)
  const v = 999 * (5 / 100)
  assert.equal(v, 49.95)
  const g = v - 49
  assert.equal(linearPercentile(sorted, 5), 2500 - (2500 - 2401) * (1 - g))
  close(linearPercentile(sorted, 5), 2401 + 0.95 * 99, 1e-9)
  // Weight < 0.5 interpolates from below: n = 11, q = 12: index 1.2.
  const s11 = Float64Array.from([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
  assert.equal(linearPercentile(s11, 12), 10 + 10 * (10 * 0.12 - 1))
  assert.equal(linearPercentile(s11, 50), 50)
  assert.equal(linearPercentile(s11, 0), 0)
  assert.equal(linearPercentile(s11, 100), 100)
  assert.equal(linearPercentile([7], 5), 7)
  assert.throws(() => linearPercentile([], 5), RangeError)
})

test('float32SplitBound - float32(x) <= t exactly when x <= bound', () => {
  const r = createRandom(9)
  const f32 = new Float32Array(1)
  const candidates = (t: number, b: number): number[] => {
    const near = [b, t, Math.fround(t), b * (1 + 2 ** -52), b * (1 - 2 ** -52), b + Number.MIN_VALUE, b - Number.MIN_VALUE]
    f32[0] = t
    near.push(f32[0] as number)
    return near
  }
  const ts: number[] = [0, -0, 1, -1, 2 ** -149, -(2 ** -149), 2 ** -126, 3.4028234663852886e38, -3.4028234663852886e38, 1e300, -1e300, 0.1, 21.25]
  for (let i = 0; i < 20000; i++) {
    const scale = 10 ** (r.int(20) - 10)
    const v = (r.next() * 2 - 1) * scale
    ts.push(v, Math.fround(v), (Math.fround(v) + Math.fround(Math.fround(v) * (1 + 2 ** -23))) / 2)
  }
  for (const t of ts) {
    const b = float32SplitBound(t)
    for (const x of candidates(t, b)) {
      if (!Number.isFinite(x)) continue
      assert.equal(Math.fround(x) <= t, x <= b, `t ${t}, x ${x}, bound ${b}`)
    }
  }
  assert.equal(float32SplitBound(Infinity), Infinity)
})

test('fit - maxSamples rules and the depth limit', () => {
  const r = createRandom(1)
  const small = gaussian(100, 3, r)
  const big = gaussian(1000, 3, r)
  assert.equal(IsolationForest.fit(small, 3, { random: createRandom(1) }).maxSamples, 100)
  assert.equal(IsolationForest.fit(big, 3, { random: createRandom(1) }).maxSamples, 256)
  assert.equal(IsolationForest.fit(big, 3, { maxSamples: 'auto', random: createRandom(1) }).maxSamples, 256)
  assert.equal(IsolationForest.fit(big, 3, { maxSamples: 5000, random: createRandom(1) }).maxSamples, 1000)
  assert.equal(IsolationForest.fit(big, 3, { maxSamples: 64, random: createRandom(1) }).maxSamples, 64)
  for (const [data, ms, limit] of [[big, 256, 8], [big, 1000, 10], [big, 64, 6], [small, 100, 7], [big, 2, 1]] as const) {
    const f = IsolationForest.fit(data, 3, { maxSamples: ms, nEstimators: 20, random: createRandom(2) })
    const json = f.toJSON()
    assert.equal(json.trees.length, 20)
    for (const t of json.trees) {
      assert.equal(t.nodeSamples[0], ms, 'the root holds the whole subsample')
      assert.ok(maxDepth(t) <= limit, `ψ = ${ms}: depth ${maxDepth(t)} > ${limit}`)
    }
    // Deep enough trees reach the limit.
    assert.ok(json.trees.some(t => maxDepth(t) === limit), `ψ = ${ms}: some tree reaches depth ${limit}`)
  }
  const one = IsolationForest.fit([1, 2, 3], 3, { contamination: 0.05, random: createRandom(1) })
  assert.equal(one.maxSamples, 1)
  assert.equal(one.scoreSample([1, 2, 3]), -0.5, 'c(1) = 0: sklearn forces the score to -0.5')
  assert.equal(one.offset, -0.5)
  assert.deepEqual(Array.from(one.predict([1, 2, 3, 100, 100, 100])), [1, 1])
})

test('fit - deterministic for a seed, different across seeds, default options', () => {
  const data = gaussian(500, 4, createRandom(3))
  const a = IsolationForest.fit(data, 4, { contamination: 0.05, random: createRandom(42) })
  const b = IsolationForest.fit(data, 4, { contamination: 0.05, random: createRandom(42) })
  const c = IsolationForest.fit(data, 4, { contamination: 0.05, random: createRandom(43) })
  assert.deepEqual(a.toJSON(), b.toJSON())
  assert.deepEqual(a.scoreSamples(data), b.scoreSamples(data))
  assert.notDeepEqual(a.toJSON(), c.toJSON())
  const d = IsolationForest.fit(data, 4, { random: createRandom(42) })
  assert.equal(d.nEstimators, 100)
  assert.equal(d.nFeatures, 4)
  assert.equal(d.offset, -0.5, "contamination 'auto'")
})

test('fit - offset is the linear percentile of the training scores', () => {
  const data = gaussian(1000, 7, createRandom(4))
  for (const contamination of [0.05, 0.1, 0.5, 0.0123]) {
    const f = IsolationForest.fit(data, 7, { contamination, random: createRandom(5) })
    const sorted = f.scoreSamples(data).sort()
    assert.equal(f.offset, linearPercentile(sorted, 100 * contamination))
    const flagged = f.predict(data).reduce((n, p) => n + (p === -1 ? 1 : 0), 0)
    // Ties aside, about contamination * n rows are below the percentile.
    assert.ok(Math.abs(flagged - contamination * 1000) <= 1, `contamination ${contamination}: ${flagged} flagged`)
  }
})

test('fit - constant data: every tree is one leaf, every score the same', () => {
  const data = new Float64Array(300 * 3).fill(2.5)
  const f = IsolationForest.fit(data, 3, { contamination: 0.05, random: createRandom(1) })
  for (const t of f.toJSON().trees) {
    assert.deepEqual(t.left, [-1])
    assert.deepEqual(t.nodeSamples, [256])
  }
  const scores = f.scoreSamples(data)
  for (const s of scores) assert.equal(s, scores[0])
  close(scores[0] as number, -0.5, 1e-12, 'path length c(ψ) everywhere')
  assert.equal(f.offset, scores[0])
  // decision exactly 0 is an inlier.
  assert.ok(f.predict(data).every(p => p === 1), 'all inliers')
  assert.deepEqual(Array.from(f.explain([2.5, 2.5, 2.5], new Float64Array(3))), [0, 0, 0])
  // Different rows score the same too: no split to separate them.
  assert.equal(f.scoreSample([100, -100, 7]), scores[0])
})

test('fit - a feature constant everywhere is never split on; duplicate rows end in leaves', () => {
  const r = createRandom(6)
  const data: number[] = []
  for (let i = 0; i < 400; i++) data.push(r.int(3), 5, r.int(4))
  const f = IsolationForest.fit(data, 3, { random: createRandom(7) })
  const json = f.toJSON()
  for (const t of json.trees) {
    for (let i = 0; i < t.left.length; i++) {
      if (t.left[i] !== -1) assert.notEqual(t.feature[i], 1)
    }
  }
  // 12 distinct rows: leaves with several (duplicate) rows below the depth limit.
  assert.ok(json.trees.some(t => t.left.some((l, i) => l === -1 && (t.nodeSamples[i] as number) > 1)), 'leaves of duplicates')
})

test('predict - a decision of exactly 0 is an inlier', () => {
  const data = gaussian(300, 2, createRandom(8))
  const f = IsolationForest.fit(data, 2, { random: createRandom(8) })
  const row = [0.3, -0.2]
  const s = f.scoreSample(row)
  const at = IsolationForest.fromJSON({ ...f.toJSON(), offset: s })
  assert.equal(at.decisionFunction(row)[0], 0)
  assert.deepEqual(Array.from(at.predict(row)), [1])
  const above = IsolationForest.fromJSON({ ...f.toJSON(), offset: s + 1e-12 })
  assert.deepEqual(Array.from(above.predict(row)), [-1])
})

test('scoring - input types, out buffers, single rows and blocks agree bit for bit', () => {
  const r = createRandom(10)
  const train = gaussian(1000, 7, r)
  const f = IsolationForest.fit(train, 7, { contamination: 0.05, random: createRandom(10) })
  const rows = gaussian(1000, 7, r) // several scoring blocks and a ragged end
  const batch = f.scoreSamples(rows)
  assert.equal(batch.length, 1000)
  const asF32 = Float32Array.from(rows)
  const f32Scores = f.scoreSamples(asF32)
  const fromArray = f.scoreSamples(Array.from(asF32))
  assert.deepEqual(f32Scores, fromArray)
  // float64 input is cast to float32 like sklearn does: same as the float32 input.
  assert.deepEqual(batch, f32Scores)
  for (let i = 0; i < 1000; i++) assert.equal(f.scoreSample(rows, i * 7), batch[i])
  for (const s of batch) assert.ok(s >= -1 && s < 0, `score ${s} in [-1, 0)`)
  const out = new Float64Array(1200).fill(9)
  assert.equal(f.scoreSamples(rows, out), out)
  assert.deepEqual(out.subarray(0, 1000), batch)
  assert.equal(out[1000], 9)
  const dec = f.decisionFunction(rows)
  for (let i = 0; i < 1000; i++) assert.equal(dec[i], (batch[i] as number) - f.offset)
  const pred = f.predict(rows, new Int8Array(1000))
  for (let i = 0; i < 1000; i++) assert.equal(pred[i], (dec[i] as number) < 0 ? -1 : 1)
  assert.throws(() => f.scoreSamples(rows, new Float64Array(10)), RangeError)
  assert.throws(() => f.predict(rows, new Int8Array(10)), RangeError)
  assert.throws(() => f.scoreSamples(rows.subarray(0, 10)), RangeError)
  assert.throws(() => f.scoreSample([1, 2, 3]), RangeError)
  assert.throws(() => f.scoreSample(rows, 7 * 1000 - 3), RangeError)
  assert.deepEqual(f.scoreSamples([]), new Float64Array(0))
  // An outlier scores lower than the centre.
  assert.ok(f.scoreSample([8, 8, 8, 8, 8, 8, 8]) < f.scoreSample([0, 0, 0, 0, 0, 0, 0]), 'outlier below centre')
})

/** sklearn's scoring, literally: walk each tree of the JSON model with float32(x) <= threshold. */
function referenceScore (m: IsolationForestModel, row: ArrayLike<number>, start: number): number {
  let sum = 0
  for (const t of m.trees) {
    let g = 0
    let depth = 0
    while (t.left[g] !== -1) {
      const x = Math.fround(row[start + (t.feature[g] as number)] as number)
      g = (x <= (t.threshold[g] as number) ? t.left[g] : t.right[g]) as number
      depth++
    }
    sum += (depth + 1) + averagePathLength(t.nodeSamples[g] as number) - 1
  }
  return -(2 ** -(sum / (m.trees.length * averagePathLength(m.maxSamples))))
}

test('scoring - the compiled trees score exactly like a literal walk, at and around every threshold', () => {
  const r = createRandom(15)
  const d = 4
  const f = IsolationForest.fit(gaussian(1000, d, r), d, { contamination: 0.05, random: createRandom(15) })
  const m = f.toJSON()
  const rows: number[] = []
  for (let i = 0; i < 3000; i++) for (let j = 0; j < d; j++) rows.push(r.normal() * 2)
  // For each split: a row with that feature at the threshold, at the float32 values around it, and
  // at the doubles just around those, so both the float32 rounding and the rank lookup are probed.
  const f32 = new Float32Array(1)
  const i32 = new Int32Array(f32.buffer)
  for (const t of m.trees.slice(0, 30)) {
    for (let g = 0; g < t.left.length; g++) {
      if (t.left[g] === -1) continue
      const thr = t.threshold[g] as number
      f32[0] = thr
      const t32 = f32[0] as number
      i32[0] = (i32[0] as number) + 1
      const up = f32[0] as number
      i32[0] = (i32[0] as number) - 2
      const down = f32[0] as number
      for (const v of [thr, t32, up, down, (t32 + up) / 2, (t32 + down) / 2, thr * (1 + 2 ** -52), thr * (1 - 2 ** -52)]) {
        for (let j = 0; j < d; j++) rows.push(j === t.feature[g] ? v : r.normal())
      }
    }
  }
  const scores = f.scoreSamples(rows)
  let n = 0
  for (let i = 0; i < scores.length; i++) {
    assert.equal(scores[i], referenceScore(m, rows, i * d), `row ${i}`)
    assert.equal(f.scoreSample(rows, i * d), scores[i], `row ${i} alone`)
    n++
  }
  assert.ok(n > 5000, `${n} rows`)
})

test('scoring - interleaving two forests gives each its own scores', () => {
  const r = createRandom(11)
  const a = IsolationForest.fit(gaussian(500, 3, r), 3, { random: createRandom(1) })
  const b = IsolationForest.fit(gaussian(500, 3, r), 3, { random: createRandom(2) })
  const rows = gaussian(600, 3, r)
  const sa = a.scoreSamples(rows)
  const sb = b.scoreSamples(rows)
  assert.notDeepEqual(sa, sb)
  for (let k = 0; k < 3; k++) {
    assert.deepEqual(a.scoreSamples(rows), sa)
    assert.deepEqual(b.scoreSamples(rows), sb)
  }
})

test('toJSON / fromJSON - a plain-JSON round trip scores bit for bit', () => {
  const r = createRandom(12)
  const data = gaussian(800, 5, r)
  const f = IsolationForest.fit(data, 5, { contamination: 0.05, random: createRandom(12) })
  const json = JSON.parse(JSON.stringify(f)) as unknown
  const g = IsolationForest.fromJSON(json)
  assert.deepEqual(g.toJSON(), f.toJSON())
  assert.equal(g.offset, f.offset)
  assert.equal(g.maxSamples, f.maxSamples)
  assert.deepEqual(g.scoreSamples(data), f.scoreSamples(data))
  assert.deepEqual(g.predict(data), f.predict(data))
})

test('fromJSON - rejects malformed models with AnomalyStateError', () => {
  const good = (): IsolationForestModel => ({
    version: 1,
    nFeatures: 2,
    maxSamples: 4,
    offset: -0.5,
    trees: [{ left: [1, -1, 3, -1, -1], right: [2, -1, 4, -1, -1], feature: [0, -2, 1, -2, -2], threshold: [0.5, -2, 1.5, -2, -2], nodeSamples: [4, 1, 3, 2, 1] }]
  })
  assert.ok(IsolationForest.fromJSON(good()) instanceof IsolationForest, 'the valid model loads')
  const bad: Array<[string, (m: IsolationForestModel) => unknown, RegExp]> = [
    ['not an object', () => 'model', /JSON object/],
    ['array', () => [], /JSON object/],
    ['wrong version', m => ({ ...m, version: 2 }), /version/],
    ['no version', m => ({ ...m, version: undefined }), /version/],
    ['nFeatures 0', m => ({ ...m, nFeatures: 0 }), /nFeatures/],
    ['maxSamples 1.5', m => ({ ...m, maxSamples: 1.5 }), /maxSamples/],
    ['offset NaN', m => ({ ...m, offset: NaN }), /offset/],
    ['offset string', m => ({ ...m, offset: '-0.5' }), /offset/],
    ['no trees', m => ({ ...m, trees: [] }), /trees/],
    ['tree not an object', m => ({ ...m, trees: [null] }), /trees\[0\]/],
    ['mismatched lengths', m => { m.trees[0]!.right.pop(); return m }, /trees\[0\]\.right.*expected 5 entries/],
    ['mismatched nodeSamples', m => { m.trees[0]!.nodeSamples.push(1); return m }, /nodeSamples/],
    ['empty tree', m => ({ ...m, trees: [{ left: [], right: [], feature: [], threshold: [], nodeSamples: [] }] }), /at least one node/],
    ['child out of range', m => { m.trees[0]!.right[2] = 5; return m }, /right\[2\].*out of range/],
    ['negative child', m => { m.trees[0]!.left[0] = -3; return m }, /left\[0\].*out of range/],
    ['half leaf', m => { m.trees[0]!.right[0] = -1; return m }, /left = right = -1/],
    ['feature >= nFeatures', m => { m.trees[0]!.feature[2] = 2; return m }, /feature\[2\].*out of range/],
    ['non-integer feature', m => { m.trees[0]!.feature[0] = 0.5; return m }, /feature\[0\]/],
    ['NaN threshold', m => { m.trees[0]!.threshold[0] = NaN; return m }, /threshold\[0\]/],
    ['string in array', m => { (m.trees[0]!.threshold as unknown[])[0] = '0.5'; return m }, /threshold\[0\]/],
    ['cycle', m => { m.trees[0]!.left[2] = 2; return m }, /reached twice/],
    ['cycle to the root', m => { m.trees[0]!.left[2] = 0; return m }, /out of range/],
    ['shared child', m => { m.trees[0]!.right[2] = 1; return m }, /reached twice/],
    ['unreachable node', m => { const t = m.trees[0]!; t.left.push(-1); t.right.push(-1); t.feature.push(-2); t.threshold.push(-2); t.nodeSamples.push(1); return m }, /not reachable/],
    ['samples do not add up', m => { m.trees[0]!.nodeSamples[3] = 1; return m }, /sum of its children/],
    ['root is not the subsample', m => ({ ...m, maxSamples: 5 }), /root holds/],
    ['nodeSamples 0', m => { m.trees[0]!.nodeSamples[4] = 0; return m }, /nodeSamples\[4\]/],
  ]
  for (const [name, mutate, message] of bad) {
    assert.throws(() => IsolationForest.fromJSON(mutate(good())), (e: unknown) => {
      assert.ok(e instanceof AnomalyStateError, `${name}: ${String(e)}`)
      assert.equal(e.code, 'IOT_ERR_ANOMALY_STATE')
      assert.match(e.message, message, name)
      return true
    }, name)
  }
  // Depth 3 beyond ceil(log2(4)) = 2, every count consistent.
  const deep: IsolationForestModel = {
    version: 1,
    nFeatures: 1,
    maxSamples: 4,
    offset: -0.5,
    trees: [{ left: [1, 3, -1, 5, -1, -1, -1], right: [2, 4, -1, 6, -1, -1, -1], feature: [0, 0, -2, 0, -2, -2, -2], threshold: [3, 2, -2, 1, -2, -2, -2], nodeSamples: [4, 3, 1, 2, 1, 1, 1] }]
  }
  assert.throws(() => IsolationForest.fromJSON(deep), /depth 3, beyond the limit/)
})

test('explain - shares sum to 1, a spike in feature 0 is put on feature 0', () => {
  const r = createRandom(13)
  const data = gaussian(1000, 7, r)
  const f = IsolationForest.fit(data, 7, { contamination: 0.05, random: createRandom(13) })
  const out = new Float64Array(7)
  for (let i = 0; i < 50; i++) {
    const shares = f.explain(data, out, i * 7)
    assert.equal(shares, out)
    let total = 0
    for (const s of shares) {
      assert.ok(s >= 0, `share ${s} >= 0`)
      total += s
    }
    close(total, 1, 1e-12)
  }
  // Credit is what a split narrowed the row down by: the spike's feature gets a clear majority.
  const spike = [9, 0.1, -0.2, 0, 0.3, 0, 0.1]
  for (const [row, feature] of [[spike, 0], [[0.1, 0, -0.2, -9, 0.3, 0, 0.1], 3]] as const) {
    f.explain(row, out)
    const top = out.indexOf(Math.max(...out))
    const shares = Array.from(out, s => s.toFixed(3)).join(', ')
    assert.equal(top, feature, `shares ${shares}`)
    assert.ok((out[feature] as number) > 2 / 7, `feature ${feature} well above an even share: ${shares}`)
  }
  assert.throws(() => f.explain(spike, new Float64Array(3)), RangeError)
})

test('explain - equals the definition walked over the JSON node arrays, for rows with and without NaN', () => {
  const r = createRandom(21)
  const data = gaussian(1000, 7, r)
  const f = IsolationForest.fit(data, 7, { contamination: 0.05, random: createRandom(21) })
  const model = f.toJSON()
  // Each split on the row's path credits its feature with log2(rows in the node / rows in the
  // branch taken); a tree's credits weigh 1 / its path length; shares sum to 1. NaN goes to the
  // child with more rows (sklearn).
  const reference = (row: number[]): number[] => {
    const out = new Array<number>(7).fill(0)
    for (const t of model.trees) {
      const credit = new Array<number>(7).fill(0)
      let node = 0
      let depth = 0
      while (t.left[node] !== -1) {
        const x = row[t.feature[node]!]!
        const l = t.left[node]!; const rt = t.right[node]!
        const child = Number.isNaN(x) ? (t.nodeSamples[l]! > t.nodeSamples[rt]! ? l : rt) : Math.fround(x) > t.threshold[node]! ? rt : l
        credit[t.feature[node]!]! += Math.log2(t.nodeSamples[node]! / t.nodeSamples[child]!)
        node = child
        depth++
      }
      const weight = 1 / (depth + 1 + averagePathLength(t.nodeSamples[node]!) - 1)
      for (let k = 0; k < 7; k++) out[k]! += weight * credit[k]!
    }
    const total = out.reduce((a, b) => a + b, 0)
    return total > 0 ? out.map(x => x / total) : out
  }
  const out = new Float64Array(7)
  for (let i = 0; i < 300; i++) {
    const row = Array.from(data.subarray(i * 7, i * 7 + 7))
    if (i % 3 === 0) row[i % 7] = 6 * (i % 2 === 0 ? 1 : -1) // spikes
    if (i % 50 === 1) row[2] = Number.NaN
    const expected = reference(row)
    f.explain(row, out)
    for (let k = 0; k < 7; k++) close(out[k]!, expected[k]!, 1e-12, `row ${i} feature ${k}`)
  }
})

test('fit - bad arguments throw RangeError', () => {
  const random = createRandom(1)
  const ok = [1, 2, 3, 4]
  const cases: Array<[string, () => unknown]> = [
    ['no rows', () => IsolationForest.fit([], 2, { random })],
    ['ragged', () => IsolationForest.fit([1, 2, 3], 2, { random })],
    ['nFeatures 0', () => IsolationForest.fit(ok, 0, { random })],
    ['nFeatures 1.5', () => IsolationForest.fit(ok, 1.5, { random })],
    ['nFeatures NaN', () => IsolationForest.fit(ok, NaN, { random })],
    ['NaN value', () => IsolationForest.fit([1, NaN, 3, 4], 2, { random })],
    ['Infinity', () => IsolationForest.fit([1, Infinity, 3, 4], 2, { random })],
    ['beyond float32', () => IsolationForest.fit([1, 1e39, 3, 4], 2, { random })],
    ['nEstimators 0', () => IsolationForest.fit(ok, 2, { nEstimators: 0, random })],
    ['nEstimators 2.5', () => IsolationForest.fit(ok, 2, { nEstimators: 2.5, random })],
    ['maxSamples 0', () => IsolationForest.fit(ok, 2, { maxSamples: 0, random })],
    ['maxSamples 1.5', () => IsolationForest.fit(ok, 2, { maxSamples: 1.5, random })],
    ['maxSamples string', () => IsolationForest.fit(ok, 2, { maxSamples: 'all' as 'auto', random })],
    ['contamination 0', () => IsolationForest.fit(ok, 2, { contamination: 0, random })],
    ['contamination 0.6', () => IsolationForest.fit(ok, 2, { contamination: 0.6, random })],
    ['contamination NaN', () => IsolationForest.fit(ok, 2, { contamination: NaN, random })],
    ['no random', () => IsolationForest.fit(ok, 2, {} as { random: Random })],
    ['no options', () => IsolationForest.fit(ok, 2, undefined as unknown as { random: Random })],
    ['data not an array', () => IsolationForest.fit(null as unknown as number[], 2, { random })]
  ]
  for (const [name, fn] of cases) assert.throws(fn, RangeError, name)
  assert.equal(IsolationForest.fit(ok, 2, { contamination: 0.5, random }).nFeatures, 2)
})

test('fit - 100 trees on 1000 x 7 is fast', () => {
  const data = gaussian(1000, 7, createRandom(14))
  IsolationForest.fit(data, 7, { contamination: 0.05, random: createRandom(1) })
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    IsolationForest.fit(data, 7, { contamination: 0.05, random: createRandom(i) })
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  // The target is < 20 ms (bench/detect.ts measures it); generous here, the machine is shared.
  assert.ok((times[2] as number) < 200, `median fit ${times[2]} ms`)
})
