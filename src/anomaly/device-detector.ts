// Device-level detection: readings aligned into rows per device (device-align.ts), each device's
// rows scored by its own multivariate model (device-forest.ts). Pure: no I/O, no clock, seeded.
import { type Reading } from '../domain/index.ts'
import { type CadenceTracker } from './cadence.ts'
import { RowAligner, type AlignedRow, type RowAlignerOptions } from './device-align.ts'
import { DeviceForest, checkDeviceForestOptions, defaultDeviceForestOptions, type DeviceContribution, type DeviceForestOptions } from './device-forest.ts'

export interface DeviceDetectorOptions extends DeviceForestOptions, RowAlignerOptions {}

/** What the device-level detector says about one row of a device. */
export interface DeviceVerdict {
  device: string
  /** Event time of the row (its first reading). */
  ts: number
  measurements: readonly string[]
  /** values[i] is measurements[i]'s (NaN where the row has none). */
  values: Float64Array
  /** Every measurement has a value; rows that miss one are not scored. */
  complete: boolean
  /** The device's calibrated score after this row (0.5 = its decision threshold; see DeviceForest); null when not scored. */
  score: number | null
  /** This row's own calibrated score; null when not scored. */
  rowScore: number | null
  /** score >= 0.5. */
  anomaly: boolean
  modelVersion: string | null
  /** The measurements behind an anomaly (empty otherwise), largest share first. */
  contributions: DeviceContribution[]
  /** For people, when the row is an anomaly: `device 0.83 (lab#3): co2 +5.2σ (others imply +0.4σ) 71%`. */
  explanation: string | null
}

/** A device the detector knows: its measurements and what it learnt. */
export interface DeviceSummary {
  device: string
  measurements: readonly string[]
  /** Rows scored or learnt from (complete rows of at least two measurements). */
  rows: number
  /** Models trained for it (over every list of measurements it had). */
  models: number
  modelVersion: string | null
}

function fmt (x: number): string {
  const a = Math.abs(x)
  const s = String(Number(a >= 100 ? x.toFixed(0) : a >= 1 ? x.toFixed(1) : x.toPrecision(2)))
  return x >= 0 ? `+${s}` : s
}

/** `co2 +5.2σ (others imply +0.4σ) 71%, humidity -3.1σ (others imply -0.2σ) 22%`. */
export function formatContributions (contributions: readonly DeviceContribution[]): string {
  return contributions.map(c => `${c.measurement} ${fmt(c.z)}σ (others imply ${fmt(c.expected)}σ) ${Math.round(c.share * 100)}%`).join(', ')
}

class DeviceState {
  forest: DeviceForest | null = null
  rows = 0
  models = 0
}

/**
 * Multivariate anomaly detection per device, beside the per-sensor detectors: readings are
 * aligned into rows by event time (`RowAligner`: sensors `<device>.<measurement>`, and the
 * simulator's co-located sensors), and each device with at least two measurements gets its own
 * `DeviceForest` over them. A device whose list of measurements changes (one added, one gone for
 * good) starts learning afresh. Rows that miss a measurement are passed on unscored.
 *
 * Feed readings in arrival order (`push`), or whole rows where they come aligned already
 * (`scoreRow`: a CSV row of several value columns). Deterministic for the same input and seed.
 */
export class DeviceDetector {
  readonly options: Readonly<DeviceDetectorOptions>
  readonly aligner: RowAligner
  readonly #devices = new Map<string, DeviceState>()
  readonly #rows: AlignedRow[] = []

  constructor (options: Partial<DeviceDetectorOptions> = {}, cadence?: CadenceTracker) {
    const { tolerance, maxMeasurements, dropAfterRows, ...forest } = options
    const aligner: Partial<RowAlignerOptions> = {}
    if (tolerance !== undefined) aligner.tolerance = tolerance
    if (maxMeasurements !== undefined) aligner.maxMeasurements = maxMeasurements
    if (dropAfterRows !== undefined) aligner.dropAfterRows = dropAfterRows
    this.aligner = new RowAligner(aligner, cadence)
    const f = checkDeviceForestOptions({ ...defaultDeviceForestOptions, ...forest })
    this.options = Object.freeze({ ...f, ...this.aligner.options })
  }

  /** Aligns a reading; returns the verdicts of the rows it closed (usually none or one). */
  push (reading: Reading): DeviceVerdict[] {
    const rows = this.#rows
    rows.length = 0
    this.aligner.push(reading, rows)
    return rows.length === 0 ? [] : rows.map(r => this.scoreRow(r.device, r.ts, r.measurements, r.values))
  }

  /** `push` of each reading in turn: the verdicts of every row they closed, in order. */
  pushMany (readings: readonly Reading[]): DeviceVerdict[] {
    const out: DeviceVerdict[] = []
    for (const r of readings) for (const v of this.push(r)) out.push(v)
    return out
  }

  /** Closes and scores every open row (end of a replay). */
  flush (): DeviceVerdict[] {
    return this.aligner.flush().map(r => this.scoreRow(r.device, r.ts, r.measurements, r.values))
  }

  /**
   * Scores one aligned row of `device` (values[i] of measurements[i]; NaN = missing) and learns
   * from it. The device's model starts afresh when its list of measurements changes.
   */
  scoreRow (device: string, ts: number, measurements: readonly string[], values: ArrayLike<number>): DeviceVerdict {
    const m = measurements.length
    const copy = Float64Array.from(values)
    let complete = copy.length === m
    for (let i = 0; i < copy.length && complete; i++) if (!Number.isFinite(copy[i])) complete = false
    const verdict: DeviceVerdict = {
      device, ts, measurements, values: copy, complete, score: null, rowScore: null, anomaly: false, modelVersion: null, contributions: [], explanation: null
    }
    if (!complete || m < 2 || !Number.isFinite(ts)) return verdict
    let state = this.#devices.get(device)
    if (state === undefined) {
      state = new DeviceState()
      this.#devices.set(device, state)
    }
    let forest = state.forest
    if (forest === null || !sameList(forest.measurements, measurements)) {
      if (forest !== null) state.models += forest.modelsTrained
      const { tolerance: _t, maxMeasurements: _m, dropAfterRows: _d, ...o } = this.options
      forest = state.forest = new DeviceForest(device, measurements, o)
    }
    state.rows++
    const s = forest.score(copy, ts)
    verdict.score = s.score
    verdict.rowScore = s.rowScore
    verdict.anomaly = s.anomaly
    verdict.modelVersion = s.model?.version ?? null
    verdict.contributions = s.contributions
    if (s.anomaly && s.model !== null && s.score !== null) {
      const who = formatContributions(s.contributions)
      verdict.explanation = `device ${s.score.toFixed(2)} (${s.model.version})${who === '' ? '' : ': ' + who}`
    }
    return verdict
  }

  /** Models trained over all devices. */
  get modelsTrained (): number {
    let n = 0
    for (const s of this.#devices.values()) n += s.models + (s.forest?.modelsTrained ?? 0)
    return n
  }

  /** The devices with rows of at least two measurements, in the order first seen. */
  devices (): DeviceSummary[] {
    const out: DeviceSummary[] = []
    for (const [device, s] of this.#devices) {
      out.push({
        device,
        measurements: s.forest?.measurements ?? [],
        rows: s.rows,
        models: s.models + (s.forest?.modelsTrained ?? 0),
        modelVersion: s.forest?.model?.version ?? null
      })
    }
    return out
  }

  clear (): void {
    this.#devices.clear()
    this.aligner.clear()
  }
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
