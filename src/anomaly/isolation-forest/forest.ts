import { type Random } from '../../domain/index.ts'
import { averagePathLength, FEATURE_THRESHOLD_F32, float32SplitBound, linearPercentile, lowerBound } from './math.ts'
import { depthLimit, parseModel, type IsolationForestModel, type ParsedModel, type ParsedTree } from './model.ts'
import { SimdImage } from './simd.ts'
import { BLOCK as SIMD_BLOCK } from './simd-kernel.ts'

export interface IsolationForestOptions {
  /** Trees. Default 100. */
  nEstimators?: number | undefined
  /** Rows per tree, ψ: 'auto' = min(256, n) (default); an integer above n means n. */
  maxSamples?: 'auto' | number | undefined
  /**
   * 'auto' (default): offset -0.5. A number in (0, 0.5]: the offset is numpy's linear percentile of
   * the training rows' score_samples at 100 * contamination, so about that share is flagged in training.
   */
  contamination?: 'auto' | number | undefined
  /** Seeded source of every random draw (row subsamples, split features, thresholds). */
  random: Random
}

/** Rows scored per block: one block of ranks and sums stays in L1 while every tree runs over it. */
const BLOCK = 256
/**
 * Batches from this size on are scored by the WebAssembly SIMD kernel (simd.ts, 2-2.5x the JS
 * kernel's rows/s). Laying a forest out for it takes 10-20 ms, what the JS kernel needs for
 * 5,000-10,000 rows, so smaller batches (the pipeline's per-model groups, the offset at fit) stay
 * in JS and a forest that never scores a large batch never pays for the layout.
 */
const SIMD_MIN_ROWS = 4096
/** Path-length sums of one block of the SIMD kernel (scratch). */
const SIMD_SUMS = new Float64Array(SIMD_BLOCK)
/**
 * The batch-scoring arena: the ranks of one block of rows (from 0), then the compiled slots of the
 * forest that scored last (from BLOCK * nFeatures; a forest scoring after another copies its slots
 * in, ~100 KB for 100 trees of depth 8, so score batches per model rather than interleaving single
 * rows of several models through scoreSamples). A module constant on purpose: V8 compiles accesses
 * to it with its address and length embedded, no per-access loads or register spills, which made
 * the kernel about 1.5-1.7x faster than the same code on arrays passed as arguments (measured while
 * writing it, Node 20). Pages are committed only when touched (16 MiB reserved); a forest whose
 * slots do not fit, with more than 256 features or trees deeper than MAX_COMPILED_DEPTH walks its
 * node arrays instead (exact, slower).
 */
const ARENA = new Int32Array(1 << 22)
/** A slot packs (cut index << 8) | feature: constants the kernel shifts and masks by. */
const FEATURE_BITS = 8
const FEATURE_MASK = 255
/** The cut index of pass-through slots, above every rank: every row goes left. */
const PASS_THROUGH = 2 ** (31 - FEATURE_BITS) - 1
let arenaOwner: IsolationForest | null = null
/** Scratch of explain on compiled trees: the feature and gain of each step of one tree's path. */
const PATH_FEATURE = new Int32Array(12)
const PATH_GAIN = new Float64Array(12)
/** Deepest tree compiled to the complete-tree layout (2^(D+1) - 1 slots per tree); deeper forests walk the node arrays. */
const MAX_COMPILED_DEPTH = PATH_GAIN.length

/**
 * Isolation Forest (Liu, Ting, Zhou 2008) computing what scikit-learn's IsolationForest computes:
 * same tree growth rules, same float32 features, same path lengths, scores, offset and predictions.
 * Training draws from our own seeded Random, so a fitted forest matches sklearn statistically;
 * a forest exported from sklearn (`fromJSON`) scores exactly like it.
 */
export class IsolationForest {
  readonly nFeatures: number
  readonly nEstimators: number
  /** sklearn `max_samples_`. */
  readonly maxSamples: number
  /** sklearn `offset_`. */
  readonly offset: number

  /** The trees as validated node arrays (local indices), kept for toJSON. */
  readonly #trees: ParsedTree[]
  /** Node arrays of all trees concatenated; children are global indices, tree k's root is #roots[k]. */
  readonly #roots: Int32Array
  readonly #left: Int32Array
  readonly #right: Int32Array
  readonly #feature: Int32Array
  /** float32SplitBound(threshold): a row goes right iff x > bound (sklearn's float32(x) > threshold), NaN aside. */
  readonly #bound: Float64Array
  /** A row whose feature is NaN goes left here (sklearn: to the child that had more training rows). */
  readonly #nanLeft: Uint8Array
  /** At a leaf: sklearn's path length, (depth + 1) + c(nodeSamples) - 1. */
  readonly #pathLength: Float64Array
  /** log2(training rows of the parent / training rows of this node): what the split into this node narrowed down (0 at roots). */
  readonly #gain: Float64Array
  /** Scratch of explain: one tree's credits per feature. */
  readonly #credit: Float64Array
  /** The forest laid out for the WebAssembly SIMD kernel (undefined until a large batch is scored; null if it does not fit). */
  #simd: SimdImage | null | undefined = undefined
  /** Per tree 2^(D+1) - 1 slots: #gain of the node compiled at each slot (0 on pass-through slots); built by the first explain. */
  #slotGain: Float64Array | null = null
  /** Depth of the compiled complete trees (see #compile), -1 when the forest is not compiled. */
  readonly #depth: number
  /**
   * This forest's compiled trees, one Int32Array so the single-row loop's checks are shared: first
   * nFeatures ranks of the row being scored, then per tree 2^D - 1 slots, each
   * (cut index << #featureBits) | feature. Batch scoring copies the slots into ARENA.
   */
  readonly #mem: Int32Array
  /** Per tree 2^D path lengths: the bottom level of its compiled tree. */
  readonly #leaf: Float64Array
  /** Per feature f: the distinct split bounds on f, sorted, in #cuts[#cutStart[f] .. #cutStart[f + 1]). */
  readonly #cuts: Float64Array
  readonly #cutStart: Int32Array
  /**
   * Rank lookup per feature f (replaces a binary search, ~4x fewer cycles): values in
   * (#cutLow[f], #cutHigh[f]] fall in bucket min(#bucketMax[f], ((x - low) * #bucketScale[f]) | 0),
   * and #bucketFirst[#bucketOffset[f] + b] counts the cuts in lower buckets. The bucket function is
   * monotone in x and cuts are bucketed by the same function, so every cut in a lower bucket is
   * below x and every cut in a higher one above: rank = that count + a short scan. Exact.
   */
  readonly #cutLow: Float64Array
  readonly #cutHigh: Float64Array
  readonly #bucketScale: Float64Array
  readonly #bucketMax: Int32Array
  readonly #bucketOffset: Int32Array
  readonly #bucketFirst: Int32Array
  /** nEstimators * c(maxSamples), sklearn's denominator. */
  readonly #denominator: number
  /** Path-length sums of one block of rows (scratch, so scoring allocates nothing). */
  readonly #sums: Float64Array

  /** `offset` is the offset itself, or the training rows and contamination to take it from. */
  private constructor (nFeatures: number, maxSamples: number, offset: number | { train: Float32Array, contamination: number }, trees: ParsedTree[]) {
    this.nFeatures = nFeatures
    this.nEstimators = trees.length
    this.maxSamples = maxSamples
    this.offset = typeof offset === 'number' ? offset : 0
    this.#trees = trees
    let nodes = 0
    for (const t of trees) nodes += t.left.length
    this.#roots = new Int32Array(trees.length)
    this.#left = new Int32Array(nodes)
    this.#right = new Int32Array(nodes)
    this.#feature = new Int32Array(nodes)
    this.#bound = new Float64Array(nodes)
    this.#nanLeft = new Uint8Array(nodes)
    this.#pathLength = new Float64Array(nodes)
    this.#gain = new Float64Array(nodes)
    this.#credit = new Float64Array(nFeatures)
    const d = nFeatures
    const perFeature: number[][] = Array.from({ length: d }, () => [])
    let depth = 0
    let o = 0
    for (let k = 0; k < trees.length; k++) {
      const t = trees[k] as ParsedTree
      this.#roots[k] = o
      for (let i = 0; i < t.left.length; i++) {
        const l = t.left[i] as number
        const g = o + i
        if (l === -1) {
          this.#left[g] = -1
          this.#right[g] = -1
          // Exactly sklearn's sum: compute_node_depths() (root 1) + c(n_node_samples) - 1.
          this.#pathLength[g] = ((t.depth[i] as number) + 1) + averagePathLength(t.nodeSamples[i] as number) - 1
          if ((t.depth[i] as number) > depth) depth = t.depth[i] as number
        } else {
          const r = t.right[i] as number
          const f = t.feature[i] as number
          const bound = float32SplitBound(t.threshold[i] as number)
          this.#left[g] = o + l
          this.#right[g] = o + r
          this.#feature[g] = f
          this.#bound[g] = bound
          this.#nanLeft[g] = (t.nodeSamples[l] as number) > (t.nodeSamples[r] as number) ? 1 : 0
          const n = t.nodeSamples[i] as number
          this.#gain[o + l] = Math.log2(n / (t.nodeSamples[l] as number))
          this.#gain[o + r] = Math.log2(n / (t.nodeSamples[r] as number))
          perFeature[f]?.push(bound)
        }
      }
      o += t.left.length
    }
    this.#denominator = trees.length * averagePathLength(maxSamples)
    this.#sums = new Float64Array(BLOCK)
    // Cuts: a row's rank on feature f is how many of f's bounds lie below its value, and
    // x > bound  <=>  rank(x) > index of bound among the cuts: an int comparison in the kernel.
    this.#cutStart = new Int32Array(d + 1)
    const sorted = perFeature.map(b => {
      const u = Float64Array.from(b).sort()
      let w = 0
      for (let i = 0; i < u.length; i++) if (w === 0 || u[i] !== u[w - 1]) u[w++] = u[i] as number
      return u.subarray(0, w)
    })
    let maxCuts = 0
    for (let f = 0; f < d; f++) {
      const len = (sorted[f] as Float64Array).length
      this.#cutStart[f + 1] = (this.#cutStart[f] as number) + len
      if (len > maxCuts) maxCuts = len
    }
    this.#cuts = new Float64Array(this.#cutStart[d] as number)
    for (let f = 0; f < d; f++) this.#cuts.set(sorted[f] as Float64Array, this.#cutStart[f])
    this.#cutLow = new Float64Array(d)
    this.#cutHigh = new Float64Array(d)
    this.#bucketScale = new Float64Array(d)
    this.#bucketMax = new Int32Array(d)
    this.#bucketOffset = new Int32Array(d + 1)
    for (let f = 0; f < d; f++) {
      const u = sorted[f] as Float64Array
      const buckets = u.length < 2 ? 1 : 2 ** Math.ceil(Math.log2(u.length))
      this.#bucketOffset[f + 1] = (this.#bucketOffset[f] as number) + buckets
      this.#bucketMax[f] = buckets - 1
      if (u.length === 0) continue
      const low = u[0] as number
      const high = u[u.length - 1] as number
      this.#cutLow[f] = low
      this.#cutHigh[f] = high
      this.#bucketScale[f] = high > low ? buckets / (high - low) : 0
    }
    this.#bucketFirst = new Int32Array(this.#bucketOffset[d] as number)
    for (let f = 0; f < d; f++) {
      const u = sorted[f] as Float64Array
      const o = this.#bucketOffset[f] as number
      const buckets = (this.#bucketMax[f] as number) + 1
      // #bucketFirst[o + b] = how many cuts have bucket < b (cuts are sorted, buckets monotone).
      let i = 0
      for (let b = 0; b < buckets; b++) {
        while (i < u.length && this.#bucket(f, u[i] as number) < b) i++
        this.#bucketFirst[o + b] = i
      }
    }
    const inner = (1 << depth) - 1
    if (depth <= MAX_COMPILED_DEPTH && d <= FEATURE_MASK + 1 && maxCuts < PASS_THROUGH && BLOCK * d + trees.length * inner <= ARENA.length) {
      this.#depth = depth
      this.#mem = new Int32Array(d + trees.length * inner).fill(PASS_THROUGH * 2 ** FEATURE_BITS, d)
      this.#leaf = new Float64Array(trees.length * (inner + 1))
      for (let k = 0; k < trees.length; k++) this.#compile(this.#roots[k] as number, 0, 0, k)
    } else {
      this.#depth = -1
      this.#mem = new Int32Array(0)
      this.#leaf = new Float64Array(0)
    }
    if (typeof offset !== 'number') {
      // sklearn: np.percentile(score_samples(X_train), 100 * contamination), numpy's linear method.
      this.offset = linearPercentile(this.scoreSamples(offset.train).sort(), 100 * offset.contamination)
    }
  }

  /**
   * Lays node `g` out at `slot` of tree k's complete binary tree of depth D = #depth (children of
   * slot s at 2s+1 and 2s+2; the 2^D slots from 2^D - 1 on are the bottom level, in #leaf). A leaf
   * above the bottom becomes a chain of pass-through slots (every row goes left) down to the bottom,
   * so scoring runs exactly D branch-free steps per tree.
   */
  #compile (g: number, slot: number, level: number, k: number): void {
    const inner = (1 << this.#depth) - 1
    if (this.#left[g] === -1) {
      let s = slot
      for (let l = level; l < this.#depth; l++) s = 2 * s + 1 // pass-through slots keep their fill
      this.#leaf[k * (inner + 1) + s - inner] = this.#pathLength[g] as number
      return
    }
    const f = this.#feature[g] as number
    const cut = lowerBound(this.#cuts, this.#cutStart[f] as number, this.#cutStart[f + 1] as number, this.#bound[g] as number)
    this.#mem[this.nFeatures + k * inner + slot] = cut * 2 ** FEATURE_BITS + f
    this.#compile(this.#left[g] as number, 2 * slot + 1, level + 1, k)
    this.#compile(this.#right[g] as number, 2 * slot + 2, level + 1, k)
  }

  /**
   * Fits on `data`: row-major, nRows = data.length / nFeatures; values are cast to float32 as sklearn
   * does. Throws RangeError on bad shapes or options (no rows, a non-finite value, ...).
   */
  static fit (data: Float32Array | Float64Array | ArrayLike<number>, nFeatures: number, options: IsolationForestOptions): IsolationForest {
    if (!Number.isInteger(nFeatures) || nFeatures < 1 || nFeatures > 1 << 20) throw new RangeError(`nFeatures must be an integer in [1, 2^20], got ${nFeatures}`)
    if (data === null || typeof data !== 'object' || typeof data.length !== 'number') throw new RangeError('data must be an array of numbers')
    if (data.length % nFeatures !== 0) throw new RangeError(`data.length ${data.length} is not a multiple of nFeatures ${nFeatures}`)
    const nRows = data.length / nFeatures
    if (nRows < 1) throw new RangeError('data has no rows')
    if (nRows > 2 ** 31 - 1) throw new RangeError('too many rows')
    if (options === null || typeof options !== 'object') throw new RangeError('options are required (at least options.random)')
    const nEstimators = options.nEstimators ?? 100
    if (!Number.isInteger(nEstimators) || nEstimators < 1 || nEstimators > 100_000) throw new RangeError(`nEstimators must be an integer in [1, 100000], got ${nEstimators}`)
    const ms = options.maxSamples ?? 'auto'
    if (ms !== 'auto' && (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1)) throw new RangeError(`maxSamples must be 'auto' or a positive integer, got ${String(ms)}`)
    const contamination = options.contamination ?? 'auto'
    if (contamination !== 'auto' && (typeof contamination !== 'number' || !(contamination > 0 && contamination <= 0.5))) {
      throw new RangeError(`contamination must be 'auto' or a number in (0, 0.5], got ${String(contamination)}`)
    }
    const random = options.random as Random | null | undefined
    if (random === null || typeof random !== 'object' || typeof random.next !== 'function' || typeof random.int !== 'function') throw new RangeError('options.random must be a Random')
    const x = data instanceof Float32Array ? data : new Float32Array(data)
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i])) throw new RangeError(`data[${i}] = ${String(data[i])} is not a finite float32 (row ${Math.floor(i / nFeatures)}, feature ${i % nFeatures})`)
    }
    const maxSamples = ms === 'auto' ? Math.min(256, nRows) : Math.min(ms, nRows)
    const builder = new TreeBuilder(x, nRows, nFeatures, maxSamples, random)
    const trees: ParsedTree[] = []
    for (let k = 0; k < nEstimators; k++) trees.push(builder.grow())
    return new IsolationForest(nFeatures, maxSamples, contamination === 'auto' ? -0.5 : { train: x, contamination }, trees)
  }

  /** The plain-JSON model; `fromJSON(toJSON())` scores bit-for-bit like this forest. */
  toJSON (): IsolationForestModel {
    return {
      version: 1,
      nFeatures: this.nFeatures,
      maxSamples: this.maxSamples,
      offset: this.offset,
      trees: this.#trees.map(t => ({
        left: Array.from(t.left),
        right: Array.from(t.right),
        feature: Array.from(t.feature),
        threshold: Array.from(t.threshold),
        nodeSamples: Array.from(t.nodeSamples)
      }))
    }
  }

  /** Restores a model from toJSON (or exported from sklearn); throws AnomalyStateError on anything malformed. */
  static fromJSON (json: unknown): IsolationForest {
    return IsolationForest.fromParts(parseModel(json))
  }

  /**
   * The validated trees as typed arrays: what `fromParts` needs to rebuild this forest in another
   * thread (structured clone copies typed arrays as they are, without a JSON round trip).
   */
  toParts (): ParsedModel {
    return { nFeatures: this.nFeatures, maxSamples: this.maxSamples, offset: this.offset, trees: this.#trees }
  }

  /** Rebuilds a forest from `toParts` (validated already: not for data from outside, see fromJSON). */
  static fromParts (m: ParsedModel): IsolationForest {
    return new IsolationForest(m.nFeatures, m.maxSamples, m.offset, m.trees)
  }

  /** sklearn score_samples of one row (in [-1, 0), lower = more abnormal), read from `row[start]` on. Allocates nothing. */
  scoreSample (row: ArrayLike<number>, start = 0): number {
    const d = this.nFeatures
    if (!Number.isInteger(start) || start < 0 || start + d > row.length) throw new RangeError(`row needs ${d} values from index ${start}, has length ${row.length}`)
    if (this.#depth < 0 || this.#ranks(row, start, this.#mem, 0)) return this.#score(this.#walkAll(row, start))
    const m = this.#mem
    const D = this.#depth
    const inner = (1 << D) - 1
    const leaf = this.#leaf
    let sum = 0
    for (let k = 0, o = d, lo = -inner; k < this.nEstimators; k++, o += inner, lo += inner + 1) {
      let i = 0
      for (let l = 0; l < D; l++) {
        const v = m[o + i]!
        i = (i << 1 | 1) + +(m[v & FEATURE_MASK]! > (v >> FEATURE_BITS)) | 0
      }
      sum += leaf[lo + i]!
    }
    return this.#score(sum)
  }

  /**
   * score_samples of many rows (row-major, data.length a multiple of nFeatures) into `out`
   * (allocated when absent, else at least nRows long; the first nRows entries are written) and returns it.
   */
  scoreSamples (data: ArrayLike<number>, out?: Float64Array): Float64Array {
    const nRows = this.#rows(data)
    const o = out ?? new Float64Array(nRows)
    if (o.length < nRows) throw new RangeError(`out has length ${o.length}, needs ${nRows}`)
    const simd = nRows >= SIMD_MIN_ROWS ? this.#simdImage() : null
    if (simd !== null) {
      const sums = SIMD_SUMS
      for (let b = 0; b < nRows; b += SIMD_BLOCK) {
        const n = Math.min(SIMD_BLOCK, nRows - b)
        const nan = simd.sums(data, b, n, sums)
        for (let r = 0; r < n; r++) o[b + r] = this.#score(sums[r] as number)
        if (nan) this.#rescoreNaNRows(data, b, n, o)
      }
      return o
    }
    for (let b = 0; b < nRows; b += BLOCK) {
      const n = Math.min(BLOCK, nRows - b)
      const sums = this.#block(data, b, n)
      for (let r = 0; r < n; r++) o[b + r] = this.#score(sums[r] as number)
    }
    return o
  }

  /** decision_function: score_samples - offset (negative = outlier). Same conventions as scoreSamples. */
  decisionFunction (data: ArrayLike<number>, out?: Float64Array): Float64Array {
    const o = this.scoreSamples(data, out)
    const nRows = data.length / this.nFeatures
    for (let r = 0; r < nRows; r++) o[r] = (o[r] as number) - this.offset
    return o
  }

  /** predict: -1 (outlier) where decision_function < 0, else +1. Same conventions as scoreSamples. */
  predict (data: ArrayLike<number>, out?: Int8Array): Int8Array {
    const nRows = this.#rows(data)
    const o = out ?? new Int8Array(nRows)
    if (o.length < nRows) throw new RangeError(`out has length ${o.length}, needs ${nRows}`)
    for (let b = 0; b < nRows; b += BLOCK) {
      const n = Math.min(BLOCK, nRows - b)
      const sums = this.#block(data, b, n)
      for (let r = 0; r < n; r++) o[b + r] = this.#score(sums[r] as number) - this.offset < 0 ? -1 : 1
    }
    return o
  }

  /**
   * Which features isolated this row: a non-negative share per feature, summing to 1 (all 0 when no
   * split separated it, i.e. every tree is a single leaf). Each split on the row's path credits its
   * feature with how much it narrowed the row down, log2(rows in the node / rows in the child the
   * row went to), weighted by 1 / (the row's path length in that tree) so short (anomalous) paths
   * count more; then the credits are normalised. A split that leaves the row with few companions
   * (an extreme value on that feature) earns far more than one that halves the node. Writes `out`
   * (length nFeatures) and returns it. Allocates nothing.
   */
  explain (row: ArrayLike<number>, out: Float64Array, start = 0): Float64Array {
    const d = this.nFeatures
    if (out.length !== d) throw new RangeError(`out must have length nFeatures = ${d}, got ${out.length}`)
    if (!Number.isInteger(start) || start < 0 || start + d > row.length) throw new RangeError(`row needs ${d} values from index ${start}, has length ${row.length}`)
    out.fill(0)
    if (this.#depth >= 0 && !this.#ranks(row, start, this.#mem, 0)) {
      // The scoring walk over the compiled trees; pass-through slots credit feature 0 with 0.
      const m = this.#mem
      const D = this.#depth
      const inner = (1 << D) - 1
      const leaf = this.#leaf
      const slotGain = this.#slotGain ??= this.#slotGains()
      const pathFeature = PATH_FEATURE
      const pathGain = PATH_GAIN
      for (let k = 0, o = d, lo = -inner, go = 0; k < this.nEstimators; k++, o += inner, lo += inner + 1, go += 2 * inner + 1) {
        let i = 0
        for (let l = 0; l < D; l++) {
          const v = m[o + i]!
          const f = v & FEATURE_MASK
          i = (i << 1 | 1) + +(m[f]! > (v >> FEATURE_BITS)) | 0
          pathFeature[l] = f
          pathGain[l] = slotGain[go + i]!
        }
        const weight = 1 / leaf[lo + i]!
        for (let l = 0; l < D; l++) { const f = pathFeature[l]!; out[f] = out[f]! + weight * pathGain[l]! }
      }
      return this.#normalize(out)
    }
    // A row with NaN (or a forest too deep to compile): walk the node arrays.
    const left = this.#left
    const feature = this.#feature
    const gain = this.#gain
    const credit = this.#credit
    for (let k = 0; k < this.nEstimators; k++) {
      // One walk: the credits of this tree's path, then weighted by 1 / its path length.
      credit.fill(0)
      let g = this.#roots[k] as number
      while (left[g] !== -1) {
        const child = this.#step(row, start, g)
        const f = feature[g] as number
        credit[f] = (credit[f] as number) + (gain[child] as number)
        g = child
      }
      const weight = 1 / (this.#pathLength[g] as number)
      for (let f = 0; f < d; f++) out[f] = (out[f] as number) + weight * (credit[f] as number)
    }
    return this.#normalize(out)
  }

  /** Scales explain's credits to shares summing to 1 (all zero stays zero). */
  #normalize (out: Float64Array): Float64Array {
    let total = 0
    for (let f = 0; f < out.length; f++) total += out[f] as number
    if (total > 0) for (let f = 0; f < out.length; f++) out[f] = (out[f] as number) / total
    return out
  }

  /** #slotGain: the gain of the node at every slot of the compiled trees (the layout of #compile). */
  #slotGains (): Float64Array {
    const perTree = 2 * ((1 << this.#depth) - 1) + 1
    const gains = new Float64Array(this.nEstimators * perTree)
    const place = (g: number, slot: number, base: number): void => {
      gains[base + slot] = this.#gain[g] as number
      if (this.#left[g] === -1) return // the pass-through chain below keeps 0
      place(this.#left[g] as number, 2 * slot + 1, base)
      place(this.#right[g] as number, 2 * slot + 2, base)
    }
    for (let k = 0; k < this.nEstimators; k++) place(this.#roots[k] as number, 0, k * perTree)
    return gains
  }

  /** -2^(-sum / (nEstimators c(ψ))), exactly sklearn's; -0.5 when c(ψ) = 0 (ψ = 1). */
  #score (sum: number): number {
    const den = this.#denominator
    return -(2 ** -(den !== 0 ? sum / den : 1))
  }

  #rows (data: ArrayLike<number>): number {
    const d = this.nFeatures
    if (data === null || typeof data !== 'object' || typeof data.length !== 'number' || data.length % d !== 0) {
      throw new RangeError(`data.length must be a multiple of nFeatures = ${d}, got ${String(data?.length)}`)
    }
    return data.length / d
  }

  /**
   * Writes the ranks of the row at data[src..src+d) into m[dst..dst+d) and tells whether it holds a
   * NaN (then the ranks are meaningless and the row takes the node arrays, with sklearn's NaN rule).
   * rank = how many of the feature's cuts lie below the value (see #bucketFirst).
   */
  #ranks (data: ArrayLike<number>, src: number, m: Int32Array, dst: number): boolean {
    const cuts = this.#cuts
    const cutStart = this.#cutStart
    const cutLow = this.#cutLow
    const cutHigh = this.#cutHigh
    const first = this.#bucketFirst
    let nan = false
    for (let f = 0; f < this.nFeatures; f++) {
      const x = +(data[src + f] as number)
      const s = cutStart[f]!
      const n = cutStart[f + 1]! - s
      let rank
      if (!(x > cutLow[f]!)) { // also NaN (and features with no cut): rank 0
        rank = 0
        if (x !== x) nan = true // eslint-disable-line no-self-compare
      } else if (x > cutHigh[f]!) {
        rank = n
      } else {
        let i = s + first[this.#bucketOffset[f]! + this.#bucket(f, x)]!
        while (cuts[i]! < x) i++ // stops at the high cut at the latest, as x <= cutHigh
        rank = i - s
      }
      m[dst + f] = rank
    }
    return nan
  }

  /** The rank-lookup bucket of a value in [#cutLow[f], #cutHigh[f]] (the one formula for cuts and rows). */
  #bucket (f: number, x: number): number {
    return Math.min(this.#bucketMax[f]!, ((x - this.#cutLow[f]!) * this.#bucketScale[f]!) | 0)
  }

  /** Path-length sums (over trees, in tree order as sklearn adds them) of rows [b, b + n) of `data` into #sums[0..n). */
  #block (data: ArrayLike<number>, b: number, n: number): Float64Array {
    const d = this.nFeatures
    const sums = this.#sums
    if (this.#depth < 0) {
      for (let r = 0; r < n; r++) sums[r] = this.#walkAll(data, (b + r) * d)
      return sums
    }
    let nan = false
    for (let r = 0; r < n; r++) nan = this.#ranks(data, (b + r) * d, ARENA, r * d) || nan
    // Only now (no caller code runs from here to the kernel's end) make the arena hold our slots.
    if (arenaOwner !== this) {
      ARENA.set(this.#mem.subarray(d), BLOCK * d)
      arenaOwner = this
    }
    sums.fill(0, 0, n)
    accumulate(this.#leaf, sums, n, d, this.#depth, this.nEstimators)
    if (nan) this.#rescoreNaNRows(data, b, n, sums, false)
    return sums
  }

  /** Rows [b, b + n) holding a NaN get their path-length sum (or with `score`, their score) at out[r] from walking the node arrays with sklearn's NaN rule. */
  #rescoreNaNRows (data: ArrayLike<number>, b: number, n: number, out: Float64Array, score = true): void {
    const d = this.nFeatures
    for (let r = 0; r < n; r++) {
      for (let f = 0; f < d; f++) {
        const v = +(data[(b + r) * d + f] as number)
        if (v !== v) { // eslint-disable-line no-self-compare
          const sum = this.#walkAll(data, (b + r) * d)
          out[score ? b + r : r] = score ? this.#score(sum) : sum
          break
        }
      }
    }
  }

  /** The SIMD layout of this forest, built on first use; null when it does not fit the kernel. */
  #simdImage (): SimdImage | null {
    if (this.#simd === undefined) this.#simd = SimdImage.build(this.#trees, this.nFeatures)
    return this.#simd
  }

  /** Path-length sum of the row at x[base..base+d) by walking every tree's node arrays. */
  #walkAll (x: ArrayLike<number>, base: number): number {
    let sum = 0
    for (let k = 0; k < this.nEstimators; k++) sum += this.#pathLength[this.#walk(x, base, this.#roots[k] as number)] as number
    return sum
  }

  /** The leaf the row reaches from node g. */
  #walk (x: ArrayLike<number>, base: number, g: number): number {
    while (this.#left[g] !== -1) g = this.#step(x, base, g)
    return g
  }

  /** The child of split node g the row goes to: sklearn's apply (NaN to the child that had more rows). */
  #step (x: ArrayLike<number>, base: number, g: number): number {
    const v = +(x[base + (this.#feature[g] as number)] as number)
    const goLeft = v !== v ? this.#nanLeft[g] === 1 : !(v > (this.#bound[g] as number)) // eslint-disable-line no-self-compare
    return goLeft ? this.#left[g] as number : this.#right[g] as number
  }
}

/**
 * The scoring kernel: adds each tree's path length to sums[r] for the n rows whose ranks are in
 * ARENA[r * d ..], with the slots from ARENA[BLOCK * d], tree-major (one tree's slots stay in L1 while the block runs through it), four rows
 * at a time so their dependency chains (slot → rank → slot) overlap in the CPU. Exactly D
 * branch-free steps per tree: slot i goes to 2i + 1 (left) or 2i + 2 (right, when the row's rank on
 * the slot's feature exceeds the slot's cut index). Everything in the one constant Int32Array, and
 * `| 0` keeps the index arithmetic in int32 without overflow checks.
 */
function accumulate (leaf: Float64Array, sums: Float64Array, n: number, d: number, D: number, nTrees: number): void {
  const m = ARENA
  const slots = BLOCK * d
  const inner = (1 << D) - 1
  for (let k = 0; k < nTrees; k++) {
    const o = slots + k * inner | 0
    const lo = k * (inner + 1) - inner
    let r = 0
    for (; r + 4 <= n; r += 4) {
      const b0 = r * d | 0
      const b1 = b0 + d | 0
      const b2 = b1 + d | 0
      const b3 = b2 + d | 0
      let i0 = 0
      let i1 = 0
      let i2 = 0
      let i3 = 0
      for (let l = 0; l < D; l++) {
        const v0 = m[o + i0 | 0]!
        const v1 = m[o + i1 | 0]!
        const v2 = m[o + i2 | 0]!
        const v3 = m[o + i3 | 0]!
        i0 = (i0 << 1 | 1) + +(m[b0 + (v0 & FEATURE_MASK) | 0]! > (v0 >> FEATURE_BITS)) | 0
        i1 = (i1 << 1 | 1) + +(m[b1 + (v1 & FEATURE_MASK) | 0]! > (v1 >> FEATURE_BITS)) | 0
        i2 = (i2 << 1 | 1) + +(m[b2 + (v2 & FEATURE_MASK) | 0]! > (v2 >> FEATURE_BITS)) | 0
        i3 = (i3 << 1 | 1) + +(m[b3 + (v3 & FEATURE_MASK) | 0]! > (v3 >> FEATURE_BITS)) | 0
      }
      sums[r] = sums[r]! + leaf[lo + i0]!
      sums[r + 1] = sums[r + 1]! + leaf[lo + i1]!
      sums[r + 2] = sums[r + 2]! + leaf[lo + i2]!
      sums[r + 3] = sums[r + 3]! + leaf[lo + i3]!
    }
    for (; r < n; r++) {
      const b = r * d | 0
      let i = 0
      for (let l = 0; l < D; l++) {
        const v = m[o + i | 0]!
        i = (i << 1 | 1) + +(m[b + (v & FEATURE_MASK) | 0]! > (v >> FEATURE_BITS)) | 0
      }
      sums[r] = sums[r]! + leaf[lo + i]!
    }
  }
}

/**
 * Grows isolation trees exactly by sklearn's rules (ExtraTreeRegressor, max_features=1, random
 * splitter, depth-first, node 0 the root, then the left subtree, then the right).
 */
class TreeBuilder {
  readonly #x: Float32Array
  readonly #d: number
  readonly #nRows: number
  readonly #psi: number
  readonly #maxDepth: number
  readonly #random: Random
  /** A permutation of the row indices; its first ψ entries are the current tree's subsample, partitioned in place. */
  readonly #rows: Int32Array
  /** Per depth level: the features arranged with the node's known-constant ones first, and how many. */
  readonly #features: Int32Array
  readonly #nConstant: Int32Array
  // Node arrays of the tree being grown (at most 2ψ - 1 nodes).
  readonly #left: Int32Array
  readonly #right: Int32Array
  readonly #feature: Int32Array
  readonly #threshold: Float64Array
  readonly #nodeSamples: Int32Array
  readonly #depth: Int32Array
  #count = 0

  constructor (x: Float32Array, nRows: number, d: number, psi: number, random: Random) {
    this.#x = x
    this.#d = d
    this.#nRows = nRows
    this.#psi = psi
    this.#maxDepth = depthLimit(psi)
    this.#random = random
    this.#rows = new Int32Array(nRows)
    for (let i = 0; i < nRows; i++) this.#rows[i] = i
    this.#features = new Int32Array((this.#maxDepth + 1) * d)
    this.#nConstant = new Int32Array(this.#maxDepth + 1)
    const cap = 2 * psi - 1
    this.#left = new Int32Array(cap)
    this.#right = new Int32Array(cap)
    this.#feature = new Int32Array(cap)
    this.#threshold = new Float64Array(cap)
    this.#nodeSamples = new Int32Array(cap)
    this.#depth = new Int32Array(cap)
  }

  grow (): ParsedTree {
    // ψ distinct rows, uniformly: a partial Fisher-Yates shuffle of the (still uniform) permutation.
    const rows = this.#rows
    const n = this.#nRows
    for (let i = 0; i < this.#psi; i++) {
      const j = i + this.#random.int(n - i)
      const t = rows[i] as number
      rows[i] = rows[j] as number
      rows[j] = t
    }
    this.#count = 0
    this.#node(0, this.#psi, 0)
    const c = this.#count
    return {
      left: this.#left.slice(0, c),
      right: this.#right.slice(0, c),
      feature: this.#feature.slice(0, c),
      threshold: this.#threshold.slice(0, c),
      nodeSamples: this.#nodeSamples.slice(0, c),
      depth: this.#depth.slice(0, c)
    }
  }

  /** Grows the node holding rows[start..end) at `depth`; returns its index. */
  #node (start: number, end: number, depth: number): number {
    const id = this.#count++
    const n = end - start
    this.#nodeSamples[id] = n
    this.#depth[id] = depth
    this.#left[id] = -1
    this.#right[id] = -1
    this.#feature[id] = -2
    this.#threshold[id] = -2
    if (depth >= this.#maxDepth || n < 2) return id
    const d = this.#d
    const x = this.#x
    const rows = this.#rows
    const features = this.#features
    // This node's feature arrangement starts as its parent's: the parent's known constants first.
    const base = depth * d
    let nConstant = 0
    if (depth === 0) {
      for (let f = 0; f < d; f++) features[f] = f
    } else {
      features.copyWithin(base, base - d, base)
      nConstant = this.#nConstant[depth - 1] as number
    }
    // Draw features without replacement until one is not constant here (max > min + 1e-7 in float32).
    let split = -1
    let threshold = 0
    while (nConstant < d) {
      const j = base + nConstant + this.#random.int(d - nConstant)
      const f = features[j] as number
      let min = x[(rows[start] as number) * d + f] as number
      let max = min
      for (let p = start + 1; p < end; p++) {
        const v = x[(rows[p] as number) * d + f] as number
        if (v < min) min = v
        else if (v > max) max = v
      }
      if (max <= Math.fround(min + FEATURE_THRESHOLD_F32)) {
        features[j] = features[base + nConstant] as number
        features[base + nConstant] = f
        nConstant++
        continue
      }
      split = f
      threshold = (max - min) * this.#random.next() + min
      if (threshold === max) threshold = min
      break
    }
    this.#nConstant[depth] = nConstant
    if (split < 0) return id // every feature constant (e.g. duplicate rows): a leaf
    // Partition: rows with x <= threshold first.
    let i = start
    let j = end - 1
    while (i <= j) {
      if ((x[(rows[i] as number) * d + split] as number) <= threshold) {
        i++
      } else {
        const t = rows[i] as number
        rows[i] = rows[j] as number
        rows[j] = t
        j--
      }
    }
    this.#feature[id] = split
    this.#threshold[id] = threshold
    this.#left[id] = this.#node(start, i, depth + 1)
    this.#right[id] = this.#node(i, end, depth + 1)
    return id
  }
}
