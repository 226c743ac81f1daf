// Alarm rules: what raises an alarm, per sensor type and location. Built-in defaults, merged with
// a JSON file (`--alarm-rules FILE`): thresholds with a pending period and a separate clear
// threshold (hysteresis), optionally escalating to a higher severity; a burst of anomalous
// readings; stuck and drift verdicts; and a sensor or device that stops reporting (wall time).
import { IotError } from '../domain/index.ts'
import { type AlarmSeverity, alarmSeverities } from './model.ts'

/** One raise level of a threshold: the value must stay past `value` for `forMs` of event time. */
export interface ThresholdLevel {
  severity: AlarmSeverity
  value: number
  /** The pending period (Grafana's `for`): how long the value must stay past `value`. */
  forMs: number
}

/** A threshold on one sensor type, optionally at one location (it then replaces the rule of the same name there). */
export interface ThresholdRule {
  /** The alarm type is `threshold:<name>`. */
  name: string
  sensorType: string
  /** Only at this location; null: everywhere that has no rule of its own with this name. */
  location: string | null
  direction: 'above' | 'below'
  /** Raise levels, mildest first: the alarm has the severity of the highest level that held for its pending period. */
  levels: ThresholdLevel[]
  /** Hysteresis: an active alarm clears once the value is back past this (below it for `above`)... */
  clear: number
  /** ... for this long (0: at the first such reading). */
  clearForMs: number
  enabled: boolean
}

/** N readings with the combined anomaly verdict within M of event time raise `anomaly_burst`; a quiet period clears it. */
export interface BurstRule {
  count: number
  withinMs: number
  /** Event time without an anomalous reading that clears the alarm. */
  quietMs: number
  severity: AlarmSeverity
}

/** A verdict bit (stuck, drift) raises its alarm at once; it clears when the bit stayed off this long. */
export interface VerdictRule {
  severity: AlarmSeverity
  clearAfterMs: number
}

/** A sensor or device that stops reporting: offline after max(multiplier × its usual interval, minMs) of wall time. */
export interface OfflineRule {
  multiplier: number
  minMs: number
  severity: AlarmSeverity
}

/** Per sensor type and/or location: replaces fields of (or, with null, switches off) the burst, stuck, drift and offline rules. */
export interface RuleOverride {
  sensorType: string | null
  location: string | null
  anomalyBurst?: Partial<BurstRule> | null
  stuck?: Partial<VerdictRule> | null
  drift?: Partial<VerdictRule> | null
  offline?: Partial<OfflineRule> | null
}

export interface AlarmRules {
  thresholds: ThresholdRule[]
  anomalyBurst: BurstRule | null
  stuck: VerdictRule | null
  drift: VerdictRule | null
  offline: OfflineRule | null
  overrides: RuleOverride[]
  /** Wall time between offline checks (and syncs of operator actions) in the worker. */
  checkEveryMs: number
}

/** The rules one sensor follows (its type and location resolved). */
export interface SensorRules {
  thresholds: ThresholdRule[]
  anomalyBurst: BurstRule | null
  stuck: VerdictRule | null
  drift: VerdictRule | null
  offline: OfflineRule | null
}

const MIN = 60_000

const above = (name: string, sensorType: string, location: string | null, levels: ThresholdLevel[], clear: number): ThresholdRule =>
  ({ name, sensorType, location, direction: 'above', levels, clear, clearForMs: 0, enabled: true })
const below = (name: string, sensorType: string, location: string | null, levels: ThresholdLevel[], clear: number): ThresholdRule =>
  ({ name, sensorType, location, direction: 'below', levels, clear, clearForMs: 0, enabled: true })

/**
 * Built-in defaults, for the five simulated types at their usual units. Levels sit past what the
 * sensors show in a normal day (the simulator's daily cycle and noise), and the pending periods
 * keep a spike from raising a threshold alarm (spikes belong to the burst rule).
 */
export const defaultAlarmRules: AlarmRules = Object.freeze({
  thresholds: [
    // CO2: 1,200 ppm for 5 min is stale air (ventilation guidance), 2,000 ppm is poor.
    above('co2_high', 'co2', null, [{ severity: 'warning', value: 1200, forMs: 5 * MIN }, { severity: 'major', value: 2000, forMs: 5 * MIN }], 1000),
    above('temperature_high', 'temperature', null, [{ severity: 'minor', value: 32, forMs: 10 * MIN }, { severity: 'major', value: 38, forMs: 5 * MIN }], 30),
    // Server rooms: ASHRAE's recommended envelope ends at 27 °C.
    above('temperature_high', 'temperature', 'Server Room', [{ severity: 'major', value: 27, forMs: 5 * MIN }, { severity: 'critical', value: 32, forMs: 2 * MIN }], 25),
    above('temperature_high', 'temperature', 'Manufacturing', [{ severity: 'minor', value: 38, forMs: 10 * MIN }, { severity: 'major', value: 42, forMs: 5 * MIN }], 36),
    below('temperature_low', 'temperature', null, [{ severity: 'minor', value: 12, forMs: 10 * MIN }, { severity: 'major', value: 5, forMs: 10 * MIN }], 14),
    below('temperature_low', 'temperature', 'Warehouse', [{ severity: 'minor', value: 3, forMs: 10 * MIN }, { severity: 'major', value: 0, forMs: 10 * MIN }], 5),
    above('humidity_high', 'humidity', null, [{ severity: 'warning', value: 75, forMs: 10 * MIN }, { severity: 'minor', value: 85, forMs: 10 * MIN }], 70),
    below('humidity_low', 'humidity', null, [{ severity: 'warning', value: 20, forMs: 10 * MIN }], 25)
  ],
  anomalyBurst: { count: 5, withinMs: 10 * MIN, quietMs: 10 * MIN, severity: 'minor' },
  stuck: { severity: 'major', clearAfterMs: 5 * MIN },
  drift: { severity: 'minor', clearAfterMs: 10 * MIN },
  offline: { multiplier: 3, minMs: 2 * MIN, severity: 'major' },
  overrides: [],
  checkEveryMs: 30_000
}) as AlarmRules

/** The rules of a sensor of this type at this location. */
export function rulesFor (rules: AlarmRules, sensorType: string, location: string): SensorRules {
  const thresholds: ThresholdRule[] = []
  for (const r of rules.thresholds) {
    if (r.sensorType !== sensorType) continue
    if (r.location === null) {
      // A rule of the same name at this location replaces the general one (also when it is disabled).
      if (rules.thresholds.some(o => o.name === r.name && o.sensorType === sensorType && o.location === location)) continue
    } else if (r.location !== location) continue
    if (r.enabled) thresholds.push(r)
  }
  let anomalyBurst = rules.anomalyBurst
  let stuck = rules.stuck
  let drift = rules.drift
  let offline = rules.offline
  // Less specific first: a type-and-location override wins over a type or a location alone.
  const specificity = (o: RuleOverride): number => (o.sensorType === null ? 0 : 1) + (o.location === null ? 0 : 1)
  const matching = rules.overrides
    .filter(o => (o.sensorType === null || o.sensorType === sensorType) && (o.location === null || o.location === location))
    .sort((a, b) => specificity(a) - specificity(b))
  for (const o of matching) {
    if (o.anomalyBurst !== undefined) anomalyBurst = o.anomalyBurst === null ? null : { ...(anomalyBurst ?? defaultBurst), ...o.anomalyBurst }
    if (o.stuck !== undefined) stuck = o.stuck === null ? null : { ...(stuck ?? defaultVerdict), ...o.stuck }
    if (o.drift !== undefined) drift = o.drift === null ? null : { ...(drift ?? defaultVerdict), ...o.drift }
    if (o.offline !== undefined) offline = o.offline === null ? null : { ...(offline ?? defaultOffline), ...o.offline }
  }
  return { thresholds, anomalyBurst, stuck, drift, offline }
}

const defaultBurst: BurstRule = { count: 5, withinMs: 10 * MIN, quietMs: 10 * MIN, severity: 'minor' }
const defaultVerdict: VerdictRule = { severity: 'minor', clearAfterMs: 10 * MIN }
const defaultOffline: OfflineRule = { multiplier: 3, minMs: 2 * MIN, severity: 'major' }

// ---------------------------------------------------------------------------------------------
// The JSON file. Durations are milliseconds or text ("90s", "5m", "1h", "500ms").

/**
 * Parses and validates an alarm rules file, merged over the defaults (or over nothing with
 * `"defaults": false`). Thresholds are added; one with the same name, sensor type and location
 * as a default replaces it (`"enabled": false` switches it off). `anomalyBurst`, `stuck`, `drift`
 * and `offline` replace fields of the defaults; null switches one off. IOT_ERR_CONFIG on a bad file.
 */
export function parseAlarmRules (json: unknown): AlarmRules {
  const o = obj(json, 'the alarm rules')
  known(o, ['defaults', 'thresholds', 'anomalyBurst', 'stuck', 'drift', 'offline', 'overrides', 'check'], 'the alarm rules')
  const useDefaults = o.defaults === undefined ? true : bool(o.defaults, 'defaults')
  const base: AlarmRules = useDefaults
    ? structuredClone(defaultAlarmRules)
    : { thresholds: [], anomalyBurst: null, stuck: null, drift: null, offline: null, overrides: [], checkEveryMs: defaultAlarmRules.checkEveryMs }
  if (o.thresholds !== undefined) {
    if (!Array.isArray(o.thresholds)) throw configError('thresholds: expected an array')
    o.thresholds.forEach((t, i) => {
      const rule = parseThreshold(t, `thresholds[${i}]`)
      const same = base.thresholds.findIndex(r => r.name === rule.name && r.sensorType === rule.sensorType && r.location === rule.location)
      if (same >= 0) base.thresholds[same] = rule
      else base.thresholds.push(rule)
    })
  }
  if (o.anomalyBurst !== undefined) base.anomalyBurst = o.anomalyBurst === null ? null : { ...(base.anomalyBurst ?? defaultBurst), ...parseBurst(o.anomalyBurst, 'anomalyBurst') }
  if (o.stuck !== undefined) base.stuck = o.stuck === null ? null : { ...(base.stuck ?? defaultVerdict), ...parseVerdict(o.stuck, 'stuck') }
  if (o.drift !== undefined) base.drift = o.drift === null ? null : { ...(base.drift ?? defaultVerdict), ...parseVerdict(o.drift, 'drift') }
  if (o.offline !== undefined) base.offline = o.offline === null ? null : { ...(base.offline ?? defaultOffline), ...parseOffline(o.offline, 'offline') }
  if (o.check !== undefined) base.checkEveryMs = duration(o.check, 'check', 1000)
  if (o.overrides !== undefined) {
    if (!Array.isArray(o.overrides)) throw configError('overrides: expected an array')
    base.overrides = o.overrides.map((x, i) => parseOverride(x, `overrides[${i}]`))
  }
  return base
}

function parseThreshold (json: unknown, at: string): ThresholdRule {
  const o = obj(json, at)
  known(o, ['name', 'sensorType', 'location', 'above', 'below', 'for', 'severity', 'clearBelow', 'clearAbove', 'clearFor', 'escalate', 'enabled'], at)
  const name = str(o.name, `${at}.name`)
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw configError(`${at}.name: 1-64 of [A-Za-z0-9_.-], got "${name}"`)
  const sensorType = str(o.sensorType, `${at}.sensorType`)
  const location = o.location === undefined || o.location === null ? null : str(o.location, `${at}.location`)
  const enabled = o.enabled === undefined ? true : bool(o.enabled, `${at}.enabled`)
  if ((o.above === undefined) === (o.below === undefined)) throw configError(`${at}: give one of "above" and "below"`)
  const direction = o.above !== undefined ? 'above' : 'below'
  const clearKey = direction === 'above' ? 'clearBelow' : 'clearAbove'
  const wrongKey = direction === 'above' ? 'clearAbove' : 'clearBelow'
  if (o[wrongKey] !== undefined) throw configError(`${at}: "${wrongKey}" does not go with "${direction}" (use "${clearKey}")`)
  const first: ThresholdLevel = {
    severity: severity(o.severity ?? 'warning', `${at}.severity`),
    value: num(o[direction], `${at}.${direction}`),
    forMs: o.for === undefined ? 0 : duration(o.for, `${at}.for`, 0)
  }
  const levels = [first]
  if (o.escalate !== undefined) {
    if (!Array.isArray(o.escalate)) throw configError(`${at}.escalate: expected an array`)
    o.escalate.forEach((e, i) => {
      const eo = obj(e, `${at}.escalate[${i}]`)
      known(eo, [direction, 'for', 'severity'], `${at}.escalate[${i}]`)
      levels.push({ severity: severity(eo.severity, `${at}.escalate[${i}].severity`), value: num(eo[direction], `${at}.escalate[${i}].${direction}`), forMs: eo.for === undefined ? first.forMs : duration(eo.for, `${at}.escalate[${i}].for`, 0) })
    })
  }
  const sign = direction === 'above' ? 1 : -1
  for (let i = 1; i < levels.length; i++) {
    if (sign * (levels[i]!.value - levels[i - 1]!.value) <= 0) throw configError(`${at}.escalate: each level must lie further ${direction} than the one before`)
    if (severityRank(levels[i]!.severity) <= severityRank(levels[i - 1]!.severity)) throw configError(`${at}.escalate: each level must be more severe than the one before`)
  }
  const clear = o[clearKey] === undefined ? first.value : num(o[clearKey], `${at}.${clearKey}`)
  if (sign * (clear - first.value) > 0) throw configError(`${at}.${clearKey}: the clear threshold must not lie past the raise threshold (hysteresis goes the other way)`)
  const clearForMs = o.clearFor === undefined ? 0 : duration(o.clearFor, `${at}.clearFor`, 0)
  return { name, sensorType, location, direction, levels, clear, clearForMs, enabled }
}

function parseBurst (json: unknown, at: string): Partial<BurstRule> {
  const o = obj(json, at)
  known(o, ['count', 'within', 'quiet', 'severity'], at)
  const r: Partial<BurstRule> = {}
  if (o.count !== undefined) {
    r.count = num(o.count, `${at}.count`)
    if (!Number.isInteger(r.count) || r.count < 1 || r.count > 1000) throw configError(`${at}.count: a whole number in 1..1000`)
  }
  if (o.within !== undefined) r.withinMs = duration(o.within, `${at}.within`, 1)
  if (o.quiet !== undefined) r.quietMs = duration(o.quiet, `${at}.quiet`, 0)
  if (o.severity !== undefined) r.severity = severity(o.severity, `${at}.severity`)
  return r
}

function parseVerdict (json: unknown, at: string): Partial<VerdictRule> {
  const o = obj(json, at)
  known(o, ['clearAfter', 'severity'], at)
  const r: Partial<VerdictRule> = {}
  if (o.clearAfter !== undefined) r.clearAfterMs = duration(o.clearAfter, `${at}.clearAfter`, 0)
  if (o.severity !== undefined) r.severity = severity(o.severity, `${at}.severity`)
  return r
}

function parseOffline (json: unknown, at: string): Partial<OfflineRule> {
  const o = obj(json, at)
  known(o, ['multiplier', 'min', 'severity'], at)
  const r: Partial<OfflineRule> = {}
  if (o.multiplier !== undefined) {
    r.multiplier = num(o.multiplier, `${at}.multiplier`)
    if (r.multiplier < 1) throw configError(`${at}.multiplier: at least 1`)
  }
  if (o.min !== undefined) r.minMs = duration(o.min, `${at}.min`, 1000)
  if (o.severity !== undefined) r.severity = severity(o.severity, `${at}.severity`)
  return r
}

function parseOverride (json: unknown, at: string): RuleOverride {
  const o = obj(json, at)
  known(o, ['sensorType', 'location', 'anomalyBurst', 'stuck', 'drift', 'offline'], at)
  const r: RuleOverride = {
    sensorType: o.sensorType === undefined || o.sensorType === null ? null : str(o.sensorType, `${at}.sensorType`),
    location: o.location === undefined || o.location === null ? null : str(o.location, `${at}.location`)
  }
  if (r.sensorType === null && r.location === null) throw configError(`${at}: give "sensorType", "location" or both`)
  if (o.anomalyBurst !== undefined) r.anomalyBurst = o.anomalyBurst === null ? null : parseBurst(o.anomalyBurst, `${at}.anomalyBurst`)
  if (o.stuck !== undefined) r.stuck = o.stuck === null ? null : parseVerdict(o.stuck, `${at}.stuck`)
  if (o.drift !== undefined) r.drift = o.drift === null ? null : parseVerdict(o.drift, `${at}.drift`)
  if (o.offline !== undefined) r.offline = o.offline === null ? null : parseOffline(o.offline, `${at}.offline`)
  return r
}

/** Higher is more severe: indeterminate 0 … critical 4. */
export function severityRank (s: AlarmSeverity): number {
  return alarmSeverities.length - 1 - alarmSeverities.indexOf(s)
}

const configError = (message: string): IotError => new IotError('IOT_ERR_CONFIG', message)

function obj (v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw configError(`${at}: expected an object`)
  return v as Record<string, unknown>
}

function known (o: Record<string, unknown>, keys: readonly string[], at: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw configError(`${at}: unknown field "${k}" (known: ${keys.join(', ')})`)
}

function str (v: unknown, at: string): string {
  if (typeof v !== 'string' || v === '') throw configError(`${at}: expected a non-empty string`)
  return v
}

function num (v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw configError(`${at}: expected a number`)
  return v
}

function bool (v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') throw configError(`${at}: expected true or false`)
  return v
}

function severity (v: unknown, at: string): AlarmSeverity {
  if (typeof v !== 'string' || !(alarmSeverities as readonly string[]).includes(v)) throw configError(`${at}: expected one of ${alarmSeverities.join(', ')}`)
  return v as AlarmSeverity
}

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Milliseconds, or text such as "500ms", "90s", "5m", "1h", "1d". */
export function duration (v: unknown, at: string, min: number): number {
  let ms: number
  if (typeof v === 'number') ms = v
  else if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(v)
    if (m === null) throw configError(`${at}: expected a duration such as "90s", "5m" or "1h", got "${v}"`)
    ms = Number(m[1]) * units[m[2]!]!
  } else throw configError(`${at}: expected a duration (milliseconds or text such as "5m")`)
  if (!Number.isFinite(ms) || ms < min) throw configError(`${at}: at least ${min} ms`)
  return ms
}
