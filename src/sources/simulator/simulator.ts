/**
 * Pure, seeded sensor simulator: a fleet of sensors, each producing readings at a fixed rate of
 * event time, merged into one stream in non-decreasing timestamp order, with labelled injected
 * anomalies. No timers, no I/O, no clock: the caller paces it and ships the readings.
 */
import { type AnomalyKind, createRandom, type Random, type Reading } from '../../domain/index.ts'
import { createFleet, dailyCycle, locationOffsets, type SensorSpec, sensorModels } from './fleet.ts'

/**
 * How often each anomaly kind is injected. Setting a rate to 0 turns that kind off.
 */
export interface FaultRates {
  /** Probability that a reading outside an episode is a spike (0..1). Original design: 5%. */
  spike: number
  /** Drift episodes started per sensor per hour of event time. */
  drift: number
  /** Stuck episodes started per sensor per hour of event time. */
  stuck: number
  /** Dropout episodes started per sensor per hour of event time. */
  dropout: number
}

export const defaultFaultRates: Readonly<FaultRates> = { spike: 0.05, drift: 0.5, stuck: 0.5, dropout: 0.5 }

/** Duration of an episode: uniform in [minSeconds, maxSeconds] of event time, at least minReadings. */
export interface EpisodeDuration {
  minSeconds: number
  maxSeconds: number
  minReadings: number
}

/**
 * Episode durations. A dropout is a short loss of signal (a few readings at 1/s); drift and
 * stuck last minutes. `minReadings` keeps episodes visible at low rates (a drift needs a few
 * readings to ramp).
 */
export const episodeDurations: Readonly<Record<'drift' | 'stuck' | 'dropout', Readonly<EpisodeDuration>>> = {
  drift: { minSeconds: 120, maxSeconds: 300, minReadings: 12 },
  stuck: { minSeconds: 60, maxSeconds: 180, minReadings: 3 },
  dropout: { minSeconds: 5, maxSeconds: 30, minReadings: 1 }
}

/** A spike multiplies the noise-free value by a factor uniform in [SPIKE_FACTOR_MIN, SPIKE_FACTOR_MAX]. */
export const SPIKE_FACTOR_MIN = 1.5
export const SPIKE_FACTOR_MAX = 3
/** A drift episode ramps linearly to this many noise sigmas at its last reading, then ends. */
export const DRIFT_PEAK_SIGMAS = 6
/** Readings of a drift episode are labelled once the ramp offset reaches this many noise sigmas. */
export const DRIFT_LABEL_SIGMAS = 1
/** The unlabelled background random walk stays within ±BACKGROUND_DRIFT_MAX units (original: ±2.0). */
export const BACKGROUND_DRIFT_MAX = 2
/** Standard deviation of the background walk per √minute of event time (rate independent). */
export const BACKGROUND_DRIFT_PER_SQRT_MINUTE = 0.3

export interface SimulatorOptions {
  /** Number of sensors (default 25: the original fleet). See `createFleet` for the layout. */
  sensors?: number
  /** Readings per second of event time, per sensor (default 1). */
  ratePerSensor?: number
  /** Seed of the random source (default 42). Same options ⇒ the same readings, bit for bit. */
  seed?: number
  /** Event time of the first reading, epoch milliseconds (integer). */
  startTs: number
  /** Anomaly rates; missing ones take `defaultFaultRates`. */
  faults?: Partial<FaultRates>
}

export const simulatorDefaults = { sensors: 25, ratePerSensor: 1, seed: 42 } as const

const NONE = 0
const DRIFT = 1
const STUCK = 2
const DROPOUT = 3
const HOUR_MS = 3_600_000

/** Per-sensor constants and mutable state, one monomorphic object per sensor. */
class SensorState {
  readonly id: string
  readonly sensorType: string
  readonly location: string
  readonly unit: string
  /** base + location offset */
  readonly level: number
  readonly amplitude: number
  readonly noise: number
  readonly min: number
  readonly max: number
  /** Background random walk, within ±BACKGROUND_DRIFT_MAX. */
  walk = 0
  /** Last normal (unlabelled) value, which a stuck episode repeats. */
  lastNormal = 0
  /** Event time from which the next episode may start. */
  nextEpisodeTs = 0
  /** Current episode: NONE, DRIFT, STUCK or DROPOUT. */
  kind = NONE
  /** Readings in the current episode, and how many were produced so far. */
  length = 0
  position = 0
  /** Drift: signed peak offset. Stuck: the repeated value. */
  param = 0

  constructor (spec: SensorSpec) {
    const model = sensorModels[spec.sensorType]
    this.id = spec.id
    this.sensorType = spec.sensorType
    this.location = spec.location
    this.unit = spec.unit
    this.level = model.base + locationOffsets[spec.location][spec.sensorType]
    this.amplitude = model.amplitude
    this.noise = model.noise
    this.min = model.min
    this.max = model.max
  }
}

function checkRate (name: string, value: number, max: number): number {
  if (!Number.isFinite(value) || value < 0 || value > max) {
    throw new RangeError(`faults.${name} must be a number in [0, ${max}], got ${value}`)
  }
  return value
}

/**
 * The simulator. `next()` returns the fleet's next reading in event-time order.
 *
 * Schedule: reading number g (0, 1, 2, ...) of the fleet has timestamp
 * `startTs + floor(g * 1000 / (sensors * ratePerSensor))` and belongs to the sensor in slot
 * `g % sensors` of a seeded permutation of the fleet, as that sensor's reading number
 * (`seq`) `floor(g / sensors)`. So timestamps never decrease, sensors are evenly de-phased
 * across each sampling interval, and each sensor reads every `1000 / ratePerSensor` ms (±1 ms of
 * integer rounding). No heap is needed because every sensor has the same rate.
 *
 * Value of a normal reading: `level + amplitude * dailyCycle(ts) + walk + noise`, clipped to
 * the type's bounds (see `sensorModels`, `locationOffsets`). Anomalies (never clipped into the
 * normal band):
 * - spike (`faults.spike` of the readings outside episodes): the noise-free value times a
 *   factor f uniform in [1.5, 3]; if that exceeds the type's upper bound, divided by f instead.
 * - drift episode: an offset ramping linearly from 0 to ±6 noise sigmas at the episode's last
 *   reading (then the episode ends); readings are labelled once the offset reaches 1 sigma
 *   (reading k of n is labelled iff 6k ≥ n); the first readings stay unlabelled and normal.
 * - stuck episode: every reading repeats exactly the last normal value of the sensor.
 * - dropout episode: every reading is 0 (signal lost).
 * Episodes start as a Poisson process of rate `drift + stuck + dropout` per sensor per hour of
 * event time outside episodes (never on a sensor's first reading), the kind drawn in proportion
 * to the rates; no spikes inside.
 */
export class Simulator {
  readonly fleet: readonly SensorSpec[]
  readonly ratePerSensor: number
  readonly startTs: number
  readonly faults: Readonly<FaultRates>

  readonly #rng: Random
  /** Sensor states in schedule order (slot ⇒ sensor). */
  readonly #schedule: SensorState[]
  readonly #n: number
  /** Readings per second of the whole fleet. */
  readonly #fleetRate: number
  readonly #walkStep: number
  readonly #episodeRate: number
  #count = 0
  #slot = 0
  #round = 0
  #cycleTs = Number.NaN
  #cycle = 0
  #expected = Number.NaN

  constructor (opts: SimulatorOptions) {
    const sensors = opts.sensors ?? simulatorDefaults.sensors
    const rate = opts.ratePerSensor ?? simulatorDefaults.ratePerSensor
    const seed = opts.seed ?? simulatorDefaults.seed
    if (!Number.isSafeInteger(sensors) || sensors < 1) {
      throw new RangeError(`sensors must be a positive integer, got ${sensors}`)
    }
    if (!Number.isFinite(rate) || rate <= 0) {
      throw new RangeError(`ratePerSensor must be a positive number, got ${rate}`)
    }
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`)
    if (!Number.isSafeInteger(opts.startTs)) {
      throw new RangeError(`startTs must be an integer number of milliseconds, got ${opts.startTs}`)
    }
    const f = { ...defaultFaultRates, ...opts.faults }
    this.faults = Object.freeze({
      spike: checkRate('spike', f.spike, 1),
      drift: checkRate('drift', f.drift, Number.MAX_VALUE),
      stuck: checkRate('stuck', f.stuck, Number.MAX_VALUE),
      dropout: checkRate('dropout', f.dropout, Number.MAX_VALUE)
    })
    this.fleet = Object.freeze(createFleet(sensors))
    this.ratePerSensor = rate
    this.startTs = opts.startTs
    this.#n = sensors
    this.#fleetRate = sensors * rate
    this.#walkStep = BACKGROUND_DRIFT_PER_SQRT_MINUTE * Math.sqrt(1 / (60 * rate))
    this.#episodeRate = this.faults.drift + this.faults.stuck + this.faults.dropout

    const rng = this.#rng = createRandom(seed)
    const states = this.fleet.map(spec => new SensorState(spec))
    for (const s of states) {
      s.walk = BACKGROUND_DRIFT_MAX * (2 * rng.next() - 1)
      s.nextEpisodeTs = opts.startTs + this.#episodeGap()
    }
    // Seeded Fisher-Yates shuffle of the slots, so neighbouring readings mix locations and types.
    const schedule = states.slice()
    for (let i = schedule.length - 1; i > 0; i--) {
      const j = rng.int(i + 1)
      const t = schedule[i] as SensorState
      schedule[i] = schedule[j] as SensorState
      schedule[j] = t
    }
    this.#schedule = schedule
  }

  /** Event time of the reading that `next()` will return. */
  get nextTs (): number {
    return this.startTs + Math.floor(this.#count * 1000 / this.#fleetRate)
  }

  /**
   * Noise-free normal value of the last reading's sensor at its timestamp (baseline, daily cycle
   * and background drift; no noise, no fault): what that reading would centre on if normal.
   * NaN before the first reading. For tests and evaluation.
   */
  get expected (): number {
    return this.#expected
  }

  /** Number of readings produced so far. */
  get count (): number {
    return this.#count
  }

  /** The next reading of the fleet, in non-decreasing event-time order. */
  next (): Reading {
    // g * 1000 is exact below 2^53 / 1000 readings; a correctly rounded division by a constant
    // and floor are monotonic, so timestamps never decrease.
    const ts = this.startTs + Math.floor(this.#count * 1000 / this.#fleetRate)
    this.#count++
    const s = this.#schedule[this.#slot] as SensorState
    const seq = this.#round
    if (++this.#slot === this.#n) {
      this.#slot = 0
      this.#round++
    }
    const rng = this.#rng

    if (ts !== this.#cycleTs) {
      this.#cycleTs = ts
      this.#cycle = dailyCycle(ts)
    }
    // Background drift: a reflected random walk, normal behaviour, never labelled.
    let walk = s.walk + this.#walkStep * rng.normal()
    if (walk > BACKGROUND_DRIFT_MAX) walk = 2 * BACKGROUND_DRIFT_MAX - walk
    else if (walk < -BACKGROUND_DRIFT_MAX) walk = -2 * BACKGROUND_DRIFT_MAX - walk
    if (walk > BACKGROUND_DRIFT_MAX || walk < -BACKGROUND_DRIFT_MAX) {
      walk = walk > 0 ? BACKGROUND_DRIFT_MAX : -BACKGROUND_DRIFT_MAX // only at very low rates
    }
    s.walk = walk
    const expected = s.level + s.amplitude * this.#cycle + walk
    this.#expected = expected
    const noise = s.noise * rng.normal()

    if (s.kind === NONE && ts >= s.nextEpisodeTs && seq > 0) this.#startEpisode(s, expected)

    let value: number
    let kind: AnomalyKind | null = null
    if (s.kind === NONE) {
      if (this.faults.spike > 0 && rng.next() < this.faults.spike) {
        const factor = SPIKE_FACTOR_MIN + (SPIKE_FACTOR_MAX - SPIKE_FACTOR_MIN) * rng.next()
        value = expected * factor
        // Clipping would hide the spike: go the other way instead.
        if (value > s.max) value = expected / factor
        // Unreachable with the shipped tables (tested); the bound is far from normal anyway.
        if (value < s.min) value = s.min
        kind = 'spike'
      } else {
        value = clip(expected + noise, s.min, s.max)
        s.lastNormal = value
      }
    } else {
      const position = ++s.position
      if (s.kind === DRIFT) {
        value = clip(expected + s.param * position / s.length + noise, s.min, s.max)
        if (position * DRIFT_PEAK_SIGMAS >= s.length * DRIFT_LABEL_SIGMAS) kind = 'drift'
      } else if (s.kind === STUCK) {
        value = s.param
        kind = 'stuck'
      } else {
        value = 0
        kind = 'dropout'
      }
      if (position === s.length) {
        s.kind = NONE
        s.nextEpisodeTs = ts + this.#episodeGap()
      }
    }

    return {
      sensorId: s.id,
      sensorType: s.sensorType,
      location: s.location,
      value,
      ts,
      unit: s.unit,
      anomaly: kind !== null,
      anomalyKind: kind,
      seq
    }
  }

  /** Event time (ms) until the next episode: exponential with the total episode rate. */
  #episodeGap (): number {
    if (this.#episodeRate === 0) return Number.POSITIVE_INFINITY
    return -Math.log(1 - this.#rng.next()) * HOUR_MS / this.#episodeRate
  }

  #startEpisode (s: SensorState, expected: number): void {
    const rng = this.#rng
    const { drift, stuck } = this.faults
    const u = rng.next() * this.#episodeRate
    const name = u < drift ? 'drift' : u < drift + stuck ? 'stuck' : 'dropout'
    const d = episodeDurations[name]
    const seconds = d.minSeconds + (d.maxSeconds - d.minSeconds) * rng.next()
    s.length = Math.max(d.minReadings, Math.round(seconds * this.ratePerSensor))
    s.position = 0
    if (name === 'drift') {
      s.kind = DRIFT
      let peak = (rng.next() < 0.5 ? -1 : 1) * DRIFT_PEAK_SIGMAS * s.noise
      // Turn around if the ramp (plus the daily swing) would run into a bound and be clipped.
      const reach = expected + peak + Math.sign(peak) * 2 * Math.abs(s.amplitude)
      if (reach > s.max || reach < s.min) peak = -peak
      s.param = peak
    } else if (name === 'stuck') {
      s.kind = STUCK
      s.param = s.lastNormal
    } else {
      s.kind = DROPOUT
    }
  }
}

function clip (value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value
}
