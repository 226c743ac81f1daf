import { type Reading } from '../domain/index.ts'
import { AnomalyConfigError } from './errors.ts'

/**
 * Normal range of one sensor type (optionally at one location). Bounds are inclusive: a value
 * equal to `min` or `max` is normal. An absent bound is not checked.
 */
export interface Threshold {
  /** Lowest normal value (inclusive). */
  min?: number | undefined
  /** Highest normal value (inclusive). */
  max?: number | undefined
  /**
   * Highest normal absolute rate of change, in units per second of event time, between a
   * sensor's previous reading and this one. Absent: no rate rule.
   */
  maxRatePerSec?: number | undefined
}

/**
 * Rule thresholds. `defaults` is keyed by sensor type. `overrides` is keyed by
 * `"<sensorType>@<location>"` (split at the first `@`; location matched exactly, case-sensitive)
 * and is merged field by field over the type's default: `{ max: 30 }` keeps the default `min`.
 * Sensor types in neither map have no thresholds and are never flagged by rules.
 */
export interface RuleConfig {
  defaults: Readonly<Record<string, Threshold>>
  overrides?: Readonly<Record<string, Threshold>> | undefined
}

export type RuleReason = 'below_min' | 'above_max' | 'rate'

export interface RuleResult {
  readonly anomaly: boolean
  readonly reason: RuleReason | null
}

/** The previous reading of the same sensor, for the rate rule. `ts` in epoch milliseconds. */
export interface PreviousValue {
  value: number
  ts: number
}

/** The part of a reading the rules look at. */
export type RuleInput = Pick<Reading, 'sensorType' | 'location' | 'value' | 'ts'>

/**
 * Normal ranges of the original design's five sensor types, with location overrides where a
 * facility runs differently, and rate-of-change limits set at physically implausible jumps for
 * room air (a real change of that speed is a fault or an event worth a look):
 *
 * | type        | min | max  | max rate /s | overrides                                  |
 * |-------------|-----|------|-------------|--------------------------------------------|
 * | temperature | 10  | 35   | 5 °C        | Server Room max 27 (ASHRAE allowable 15-32); Warehouse min 5 (unheated); Manufacturing max 40 |
 * | humidity    | 20  | 80   | 15 %        | Warehouse max 90 (damp)                    |
 * | air_quality | 0   | 150  | 25 AQI      |                                            |
 * | pressure    | 980 | 1040 | 10 hPa      |                                            |
 * | co2         | 300 | 1200 | 150 ppm     |                                            |
 */
export const defaultRuleConfig: RuleConfig = Object.freeze({
  defaults: Object.freeze({
    temperature: Object.freeze({ min: 10, max: 35, maxRatePerSec: 5 }), // °C
    humidity: Object.freeze({ min: 20, max: 80, maxRatePerSec: 15 }), // %
    air_quality: Object.freeze({ min: 0, max: 150, maxRatePerSec: 25 }), // AQI
    pressure: Object.freeze({ min: 980, max: 1040, maxRatePerSec: 10 }), // hPa
    co2: Object.freeze({ min: 300, max: 1200, maxRatePerSec: 150 }) // ppm
  }),
  overrides: Object.freeze({
    'temperature@Server Room': Object.freeze({ max: 27 }),
    'temperature@Warehouse': Object.freeze({ min: 5 }),
    'temperature@Manufacturing': Object.freeze({ max: 40 }),
    'humidity@Warehouse': Object.freeze({ max: 90 })
  })
})

// Results are shared frozen constants: evaluating a reading allocates nothing.
const NORMAL: RuleResult = Object.freeze({ anomaly: false, reason: null })
const BELOW_MIN: RuleResult = Object.freeze({ anomaly: true, reason: 'below_min' })
const ABOVE_MAX: RuleResult = Object.freeze({ anomaly: true, reason: 'above_max' })
const RATE: RuleResult = Object.freeze({ anomaly: true, reason: 'rate' })

/** Thresholds with absent bounds as infinities, so the hot path has no undefined checks. */
interface CompiledThreshold {
  readonly min: number
  readonly max: number
  readonly maxRatePerSec: number
  readonly source: Readonly<Threshold>
}

interface TypeRules {
  base: CompiledThreshold | null
  byLocation: Map<string, CompiledThreshold>
}

const thresholdFields = new Set(['min', 'max', 'maxRatePerSec'])

function isPlainObject (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function checkThreshold (x: unknown, path: string): Threshold {
  if (!isPlainObject(x)) throw new AnomalyConfigError(path, 'must be an object { min?, max?, maxRatePerSec? }')
  for (const key of Object.keys(x)) {
    if (!thresholdFields.has(key)) throw new AnomalyConfigError(`${path}.${key}`, 'unknown field (expected min, max or maxRatePerSec)')
  }
  const out: Threshold = {}
  for (const key of ['min', 'max', 'maxRatePerSec'] as const) {
    const v = x[key]
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new AnomalyConfigError(`${path}.${key}`, `must be a finite number, got ${String(v)}`)
    out[key] = v
  }
  if (out.maxRatePerSec !== undefined && !(out.maxRatePerSec > 0)) {
    throw new AnomalyConfigError(`${path}.maxRatePerSec`, `must be > 0, got ${out.maxRatePerSec}`)
  }
  checkRange(out, path)
  return out
}

function checkRange (t: Threshold, path: string): void {
  if (t.min !== undefined && t.max !== undefined && !(t.min < t.max)) {
    throw new AnomalyConfigError(path, `min (${t.min}) must be < max (${t.max})`)
  }
}

function merge (base: Threshold | undefined, over: Threshold): Threshold {
  const out: Threshold = { ...base }
  if (over.min !== undefined) out.min = over.min
  if (over.max !== undefined) out.max = over.max
  if (over.maxRatePerSec !== undefined) out.maxRatePerSec = over.maxRatePerSec
  return out
}

function splitOverrideKey (key: string, path: string): [string, string] {
  const at = key.indexOf('@')
  if (at <= 0 || at === key.length - 1) {
    throw new AnomalyConfigError(path, 'override keys must look like "<sensorType>@<location>"')
  }
  return [key.slice(0, at), key.slice(at + 1)]
}

/**
 * Checks a rule configuration (e.g. parsed from a file) and returns a normalized, frozen copy.
 * Throws `AnomalyConfigError` (code `IOT_ERR_ANOMALY_CONFIG`) on unknown fields, non-finite
 * numbers, `min >= max` (also after merging an override over its default), `maxRatePerSec <= 0`,
 * or malformed override keys.
 */
export function validateRuleConfig (config: unknown): RuleConfig {
  if (!isPlainObject(config)) throw new AnomalyConfigError('', 'rule config must be an object { defaults, overrides? }')
  for (const key of Object.keys(config)) {
    if (key !== 'defaults' && key !== 'overrides') throw new AnomalyConfigError(key, 'unknown field (expected defaults or overrides)')
  }
  const { defaults, overrides } = config
  if (!isPlainObject(defaults)) throw new AnomalyConfigError('defaults', 'must be an object keyed by sensor type')
  const outDefaults: Record<string, Threshold> = Object.create(null) as Record<string, Threshold>
  for (const [type, t] of Object.entries(defaults)) {
    const path = `defaults.${type}`
    if (type === '' || type.includes('@')) throw new AnomalyConfigError(path, 'sensor type must be non-empty and contain no "@"')
    outDefaults[type] = Object.freeze(checkThreshold(t, path))
  }
  const outOverrides: Record<string, Threshold> = Object.create(null) as Record<string, Threshold>
  if (overrides !== undefined) {
    if (!isPlainObject(overrides)) throw new AnomalyConfigError('overrides', 'must be an object keyed by "<sensorType>@<location>"')
    for (const [key, t] of Object.entries(overrides)) {
      const path = `overrides.${key}`
      const [type] = splitOverrideKey(key, path)
      const own = checkThreshold(t, path)
      checkRange(merge(outDefaults[type], own), `${path} (merged over defaults.${type})`)
      outOverrides[key] = Object.freeze(own)
    }
  }
  return Object.freeze({ defaults: Object.freeze(outDefaults), overrides: Object.freeze(outOverrides) })
}

function compile (t: Threshold): CompiledThreshold {
  return Object.freeze({
    min: t.min ?? -Infinity,
    max: t.max ?? Infinity,
    maxRatePerSec: t.maxRatePerSec ?? Infinity,
    source: Object.freeze({ ...t })
  })
}

/**
 * Evaluates rule thresholds per reading. Pure: the caller supplies the sensor's previous value.
 * Lookups are two Map gets (type, then location); nothing is allocated per reading.
 */
export class RuleEngine {
  readonly config: RuleConfig
  readonly #byType = new Map<string, TypeRules>()

  constructor (config: RuleConfig = defaultRuleConfig) {
    this.config = validateRuleConfig(config)
    for (const [type, t] of Object.entries(this.config.defaults)) {
      this.#byType.set(type, { base: compile(t), byLocation: new Map() })
    }
    for (const [key, t] of Object.entries(this.config.overrides ?? {})) {
      const [type, location] = splitOverrideKey(key, `overrides.${key}`)
      let rules = this.#byType.get(type)
      if (rules === undefined) {
        rules = { base: null, byLocation: new Map() }
        this.#byType.set(type, rules)
      }
      rules.byLocation.set(location, compile(merge(this.config.defaults[type], t)))
    }
  }

  /** The effective threshold for a sensor type at a location (override merged over default), or null. */
  thresholdFor (sensorType: string, location: string): Readonly<Threshold> | null {
    return this.#resolve(sensorType, location)?.source ?? null
  }

  /**
   * Range first (`below_min`, `above_max`), then the rate rule against `prev`. The rate rule is
   * skipped when there is no previous value or when `reading.ts <= prev.ts` (no positive time
   * step to divide by). A rate exactly equal to `maxRatePerSec` is normal.
   */
  evaluate (reading: RuleInput, prev: PreviousValue | null): RuleResult {
    const t = this.#resolve(reading.sensorType, reading.location)
    if (t === null) return NORMAL
    const v = reading.value
    if (v < t.min) return BELOW_MIN
    if (v > t.max) return ABOVE_MAX
    if (prev !== null && t.maxRatePerSec !== Infinity) {
      const dtMs = reading.ts - prev.ts
      // |dv| / (dt / 1000) > maxRate, without the division.
      if (dtMs > 0 && Math.abs(v - prev.value) * 1000 > t.maxRatePerSec * dtMs) return RATE
    }
    return NORMAL
  }

  #resolve (sensorType: string, location: string): CompiledThreshold | null {
    const rules = this.#byType.get(sensorType)
    if (rules === undefined) return null
    return rules.byLocation.get(location) ?? rules.base
  }
}
