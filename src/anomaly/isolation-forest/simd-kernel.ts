// The WebAssembly SIMD scoring kernel as WAT text, for d = 1..8 features. scripts/gen-forest-wasm.ts
// assembles it (wabt, a dev dependency) into simd-wasm.generated.ts; a test checks the committed
// bytes still match this text. The code is the same for every forest of a given d: everything
// per forest is read from memory, laid out by simd.ts (the memory map below).
//
// Per row, its d ranks (a bucket table, then a branch-free count of the next 4 cuts with two
// f64x2 compares, a loop only beyond). Then per tree and row, the AND of d 128-bit masks of
// still-reachable leaves, one per feature, chosen by the row's rank (QuickScorer, Lucchese et al.
// 2015); the lowest set bit is the leaf the row reaches, whose path length is added to the row's
// sum, trees in order from +0.

/** Per feature f at PARAM + 48 f: bucket low f64, scale f64, max bucket f64, bucket table i32, cuts i32, column offset i32. */
export const PARAM = 0
/** Rows per call of the kernel. */
export const BLOCK = 1024
/** Most features the kernel takes (the input block is sized for them). */
export const MAX_FEATURES = 8
/** The block of input rows (BLOCK rows of d float64). */
export const IN = 1024
/** Each row's rank on each feature (i32), written by the kernel's first pass. */
export const RANKS = IN + BLOCK * 8 * MAX_FEATURES
/** The path-length sums of the block's rows (float64). */
export const OUT = RANKS + BLOCK * 4 * MAX_FEATURES
/**
 * Per tree two i32: B, the base of its leaves and masks (leaf l's path length at B - 8 l, interval
 * i's mask at B + 16 + 16 i), and C, the base of its interval columns (feature f's at C + the
 * feature's column offset: a byte per rank, the tree's interval for a row of that rank).
 */
export const HDR = OUT + BLOCK * 8
/** Most trees (virtual ones included) HDR has room for. */
export const MAX_TREES = 16_384
/** Where the per-forest data starts. */
export const DATA = HDR + MAX_TREES * 8
/** Cuts counted branch-free per step of the rank scan (each feature's cuts are padded with K + 1 infinities). */
export const K = 4

const get = (n: string): string => `(local.get ${n})`

/**
 * The kernel's WAT for d features: `score(n, nTrees) -> 1 if a row held a NaN`, reading n <= BLOCK
 * rows at IN and writing their sums at OUT. First the ranks of every row, then tree by tree over
 * all rows (one tree's masks and columns stay in L1 while the block runs through it), so each
 * row's sum still adds the trees in order from +0.
 */
export function kernelWat (d: number): string {
  if (!Number.isInteger(d) || d < 1 || d > MAX_FEATURES) throw new RangeError(`d must be an integer in [1, ${MAX_FEATURES}], got ${d}`)
  const Q = Array.from({ length: d }, (_, f) => `$q${f}`)
  const rank = (f: number): string => {
    const pa = PARAM + 48 * f
    return `
        (local.set $x (f64.load offset=${8 * f} ${get('$in')}))
        (local.set $nan (i32.or ${get('$nan')} (f64.ne ${get('$x')} ${get('$x')})))
        (local.set $i (i32.load (i32.add (i32.load (i32.const ${pa + 24})) (i32.shl (i32.trunc_sat_f64_u
          (f64.min (f64.max (f64.mul (f64.sub ${get('$x')} (f64.load (i32.const ${pa}))) (f64.load (i32.const ${pa + 8}))) (f64.const 0)) (f64.load (i32.const ${pa + 16})))) (i32.const 2)))))
        (local.set $c (i32.add (i32.load (i32.const ${pa + 28})) (i32.shl ${get('$i')} (i32.const 3))))
        (local.set $v (f64x2.splat ${get('$x')}))
        (local.set $k (i64x2.add (f64x2.lt (v128.load ${get('$c')}) ${get('$v')}) (f64x2.lt (v128.load offset=16 ${get('$c')}) ${get('$v')})))
        (local.set $cnt (i32.wrap_i64 (i64.sub (i64.const 0) (i64.add (i64x2.extract_lane 0 ${get('$k')}) (i64x2.extract_lane 1 ${get('$k')})))))
        (local.set $i (i32.add ${get('$i')} ${get('$cnt')}))
        (if (i32.eq ${get('$cnt')} (i32.const ${K})) (then
          (local.set $c (i32.add ${get('$c')} (i32.const ${8 * K})))
          (block $e (loop $l
            (br_if $e (i32.eqz (f64.lt (f64.load ${get('$c')}) ${get('$x')})))
            (local.set $i (i32.add ${get('$i')} (i32.const 1)))
            (local.set $c (i32.add ${get('$c')} (i32.const 8)))
            (br $l)))))
        (i32.store offset=${4 * f} ${get('$rp')} ${get('$i')})`
  }
  const mask = (f: number): string =>
    `(v128.load offset=16 (i32.add ${get('$b')} (i32.shl (i32.load8_u (i32.add ${get(Q[f]!)} (i32.load offset=${4 * f} ${get('$rp')}))) (i32.const 4))))`
  let m = mask(0)
  for (let f = 1; f < d; f++) m = `(v128.and ${m} ${mask(f)})`
  return `(module
  (memory (export "mem") 1)
  (func (export "score") (param $n i32) (param $ntrees i32) (result i32)
    ${Q.map(q => `(local ${q} i32)`).join(' ')}
    (local $in i32) (local $rp i32) (local $out i32) (local $end i32) (local $t i32) (local $b i32) (local $m v128) (local $lo i64) (local $hi i64)
    (local $x f64) (local $nan i32) (local $i i32) (local $c i32) (local $v v128) (local $k v128) (local $cnt i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      ;; pass 1: ranks, sums from +0
      (local.set $in (i32.const ${IN}))
      (local.set $rp (i32.const ${RANKS}))
      (local.set $out (i32.const ${OUT}))
      (local.set $end (i32.add (i32.const ${OUT}) (i32.shl (local.get $n) (i32.const 3))))
      (loop $rows
        ${Array.from({ length: d }, (_, f) => rank(f)).join('\n')}
        (f64.store (local.get $out) (f64.const 0))
        (local.set $in (i32.add (local.get $in) (i32.const ${8 * d})))
        (local.set $rp (i32.add (local.get $rp) (i32.const ${4 * d})))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))
        (br_if $rows (i32.lt_u (local.get $out) (local.get $end))))
      ;; pass 2: tree by tree over the block
      (local.set $t (i32.const 0))
      (loop $trees
        (local.set $b (i32.load (i32.add (i32.const ${HDR}) (i32.shl (local.get $t) (i32.const 3)))))
        (local.set $c (i32.load offset=4 (i32.add (i32.const ${HDR}) (i32.shl (local.get $t) (i32.const 3)))))
        ${Q.map((q, f) => `(local.set ${q} (i32.add ${get('$c')} (i32.load (i32.const ${PARAM + 48 * f + 32}))))`).join('\n        ')}
        (local.set $rp (i32.const ${RANKS}))
        (local.set $out (i32.const ${OUT}))
        (loop $rows2
          (local.set $m ${m})
          (local.set $lo (i64x2.extract_lane 0 ${get('$m')}))
          (local.set $hi (i64x2.extract_lane 1 ${get('$m')}))
          (f64.store (local.get $out) (f64.add (f64.load (local.get $out)) (f64.load (i32.sub ${get('$b')}
            (i32.shl (i32.wrap_i64 (select (i64.ctz ${get('$lo')}) (i64.add (i64.ctz ${get('$hi')}) (i64.const 64)) (i64.ne ${get('$lo')} (i64.const 0)))) (i32.const 3))))))
          (local.set $rp (i32.add (local.get $rp) (i32.const ${4 * d})))
          (local.set $out (i32.add (local.get $out) (i32.const 8)))
          (br_if $rows2 (i32.lt_u (local.get $out) (local.get $end))))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br_if $trees (i32.lt_u (local.get $t) (local.get $ntrees)))))
    (local.get $nan)))
`
}
