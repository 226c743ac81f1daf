/**
 * The simulated fleet: sensor types, locations, their physical model and the sensor layout.
 * Everything here is a pure table or a pure function of its arguments.
 */

/** The five sensor types of the original design, in fleet order. */
export const sensorTypes = ['temperature', 'humidity', 'air_quality', 'pressure', 'co2'] as const
export type SensorType = (typeof sensorTypes)[number]

/** The five locations of the original design, in fleet order. */
export const locations = ['Server Room', 'Office Floor 3', 'Warehouse', 'Laboratory', 'Manufacturing'] as const
export type Location = (typeof locations)[number]

/** Physical model of one sensor type. */
export interface SensorModel {
  unit: string
  /** Fleet-wide base value; a location adds its offset (see `locationOffsets`). */
  base: number
  /**
   * Daily cycle amplitude: the noise-free value is `base + offset + amplitude * dailyCycle(ts)`,
   * so it is `+amplitude` at 14:00 UTC and `-amplitude` at 02:00 UTC (negative: humidity falls
   * in the afternoon as the air warms).
   */
  amplitude: number
  /** Standard deviation of the Gaussian measurement noise. */
  noise: number
  /** Physical bounds of the sensor: normal values are clipped to [min, max]. */
  min: number
  max: number
}

/**
 * | type        | unit | base | daily amplitude | noise sd | bounds      |
 * |-------------|------|------|-----------------|----------|-------------|
 * | temperature | °C   | 22   | 3               | 0.5      | -40 .. 85   |
 * | humidity    | %    | 50   | -8              | 2        | 0 .. 100    |
 * | air_quality | AQI  | 50   | 5               | 4        | 0 .. 500    |
 * | pressure    | hPa  | 1013 | 1               | 1        | 300 .. 1100 |
 * | co2         | ppm  | 450  | 50              | 20       | 0 .. 10000  |
 *
 * Bounds are the measuring ranges of common sensors (e.g. -40..85 °C industrial thermometers,
 * 300..1100 hPa barometers, 0..500 AQI scale, 0..10000 ppm NDIR CO2 sensors).
 */
export const sensorModels: Readonly<Record<SensorType, Readonly<SensorModel>>> = {
  temperature: { unit: '°C', base: 22, amplitude: 3, noise: 0.5, min: -40, max: 85 },
  humidity: { unit: '%', base: 50, amplitude: -8, noise: 2, min: 0, max: 100 },
  air_quality: { unit: 'AQI', base: 50, amplitude: 5, noise: 4, min: 0, max: 500 },
  pressure: { unit: 'hPa', base: 1013, amplitude: 1, noise: 1, min: 300, max: 1100 },
  co2: { unit: 'ppm', base: 450, amplitude: 50, noise: 20, min: 0, max: 10000 }
}

/**
 * Per-location offsets added to the type's base value.
 *
 * | location       | temperature | humidity | air_quality | pressure | co2  |
 * |----------------|-------------|----------|-------------|----------|------|
 * | Server Room    | -4          | -10      | -5          | +0.5     | 0    |
 * | Office Floor 3 | +0.5        | -5       | 0           | -1.2     | +150 |
 * | Warehouse      | -3          | +10      | +10         | 0        | +50  |
 * | Laboratory     | -1          | -5       | -5          | -0.3     | +30  |
 * | Manufacturing  | +6          | +5       | +35         | +0.2     | +350 |
 *
 * Server room: cooled, dehumidified, filtered, slight overpressure. Office on the 3rd floor:
 * ~10 m up (-1.2 hPa), occupied (CO2). Warehouse: unheated, damp, dusty. Laboratory: climate
 * controlled, fume hoods (slight underpressure). Manufacturing: machine heat, fumes, crowded.
 */
export const locationOffsets: Readonly<Record<Location, Readonly<Record<SensorType, number>>>> = {
  'Server Room': { temperature: -4, humidity: -10, air_quality: -5, pressure: 0.5, co2: 0 },
  'Office Floor 3': { temperature: 0.5, humidity: -5, air_quality: 0, pressure: -1.2, co2: 150 },
  Warehouse: { temperature: -3, humidity: 10, air_quality: 10, pressure: 0, co2: 50 },
  Laboratory: { temperature: -1, humidity: -5, air_quality: -5, pressure: -0.3, co2: 30 },
  Manufacturing: { temperature: 6, humidity: 5, air_quality: 35, pressure: 0.2, co2: 350 }
}

/** One simulated sensor. */
export interface SensorSpec {
  id: string
  sensorType: SensorType
  location: Location
  unit: string
}

const DAY_MS = 86_400_000
/** The cycle is 0 at 08:00 UTC, peaks at 14:00 and bottoms at 02:00. */
const CYCLE_ZERO_MS = 8 * 3_600_000
const TWO_PI = 2 * Math.PI

/**
 * Smooth daily cycle in [-1, 1] of an event timestamp (epoch ms): a sine of the fractional
 * time of day in UTC, +1 at 14:00, -1 at 02:00, 0 at 08:00 and 20:00.
 */
export function dailyCycle (ts: number): number {
  const msOfDay = ts - Math.floor(ts / DAY_MS) * DAY_MS
  return Math.sin(TWO_PI * ((msOfDay - CYCLE_ZERO_MS) / DAY_MS))
}

/**
 * The noise-free value of a sensor of this type and location at `ts`, before its slow
 * background drift: `base + offset + amplitude * dailyCycle(ts)`.
 */
export function baseline (sensorType: SensorType, location: Location, ts: number): number {
  const model = sensorModels[sensorType]
  return model.base + locationOffsets[location][sensorType] + model.amplitude * dailyCycle(ts)
}

function slug (text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')
}

/**
 * The layout of a fleet of `sensors` sensors. Sensor `i` has type `sensorTypes[i % 5]` and
 * location `locations[floor(i / 5) % 5]`, so the first 25 sensors are the original fleet (one
 * per location and type) and every further 25 add one more sensor per (location, type).
 *
 * Ids are `<sensor type>-<location slug>-<NN>`, where NN = floor(i / 25) + 1 is the number of
 * the sensor within its (location, type), at least two digits: `temperature-server-room-01`,
 * `air_quality-office-floor-3-01`, `co2-manufacturing-02`, ... An id never depends on the size
 * of the fleet, and ids are unique because i ↦ (type, location, NN) is one-to-one.
 */
export function createFleet (sensors: number): SensorSpec[] {
  if (!Number.isSafeInteger(sensors) || sensors < 0) {
    throw new RangeError(`sensors must be a non-negative integer, got ${sensors}`)
  }
  const nTypes = sensorTypes.length
  const nLocations = locations.length
  const fleet: SensorSpec[] = new Array<SensorSpec>(sensors)
  for (let i = 0; i < sensors; i++) {
    const sensorType = sensorTypes[i % nTypes] as SensorType
    const location = locations[Math.floor(i / nTypes) % nLocations] as Location
    const number = String(Math.floor(i / (nTypes * nLocations)) + 1).padStart(2, '0')
    fleet[i] = {
      id: `${sensorType}-${slug(location)}-${number}`,
      sensorType,
      location,
      unit: sensorModels[sensorType].unit
    }
  }
  return fleet
}
