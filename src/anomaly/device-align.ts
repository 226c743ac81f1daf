// Readings of one device's measurements, aligned into rows by event time: what the device-level
// detector scores. Pure: no I/O, no clock.
import { type Reading } from '../domain/index.ts'
import { CadenceTracker } from './cadence.ts'
import { AnomalyConfigError } from './errors.ts'

/** Which device a sensor belongs to, and which of its measurements it is. */
export interface DeviceMeasurement {
  device: string
  measurement: string
}

/**
 * The device and measurement of a sensor: `<device>.<measurement>` for devices (iot-monitor's
 * sensor ids of registered devices; the last dot separates them, since sensor types have no dot),
 * `sim-<node>` for the built-in simulator's `<type>-<node>` (its co-located sensors, grouped as
 * `iot-monitor simulate` groups them into devices: `temperature-server-room-01` is measurement
 * `temperature` of `sim-server-room-01`). Null for a sensor of no device.
 */
export function deviceOf (sensorId: string, sensorType: string, simulated = true): DeviceMeasurement | null {
  const dot = sensorId.lastIndexOf('.')
  if (dot > 0 && dot < sensorId.length - 1) return { device: sensorId.slice(0, dot), measurement: sensorId.slice(dot + 1) }
  if (simulated && sensorType !== '' && sensorId.length > sensorType.length + 1 && sensorId.startsWith(sensorType) && sensorId.charCodeAt(sensorType.length) === 45 /* - */) {
    return { device: `sim-${sensorId.slice(sensorType.length + 1)}`, measurement: sensorType }
  }
  return null
}

/** One device's measurements at (about) one event time. */
export interface AlignedRow {
  device: string
  /** Event time of the row's first reading (ms). */
  ts: number
  /** The device's measurements when the row was closed, in the order first seen. */
  measurements: readonly string[]
  /** values[i] is measurements[i]'s value; NaN where the row has none. */
  values: Float64Array
  /** Every measurement has a value. */
  complete: boolean
}

export interface RowAlignerOptions {
  /**
   * A reading joins the device's open row when its measurement is not in it yet and its event time
   * is within this fraction of the device's cadence of the row's (the same event time always
   * joins; until the cadence is known, only the same event time).
   */
  tolerance: number
  /** Measurements a device is aligned on at most (further ones are left to the per-sensor detectors). */
  maxMeasurements: number
  /** A measurement missing from this many rows in a row leaves the device's list (a sensor removed). */
  dropAfterRows: number
  /** Also group the simulator's co-located sensors (`<type>-<node>` as `sim-<node>`), not only `<device>.<measurement>`. */
  simulated: boolean
}

export const defaultRowAlignerOptions: Readonly<RowAlignerOptions> = Object.freeze({ tolerance: 0.9, maxMeasurements: 32, dropAfterRows: 20, simulated: true })

class DeviceRows {
  readonly measurements: string[] = []
  readonly index = new Map<string, number>()
  /** Sensor id per measurement (for its cadence). */
  readonly sensors: string[] = []
  /** Rows in a row each measurement was missing from. */
  missing: number[] = []
  open: { ts: number, values: number[], present: number } | null = null
  /** Event time of the last row closed (readings older than it are not aligned). */
  lastTs = -Infinity
}

/**
 * Groups each device's readings into rows by event time, in arrival order. A reading joins the
 * device's open row when its measurement is not in it yet and it is within `tolerance` × the
 * device's cadence (the shortest median interval of its measurements, `CadenceTracker`) of the row's
 * first reading; otherwise the open row closes and the reading opens the next. A row closes as soon
 * as it holds every measurement of the device (no waiting), or when a reading cannot join it, or at
 * `flush`. So readings sent together (one telemetry message, one line of line protocol, one CSV
 * row) make one row, and sensors of one node reporting at the same rate but de-phased (the
 * simulator's co-located sensors) make one row per period. A reading older than the device's last
 * closed row is not aligned (counted in `late`). Memory: one open row per device.
 */
export class RowAligner {
  readonly options: Readonly<RowAlignerOptions>
  readonly cadence: CadenceTracker
  readonly #devices = new Map<string, DeviceRows>()
  /** Readings older than their device's last row, left out. */
  late = 0

  constructor (options: Partial<RowAlignerOptions> = {}, cadence: CadenceTracker = new CadenceTracker()) {
    const o = { ...defaultRowAlignerOptions, ...options }
    if (!(o.tolerance >= 0 && o.tolerance < 1)) throw new AnomalyConfigError('device.tolerance', `must be in [0, 1), got ${o.tolerance}`)
    if (!Number.isSafeInteger(o.maxMeasurements) || o.maxMeasurements < 2) throw new AnomalyConfigError('device.maxMeasurements', `must be an integer >= 2, got ${String(o.maxMeasurements)}`)
    if (!Number.isSafeInteger(o.dropAfterRows) || o.dropAfterRows < 1) throw new AnomalyConfigError('device.dropAfterRows', `must be an integer >= 1, got ${String(o.dropAfterRows)}`)
    this.options = Object.freeze(o)
    this.cadence = cadence
  }

  /** The device's cadence: the shortest median interval of its measurements (ms), null until one is known. */
  cadenceOf (device: string): number | null {
    const d = this.#devices.get(device)
    if (d === undefined) return null
    let best: number | null = null
    for (const id of d.sensors) {
      const c = this.cadence.median(id)
      if (c !== null && (best === null || c < best)) best = c
    }
    return best
  }

  /** The measurements of a device, in the order first seen (empty for an unknown device). */
  measurementsOf (device: string): readonly string[] {
    return this.#devices.get(device)?.measurements ?? []
  }

  /** Devices seen. */
  get size (): number {
    return this.#devices.size
  }

  /** Aligns one reading; returns the rows it closed (0, 1 or 2), oldest first. Readings of no device are ignored. */
  push (reading: Reading, out: AlignedRow[] = []): AlignedRow[] {
    if (!Number.isFinite(reading.value) || !Number.isFinite(reading.ts)) return out
    const dm = deviceOf(reading.sensorId, reading.sensorType, this.options.simulated)
    if (dm === null) return out
    this.cadence.observe(reading.sensorId, reading.ts)
    let d = this.#devices.get(dm.device)
    if (d === undefined) {
      d = new DeviceRows()
      this.#devices.set(dm.device, d)
    }
    if (reading.ts < d.lastTs) {
      this.late++
      return out
    }
    let i = d.index.get(dm.measurement)
    if (i === undefined) {
      if (d.measurements.length >= this.options.maxMeasurements) return out
      i = d.measurements.length
      d.index.set(dm.measurement, i)
      d.measurements.push(dm.measurement)
      d.sensors.push(reading.sensorId)
      d.missing.push(0)
      if (d.open !== null) d.open.values.push(NaN)
    }
    const open = d.open
    if (open !== null && Number.isNaN(open.values[i] as number) && this.#near(dm.device, open.ts, reading.ts)) {
      open.values[i] = reading.value
      open.present++
      // Complete: closed at once, except the device's first row (its list of measurements is still growing).
      if (open.present === d.measurements.length && d.lastTs !== -Infinity) this.#close(dm.device, d, out)
      return out
    }
    if (open !== null) this.#close(dm.device, d, out)
    const values = new Array<number>(d.measurements.length).fill(NaN)
    values[i] = reading.value
    d.open = { ts: reading.ts, values, present: 1 }
    return out
  }

  /** Closes every open row (end of a replay). */
  flush (out: AlignedRow[] = []): AlignedRow[] {
    for (const [device, d] of this.#devices) if (d.open !== null) this.#close(device, d, out)
    return out
  }

  clear (): void {
    this.#devices.clear()
    this.cadence.clear()
    this.late = 0
  }

  #near (device: string, rowTs: number, ts: number): boolean {
    if (ts === rowTs) return true
    const c = this.cadenceOf(device)
    return c !== null && Math.abs(ts - rowTs) <= this.options.tolerance * c
  }

  #close (device: string, d: DeviceRows, out: AlignedRow[]): void {
    const open = d.open
    if (open === null) return
    d.open = null
    const m = d.measurements.length
    const values = new Float64Array(m)
    for (let i = 0; i < m; i++) values[i] = open.values[i] ?? NaN
    out.push({ device, ts: open.ts, measurements: [...d.measurements], values, complete: open.present === m })
    if (open.ts > d.lastTs) d.lastTs = open.ts
    // A measurement missing from too many rows in a row has left the device: rows are complete without it again.
    let dropped = false
    for (let i = 0; i < m; i++) {
      d.missing[i] = Number.isNaN(values[i] as number) ? (d.missing[i] as number) + 1 : 0
      if ((d.missing[i] as number) >= this.options.dropAfterRows) dropped = true
    }
    if (dropped) {
      const keep = d.measurements.map((_, i) => (d.missing[i] as number) < this.options.dropAfterRows)
      const measurements = d.measurements.filter((_, i) => keep[i])
      const sensors = d.sensors.filter((_, i) => keep[i])
      d.measurements.length = 0
      d.measurements.push(...measurements)
      d.sensors.length = 0
      d.sensors.push(...sensors)
      d.missing = d.missing.filter((_, i) => keep[i])
      d.index.clear()
      measurements.forEach((name, i) => d.index.set(name, i))
    }
  }
}
