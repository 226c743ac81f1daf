// Numerical helpers of the Isolation Forest, each written to reproduce scikit-learn / numpy
// operation by operation (see shared/notes/isolation-forest-reference.md).

/** numpy's `np.euler_gamma`. */
export const EULER_GAMMA = 0.5772156649015329

/** sklearn's FEATURE_THRESHOLD (a float32 constant): a feature with max <= min + this is constant in a node. */
export const FEATURE_THRESHOLD_F32 = Math.fround(1e-7)

/** The largest finite float32. */
export const FLOAT32_MAX = 3.4028234663852886e38

/**
 * c(n) of sklearn's `_average_path_length`: the mean path length of an unsuccessful search in a
 * binary search tree of n keys. c(n) = 2(ln(n-1) + γ) - 2(n-1)/n for n > 2, c(2) = 1, c(n <= 1) = 0.
 * Same operations in the same order as sklearn, so the result matches it to the last bit wherever
 * Math.log agrees with the C library's log.
 */
export function averagePathLength (n: number): number {
  if (n <= 1) return 0
  if (n === 2) return 1
  return 2 * (Math.log(n - 1) + EULER_GAMMA) - 2 * (n - 1) / n
}

/**
 * numpy's default (`method="linear"`) percentile of already sorted values, `q` in percent, with
 * numpy's own operations: virtual index (n - 1) * (q / 100), then its `_lerp`, which interpolates
 * from the upper neighbour when the weight is >= 0.5.
 */
export function linearPercentile (sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length
  if (n === 0) throw new RangeError('linearPercentile: no values')
  const v = (n - 1) * (q / 100)
  if (v >= n - 1) return sorted[n - 1] as number
  if (v < 0) return sorted[0] as number
  const prev = Math.floor(v)
  const gamma = v - prev
  const a = sorted[prev] as number
  const b = sorted[prev + 1] as number
  const diff = b - a
  return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)
const f64 = new Float64Array(1)
const i64 = new BigInt64Array(f64.buffer)

/** The next float32 above the float32 value `f` (2^128 stands for +Infinity above FLOAT32_MAX). */
function float32Above (f: number): number {
  if (f === -Infinity) return -FLOAT32_MAX
  if (f === FLOAT32_MAX) return 2 ** 128
  if (f === 0) return 2 ** -149
  f32[0] = f
  u32[0] = f > 0 ? u32[0]! + 1 : u32[0]! - 1
  return f32[0]!
}

/** The next float32 below the float32 value `f` (may be -Infinity). */
function float32Below (f: number): number {
  if (f === -Infinity) return -Infinity
  if (f === 0) return -(2 ** -149)
  f32[0] = f
  u32[0] = f > 0 ? u32[0]! - 1 : u32[0]! + 1
  return f32[0]!
}

/** The next double below the finite double `x`. */
function doubleBelow (x: number): number {
  if (x === 0) return -Number.MIN_VALUE
  f64[0] = x
  i64[0] = x > 0 ? i64[0]! - 1n : i64[0]! + 1n
  return f64[0]!
}

/**
 * The split test of sklearn is `float32(x) <= t` (float32 feature, float64 threshold). This returns
 * the double `m` with `Math.fround(x) <= t  ⟺  x <= m` for every non-NaN double x, so the scorer can
 * compare raw float64 features without a Math.fround per comparison, and stays exact. `m` lies just
 * at or below the midpoint between the largest float32 <= t and the next float32 up, depending on
 * which way a tie rounds (to even). t = +Infinity gives +Infinity (every row goes left).
 */
export function float32SplitBound (t: number): number {
  if (Number.isNaN(t)) throw new RangeError('float32SplitBound: NaN threshold')
  if (t === Infinity) return Infinity
  // lo: the largest float32 <= t (-Infinity when t is below -FLOAT32_MAX).
  let lo = Math.fround(t)
  if (lo > t) lo = float32Below(lo)
  const hi = float32Above(lo)
  const mid = ((lo === -Infinity ? -(2 ** 128) : lo) + hi) / 2 // exact: both have 24-bit significands
  return Math.fround(mid) <= t ? mid : doubleBelow(mid)
}

/** Index of the first of the sorted a[s..e) that is >= x, counted from s. */
export function lowerBound (a: Float64Array, s: number, e: number, x: number): number {
  let lo = s
  let hi = e
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((a[mid] as number) < x) lo = mid + 1
    else hi = mid
  }
  return lo - s
}
