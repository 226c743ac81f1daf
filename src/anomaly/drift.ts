import { AnomalyConfigError } from './errors.ts'
import { restoreFrom, snapshotOf, type SnapshotReader, type SnapshotWriter, type StateInstaller } from './snapshot.ts'
import { scaleFloor } from './zscore.ts'

const HOUR_MS = 3_600_000

export interface DriftOptions {
  /** Longest time constant of the reference, in readings. Default 300. */
  referenceReadings?: number | undefined
  /** Shortest time constant of the reference, in readings. Default 10. */
  minReferenceReadings?: number | undefined
  /** The reference's time constant is this many times the sensor's own (Kalman) one, within the bounds. Default 5. */
  referenceFactor?: number | undefined
  /** CUSUM allowance k, in standard deviations of the residual. Default 0.75. */
  k?: number | undefined
  /** CUSUM decision interval h, in standard deviations of the residual. Default 12. */
  h?: number | undefined
  /** Readings before the test starts (the reference, the scale and the variogram learn). Default 200. */
  warmup?: number | undefined
  /** The reference stops following while a statistic is beyond this share of h. Default 0.5. */
  freeze?: number | undefined
  /** An elevated statistic that has not reached h within this many readings releases the reference (it was not a drift). Default 50. */
  releaseAfter?: number | undefined
  /** A drift flagged for this many reference time constants is the sensor's new level (the reference restarts there). Default 2. */
  acceptAfter?: number | undefined
  /** The CUSUM allowance stays this many deviations of the residual's slow wander above it. Default 3.5. */
  walkZ?: number | undefined
  /** Reference time constant × cadence beyond which the test waits for the daily pattern to be known. Default 1 hour. */
  maxUnseasonedMs?: number | undefined
}

/** The residual scale and the variogram learn over this many longest reference time constants. */
const SCALE_SPAN = 10
/** Residuals beyond this many scales are clipped when the scale learns (robust to outliers), after the first EARLY readings. */
const CLIP = 4
const EARLY = 30
/** E|x| of a standard normal variable is sqrt(2/π): mean absolute residual × this is its standard deviation. */
const ABS_TO_SIGMA = Math.sqrt(Math.PI / 2)
/** Statistics are capped at this many decision intervals, so a drift that ends unflags within a few readings. */
const CAP = 1.5
/** A flagged drift ends at once when a reading is less than this many scales beyond the reference in its direction ... */
const BACK = 2
/** ... and at least this many scales back from where the drift had gone (a sensor that snapped back). */
const AWAY = 3
/** Weight of the newest residual in the drift's level and strength (the snap-back and recede tests). */
const LEVEL_WEIGHT = 0.2
/** Highest lag-1 autocorrelation the standardisation corrects for. */
const MAX_RHO = 0.9
/** During a drift, a reading this many scales from where the drift has gone is a spike. */
const SPIKE_SCALES = 6
/** Readings a restarted reference learns from before the test resumes. */
const RESTART = 10
/** Readings on each side of the step test. */
const STEP = 20
/** The step test's running sums are summed afresh this often (rounding). */
const RESUM = 1024
/** A step: the mean of the last STEP readings this many scales from the mean of the STEP before. */
const STEP_SCALES = 2
/** Readings the residual is averaged over to measure its slow wander (about the CUSUM's horizon). */
const SMOOTH = 30
/** Lag of the variogram that tells a sensor's random walk from its noise. */
const LAG = 100

class State {
  n = 0
  /** Readings the reference has learnt from since it last restarted (at a step). */
  m = 0
  /** The last 2·STEP values the test saw (a ring), for the step test. */
  readonly recent = new Float64Array(2 * STEP)
  recentHead = 0
  recentCount = 0
  /** Sums of the older and the newer half of `recent`, and updates since they were last summed afresh. */
  older = 0
  newer = 0
  sinceSums = 0
  reference = 0
  /** Readings the reference has not learnt from (frozen) since it last did. */
  frozen = 0
  /** The reference's time constant (readings), from the variogram. */
  tau = 0
  /** The last LAG learnt values (a ring, `head` the oldest), and the mean squared differences at lag 1 and LAG. */
  readonly ring = new Float64Array(LAG)
  head = 0
  /** Values in the ring (up to LAG). */
  filled = 0
  v1 = 0
  vLag = 0
  pairs = 0
  /** Exponential averages of |residual| (the scale) and of residual products (the autocorrelation), in value units. */
  absDev = 0
  variance = 0
  covariance = 0
  lastResidual = 0
  /** The residual averaged over SMOOTH readings, and the variance of that average (its slow part beyond noise is wander). */
  smooth = 0
  smoothVariance = 0
  up = 0
  down = 0
  /** The reference when the statistic last rose from 0: where a drift began. */
  origin = 0
  /** +1 drifting up, -1 down, 0 not flagged. */
  direction = 0
  /** Readings the reference has been frozen without a drift flagged. */
  frozenFor = 0
  /** Where the flagged drift has gone (in scales), and for how many readings it has been flagged. */
  level = 0
  /** The same in standardised residuals (the walk while the reference stands still allowed for). */
  strength = 0
  flagged = 0
  lastTs = NaN
  interval = NaN
}

/** The integer fields of `State`, in snapshot order. */
const COUNTERS = ['n', 'm', 'recentHead', 'recentCount', 'sinceSums', 'frozen', 'head', 'filled', 'pairs', 'frozenFor', 'flagged'] as const
/** The Float64 fields of `State`, in snapshot order. */
const MEASURES = [
  'older', 'newer', 'reference', 'tau', 'v1', 'vLag', 'absDev', 'variance', 'covariance', 'lastResidual', 'smooth', 'smoothVariance',
  'up', 'down', 'origin', 'level', 'strength', 'lastTs', 'interval'
] as const

/** Writes the `count` values of a ring that end before `head` (oldest first). */
function writeRing (out: SnapshotWriter, ring: Float64Array, head: number, count: number): void {
  const size = ring.length
  const start = (head - count + size) % size
  const first = Math.min(count, size - start)
  out.f64s(ring, start, first)
  out.f64s(ring, 0, count - first)
}

function readRing (input: SnapshotReader, path: string, ring: Float64Array, head: number, count: number): void {
  const size = ring.length
  const start = (head - count + size) % size
  const first = Math.min(count, size - start)
  input.f64s(path, ring, start, first)
  input.f64s(path, ring, 0, count - first)
}

function option (name: string, v: number | undefined, dflt: number, integer: boolean): number {
  if (v === undefined) return dflt
  if (!Number.isFinite(v) || !(v > 0) || (integer && !Number.isInteger(v))) {
    throw new AnomalyConfigError(name, `must be a ${integer ? 'positive integer' : 'finite number > 0'}, got ${String(v)}`)
  }
  return v
}

/**
 * Drift detection per sensor: a two-sided CUSUM (Page 1954) on standardised residuals against a
 * slow reference that does not follow the drift (docs/ARCHITECTURE.md, Detection).
 *
 * - reference: an exponential average of the (deseasonalised) value. Its time constant is
 *   `referenceFactor` (5) × the sensor's own: that of the steady-state Kalman filter of a local
 *   level model (noise plus a random walk, told apart by the variogram at lags 1 and 100), within
 *   10 and 300 readings. A sensor that does not wander gets the longest reference, one that wanders
 *   by itself (a background drift, a random walk) a shorter one;
 * - the reference is frozen while either statistic is beyond `freeze` (half) of h, so it stops
 *   where a drift began instead of following it; if h is not reached within `releaseAfter`
 *   readings it resumes;
 * - residual e = (value − reference) / max(σ·c, (walkZ / k)·wander): σ a robust scale of the
 *   residual (1.2533 × its mean absolute value, clipped at 4σ when learning, never below one
 *   resolution step nor `minScale`), c = sqrt((1+ρ)/(1−ρ)) for its lag-1 autocorrelation ρ, and
 *   wander the standard deviation of the residual's slow part (its 30-reading average beyond what
 *   noise gives it, plus the walk for every reading the reference has stood still): the allowance
 *   k stays `walkZ` deviations above what the sensor wanders by itself;
 * - S+ = max(0, S+ + e − k), S− = max(0, S− − e − k); drift while S+ or S− >= h (k = 0.75,
 *   h = 12); the statistics are capped at 1.5 h;
 * - a drift ends when its evidence recedes (the statistic below h, or its smoothed residual below
 *   k), when the sensor snaps back (a reading less than 2σ beyond where the drift began and 3σ
 *   back from where it had gone: the reference returns to where it began), or after `acceptAfter`
 *   reference time constants flagged (the sensor's level now: the reference restarts there);
 * - a step is not a drift: when the mean of the last 20 values is 2σ from the mean of the 20
 *   before, the reference restarts at the new level;
 * - readings another detector flagged (a rule, a stuck value) are skipped, and spikes (far off
 *   the z baseline; during a drift, 6σ from where the drift has gone): they neither move the
 *   statistics nor teach the reference;
 * - when the reference spans more than an hour of event time (slow cadences), a daily cycle would
 *   look like drift: the test waits until the sensor's daily pattern is known (`seasonal.ts`).
 * Pure; about 40 numbers and two rings (100 and 40 values) per sensor.
 */
export class DriftDetector {
  readonly referenceReadings: number
  readonly minReferenceReadings: number
  readonly referenceFactor: number
  readonly k: number
  readonly h: number
  readonly warmup: number
  readonly freeze: number
  readonly releaseAfter: number
  readonly acceptAfter: number
  readonly maxUnseasonedMs: number
  readonly walkZ: number
  readonly #sensors = new Map<string, State>()
  /** Of the last `update`: the statistic (S+ when above S−, else −S−), the residual in scales, the reference. */
  lastStatistic = 0
  lastResidual = 0
  lastReference = NaN

  constructor (options: DriftOptions = {}) {
    this.referenceReadings = option('referenceReadings', options.referenceReadings, 300, false)
    this.minReferenceReadings = option('minReferenceReadings', options.minReferenceReadings, 10, false)
    if (this.minReferenceReadings > this.referenceReadings) {
      throw new AnomalyConfigError('minReferenceReadings', `must be <= referenceReadings (${this.referenceReadings}), got ${this.minReferenceReadings}`)
    }
    this.referenceFactor = option('referenceFactor', options.referenceFactor, 5, false)
    this.k = option('k', options.k, 0.75, false)
    this.h = option('h', options.h, 12, false)
    this.warmup = option('warmup', options.warmup, 200, true)
    this.freeze = option('freeze', options.freeze, 0.5, false)
    this.releaseAfter = option('releaseAfter', options.releaseAfter, 50, true)
    this.acceptAfter = option('acceptAfter', options.acceptAfter, 2, false)
    this.walkZ = option('walkZ', options.walkZ, 3.5, false)
    this.maxUnseasonedMs = option('maxUnseasonedMs', options.maxUnseasonedMs, HOUR_MS, false)
  }

  get size (): number {
    return this.#sensors.size
  }

  /**
   * Whether the sensor drifts at this reading. `value`: deseasonalised; `skip`: another detector
   * flagged the reading (a rule, a stuck value); `spike`: far off the short-term baseline, skipped
   * unless a drift is flagged (that baseline stands still during a drift, so the drift itself goes
   * far off it: then a spike is a reading far from where the drift has gone); `seasoned`: the sensor's daily pattern is known; `resolution`: see `scaleFloor`.
   */
  update (sensorId: string, value: number, ts: number, skip: boolean, spike: boolean, seasoned: boolean, resolution: number, minScale = 0): boolean {
    let s = this.#sensors.get(sensorId)
    if (s === undefined) {
      s = new State()
      this.#sensors.set(sensorId, s)
    }
    if (!Number.isFinite(value) || !Number.isFinite(ts)) return this.#report(s, 0)
    const dt = ts - s.lastTs
    if (dt > 0) s.interval = Number.isNaN(s.interval) ? dt : s.interval + 0.05 * (Math.min(dt, 10 * s.interval) - s.interval)
    if (!(ts < s.lastTs)) s.lastTs = ts
    if (s.n === 0) {
      if (skip) return this.#report(s, 0)
      s.n = s.m = 1
      s.reference = value
      s.tau = this.referenceReadings
      s.ring[0] = value
      s.head = s.filled = 1
      return this.#report(s, 0)
    }
    const raw = value - s.reference
    const floor = Math.max(scaleFloor(resolution, s.reference), minScale)
    const dev = ABS_TO_SIGMA * s.absDev
    const sigma = dev > floor ? dev : floor
    if (s.direction !== 0 && ++s.flagged > this.acceptAfter * s.tau) {
      // Flagged for several reference time constants: whatever it is, it is the sensor's level
      // now. The reference restarts here (it averages the readings from this one on).
      s.up = s.down = 0
      s.direction = 0
      s.reference = value
      s.m = 0
      s.frozen = s.frozenFor = 0
    }
    if (skip || (s.direction === 0 ? spike : Math.abs(raw / sigma - s.level) > SPIKE_SCALES)) return this.#report(s, raw / sigma)
    s.n++
    if (this.#step(s, value, sigma)) return this.#report(s, 0)
    if (s.n > this.warmup && s.pairs >= LAG && s.m >= RESTART && (seasoned || s.tau * s.interval <= this.maxUnseasonedMs)) this.#test(s, value, raw, sigma)
    if (Math.max(s.up, s.down) < this.freeze * this.h) this.#learn(s, value, raw, sigma)
    else s.frozen++
    return this.#report(s, raw / sigma)
  }

  #test (s: State, value: number, raw: number, sigma: number): void {
    const rho = s.variance > 0 ? Math.min(MAX_RHO, Math.max(0, s.covariance / s.variance)) : 0
    // The sensor's own random walk moves the residual slowly (the reference lags it by about
    // w²·τ/2, and more while it stands still): the allowance k must stay WALK_Z deviations of that
    // above it, or a walk would read as a drift.
    const walk = Math.max(0, (s.vLag - s.v1) / (LAG - 1))
    const white = sigma * Math.sqrt((1 + rho) / (1 - rho))
    const lambda = 1 / SMOOTH
    const slow = Math.max(0, s.smoothVariance - s.variance * lambda / (2 - lambda))
    const wander = (this.walkZ / this.k) * Math.sqrt(slow + walk * s.frozen)
    const e = raw / (white > wander ? white : wander)
    const cap = CAP * this.h
    if (s.up === 0 && s.down === 0) s.origin = s.reference
    s.up = Math.min(cap, Math.max(0, s.up + e - this.k))
    s.down = Math.min(cap, Math.max(0, s.down - e - this.k))
    const standard = raw / sigma
    const stat = Math.max(s.up, s.down)
    if (s.direction === 0) {
      if (stat >= this.h) {
        s.direction = s.up >= s.down ? 1 : -1
        s.level = standard
        s.strength = e
        s.flagged = 0
        s.frozenFor = 0
      } else if (stat >= this.freeze * this.h) {
        // Elevated: the reference waits. Not a drift after `releaseAfter` readings: it resumes.
        if (++s.frozenFor > this.releaseAfter) {
          s.up = s.down = 0
          s.frozenFor = 0
        }
      } else s.frozenFor = 0
      return
    }
    if (s.direction * (value - s.origin) / sigma < BACK && s.direction * (s.level - standard) > AWAY) {
      // Snapped back: the drift is over. The reference returns to where the drift began (it had
      // followed the drift's first steps before it stopped).
      s.up = s.down = 0
      s.direction = 0
      s.reference = s.origin
      s.frozen = 0
      return
    }
    s.level += LEVEL_WEIGHT * (standard - s.level)
    s.strength += LEVEL_WEIGHT * (e - s.strength)
    if (stat < this.h || s.direction * s.strength < this.k) {
      // The evidence receded.
      s.up = s.down = 0
      s.direction = 0
    }
  }

  /**
   * A step (a level shift, a sensor back from a drift, flagged or not): the mean of the last STEP
   * values is STEP_SCALES scales from the mean of the STEP before them, far beyond what noise (0.63
   * scales) and any drift the test is meant for (a few hundredths of a scale per reading) move it.
   * The reference restarts at the new level (it averages the readings from this one on) and a drift
   * in progress ends: a step is not a drift.
   */
  #step (s: State, value: number, sigma: number): boolean {
    const r = s.recent
    const size = 2 * STEP
    const head = s.recentHead
    if (s.recentCount < size) {
      r[head] = value
      s.recentHead = head + 1 === size ? 0 : head + 1
      if (++s.recentCount < size) return false
      s.sinceSums = RESUM // the first full window: sum it
    } else {
      // Running sums: the oldest leaves the older half, the middle one moves over, the newest joins.
      const middle = r[(head + STEP) % size] as number
      s.older += middle - (r[head] as number)
      s.newer += value - middle
      r[head] = value
      s.recentHead = head + 1 === size ? 0 : head + 1
    }
    if (++s.sinceSums >= RESUM) {
      s.sinceSums = 0
      let older = 0
      let newer = 0
      for (let i = 0; i < STEP; i++) {
        older += r[(s.recentHead + i) % size] as number
        newer += r[(s.recentHead + STEP + i) % size] as number
      }
      s.older = older
      s.newer = newer
    }
    const newer = s.newer
    const older = s.older
    if (Math.abs(newer - older) < STEP_SCALES * STEP * sigma) return false
    // Restart from this value: the reference averages the readings after it, and the test waits.
    s.reference = value
    s.m = 0
    s.up = s.down = 0
    s.direction = 0
    s.frozen = s.frozenFor = 0
    s.recentCount = 0
    return true
  }

  /** The reference follows; the residual's scale and autocorrelation and the variogram update. */
  #learn (s: State, value: number, raw: number, sigma: number): void {
    s.frozen = 0
    s.m++
    s.reference += (value - s.reference) / Math.min(s.n, s.m, s.tau)
    const b = 1 / Math.min(s.n, SCALE_SPAN * this.referenceReadings)
    // No clipping while the scale is still being found (it starts at the floor).
    const bound = s.n <= EARLY ? Infinity : CLIP * sigma
    s.absDev += b * (Math.min(Math.abs(raw), bound) - s.absDev)
    const r = raw > bound ? bound : raw < -bound ? -bound : raw
    s.variance += b * (r * r - s.variance)
    s.covariance += b * (r * s.lastResidual - s.covariance)
    s.lastResidual = r
    s.smooth += (r - s.smooth) / SMOOTH
    s.smoothVariance += b * (s.smooth * s.smooth - s.smoothVariance)
    // The variogram at lags 1 and LAG (2σ² + w² and 2σ² + LAG·w² for noise σ² and a random walk
    // of w² per reading), once the ring holds LAG values.
    if (s.filled === LAG) {
      const last = s.ring[(s.head + LAG - 1) % LAG] as number
      const oldest = s.ring[s.head] as number
      const d1 = value - last
      const dLag = value - oldest
      const c = 1 / Math.min(++s.pairs, SCALE_SPAN * this.referenceReadings)
      const big = 4 * bound * bound
      s.v1 += c * (Math.min(d1 * d1, big) - s.v1)
      s.vLag += c * (Math.min(dLag * dLag, LAG * big) - s.vLag)
      if (s.pairs >= LAG) s.tau = this.#timeConstant(s.v1, s.vLag)
    }
    s.ring[s.head] = value
    s.head = s.head + 1 === LAG ? 0 : s.head + 1
    if (s.filled < LAG) s.filled++
  }

  /**
   * 1/K of the steady-state Kalman filter of a local level model with noise σ² and a random walk
   * w² per reading: K = p/(1+p), p = (q + sqrt(q² + 4q))/2 for q = w²/σ²; times `referenceFactor`,
   * within the bounds.
   */
  #timeConstant (v1: number, vLag: number): number {
    const walk = Math.max(0, (vLag - v1) / (LAG - 1))
    const noise = Math.max(0, (v1 - walk) / 2)
    let tau = Infinity
    if (walk > 0) {
      if (noise === 0) tau = 1
      else {
        const q = walk / noise
        const p = (q + Math.sqrt(q * q + 4 * q)) / 2
        tau = (1 + p) / p
      }
    }
    tau *= this.referenceFactor
    return tau < this.minReferenceReadings ? this.minReferenceReadings : tau > this.referenceReadings ? this.referenceReadings : tau
  }

  #report (s: State, residual: number): boolean {
    this.lastStatistic = s.up >= s.down ? s.up : -s.down
    this.lastResidual = residual
    this.lastReference = s.reference
    return s.direction !== 0
  }

  /** A sensor's state, for tests and diagnostics (null if not tracked). */
  inspect (sensorId: string): { reference: number, scale: number, rho: number, walk: number, tau: number, up: number, down: number, direction: number, readings: number } | null {
    const s = this.#sensors.get(sensorId)
    if (s === undefined) return null
    return {
      reference: s.reference,
      scale: ABS_TO_SIGMA * s.absDev,
      rho: s.variance > 0 ? s.covariance / s.variance : 0,
      walk: Math.sqrt(Math.max(0, (s.vLag - s.v1) / (LAG - 1))),
      tau: s.tau,
      up: s.up,
      down: s.down,
      direction: s.direction,
      readings: s.n
    }
  }

  /** The sensor's state as a standalone snapshot (`snapshot.ts`), or null when it has none. */
  snapshot (sensorId: string): Uint8Array | null {
    return snapshotOf('drift', this, sensorId)
  }

  /** Replaces the sensor's state with a snapshot's; damaged bytes throw `AnomalyStateError` and leave it with none. */
  restore (sensorId: string, bytes: Uint8Array): void {
    restoreFrom('drift', this, sensorId, bytes)
  }

  /**
   * Appends the sensor's state: its counters (varints), the 19 Float64 measures (reference, scale,
   * variogram, statistics, ...) and the values its two rings hold (up to 100 + 40 Float64). About
   * 1.3 KB once warm. False, writing nothing, when the sensor has none.
   */
  writeSnapshot (sensorId: string, out: SnapshotWriter): boolean {
    const s = this.#sensors.get(sensorId)
    if (s === undefined) return false
    out.uint(LAG)
    out.uint(2 * STEP)
    for (const name of COUNTERS) out.uint(s[name])
    out.u8(s.direction + 1)
    for (const name of MEASURES) out.f64(s[name])
    writeRing(out, s.recent, s.recentHead, s.recentCount)
    writeRing(out, s.ring, s.head, s.filled)
    return true
  }

  /** Decodes what `writeSnapshot` wrote; the installer replaces a sensor's state with it. */
  readSnapshot (input: SnapshotReader): StateInstaller {
    const lag = input.uint('lag')
    const steps = input.uint('step')
    if (lag !== LAG || steps !== 2 * STEP) input.fail('lag', `rings of ${lag} and ${steps} values, this build keeps ${LAG} and ${2 * STEP}`)
    const s = new State()
    for (const name of COUNTERS) s[name] = input.uint(name)
    const direction = input.u8('direction') - 1
    if (direction > 1) input.fail('direction', `-1, 0 or 1, got ${direction}`)
    s.direction = direction
    for (const name of MEASURES) s[name] = input.f64(name)
    if (s.recentHead >= 2 * STEP || s.recentCount > 2 * STEP) input.fail('recentHead', `ring position ${s.recentHead} with ${s.recentCount} values`)
    if (s.head >= LAG || s.filled > LAG || (s.filled < LAG && s.head !== s.filled % LAG)) input.fail('head', `ring position ${s.head} with ${s.filled} values`)
    if (s.sinceSums > RESUM) input.fail('sinceSums', `at most ${RESUM}, got ${s.sinceSums}`)
    readRing(input, 'recent', s.recent, s.recentHead, s.recentCount)
    readRing(input, 'ring', s.ring, s.head, s.filled)
    return (sensorId) => { this.#sensors.set(sensorId, s) }
  }

  forget (sensorId: string): boolean {
    return this.#sensors.delete(sensorId)
  }

  clear (): void {
    this.#sensors.clear()
  }
}
