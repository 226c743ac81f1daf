import {
  AnomalyStateError, CadenceTracker, Detector, DeviceDetector, ForestScorer, IsolationForest, decodeDeviceModel, decodeModel, encodeDeviceModel, encodeModel,
  type DeviceDetectorOptions, type DeviceModel, type DeviceTrainer, type DeviceVerdict, type ForestOptions, type ForestTrainer, type RuleConfig, type TrainedModel
} from '../anomaly/index.ts'
import { type Reading, type Verdict } from '../domain/index.ts'
import type { DetectorSnapshot, DeviceScoreRow, StoredModel } from '../storage/index.ts'
import { SnapshotSchedule, type SnapshotScheduleOptions } from './snapshots.ts'

/** The detection seam of the worker: one verdict per reading, in arrival order, per-sensor state inside. */
export interface ReadingDetector {
  /** Verdicts of readings in arrival order (state moves on as if `detect` ran on each in turn). */
  detectMany(readings: readonly Reading[]): Verdict[]
  /** Forget all state (after a failed batch or a rebalance); rebuilt from the database. */
  clear?(): void
  /** Models trained since the last call: stored in the transaction of the batch that trained them. */
  drainModels?(): StoredModel[]
  /** Installs stored models (after `clear`, before the warm-up replay); returns the versions it could not read (skipped). */
  restoreModels?(models: readonly StoredModel[]): string[]
  /** The learnt cadence of a sensor (median interval, ms), null until known. */
  cadenceOf?(sensorId: string): number | null
  /** Readings replayed to rebuild state (after `clear` and the restores): detected, their device rows dropped. */
  warmUp?(readings: readonly Reading[]): void
  /** The device-level detector's scored rows since the last call: stored in the batch's transaction. */
  drainDeviceScores?(): DeviceScoreRow[]
  /** State snapshots due since the last call (see `SnapshotSchedule`): stored in the batch's transaction. */
  drainSnapshots?(): DetectorSnapshot[]
  /** Installs stored snapshots (after `clear` and `restoreModels`, before the warm-up); returns the keys it could not read (skipped). */
  restoreSnapshots?(snapshots: readonly DetectorSnapshot[]): string[]
}

export interface DetectionOptions {
  rules?: RuleConfig | undefined
  /** Isolation Forest options; `false` turns the ML detector off. */
  ml?: Partial<ForestOptions> | false | undefined
  /** Fits models in the background (the live worker); without one, training is inline and deterministic. */
  trainer?: ForestTrainer | undefined
  /**
   * Keep each trained model for `drainModels` (the worker stores them). False for replays and
   * evaluations that never store models: only each key's current model is held (memory flat in
   * the length of the series) and `drainModels` returns nothing. Default true.
   */
  storeModels?: boolean | undefined
  /**
   * The device-level detector (a multivariate forest per device, over its measurements aligned into
   * rows), or false (the default) for none. Its scored rows are drained with `drainDeviceScores`.
   */
  devices?: Partial<DeviceDetectorOptions> | false | undefined
  /** Fits device models in the background (the live worker); without one, inline. */
  deviceTrainer?: DeviceTrainer | undefined
  /** When state snapshots are due (`drainSnapshots`); false: never (replay, evaluations). Default false. */
  snapshots?: Partial<SnapshotScheduleOptions> | false | undefined
}

/** Device models are stored beside the per-sensor ones, under this prefix of key and version. */
const DEVICE_MODEL = 'device:'
const SENSOR_STATE = 'sensor:'
const FOREST_STATE = 'forest:'

function toStored (m: TrainedModel): StoredModel {
  const f = m.forest
  return {
    version: m.version,
    key: m.key,
    sequence: m.sequence,
    trainedAt: m.trainedAt,
    samples: m.samples,
    nEstimators: f.nEstimators,
    maxSamples: f.maxSamples,
    offset: f.offset,
    model: m.encoded ?? encodeModel(f.toParts())
  }
}

/** A loaded model's bytes (one to save may give a function: see StoredModel). */
const modelBytes = (m: StoredModel): Uint8Array => typeof m.model === 'function' ? m.model() : m.model

function deviceToStored (m: DeviceModel): StoredModel {
  return {
    version: DEVICE_MODEL + m.version,
    key: DEVICE_MODEL + m.key,
    sequence: m.sequence,
    trainedAt: m.trainedAt,
    samples: m.samples,
    nEstimators: m.older.nEstimators + m.newer.nEstimators,
    maxSamples: m.older.maxSamples,
    offset: m.threshold,
    model: () => encodeDeviceModel(m)
  }
}

function fromStored (m: StoredModel): TrainedModel {
  // Numbered on after every stored version of the key (a newer one may be listed without its trees).
  const sequence = Math.max(m.sequence, m.lastSequence ?? m.sequence)
  return { key: m.key, sequence, version: m.version, trainedAt: m.trainedAt, samples: m.samples, forest: IsolationForest.fromJSON(decodeModel(modelBytes(m))) }
}

/**
 * The detectors of the stream: rules, z-score, stuck, drift and the Isolation Forest per reading,
 * the device-level forest per device row, with their models and state snapshots persisted through
 * the worker.
 */
export class PipelineDetector implements ReadingDetector {
  readonly detector: Detector
  readonly forest: ForestScorer | null
  readonly devices: DeviceDetector | null
  /** The learnt cadence of every sensor seen (`cadence.median(sensorId)`, ms). */
  readonly cadence = new CadenceTracker()
  /** When each sensor's and each forest key's state is snapshotted (null: never). */
  readonly #sensorSnapshots: SnapshotSchedule | null
  readonly #forestSnapshots: SnapshotSchedule | null
  #deviceScores: DeviceScoreRow[] = []

  constructor (options: DetectionOptions = {}) {
    const retainTrained = options.storeModels ?? true
    this.forest = options.ml === false
      ? null
      : new ForestScorer(options.ml ?? {}, options.trainer ?? null, { retainTrained })
    this.detector = new Detector({ rules: options.rules, ml: this.forest })
    const devices = options.devices ?? false
    this.devices = devices === false ? null : new DeviceDetector(devices, { trainer: options.deviceTrainer, retainTrained })
    const snapshots = options.snapshots ?? false
    this.#sensorSnapshots = snapshots === false ? null : new SnapshotSchedule(snapshots)
    // A forest key's window is due once renewed (every trainingSize rows), or with the sensors' event-time rule.
    this.#forestSnapshots = snapshots === false || this.forest === null ? null : new SnapshotSchedule({ ...snapshots, every: this.forest.options.trainingSize })
  }

  detectMany (readings: readonly Reading[]): Verdict[] {
    const { cadence } = this
    const sensors = this.#sensorSnapshots
    const forests = this.#forestSnapshots
    const forest = this.forest
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i] as Reading
      cadence.observe(r.sensorId, r.ts)
      sensors?.touch(r.sensorId, r.ts)
      if (forest !== null) forests?.touch(forest.keyOf(r), r.ts)
    }
    const verdicts = this.detector.detectMany(readings)
    if (this.devices !== null) {
      for (const v of this.devices.pushMany(readings)) if (v.score !== null) this.#deviceScores.push(deviceRow(v))
    }
    return verdicts
  }

  warmUp (readings: readonly Reading[]): void {
    this.detectMany(readings)
    this.#deviceScores = []
  }

  drainDeviceScores (): DeviceScoreRow[] {
    const out = this.#deviceScores
    this.#deviceScores = []
    return out
  }

  drainSnapshots (): DetectorSnapshot[] {
    const out: DetectorSnapshot[] = []
    for (const { key, lastTs } of this.#sensorSnapshots?.due() ?? []) {
      const state = this.#snapshotSensor(key)
      if (state !== null) out.push({ key: SENSOR_STATE + key, lastTs, state })
    }
    for (const { key, lastTs } of this.#forestSnapshots?.due() ?? []) {
      const state = this.forest?.snapshotKey(key) ?? null
      if (state !== null) out.push({ key: FOREST_STATE + key, lastTs, state })
    }
    return out
  }

  /** A sensor's state: the detectors' snapshot, then its cadence's (`u32 length` of the first before it). */
  #snapshotSensor (sensorId: string): Uint8Array | null {
    const detector = this.detector.snapshotSensor(sensorId)
    if (detector === null) return null
    const cadence = this.cadence.snapshot(sensorId) ?? new Uint8Array(0)
    const out = new Uint8Array(4 + detector.length + cadence.length)
    new DataView(out.buffer).setUint32(0, detector.length, true)
    out.set(detector, 4)
    out.set(cadence, 4 + detector.length)
    return out
  }

  #restoreSensor (sensorId: string, bytes: Uint8Array): void {
    const length = bytes.length >= 4 ? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true) : -1
    if (length < 0 || 4 + length > bytes.length) throw new AnomalyStateError(`snapshot.${sensorId}`, `a sensor snapshot of ${bytes.length} bytes is cut short`)
    this.detector.restoreSensor(sensorId, bytes.subarray(4, 4 + length))
    if (4 + length < bytes.length) this.cadence.restore(sensorId, bytes.subarray(4 + length))
  }

  restoreSnapshots (snapshots: readonly DetectorSnapshot[]): string[] {
    const skipped: string[] = []
    for (const s of snapshots) {
      try {
        if (s.key.startsWith(SENSOR_STATE)) {
          const id = s.key.slice(SENSOR_STATE.length)
          this.#restoreSensor(id, s.state)
          this.#sensorSnapshots?.restored(id, s.lastTs)
        } else if (s.key.startsWith(FOREST_STATE) && this.forest !== null) {
          const key = s.key.slice(FOREST_STATE.length)
          this.forest.restoreKey(key, s.state)
          this.#forestSnapshots?.restored(key, s.lastTs)
        }
      } catch (err) {
        // A damaged snapshot must not stop the worker: that sensor or key starts over from the warm-up.
        if ((err as { code?: string }).code !== 'IOT_ERR_ANOMALY_STATE') throw err
        skipped.push(s.key)
      }
    }
    return skipped
  }

  cadenceOf (sensorId: string): number | null {
    return this.cadence.median(sensorId)
  }

  /** Fits that failed, per-sensor forests' and devices' (each kept its model). */
  get trainingFailures (): number {
    return (this.forest?.trainingFailures ?? 0) + (this.devices?.trainingFailures ?? 0)
  }

  /** Isolation Forest models trained so far (0 without the forest). */
  get modelsTrained (): number {
    return this.forest?.modelsTrained ?? 0
  }

  clear (): void {
    this.detector.clear()
    this.cadence.clear()
    this.devices?.clear()
    this.#sensorSnapshots?.clear()
    this.#forestSnapshots?.clear()
    this.#deviceScores = []
  }

  drainModels (): StoredModel[] {
    const out = this.forest?.drainTrained().map(toStored) ?? []
    for (const m of this.devices?.drainModels() ?? []) out.push(deviceToStored(m))
    return out
  }

  restoreModels (models: readonly StoredModel[]): string[] {
    const forest = this.forest
    const devices = this.devices
    const skipped: string[] = []
    const restored: TrainedModel[] = []
    for (const m of models) {
      const device = m.key.startsWith(DEVICE_MODEL)
      if (device ? devices === null : forest === null) continue
      try {
        if (device) devices?.restoreDevice(m.key.slice(DEVICE_MODEL.length), decodeDeviceModel(modelBytes(m)), [])
        else restored.push(fromStored(m))
      } catch (err) {
        // A damaged row must not stop the worker: that key trains a new model from the stream.
        if ((err as { code?: string }).code !== 'IOT_ERR_ANOMALY_STATE') throw err
        skipped.push(m.version)
      }
    }
    forest?.restore(restored)
    return skipped
  }
}

function deviceRow (v: DeviceVerdict): DeviceScoreRow {
  return {
    device: v.device,
    measurements: v.measurements,
    ts: v.ts,
    score: v.score as number,
    rowScore: v.rowScore ?? (v.score as number),
    anomaly: v.anomaly,
    modelVersion: v.modelVersion === null ? null : DEVICE_MODEL + v.modelVersion,
    explanation: v.explanation
  }
}
