/**
 * Measurement names (a ThingsBoard telemetry key, a line-protocol field or measurement) to sensor
 * types and units, and the sensor id of a (device, measurement).
 */
import { type Reading } from '../domain/index.ts'

/** The device a payload is authenticated as (by its token). Only these fields are read. */
export interface IngestDevice {
  /** 1-64 characters of [A-Za-z0-9._-]. */
  id: string
  name: string
  location: string
}

/**
 * What a known sensor type is measured in by default: the simulator's units
 * (src/sources/simulator/fleet.ts). Maps, not objects, here and below: a name such as
 * `constructor` must not find Object.prototype's.
 */
export const knownMeasurements: ReadonlyMap<string, { readonly unit: string }> = new Map([
  ['temperature', { unit: '°C' }],
  ['humidity', { unit: '%' }],
  ['air_quality', { unit: 'AQI' }],
  ['pressure', { unit: 'hPa' }],
  ['co2', { unit: 'ppm' }]
])

/**
 * Other names devices use for the known types (after lower-casing). Kept small on purpose: an
 * alias only where the meaning is beyond doubt (`rh` is relative humidity; `eco2`, a CO2 estimate
 * from a VOC sensor, is not co2 and stays its own type). The unit is a default: a device that
 * reports °F under `temperature` is not recognisable here (JSON and line protocol carry no unit).
 */
export const measurementAliases: ReadonlyMap<string, string> = new Map([
  ['temp', 'temperature'],
  ['hum', 'humidity'],
  ['rh', 'humidity'],
  ['co₂', 'co2'],
  ['aqi', 'air_quality']
])

/**
 * A usable sensor type: lower-case ASCII letters, digits, `_` and `-`, starting with a letter or a
 * digit, at most 63 characters. 63 because a sensor id is `<device id (<= 64)>.<type>` and the
 * wire's sensor_id holds at most 128; no `.` so that the last dot of a sensor id always separates
 * the device from the measurement (device ids may contain dots); ASCII because the type names
 * columns, topics and URLs. `_` first is out: line protocol reserves it (`_measurement`, `_field`).
 */
const SENSOR_TYPE = /^[a-z0-9][a-z0-9_-]{0,62}$/

export type SensorTypeResult =
  | { ok: true, sensorType: string, unit: string }
  | { ok: false, detail: string }

/** The first names seen (up to RESOLVED_CAP), so the hot path does not lower-case and test the same few names again. */
const resolved = new Map<string, SensorTypeResult>()
const RESOLVED_CAP = 1024
/** Longer names are never cached: no sensor type or alias is this long. */
const RESOLVED_MAX_LENGTH = 64

/**
 * The sensor type and default unit a measurement name stands for: lower-cased, an alias replaced
 * by its type; known types get their unit, other valid names are their own type with unit ''.
 * A name that is not a valid type (see SENSOR_TYPE) is refused with a detail saying why.
 */
export function sensorTypeOf (name: string): SensorTypeResult {
  const hit = resolved.get(name)
  if (hit !== undefined) return hit
  // Bounded: a body of random names must not grow the cache; the first names seen stay, which are
  // the fleet's usual few.
  if (resolved.size >= RESOLVED_CAP || name.length > RESOLVED_MAX_LENGTH) return resolve(name)
  // A name parsed out of a body can be a slice of it (V8 slices strings of 13 characters and
  // more): cached as it is, it would keep the whole body alive for good. Cache a copy.
  const copy = Array.from(name).join('')
  const result = resolve(copy)
  resolved.set(copy, result)
  return result
}

function resolve (name: string): SensorTypeResult {
  const lower = name.toLowerCase()
  const sensorType = measurementAliases.get(lower) ?? lower
  if (!SENSOR_TYPE.test(sensorType)) {
    const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name)
    return {
      ok: false,
      detail: `measurement ${shown} is not a usable sensor type: 1-63 characters of a-z, 0-9, _ and -, starting with a letter or a digit (case is ignored)`
    }
  }
  return { ok: true, sensorType, unit: knownMeasurements.get(sensorType)?.unit ?? '' }
}

/** The sensor of a (device, sensor type): `<device id>.<sensor type>`, e.g. `esp32-1.temperature`. */
export function sensorIdOf (deviceId: string, sensorType: string): string {
  return `${deviceId}.${sensorType}`
}

/** The reading of one value of `device` for a known sensor type: the device's sensor, location and the type's unit. */
export function deviceReading (device: IngestDevice, type: { sensorType: string, unit: string }, value: number, ts: number): Reading {
  return {
    sensorId: sensorIdOf(device.id, type.sensorType),
    sensorType: type.sensorType,
    location: device.location,
    value,
    ts,
    unit: type.unit,
    anomaly: null,
    anomalyKind: null,
    seq: null
  }
}

/** Whether `readings` from index `from` on (one entry or point) already hold `sensorId`. */
export function holdsSensor (readings: readonly Reading[], from: number, sensorId: string): boolean {
  for (let i = from; i < readings.length; i++) if (readings[i]!.sensorId === sensorId) return true
  return false
}
