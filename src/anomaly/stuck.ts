import { AnomalyConfigError } from './errors.ts'
import { restoreFrom, snapshotOf, type SnapshotReader, type SnapshotWriter, type StateInstaller } from './snapshot.ts'

const MINUTE_MS = 60_000

export interface StuckOptions {
  /** Fewest readings in a flat run that can be called stuck (QARTOD's repeat count). Default 5. */
  minReadings?: number | undefined
  /** A flat run is stuck once it is this many times longer than the sensor's usual longest ones. Default 2. */
  factor?: number | undefined
  /** Which of the sensor's completed flat runs count as its usual longest ones: this quantile of their lengths. Default 0.999. */
  quantile?: number | undefined
  /** Completed runs from which the learnt lengths alone decide; before that the duration of the sensor type must pass too. Default 100. */
  minRuns?: number | undefined
  /** Flat duration per sensor type (ms) a run must last too while few runs were seen. Default `defaultStuckDurations`. */
  durations?: Readonly<Record<string, number>> | undefined
  /** The same for sensor types not listed. Default 60 minutes. */
  defaultDurationMs?: number | undefined
}

/**
 * How long a slow room signal may stay flat before it is called stuck while the sensor's own
 * behaviour is still unknown (the conventions: 30–60 min; IOOS QARTOD flat-line test, SCADA
 * flat-line timeouts): an hour for the slow ones (a well-kept room holds its temperature, humidity
 * and pressure on a quantised sensor for long stretches), half an hour for what occupancy moves.
 */
export const defaultStuckDurations: Readonly<Record<string, number>> = Object.freeze({
  temperature: 60 * MINUTE_MS,
  humidity: 60 * MINUTE_MS,
  pressure: 60 * MINUTE_MS,
  air_quality: 30 * MINUTE_MS,
  co2: 30 * MINUTE_MS
})

// Flat-run lengths in bins: exact up to 16 readings, then 8 bins per doubling up to 2^20.
const EXACT = 16
const PER_OCTAVE = 8
const BINS = EXACT + PER_OCTAVE * 16
/** Completed runs kept in the histogram before it is halved (recent behaviour weighs more). */
const HISTORY = 4096

function binOf (length: number): number {
  if (length <= EXACT) return length - 1
  const b = EXACT + Math.floor(PER_OCTAVE * Math.log2(length / EXACT))
  return b < BINS ? b : BINS - 1
}

/** The longest run length a bin holds. */
function upperEdge (bin: number): number {
  return bin < EXACT ? bin + 1 : Math.floor(EXACT * 2 ** ((bin - EXACT + 1) / PER_OCTAVE))
}

class Run {
  anchor = NaN
  startTs = NaN
  /** Readings in the current flat run, its first (the anchor) included. */
  count = 0
  flagged = false
  /** Completed runs that were not stuck, by length. */
  readonly hist = new Float64Array(BINS)
  total = 0
  runs = 0
  /** Readings a run needs to be stuck, from the histogram (recomputed when a run completes). */
  need = 0
}

function positive (name: string, v: number | undefined, dflt: number, integer: boolean): number {
  if (v === undefined) return dflt
  if (!Number.isFinite(v) || !(v > 0) || (integer && !Number.isInteger(v))) {
    throw new AnomalyConfigError(name, `must be a ${integer ? 'positive integer' : 'finite number > 0'}, got ${String(v)}`)
  }
  return v
}

/**
 * Flat-line (stuck sensor) detection, per sensor: a run is the readings since the last change,
 * where a change is a move of at least half a resolution step from the run's first reading (so
 * floating-point round-off is no change and a one-step move of a quantised sensor is one). A run
 * is stuck from the reading at which it holds `need` readings:
 *
 *   need = max(minReadings, ceil(factor × the `quantile` of the sensor's completed flat runs))
 *
 * so a sensor that changes at every reading (noise at full precision) is stuck after 5 identical
 * readings, whatever its cadence (5 s at 1 s, 25 min at 5 min), while a quantised steady one (a
 * server room that reads 22.0 for a quarter of an hour at a time) needs twice its usual longest
 * flat stretch. While fewer than `minRuns` runs have completed, the run must also have lasted the
 * sensor type's duration (`defaultStuckDurations`: 30–60 min of event time). A sensor that never
 * changed is never called stuck: nothing shows it ever worked (a constant series is not a fault).
 * Runs that were stuck do not teach what is usual. Pure; about 1 KB per sensor.
 */
export class StuckDetector {
  readonly minReadings: number
  readonly factor: number
  readonly quantile: number
  readonly minRuns: number
  readonly durations: Readonly<Record<string, number>>
  readonly defaultDurationMs: number
  readonly #sensors = new Map<string, Run>()
  /** Of the last `update`: readings and event time (ms) of the current flat run, the readings it needs, and its first value. */
  lastReadings = 0
  lastMs = 0
  lastNeed = 0
  lastValue = NaN

  constructor (options: StuckOptions = {}) {
    this.minReadings = positive('minReadings', options.minReadings, 5, true)
    if (this.minReadings < 2) throw new AnomalyConfigError('minReadings', `must be >= 2, got ${this.minReadings}`)
    this.factor = positive('factor', options.factor, 2, false)
    this.quantile = positive('quantile', options.quantile, 0.999, false)
    if (this.quantile > 1) throw new AnomalyConfigError('quantile', `must be in (0, 1], got ${this.quantile}`)
    this.minRuns = positive('minRuns', options.minRuns, 100, true)
    const durations = options.durations ?? defaultStuckDurations
    for (const [type, ms] of Object.entries(durations)) positive(`durations.${type}`, ms, 0, false)
    this.durations = Object.freeze({ ...durations })
    this.defaultDurationMs = positive('defaultDurationMs', options.defaultDurationMs, 60 * MINUTE_MS, false)
  }

  get size (): number {
    return this.#sensors.size
  }

  /** Whether the sensor is stuck at this reading; `resolution` as `ResolutionEstimator.observe` gives it (Infinity = unknown). */
  update (sensorId: string, sensorType: string, value: number, ts: number, resolution: number): boolean {
    let r = this.#sensors.get(sensorId)
    if (r === undefined) {
      r = new Run()
      this.#sensors.set(sensorId, r)
    }
    if (r.need === 0) r.need = this.minReadings
    if (!Number.isFinite(value) || !Number.isFinite(ts)) return this.#report(r, false, ts)
    const d = Math.abs(value - r.anchor)
    const same = r.count > 0 && (d === 0 || (resolution !== Infinity && d < 0.5 * resolution))
    if (same) {
      r.count++
      if (ts < r.startTs) r.startTs = ts
    } else {
      if (r.count > 0) this.#complete(r)
      r.anchor = value
      r.startTs = ts
      r.count = 1
      r.flagged = false
    }
    if (!r.flagged && r.count >= r.need && r.runs > 0 &&
      (r.runs >= this.minRuns || ts - r.startTs >= (this.durations[sensorType] ?? this.defaultDurationMs))) r.flagged = true
    return this.#report(r, r.flagged, ts)
  }

  /** Readings a flat run of this sensor needs to be stuck (`minReadings` for an unknown sensor). */
  need (sensorId: string): number {
    const r = this.#sensors.get(sensorId)
    return r === undefined || r.need === 0 ? this.minReadings : r.need
  }

  #need (r: Run): number {
    if (r.total === 0) return this.minReadings
    const want = this.quantile * r.total
    let cum = 0
    let b = 0
    for (; b < BINS - 1; b++) {
      cum += r.hist[b] as number
      if (cum >= want) break
    }
    const n = Math.ceil(this.factor * upperEdge(b))
    return n > this.minReadings ? n : this.minReadings
  }

  #complete (r: Run): void {
    r.runs++
    if (r.flagged) return
    const bin = binOf(r.count)
    r.hist[bin] = (r.hist[bin] as number) + 1
    if (++r.total >= HISTORY) {
      let t = 0
      for (let b = 0; b < BINS; b++) t += (r.hist[b] = (r.hist[b] as number) / 2)
      r.total = t
    }
    r.need = this.#need(r)
  }

  #report (r: Run, stuck: boolean, ts: number): boolean {
    this.lastReadings = r.count
    this.lastMs = r.count > 0 && Number.isFinite(ts) ? ts - r.startTs : 0
    this.lastNeed = r.need
    this.lastValue = r.anchor
    return stuck
  }

  /** The sensor's state as a standalone snapshot (`snapshot.ts`), or null when it has none. */
  snapshot (sensorId: string): Uint8Array | null {
    return snapshotOf('stuck', this, sensorId)
  }

  /** Replaces the sensor's state with a snapshot's; damaged bytes throw `AnomalyStateError` and leave it with none. */
  restore (sensorId: string, bytes: Uint8Array): void {
    restoreFrom('stuck', this, sensorId, bytes)
  }

  /**
   * Appends the sensor's state: the current flat run (first value, start, readings, flagged) and
   * the histogram of completed runs (its non-empty bins, Float64: halving makes halves). About 60
   * bytes for a sensor whose runs have a few lengths. False, writing nothing, when it has none.
   */
  writeSnapshot (sensorId: string, out: SnapshotWriter): boolean {
    const r = this.#sensors.get(sensorId)
    if (r === undefined) return false
    out.uint(BINS)
    out.f64(r.anchor)
    out.f64(r.startTs)
    out.uint(r.count)
    out.bool(r.flagged)
    out.sparseF64(r.hist)
    out.f64(r.total)
    out.uint(r.runs)
    out.uint(r.need)
    return true
  }

  /** Decodes what `writeSnapshot` wrote; the installer replaces a sensor's state with it. */
  readSnapshot (input: SnapshotReader): StateInstaller {
    const bins = input.uint('bins')
    if (bins !== BINS) input.fail('bins', `a histogram of ${bins} bins, this build keeps ${BINS}`)
    const r = new Run()
    r.anchor = input.f64('anchor')
    r.startTs = input.f64('startTs')
    r.count = input.uint('count')
    r.flagged = input.bool('flagged')
    input.sparseF64('hist', r.hist)
    for (const x of r.hist) if (!(x >= 0 && x < Infinity)) input.fail('hist', `a bin holds ${x} runs`)
    r.total = input.f64('total')
    if (!(r.total >= 0 && r.total < Infinity)) input.fail('total', `${r.total} runs`)
    r.runs = input.uint('runs')
    r.need = input.uint('need')
    return (sensorId) => { this.#sensors.set(sensorId, r) }
  }

  forget (sensorId: string): boolean {
    return this.#sensors.delete(sensorId)
  }

  clear (): void {
    this.#sensors.clear()
  }
}
