// Device-level detection: readings aligned into rows per device (device-align.ts), each device's
// rows scored by its own multivariate model (device-forest.ts). Pure: no I/O, no clock, seeded.
import { type Reading } from '../domain/index.ts'
import { type CadenceTracker } from './cadence.ts'
import { RowAligner, type AlignedRow, type RowAlignerOptions } from './device-align.ts'
import {
  DeviceForest, checkDeviceForestOptions, defaultDeviceForestOptions, type DeviceContribution, type DeviceForestOptions, type StoredDeviceRow
} from './device-forest.ts'
import { inlineDeviceTrainer, type DeviceModel, type DeviceTrainer } from './device-model.ts'
import { AnomalyStateError } from './errors.ts'

export interface DeviceDetectorOptions extends DeviceForestOptions, RowAlignerOptions {}

/** Who fits the device models, and whether the detector keeps them for storage. */
export interface DeviceDetectorTraining {
  /** Fits the models: inline when absent or null (replay, evaluation); the live worker's training thread. */
  trainer?: DeviceTrainer | null | undefined
  /**
   * Keep every model as it starts scoring until `drainModels` takes it (the live worker stores
   * each). Default false (unlike ForestScorer's): replay and the benchmarks never drain, and held
   * models would grow with the stream; `modelsTrained` counts either way.
   */
  retainTrained?: boolean | undefined
}

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
  /** Models and failed fits of the device's earlier lists of measurements. */
  models = 0
  failures = 0

  /** The forest goes (a new list of measurements, a restore): its fit under way is dropped, its counts kept. */
  retire (): void {
    const forest = this.forest
    if (forest === null) return
    forest.cancelFit()
    this.models += forest.modelsTrained
    this.failures += forest.trainingFailures
    this.forest = null
  }
}

/**
 * Multivariate anomaly detection per device, beside the per-sensor detectors: readings are
 * aligned into rows by event time (`RowAligner`: sensors `<device>.<measurement>`, and the
 * simulator's co-located sensors), and each device with at least two measurements gets its own
 * `DeviceForest` over them. A device whose list of measurements changes (one added, one gone for
 * good) starts learning afresh. Rows that miss a measurement are passed on unscored.
 *
 * Feed readings in arrival order (`push`), or whole rows where they come aligned already
 * (`scoreRow`: a CSV row of several value columns). Deterministic for the same input and seed,
 * whoever trains: a model asked for at a row scores from `installAfterRows` rows of its device
 * later, with the inline trainer as with the live worker's thread.
 */
export class DeviceDetector {
  readonly options: Readonly<DeviceDetectorOptions>
  readonly aligner: RowAligner
  readonly #devices = new Map<string, DeviceState>()
  readonly #rows: AlignedRow[] = []
  readonly #trainer: DeviceTrainer
  /** Hears of each model as it starts scoring (null unless `retainTrained`). */
  readonly #onInstalled: ((model: DeviceModel) => void) | null
  #installed: DeviceModel[] = []

  /** `cadence`: the readings' cadence tracker to align by (the aligner keeps its own when absent). */
  constructor (options: Partial<DeviceDetectorOptions> = {}, training: DeviceDetectorTraining = {}, cadence?: CadenceTracker) {
    const { tolerance, maxMeasurements, dropAfterRows, simulated, ...forest } = options
    const aligner: Partial<RowAlignerOptions> = {}
    if (tolerance !== undefined) aligner.tolerance = tolerance
    if (maxMeasurements !== undefined) aligner.maxMeasurements = maxMeasurements
    if (dropAfterRows !== undefined) aligner.dropAfterRows = dropAfterRows
    if (simulated !== undefined) aligner.simulated = simulated
    this.aligner = new RowAligner(aligner, cadence)
    const f = checkDeviceForestOptions({ ...defaultDeviceForestOptions, ...forest })
    this.options = Object.freeze({ ...f, ...this.aligner.options })
    this.#trainer = training.trainer ?? inlineDeviceTrainer
    this.#onInstalled = training.retainTrained === true ? model => { this.#installed.push(model) } : null
  }

  #newForest (device: string, measurements: readonly string[]): DeviceForest {
    const { tolerance: _t, maxMeasurements: _m, dropAfterRows: _d, simulated: _s, ...o } = this.options
    return new DeviceForest(device, measurements, o, this.#trainer, this.#onInstalled)
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
   * from it. The device's model starts afresh when its list of measurements changes; the same
   * measurements in another order (a restored device whose readings came back in another order)
   * are put in its model's order.
   */
  scoreRow (device: string, ts: number, rowMeasurements: readonly string[], rowValues: ArrayLike<number>): DeviceVerdict {
    let measurements = rowMeasurements
    let values = rowValues
    const known = this.#devices.get(device)?.forest?.measurements
    if (known !== undefined && !sameList(known, measurements) && known.length === measurements.length && rowValues.length === measurements.length) {
      const order = known.map(name => measurements.indexOf(name))
      if (order.every(i => i >= 0)) {
        values = order.map(i => rowValues[i] as number)
        measurements = known
      }
    }
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
      state.retire()
      forest = state.forest = this.#newForest(device, measurements)
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

  /** Models trained and installed over all devices (also those `drainModels` took, and with `retainTrained` off). */
  get modelsTrained (): number {
    let n = 0
    for (const s of this.#devices.values()) n += s.models + (s.forest?.modelsTrained ?? 0)
    return n
  }

  /** Fits that failed over all devices (each device kept its model and trains again at its next due time). */
  get trainingFailures (): number {
    let n = 0
    for (const s of this.#devices.values()) n += s.failures + (s.forest?.trainingFailures ?? 0)
    return n
  }

  /**
   * The models that started scoring since the last call, oldest first, to store them (only with
   * `retainTrained`; empty otherwise), each with its device's measurements (`encodeDeviceModel`
   * makes the stored form).
   */
  drainModels (): DeviceModel[] {
    const out = this.#installed
    this.#installed = []
    return out
  }

  /**
   * After a restart: `device`'s state rebuilt from storage (see `DeviceForest#restore`): its
   * training window refilled from its stored rows (oldest first; `values` in the model's
   * measurement order; `anomaly`: the device alarmed on the row, so it stays out of training)
   * without scoring them, the stored model installed (or none), and the retrain schedule going on
   * from the model's training. What differs from a detector that never stopped: the ring of the
   * last `alarmWindow` row scores starts empty, so the device's score reads low (and it cannot
   * alarm) until `alarmRows` rows passed the threshold again, and it is exact again after
   * `alarmWindow` rows; a fit that was under way is asked for again at the next row; the aligner's
   * open rows are gone. `measurements` is the device's list, taken from the model when there is
   * one (required without one). Replaces whatever state the device had.
   */
  restoreDevice (device: string, model: DeviceModel | null, rows: Iterable<StoredDeviceRow>, measurements: readonly string[] | undefined = model?.measurements): void {
    if (measurements === undefined) throw new AnomalyStateError(`device.${device}`, 'restoring a device without a model needs its list of measurements')
    let state = this.#devices.get(device)
    if (state === undefined) {
      state = new DeviceState()
      this.#devices.set(device, state)
    }
    state.retire()
    const forest = state.forest = this.#newForest(device, measurements)
    state.rows = forest.restore(model, rows)
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

  /** Drops every device's state and the fits under way (the worker restores them from storage). */
  clear (): void {
    for (const s of this.#devices.values()) s.forest?.cancelFit()
    this.#devices.clear()
    this.#installed = []
    this.aligner.clear()
  }
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
