// Batch scoring with the WebAssembly SIMD kernel (simd-kernel.ts): a forest is laid out once as a
// memory image (~1.35 MiB for 100 trees of 256 samples on 7 features), and blocks of rows are scored
// against it, exactly as the JS kernel scores them: the same leaf per (row, tree) and the same
// float64 sum in tree order from +0.
//
// Image layout (addresses absolute; the image is copied to address 0 of the kernel's memory):
// - per feature f: its cuts (the distinct split bounds, sorted, as forest.ts has them) followed by
//   K + 1 infinities, and a bucket table (bucket of x -> cuts in lower buckets): a row's rank;
// - per tree, together so that one tree's data stays in L1 while a block of rows runs through it:
//   its leaves' path lengths (leaf l at B - 8 l, leaves numbered left to right), per interval the
//   128-bit mask of the leaves a row in it can still reach (at B + 16 + 16 i; a tree's intervals
//   are those of its own cuts, numbered across its features), and per feature a column with, for
//   each rank, the interval a row of that rank falls in (a byte).
// A tree with more than 128 leaves is split into "virtual trees" (see virtualize).
import { averagePathLength, float32SplitBound, lowerBound } from './math.ts'
import { type ParsedTree } from './model.ts'
import { BLOCK, DATA, HDR, IN, K, MAX_FEATURES, MAX_TREES, OUT, PARAM } from './simd-kernel.ts'
import { KERNELS } from './simd-wasm.generated.ts'

const MAX_LEAVES = 128
const MAX_INTERVALS = 256
/** Bucket table size per feature: at most this many buckets per cut. */
const BUCKETS_PER_CUT = 4
const WORDS = MAX_LEAVES / 32
/** Room after the image the kernel may read (the rank scan reads up to K cuts past a position). */
const SLACK = 64

/** A tree with node values: the path length at leaves (+0 at leaves added by virtualize). */
interface ValuedTree { left: Int32Array, right: Int32Array, feature: Int32Array, threshold: Float64Array, value: Float64Array }

/**
 * Trees with at most 128 leaves as they are; a bigger one as one virtual tree per subtree s of a
 * set of disjoint subtrees covering its leaves: the root-to-s path, with every branch off it
 * ending in a leaf worth +0, and s below. A row reaches its real leaf in exactly one of them.
 */
export function virtualize (trees: readonly ParsedTree[]): ValuedTree[] {
  const out: ValuedTree[] = []
  for (const t of trees) {
    const n = t.left.length
    const leaves = new Int32Array(n)
    const value = new Float64Array(n).fill(Number.NaN)
    const order = [0]
    for (let i = 0; i < order.length; i++) {
      const e = order[i] as number
      if (t.left[e] !== -1) order.push(t.left[e] as number, t.right[e] as number)
    }
    for (let i = order.length - 1; i >= 0; i--) {
      const e = order[i] as number
      if (t.left[e] === -1) {
        leaves[e] = 1
        value[e] = ((t.depth[e] as number) + 1) + averagePathLength(t.nodeSamples[e] as number) - 1
      } else {
        leaves[e] = (leaves[t.left[e] as number] as number) + (leaves[t.right[e] as number] as number)
      }
    }
    if ((leaves[0] as number) <= MAX_LEAVES) {
      out.push({ left: t.left, right: t.right, feature: t.feature, threshold: t.threshold, value })
      continue
    }
    const path: number[] = []
    const extract = (s: number): ValuedTree => {
      const L: number[] = []; const R: number[] = []; const F: number[] = []; const T: number[] = []; const V: number[] = []
      const add = (f: number, th: number, v: number): number => { L.push(-1); R.push(-1); F.push(f); T.push(th); V.push(v); return L.length - 1 }
      const copy = (e: number): number => {
        if (t.left[e] === -1) return add(-2, -2, value[e] as number)
        const id = add(t.feature[e] as number, t.threshold[e] as number, Number.NaN)
        L[id] = copy(t.left[e] as number)
        R[id] = copy(t.right[e] as number)
        return id
      }
      const chain = (i: number): number => {
        if (i === path.length) return copy(s)
        const e = path[i] as number
        const next = i + 1 < path.length ? path[i + 1] as number : s
        const id = add(t.feature[e] as number, t.threshold[e] as number, Number.NaN)
        const below = chain(i + 1)
        const zero = add(-2, -2, 0)
        L[id] = t.left[e] === next ? below : zero
        R[id] = t.left[e] === next ? zero : below
        return id
      }
      chain(0)
      return { left: Int32Array.from(L), right: Int32Array.from(R), feature: Int32Array.from(F), threshold: Float64Array.from(T), value: Float64Array.from(V) }
    }
    const visit = (e: number): void => {
      if ((leaves[e] as number) + (t.depth[e] as number) <= MAX_LEAVES) {
        out.push(extract(e))
        return
      }
      path.push(e)
      visit(t.left[e] as number)
      visit(t.right[e] as number)
      path.pop()
    }
    visit(0)
  }
  return out
}

/** m[o..o+WORDS) &= ~(bits a..b-1). */
function clearRange (m: Uint32Array, o: number, a: number, b: number): void {
  for (let w = a >>> 5; w <= ((b - 1) >>> 5); w++) {
    const s = Math.max(a - 32 * w, 0)
    const e = Math.min(b - 32 * w, 32)
    const bits = e - s === 32 ? 0xffffffff : ((1 << (e - s)) - 1) << s
    m[o + w] = (m[o + w] as number) & ~bits
  }
}

const bucketOf = (x: number, low: number, scale: number, bmax: number): number => Math.trunc(Math.min(Math.max((x - low) * scale, 0), bmax))

// The little of the WebAssembly API used here (the project's TypeScript libs do not declare it).
interface WasmMemory { readonly buffer: ArrayBuffer, grow(pages: number): number }
interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object) => { exports: { mem: WasmMemory, score: (n: number, nTrees: number) => number } }
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly

/** The shared kernel of one feature count: compiled once per thread, its memory holding the image of the forest that scored last. */
interface Kernel {
  memory: WasmMemory
  score: (n: number, nTrees: number) => number
  owner: SimdImage | null
}
const kernels: Array<Kernel | undefined> = []

function kernelFor (d: number): Kernel {
  let k = kernels[d - 1]
  if (k === undefined) {
    const { exports } = new wasm.Instance(new wasm.Module(Buffer.from(KERNELS[d - 1] as string, 'base64')))
    k = { memory: exports.mem, score: exports.score, owner: null }
    kernels[d - 1] = k
  }
  return k
}

/** A forest laid out for the SIMD kernel. */
export class SimdImage {
  readonly #d: number
  readonly #nTrees: number
  readonly #bytes: Uint8Array

  private constructor (d: number, nTrees: number, bytes: Uint8Array) {
    this.#d = d
    this.#nTrees = nTrees
    this.#bytes = bytes
  }

  /** Image size in bytes. */
  get size (): number { return this.#bytes.length }

  /**
   * Lays out the trees (sklearn node arrays with depths) for d features; null when they do not fit
   * the kernel (more than 8 features, more than 256 intervals in a tree, too many trees).
   */
  static build (trees: readonly ParsedTree[], d: number): SimdImage | null {
    if (d > MAX_FEATURES) return null
    const vtrees = virtualize(trees)
    const nTrees = vtrees.length
    if (nTrees > MAX_TREES) return null
    let nodes = 0
    let maxNodes = 0
    for (const t of vtrees) {
      nodes += t.left.length
      maxNodes = Math.max(maxNodes, t.left.length)
    }
    // Every feature's distinct split bounds, sorted (forest.ts's cuts), and each split's index among them.
    const nodeF = new Int32Array(nodes)
    const nodeB = new Float64Array(nodes)
    const fCount = new Int32Array(d + 1)
    for (let g = 0, k = 0; k < nTrees; k++) {
      const t = vtrees[k] as ValuedTree
      for (let i = 0; i < t.left.length; i++, g++) {
        if (t.left[i] === -1) { nodeF[g] = -1; continue }
        const f = t.feature[i] as number
        nodeF[g] = f
        nodeB[g] = float32SplitBound(t.threshold[i] as number)
        fCount[f + 1] = (fCount[f + 1] as number) + 1
      }
    }
    for (let f = 0; f < d; f++) fCount[f + 1] = (fCount[f + 1] as number) + (fCount[f] as number)
    const cuts = new Float64Array(fCount[d] as number)
    const fill = fCount.slice(0, d)
    for (let i = 0; i < nodes; i++) {
      const f = nodeF[i] as number
      if (f < 0) continue
      cuts[fill[f] as number] = nodeB[i] as number
      fill[f] = (fill[f] as number) + 1
    }
    const cutStart = new Int32Array(d + 1)
    let w = 0
    for (let f = 0; f < d; f++) {
      const seg = cuts.subarray(fCount[f], fCount[f + 1]).sort()
      cutStart[f] = w
      for (let i = 0; i < seg.length; i++) if (i === 0 || seg[i] !== seg[i - 1]) cuts[w++] = seg[i] as number
    }
    cutStart[d] = w
    const nCuts = w
    const nodeCut = new Int32Array(nodes)
    for (let i = 0; i < nodes; i++) {
      const f = nodeF[i] as number
      if (f >= 0) nodeCut[i] = lowerBound(cuts, cutStart[f] as number, cutStart[f + 1] as number, nodeB[i] as number)
    }
    // Per tree: leaves left to right with their leaf ranges; per feature its intervals and masks.
    const leafStart = new Int32Array(nTrees + 1)
    const leafVals = new Float64Array(nodes + nTrees)
    const maskStart = new Int32Array(nTrees + 1)
    const featStart = new Int32Array(nTrees * (d + 1)) // per (tree, feature): the tree's index of the feature's first interval
    const masks = new Uint32Array((nodes + nTrees * d) * WORDS).fill(0xffffffff)
    // Owners: per global cut, the trees that split on it (each at most once).
    const ownCount = new Int32Array(nCuts + 1)
    const ownPairs = new Int32Array(nodes * 2)
    let nPairs = 0
    const cap = maxNodes + 1
    const lo = new Int32Array(cap); const hi = new Int32Array(cap); const stack = new Int32Array(2 * cap)
    const byF = new Int32Array(cap); const fPos = new Int32Array(d + 1); const dc = new Int32Array(cap)
    const pre = new Uint32Array((cap + 1) * WORDS)
    let gbase = 0
    let nLeaves = 0
    let nMasks = 0
    for (let k = 0; k < nTrees; k++) {
      leafStart[k] = nLeaves
      maskStart[k] = nMasks
      const t = vtrees[k] as ValuedTree
      const n = t.left.length
      // Depth-first, left before right: leaves numbered left to right, [lo, hi) the leaves under each node.
      let sp = 0
      stack[sp++] = 0
      const l0 = nLeaves
      while (sp > 0) {
        const e = stack[--sp] as number
        if (e < 0) { hi[~e] = nLeaves - l0; continue }
        lo[e] = nLeaves - l0
        if (t.left[e] === -1) {
          leafVals[nLeaves++] = t.value[e] as number
          hi[e] = nLeaves - l0
          continue
        }
        stack[sp++] = ~e
        stack[sp++] = t.right[e] as number
        stack[sp++] = t.left[e] as number
      }
      if (nLeaves - l0 > MAX_LEAVES) return null
      // Split nodes grouped by feature, each group sorted by cut.
      fPos.fill(0)
      for (let i = 0; i < n; i++) if (t.left[i] !== -1) fPos[(t.feature[i] as number) + 1] = (fPos[(t.feature[i] as number) + 1] as number) + 1
      for (let f = 0; f < d; f++) fPos[f + 1] = (fPos[f + 1] as number) + (fPos[f] as number)
      const fp = fPos.slice(0, d)
      for (let i = 0; i < n; i++) {
        if (t.left[i] === -1) continue
        const f = t.feature[i] as number
        byF[fp[f] as number] = i
        fp[f] = (fp[f] as number) + 1
      }
      let iv0 = 0
      for (let f = 0; f < d; f++) {
        const s = fPos[f] as number
        const e = fPos[f + 1] as number
        for (let a = s + 1; a < e; a++) {
          const x = byF[a] as number
          const cx = nodeCut[gbase + x] as number
          let b = a - 1
          while (b >= s && (nodeCut[gbase + (byF[b] as number)] as number) > cx) { byF[b + 1] = byF[b] as number; b-- }
          byF[b + 1] = x
        }
        let m = 0
        for (let a = s; a < e; a++) {
          const c = nodeCut[gbase + (byF[a] as number)] as number
          if (m === 0 || dc[m - 1] !== c) dc[m++] = c
        }
        featStart[k * (d + 1) + f] = iv0
        // Interval iv (0..m): the nodes whose cut is among the tree's first iv distinct cuts send
        // the row right, so their left subtree's leaves are out of reach. The leftmost leaf still
        // reachable over all features is the one the row reaches (QuickScorer's theorem). Nodes are
        // sorted by cut, so interval iv's mask is pre[a]: the AND of the first a nodes' masks.
        const q = e - s
        pre.fill(0xffffffff, 0, WORDS)
        for (let b = 0; b < q; b++) {
          const x = byF[s + b] as number
          pre.copyWithin((b + 1) * WORDS, b * WORDS, (b + 1) * WORDS)
          clearRange(pre, (b + 1) * WORDS, lo[t.left[x] as number] as number, hi[t.left[x] as number] as number)
        }
        const mb = nMasks + iv0
        let a = 0
        for (let iv = 0; iv <= m; iv++) {
          masks.set(pre.subarray(a * WORDS, (a + 1) * WORDS), (mb + iv) * WORDS)
          if (iv < m) while (a < q && nodeCut[gbase + (byF[s + a] as number)] === dc[iv]) a++
        }
        for (let i = 0; i < m; i++) {
          const c = (cutStart[f] as number) + (dc[i] as number)
          ownPairs[2 * nPairs] = c
          ownPairs[2 * nPairs + 1] = k
          nPairs++
          ownCount[c + 1] = (ownCount[c + 1] as number) + 1
        }
        iv0 += m + 1
      }
      featStart[k * (d + 1) + d] = iv0
      if (iv0 > MAX_INTERVALS) return null
      nMasks += iv0
      gbase += n
    }
    leafStart[nTrees] = nLeaves
    maskStart[nTrees] = nMasks
    for (let i = 0; i < nCuts; i++) ownCount[i + 1] = (ownCount[i + 1] as number) + (ownCount[i] as number)
    const owners = new Int32Array(nPairs)
    const of = ownCount.slice(0, nCuts)
    for (let i = 0; i < nPairs; i++) {
      const c = ownPairs[2 * i] as number
      owners[of[c] as number] = ownPairs[2 * i + 1] as number
      of[c] = (of[c] as number) + 1
    }
    // The image.
    let size = DATA
    for (let f = 0; f < d; f++) {
      const c = (cutStart[f + 1] as number) - (cutStart[f] as number)
      // Cuts and padding, buckets (fewer than 2 BUCKETS_PER_CUT per cut), every tree's column, alignments.
      size += 16 + (c + K + 1) * 8 + 16 + 4 * 2 * BUCKETS_PER_CUT * Math.max(c, 1) + (c + 1) * nTrees
    }
    size += nLeaves * 8 + nTrees * 32 + nMasks * 16
    const buf = new ArrayBuffer(Math.ceil(size / 16) * 16)
    const dv = new DataView(buf)
    const u8 = new Uint8Array(buf); const u32 = new Uint32Array(buf); const f64 = new Float64Array(buf); const i32 = new Int32Array(buf)
    let p = DATA
    for (let f = 0; f < d; f++) {
      const cs = cutStart[f] as number
      const n = (cutStart[f + 1] as number) - cs
      p = (p + 15) & ~15
      const cutsAddr = p
      f64.set(cuts.subarray(cs, cs + n), p >> 3)
      f64.fill(Infinity, (p >> 3) + n, (p >> 3) + n + K + 1)
      p += 8 * (n + K + 1)
      const low = n > 0 ? cuts[cs] as number : 0
      const high = n > 0 ? cuts[cs + n - 1] as number : 0
      // Buckets: a power of two, doubled until no bucket holds more than K cuts (or the cap).
      let nB = n < 2 ? 1 : 2 ** Math.ceil(Math.log2(n))
      let scale = 0
      let bmax = 0
      for (;;) {
        bmax = nB - 1
        scale = high > low ? nB / (high - low) : 0
        let most = 0; let run = 0; let prev = -1
        for (let i = 0; i < n; i++) {
          const b = bucketOf(cuts[cs + i] as number, low, scale, bmax)
          run = b === prev ? run + 1 : 1
          prev = b
          if (run > most) most = run
        }
        if (most <= K || nB >= BUCKETS_PER_CUT * Math.max(n, 1)) break
        nB *= 2
      }
      p = (p + 15) & ~15
      const bucketsAddr = p
      const bk = p >> 2
      let b = 0
      for (let i = 0; i < n; i++) {
        const cb = bucketOf(cuts[cs + i] as number, low, scale, bmax)
        while (b <= cb) i32[bk + b++] = i
      }
      while (b < nB) i32[bk + b++] = n
      p += 4 * nB
      const pa = PARAM + 48 * f
      dv.setFloat64(pa, low, true)
      dv.setFloat64(pa + 8, scale, true)
      dv.setFloat64(pa + 16, bmax, true)
      dv.setInt32(pa + 24, bucketsAddr, true)
      dv.setInt32(pa + 28, cutsAddr, true)
    }
    // Column offsets: feature f's column starts colOff[f] bytes into a tree's columns.
    const colOff = new Int32Array(d + 1)
    for (let f = 0; f < d; f++) {
      colOff[f + 1] = (colOff[f] as number) + (cutStart[f + 1] as number) - (cutStart[f] as number) + 1
      dv.setInt32(PARAM + 48 * f + 32, colOff[f] as number, true)
    }
    const colBase = new Int32Array(nTrees)
    for (let k = 0; k < nTrees; k++) {
      const L = (leafStart[k + 1] as number) - (leafStart[k] as number)
      p += L * 8 + 16
      p = (p + 15) & ~15
      for (let l = 0; l < L; l++) f64[((p - 16) >> 3) - l] = leafVals[(leafStart[k] as number) + l] as number
      i32[(HDR >> 2) + 2 * k] = p - 16
      const nm = (maskStart[k + 1] as number) - (maskStart[k] as number)
      u32.set(masks.subarray((maskStart[k] as number) * WORDS, ((maskStart[k] as number) + nm) * WORDS), p >> 2)
      p += nm * 16
      colBase[k] = p
      i32[(HDR >> 2) + 2 * k + 1] = p
      p += colOff[d] as number
    }
    // Columns, rank by rank: a row of rank r is one interval further than one of rank r - 1 in
    // the trees that split on cut r - 1.
    const cur = new Int32Array(nTrees)
    for (let f = 0; f < d; f++) {
      for (let k = 0; k < nTrees; k++) cur[k] = featStart[k * (d + 1) + f] as number
      const n = (cutStart[f + 1] as number) - (cutStart[f] as number)
      for (let r = 0; r <= n; r++) {
        if (r > 0) {
          const c = (cutStart[f] as number) + r - 1
          for (let j = ownCount[c] as number; j < (ownCount[c + 1] as number); j++) {
            const k = owners[j] as number
            cur[k] = (cur[k] as number) + 1
          }
        }
        const at = (colOff[f] as number) + r
        for (let k = 0; k < nTrees; k++) u8[(colBase[k] as number) + at] = cur[k] as number
      }
    }
    if (p > size) throw new Error(`SimdImage: image overflow (${p} > ${size})`)
    return new SimdImage(d, nTrees, new Uint8Array(buf.slice(0, p)))
  }

  /**
   * Path-length sums of rows [row0, row0 + n) of `data` (row-major, d values a row, n <= BLOCK)
   * into out[0..n). Returns whether a value was NaN (those rows' sums are then meaningless).
   */
  sums (data: ArrayLike<number>, row0: number, n: number, out: Float64Array): boolean {
    if (n > BLOCK) throw new RangeError(`at most ${BLOCK} rows a call, got ${n}`)
    const d = this.#d
    const k = kernelFor(d)
    if (k.owner !== this) {
      const need = this.#bytes.length + SLACK
      if (k.memory.buffer.byteLength < need) k.memory.grow(Math.ceil((need - k.memory.buffer.byteLength) / 65536))
      new Uint8Array(k.memory.buffer).set(this.#bytes)
      k.owner = this
    }
    const input = new Float64Array(k.memory.buffer, IN, n * d)
    const start = row0 * d
    if (data instanceof Float64Array || data instanceof Float32Array) input.set(data.subarray(start, start + n * d))
    else for (let i = 0; i < n * d; i++) input[i] = data[start + i] as number
    const nan = k.score(n, this.#nTrees) !== 0
    out.set(new Float64Array(k.memory.buffer, OUT, n))
    return nan
  }
}
