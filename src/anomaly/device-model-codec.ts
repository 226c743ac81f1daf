// The stored form of a device model (what the database keeps, to restore a device after a restart):
// a snapshot (snapshot.ts) of kind deviceModel, its forests in the per-sensor models' IFB1 format.
import { type DeviceModel, MIN_TRAINING_ROWS } from './device-model.ts'
import { IsolationForest, decodeModel, encodeModel } from './isolation-forest/index.ts'
import { SnapshotReader, SnapshotWriter } from './snapshot.ts'

/** Measurements a stored device model may have (a bound on what damaged bytes can make it allocate). */
const MAX_STORED_MEASUREMENTS = 4096

/**
 * A device model's stored form: a snapshot of kind `deviceModel` (`snapshot.ts`: magic "IOTS",
 * format version, kind byte, body, CRC-32 of all before it). The body, little-endian, counts as
 * varints: m, sequence, samples; trainedAt, threshold (Float64); key, version and the m
 * measurements (varint byte length and UTF-8 each); center, scale (m Float64 each), rotation,
 * precision (m² Float64 each); the older and the newer forest as IFB1 (`encodeModel`, gzipped;
 * varint byte length each). About 190 KB for the default 200 trees (8 measurements; 13 ms to
 * encode, 10-30 to decode and validate).
 */
export function encodeDeviceModel (model: DeviceModel): Uint8Array {
  const m = model.measurements.length
  const forests = [encodeModel(model.older.toParts()), encodeModel(model.newer.toParts())]
  const arrays = [model.center, model.scale, model.rotation, model.precision, model.axisVariance]
  let capacity = 256 + model.key.length + model.version.length
  for (const name of model.measurements) capacity += 8 + name.length
  for (const array of arrays) capacity += 8 * array.length
  for (const forest of forests) capacity += 8 + forest.length
  const out = new SnapshotWriter('deviceModel', capacity)
  out.uint(m)
  out.uint(model.sequence)
  out.uint(model.samples)
  out.f64(model.trainedAt)
  out.f64(model.threshold)
  out.f64(model.distanceThreshold)
  out.string(model.key)
  out.string(model.version)
  for (const name of model.measurements) out.string(name)
  for (const array of arrays) out.f64s(array)
  for (const forest of forests) out.bytes(forest)
  return out.finish()
}

/**
 * A model from its stored form (`encodeDeviceModel`). Throws AnomalyStateError (IOT_ERR_ANOMALY_STATE)
 * on anything else: another format, version or kind, bytes missing or changed (the CRC), values out
 * of range, forests that do not validate or do not have m features, bytes after the model.
 */
export function decodeDeviceModel (bytes: Uint8Array): DeviceModel {
  const input = new SnapshotReader(bytes, 'deviceModel')
  const m = input.uint('m', MAX_STORED_MEASUREMENTS)
  if (m < 2) input.fail('m', `expected 2 to ${MAX_STORED_MEASUREMENTS} measurements, got ${m}`)
  const sequence = input.uint('sequence')
  if (sequence < 1) input.fail('sequence', 'expected 1 or more')
  const samples = input.uint('samples')
  if (samples < MIN_TRAINING_ROWS) input.fail('samples', `expected ${MIN_TRAINING_ROWS} or more, got ${samples}`)
  const trainedAt = input.f64('trainedAt')
  if (!Number.isFinite(trainedAt)) input.fail('trainedAt', `expected a finite number, got ${trainedAt}`)
  const threshold = input.f64('threshold')
  if (!(threshold > 0 && threshold < 1)) input.fail('threshold', `expected a number in (0, 1), got ${threshold}`)
  const distanceThreshold = input.f64('distanceThreshold')
  if (!(distanceThreshold > 0 && distanceThreshold < Infinity)) input.fail('distanceThreshold', `expected a number > 0, got ${distanceThreshold}`)
  const key = input.string('key')
  const version = input.string('version')
  const measurements = Object.freeze(Array.from({ length: m }, (_, i) => input.string(`measurements[${i}]`)))
  const center = input.f64Array('center', m)
  const scale = input.f64Array('scale', m)
  const rotation = input.f64Array('rotation', m * m)
  const precision = input.f64Array('precision', m * m)
  const axisVariance = input.f64Array('axisVariance', m)
  for (const [name, array] of [['center', center], ['scale', scale], ['rotation', rotation], ['precision', precision], ['axisVariance', axisVariance]] as const) {
    for (const value of array) if (!Number.isFinite(value)) input.fail(name, `expected finite numbers, got ${value}`)
  }
  for (const value of scale) if (!(value > 0)) input.fail('scale', `expected numbers > 0, got ${value}`)
  for (const value of axisVariance) if (!(value > 0)) input.fail('axisVariance', `expected numbers > 0, got ${value}`)
  const forest = (half: 'older' | 'newer'): IsolationForest => {
    const decoded = IsolationForest.fromJSON(decodeModel(input.bytes(half)))
    if (decoded.nFeatures !== m) input.fail(half, `a forest of ${decoded.nFeatures} features for ${m} measurements`)
    return decoded
  }
  const older = forest('older')
  const newer = forest('newer')
  input.end()
  return { key, measurements, sequence, version, trainedAt, samples, center, scale, rotation, precision, older, newer, threshold, axisVariance, distanceThreshold }
}
