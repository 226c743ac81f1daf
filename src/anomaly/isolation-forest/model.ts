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

/** A model's stored form: its JSON, gzipped (about 185 KB for 100 trees of 256 samples). */
export function encodeModel (model: IsolationForestModel): Uint8Array {
  return gzipSync(JSON.stringify(model), { level: 1 })
}

/** The JSON of a stored model (validate it with `IsolationForest.fromJSON`); throws AnomalyStateError on bytes that are not one. */
export function decodeModel (bytes: Uint8Array): unknown {
  try {
    return JSON.parse(gunzipSync(bytes).toString('utf8')) as unknown
  } catch (err) {
    throw new AnomalyStateError('', `a stored model is gzipped JSON: ${(err as Error).message}`)
  }
}
