import { gunzipSync, gzipSync } from 'node:zlib'
import { AnomalyStateError } from '../errors.ts'

/**
 * One isolation tree as scikit-learn's node arrays (`tree_.children_left`, `children_right`,
 * `feature`, `threshold`, `n_node_samples`), node 0 the root. A leaf has left = right = -1 (sklearn
 * stores feature = threshold = -2 there; any integer / finite number is accepted and ignored).
 * Rows with `float32(x[feature]) <= threshold` go left.
 */
export interface IsolationTreeModel {
  left: number[]
  right: number[]
  feature: number[]
  threshold: number[]
  /** Training rows that reached the node (sklearn `n_node_samples`): a leaf adds c(nodeSamples) to the path length. */
  nodeSamples: number[]
}

/** Plain-JSON Isolation Forest (for storing in a database), in the shape sklearn's fitted trees export to. */
export interface IsolationForestModel {
  version: 1
  nFeatures: number
  /** sklearn `max_samples_`: rows per tree, ψ. */
  maxSamples: number
  /** sklearn `offset_`: decision_function = score_samples - offset. */
  offset: number
  trees: IsolationTreeModel[]
}

/** A validated tree in flat typed arrays, with each node's depth (root 0). */
export interface ParsedTree {
  left: Int32Array
  right: Int32Array
  feature: Int32Array
  threshold: Float64Array
  nodeSamples: Int32Array
  depth: Int32Array
}

export interface ParsedModel {
  nFeatures: number
  maxSamples: number
  offset: number
  trees: ParsedTree[]
}

/** Depth limit of a tree grown on ψ rows: sklearn's ceil(log2(max(ψ, 2))). */
export function depthLimit (maxSamples: number): number {
  return Math.ceil(Math.log2(Math.max(maxSamples, 2)))
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function positiveInteger (v: unknown, path: string, max = 2 ** 31 - 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new AnomalyStateError(path, `expected an integer in [1, ${max}], got ${String(v)}`)
  }
  return v
}

function numberArray (v: unknown, path: string, length: number | null): number[] {
  if (!Array.isArray(v)) throw new AnomalyStateError(path, 'expected an array of numbers')
  if (length !== null && v.length !== length) {
    throw new AnomalyStateError(path, `expected ${length} entries (as many as left), got ${v.length}`)
  }
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i]
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new AnomalyStateError(`${path}[${i}]`, `expected a finite number, got ${String(x)}`)
  }
  return v as number[]
}

function parseTree (v: unknown, path: string, nFeatures: number, maxSamples: number, maxDepth: number): ParsedTree {
  if (!isObject(v)) throw new AnomalyStateError(path, 'expected an object')
  const leftIn = numberArray(v.left, `${path}.left`, null)
  const n = leftIn.length
  if (n < 1) throw new AnomalyStateError(`${path}.left`, 'a tree has at least one node')
  const rightIn = numberArray(v.right, `${path}.right`, n)
  const featureIn = numberArray(v.feature, `${path}.feature`, n)
  const thresholdIn = numberArray(v.threshold, `${path}.threshold`, n)
  const samplesIn = numberArray(v.nodeSamples, `${path}.nodeSamples`, n)
  const t: ParsedTree = {
    left: new Int32Array(n),
    right: new Int32Array(n),
    feature: new Int32Array(n),
    threshold: new Float64Array(thresholdIn),
    nodeSamples: new Int32Array(n),
    depth: new Int32Array(n).fill(-1)
  }
  for (let i = 0; i < n; i++) {
    const l = leftIn[i] as number
    const r = rightIn[i] as number
    const f = featureIn[i] as number
    const s = samplesIn[i] as number
    if (!Number.isInteger(s) || s < 1 || s > maxSamples) {
      throw new AnomalyStateError(`${path}.nodeSamples[${i}]`, `expected an integer in [1, maxSamples = ${maxSamples}], got ${s}`)
    }
    if (!Number.isInteger(f)) throw new AnomalyStateError(`${path}.feature[${i}]`, `expected an integer, got ${f}`)
    if (l === -1 || r === -1) {
      if (l !== r) throw new AnomalyStateError(`${path}.left[${i}]`, `a leaf has left = right = -1, got left ${l}, right ${r}`)
    } else {
      for (const [name, c] of [['left', l], ['right', r]] as const) {
        if (!Number.isInteger(c) || c < 1 || c >= n) {
          throw new AnomalyStateError(`${path}.${name}[${i}]`, `child index ${c} out of range [1, ${n - 1}] (or -1 for a leaf)`)
        }
      }
      if (f < 0 || f >= nFeatures) throw new AnomalyStateError(`${path}.feature[${i}]`, `feature ${f} out of range [0, ${nFeatures - 1}]`)
    }
    t.left[i] = l
    t.right[i] = r
    t.feature[i] = f
    t.nodeSamples[i] = s
  }
  if (t.nodeSamples[0] !== maxSamples) {
    throw new AnomalyStateError(`${path}.nodeSamples[0]`, `the root holds every row of the subsample: expected maxSamples = ${maxSamples}, got ${t.nodeSamples[0]}`)
  }
  // Walk from the root: every node reached exactly once (no cycle, no shared child, nothing orphaned),
  // children's samples add up to their parent's, depth within sklearn's limit.
  const stack = [0]
  t.depth[0] = 0
  let reached = 1
  while (stack.length > 0) {
    const i = stack.pop() as number
    const l = t.left[i] as number
    if (l === -1) continue
    const r = t.right[i] as number
    const d = (t.depth[i] as number) + 1
    for (const c of [l, r]) {
      if (t.depth[c] !== -1) throw new AnomalyStateError(`${path}`, `node ${c} is reached twice (a cycle or a shared child, from node ${i})`)
      if (d > maxDepth) throw new AnomalyStateError(`${path}`, `node ${c} is at depth ${d}, beyond the limit ceil(log2(maxSamples)) = ${maxDepth}`)
      t.depth[c] = d
      reached++
      stack.push(c)
    }
    if ((t.nodeSamples[l] as number) + (t.nodeSamples[r] as number) !== t.nodeSamples[i]) {
      throw new AnomalyStateError(`${path}.nodeSamples[${i}]`, `a split node's samples are the sum of its children's: ${t.nodeSamples[i]} != ${t.nodeSamples[l]} + ${t.nodeSamples[r]}`)
    }
  }
  if (reached !== n) throw new AnomalyStateError(path, `${n - reached} node(s) are not reachable from the root`)
  return t
}

/** Validates a plain-JSON model; throws AnomalyStateError naming the first problem. */
export function parseModel (json: unknown): ParsedModel {
  if (!isObject(json)) throw new AnomalyStateError('', 'an Isolation Forest model is a JSON object')
  if (json.version !== 1) throw new AnomalyStateError('version', `unsupported model version ${String(json.version)} (expected 1)`)
  const nFeatures = positiveInteger(json.nFeatures, 'nFeatures', 1 << 20)
  const maxSamples = positiveInteger(json.maxSamples, 'maxSamples')
  const offset = json.offset
  if (typeof offset !== 'number' || !Number.isFinite(offset)) throw new AnomalyStateError('offset', `expected a finite number, got ${String(offset)}`)
  if (!Array.isArray(json.trees) || json.trees.length < 1) throw new AnomalyStateError('trees', 'expected a non-empty array of trees')
  const maxDepth = depthLimit(maxSamples)
  const trees = json.trees.map((t: unknown, i) => parseTree(t, `trees[${i}]`, nFeatures, maxSamples, maxDepth))
  return { nFeatures, maxSamples, offset, trees }
}

const MAGIC = 'IFB1'
const HEADER = 28

function fitsNarrow (m: ParsedModel): boolean {
  if (m.nFeatures > 127 || m.maxSamples > 65_535) return false
  for (const t of m.trees) {
    if (t.left.length > 32_767) return false
    for (let i = 0; i < t.left.length; i++) {
      const f = t.feature[i] as number
      if (f < -128 || f > 127) return false
    }
  }
  return true
}

/**
 * A model's stored form, "IFB1": gzipped, a header (magic, width, nFeatures, maxSamples, offset,
 * trees), each tree's node count, then per tree its node arrays (left, right, feature,
 * nodeSamples, threshold), little-endian, 16-bit indices and 8-bit features when they fit. For
 * 100 trees of 256 samples: 153 KB in about 7 ms, where gzipped JSON took 186 KB and 15 ms.
 */
export function encodeModel (m: ParsedModel): Uint8Array {
  const narrow = fitsNarrow(m)
  let nodes = 0
  for (const t of m.trees) nodes += t.left.length
  const bytes = HEADER + 4 * m.trees.length + nodes * (narrow ? 2 + 2 + 1 + 2 + 8 : 4 + 4 + 4 + 4 + 8)
  const buf = Buffer.alloc(bytes)
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  buf.write(MAGIC, 0, 'latin1')
  v.setUint8(4, narrow ? 0 : 1)
  v.setUint32(8, m.nFeatures, true)
  v.setUint32(12, m.maxSamples, true)
  v.setFloat64(16, m.offset, true)
  v.setUint32(24, m.trees.length, true)
  let o = HEADER
  for (const t of m.trees) {
    v.setUint32(o, t.left.length, true)
    o += 4
  }
  for (const t of m.trees) {
    const n = t.left.length
    if (narrow) {
      for (let i = 0; i < n; i++, o += 2) v.setInt16(o, t.left[i] as number, true)
      for (let i = 0; i < n; i++, o += 2) v.setInt16(o, t.right[i] as number, true)
      for (let i = 0; i < n; i++, o += 1) v.setInt8(o, t.feature[i] as number)
      for (let i = 0; i < n; i++, o += 2) v.setUint16(o, t.nodeSamples[i] as number, true)
    } else {
      for (let i = 0; i < n; i++, o += 4) v.setInt32(o, t.left[i] as number, true)
      for (let i = 0; i < n; i++, o += 4) v.setInt32(o, t.right[i] as number, true)
      for (let i = 0; i < n; i++, o += 4) v.setInt32(o, t.feature[i] as number, true)
      for (let i = 0; i < n; i++, o += 4) v.setInt32(o, t.nodeSamples[i] as number, true)
    }
    for (let i = 0; i < n; i++, o += 8) v.setFloat64(o, t.threshold[i] as number, true)
  }
  return gzipSync(buf, { level: 1 })
}

/**
 * A stored model as plain JSON (`IsolationForestModel`, to validate with `IsolationForest.fromJSON`).
 * Reads "IFB1" and the gzipped JSON stored before it; throws AnomalyStateError on anything else.
 */
export function decodeModel (bytes: Uint8Array): unknown {
  let raw: Buffer
  try {
    raw = gunzipSync(bytes)
  } catch (err) {
    throw new AnomalyStateError('', `a stored model is gzipped: ${(err as Error).message}`)
  }
  if (raw.toString('latin1', 0, 4) !== MAGIC) {
    try {
      return JSON.parse(raw.toString('utf8')) as unknown
    } catch (err) {
      throw new AnomalyStateError('', `a stored model is IFB1 or JSON: ${(err as Error).message}`)
    }
  }
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  const need = (o: number, what: string): void => {
    if (o > raw.length) throw new AnomalyStateError('', `a stored model ends inside its ${what} (${raw.length} bytes)`)
  }
  need(HEADER, 'header')
  const narrow = v.getUint8(4) === 0
  const nTrees = v.getUint32(24, true)
  need(HEADER + 4 * nTrees, 'node counts')
  const counts = Array.from({ length: nTrees }, (_, k) => v.getUint32(HEADER + 4 * k, true))
  let o = HEADER + 4 * nTrees
  const trees: IsolationTreeModel[] = counts.map((n, k) => {
    need(o + n * (narrow ? 15 : 24), `tree ${k}`)
    const read = (width: number, get: (at: number) => number): number[] => {
      const out = new Array<number>(n)
      for (let i = 0; i < n; i++, o += width) out[i] = get(o)
      return out
    }
    const left = read(narrow ? 2 : 4, at => narrow ? v.getInt16(at, true) : v.getInt32(at, true))
    const right = read(narrow ? 2 : 4, at => narrow ? v.getInt16(at, true) : v.getInt32(at, true))
    const feature = read(narrow ? 1 : 4, at => narrow ? v.getInt8(at) : v.getInt32(at, true))
    const nodeSamples = read(narrow ? 2 : 4, at => narrow ? v.getUint16(at, true) : v.getInt32(at, true))
    const threshold = read(8, at => v.getFloat64(at, true))
    return { left, right, feature, threshold, nodeSamples }
  })
  return { version: 1, nFeatures: v.getUint32(8, true), maxSamples: v.getUint32(12, true), offset: v.getFloat64(16, true), trees }
}
