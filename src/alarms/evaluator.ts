// The alarm evaluator: scored readings in, alarm changes out. Pure: no I/O, no clock of its own
// (the caller passes the wall time), no randomness, so the same readings in the same order give
// the same alarms (a recomputation from stored readings equals what the worker stored).
//
// Conditions on readings follow EVENT time: a pending period, a burst window, a quiet period are
// measured between reading timestamps of the same sensor, never on the wall clock. Offline follows
// the WALL clock: `checkOffline(now)` raises, the sensor's next reading clears.
import { type Reading, type ScoredReading } from '../domain/index.ts'
import { type Alarm, type AlarmEvent, type AlarmEventKind, type AlarmSeverity, type AlarmTransition, type AlarmType, type Originator } from './model.ts'
import {
  type AlarmRules, type BurstRule, type SensorRules, type ThresholdRule, type VerdictRule, rulesFor, severityRank
} from './rules.ts'

/** A condition's state to store with the batch that changed it (null: nothing pending any more, delete it). */
export interface ConditionChange {
  originator: Originator
  type: AlarmType
  state: Record<string, unknown> | null
  /** The bus partition of the originator (EvaluatorOptions.partitionOf; 0 without one): storage keeps states per partition. */
  partition: number
}

export interface EvaluatorOptions {
  /**
   * The partition of a sensor id: the worker's own partitioner (its condition states are stored,
   * restored and folded per partition). Without it every state is in partition 0 (a single worker).
   */
  partitionOf?: ((sensorId: string) => number) | undefined
}

/** A stored condition state, as `ConditionChange.state` wrote it. */
export interface StoredCondition {
  originator: Originator
  type: AlarmType
  state: Record<string, unknown>
}

/** Everything one batch (or one offline check) changed: write it in one transaction. */
export interface AlarmBatch {
  /** Each alarm raised or changed, once, as it stands after the batch (copies: later batches do not touch them). */
  alarms: Alarm[]
  events: AlarmEvent[]
  transitions: AlarmTransition[]
  conditions: ConditionChange[]
}

/** A sensor the worker knows from storage (restored on a claim, so a sensor that never reports again still goes offline). */
export interface KnownSensor {
  sensorId: string
  sensorType: string
  location: string
  /** Its offline deadline starts at the restore (false: seen too long ago to be watched). */
  watch: boolean
  /** Its usual interval between readings as last known (ms; 0 or absent: unknown). */
  intervalMs?: number
}

/** A device as the registry knows it (src/devices): wall times of its last reading and MQTT connection state. */
export interface DeviceLiveness {
  id: string
  location: string
  lastSeenAt: number | null
  connection: 'online' | 'offline' | null
  connectionAt: number | null
}

/** What an operator did to an alarm meanwhile (part of storage, read back periodically). */
export interface OperatorState {
  alarmId: string
  active: boolean
  acknowledged: boolean
}

export const OFFLINE: AlarmType = 'offline'
export const ANOMALY_BURST: AlarmType = 'anomaly_burst'
export const STUCK: AlarmType = 'stuck'
export const DRIFT: AlarmType = 'drift'
export const thresholdType = (name: string): AlarmType => `threshold:${name}`

/** `${kind}:${id}|${type}|${startMs}` (model.ts). */
export const alarmIdOf = (o: Originator, type: AlarmType, startMs: number): string => `${o.kind}:${o.id}|${type}|${startMs}`

/** Alarm types raised from readings (event time), as opposed to offline (wall time). */
export const isReadingAlarm = (type: AlarmType): boolean => type !== OFFLINE

interface ThresholdState {
  rule: ThresholdRule
  type: AlarmType
  /** Per level, event time since when the value is past it (NaN: it is not). */
  since: number[]
  /** Event time since when an active alarm's value is back past the clear threshold (NaN: it is not). */
  clearSince: number
  alarm: Alarm | null
  /** Cleared by an operator while the condition held: no new alarm until it has ended. */
  latched: boolean
  /** The state as last handed out for storage (null: none stored). */
  saved: string | null
  /** Changed in this batch. */
  dirty: boolean
}

interface BurstState {
  rule: BurstRule
  /** Event times of the recent anomalous readings inside the window, oldest first (at most `count`). */
  times: number[]
  /** The newest anomalous reading (NaN: none yet). */
  last: number
  alarm: Alarm | null
  latched: boolean
  saved: string | null
  dirty: boolean
}

interface FlagState {
  rule: VerdictRule
  type: AlarmType
  /** The newest flagged reading (NaN: none yet). */
  last: number
  alarm: Alarm | null
  latched: boolean
  saved: string | null
  dirty: boolean
}

interface DeviceState {
  id: string
  location: string
  alarm: Alarm | null
  /** Wall time of the newest reading of one of its sensors seen here. */
  lastReadingWall: number
  /** The shortest usual interval of its sensors, refreshed at each check (0: unknown). */
  intervalMs: number
  listed: boolean
}

class SensorState {
  readonly id: string
  readonly originator: Originator
  readonly partition: number
  type: string
  location: string
  rules!: SensorRules
  thresholds: ThresholdState[] = []
  burst: BurstState | null = null
  stuck: FlagState | null = null
  drift: FlagState | null = null
  /** Event time of the newest reading evaluated: an older one (out of order) moves no condition. */
  lastTs = -Infinity
  /** Wall time of the newest reading (offline deadline); -Infinity: not watched. */
  lastWall = -Infinity
  /** Usual interval between readings (event time, smoothed; 0: unknown). */
  intervalMs = 0
  offline: Alarm | null = null
  /** Its device (undefined: not resolved yet, null: none). */
  device: DeviceState | null | undefined = undefined
  dirty = false

  constructor (id: string, type: string, location: string, partition: number) {
    this.id = id
    this.partition = partition
    this.originator = { kind: 'sensor', id }
    this.type = type
    this.location = location
  }
}

const isSet = (x: number): boolean => x === x // eslint-disable-line no-self-compare -- NaN test without a call on the hot path

/**
 * Keeps, per sensor, the state of every condition (pending periods, burst windows, flagged runs)
 * and the active alarm of each (originator, type): at most one. A repeat updates the active alarm
 * (last time, details; a higher severity fires again); a clear ends it; the next raise is a new
 * alarm with a new id. Alarms cleared (or acknowledged) by an operator are taken in through
 * `applyOperatorState`.
 */
export class AlarmEvaluator {
  readonly rules: AlarmRules
  readonly #sensors = new Map<string, SensorState>()
  readonly #devices = new Map<string, DeviceState>()
  readonly #rulesCache = new Map<string, SensorRules>()
  /** Restored condition states not yet attached to a sensor, by `${sensorId}|${type}`. */
  #restoredConditions = new Map<string, Record<string, unknown>>()
  /** Restored active alarms not yet attached to a sensor, by `${sensorId}|${type}`. */
  #restoredAlarms = new Map<string, Alarm>()
  // What the batch being evaluated changed.
  #changed = new Set<Alarm>()
  #events: AlarmEvent[] = []
  #transitions: AlarmTransition[] = []
  #dirty: SensorState[] = []
  readonly #watchesOffline: boolean
  readonly #partitionOf: (sensorId: string) => number

  constructor (rules: AlarmRules, options: EvaluatorOptions = {}) {
    this.rules = rules
    this.#partitionOf = options.partitionOf ?? (() => 0)
    this.#watchesOffline = rules.offline !== null || rules.overrides.some(o => o.offline !== undefined && o.offline !== null)
  }

  /** Whether any sensor can go offline under these rules (else no check is needed). */
  get watchesOffline (): boolean {
    return this.#watchesOffline
  }

  /** Sensors with state here. */
  get sensors (): number {
    return this.#sensors.size
  }

  /** Forgets everything (partitions revoked; a restore follows). */
  clear (): void {
    this.#sensors.clear()
    this.#devices.clear()
    this.#restoredConditions.clear()
    this.#restoredAlarms.clear()
    this.#reset()
  }

  /**
   * Takes in what storage holds for the owned originators: the active alarms, the condition
   * states, and the known sensors (whose offline deadlines start now, at `wallNow`).
   */
  restore (input: { alarms: readonly Alarm[], conditions: readonly StoredCondition[], sensors: readonly KnownSensor[], wallNow: number }): void {
    for (const c of input.conditions) {
      if (c.originator.kind === 'sensor') this.#restoredConditions.set(`${c.originator.id}|${c.type}`, c.state)
    }
    for (const a of input.alarms) {
      if (!a.active) continue
      if (a.originator.kind === 'sensor') this.#restoredAlarms.set(`${a.originator.id}|${a.type}`, a)
      else if (a.originator.kind === 'device' && a.type === OFFLINE) {
        const d = this.#device(a.originator.id, a.location ?? '')
        d.alarm = a
        d.listed = false
      }
    }
    for (const s of input.sensors) {
      const st = this.#sensorFor(s.sensorId, s.sensorType, s.location, this.#sensors.get(s.sensorId))
      if (s.watch && st.lastWall === -Infinity) st.lastWall = input.wallNow
      if (st.intervalMs === 0 && s.intervalMs !== undefined && s.intervalMs > 0) st.intervalMs = s.intervalMs
    }
    // Alarms and states of sensors not listed: attached to states made from the alarm's own type and location.
    for (const [key, a] of [...this.#restoredAlarms]) {
      if (!this.#restoredAlarms.has(key)) continue
      if (a.sensorType !== null && a.location !== null) this.#sensorFor(a.originator.id, a.sensorType, a.location, this.#sensors.get(a.originator.id))
    }
    this.#reset()
  }

  /**
   * Readings already evaluated before a restart (the newest stored ones, oldest first per sensor):
   * they set each sensor's newest event time and usual interval, and move no condition.
   */
  observe (readings: readonly Reading[]): void {
    for (const r of readings) {
      const st = this.#sensorFor(r.sensorId, r.sensorType, r.location, this.#sensors.get(r.sensorId))
      if (r.ts > st.lastTs) {
        this.#interval(st, r.ts)
        st.lastTs = r.ts
      }
    }
  }

  /**
   * Evaluates readings in arrival order (the worker's order) at wall time `wallNow`; returns what
   * changed, or null when nothing did. `alsoAlive`: readings that move no condition (late ones,
   * kept aside) but show their sensors report: they end offline alarms too.
   */
  evaluate (scored: readonly ScoredReading[], wallNow: number, alsoAlive: readonly Reading[] = []): AlarmBatch | null {
    for (const r of alsoAlive) {
      const st = this.#sensors.get(r.sensorId)
      if (st !== undefined) this.#alive(st, r, wallNow)
    }
    for (let i = 0; i < scored.length; i++) {
      const s = scored[i]!
      const r = s.reading
      let st = this.#sensors.get(r.sensorId)
      if (st === undefined || st.type !== r.sensorType || st.location !== r.location) st = this.#sensorFor(r.sensorId, r.sensorType, r.location, st)
      this.#alive(st, r, wallNow)
      const ts = r.ts
      if (!(ts > st.lastTs)) continue
      this.#interval(st, ts)
      st.lastTs = ts
      const v = s.verdict
      const ths = st.thresholds
      for (let j = 0; j < ths.length; j++) this.#threshold(st, ths[j]!, r.value, ts)
      const b = st.burst
      if (b !== null && (v.anomaly || b.times.length > 0 || b.alarm !== null || b.latched)) this.#burst(st, b, v.anomaly, ts)
      const k = st.stuck
      if (k !== null && (v.stuck || k.alarm !== null || k.latched)) this.#flag(st, k, v.stuck, r.value, ts)
      const d = st.drift
      if (d !== null && (v.drift || d.alarm !== null || d.latched)) this.#flag(st, d, v.drift, r.value, ts)
    }
    return this.#take()
  }

  /** A reading arrived: alive on the wall clock, whatever its event time; its offline alarm (and its device's) ends. */
  #alive (st: SensorState, r: Reading, wallNow: number): void {
    st.lastWall = wallNow
    if (st.offline !== null) {
      this.#clear(st.offline, wallNow, 'system', { reason: 'reading', readingTs: r.ts })
      st.offline = null
    }
    if (this.#devices.size === 0) return
    if (st.device === undefined) st.device = this.#deviceOf(st.id)
    const d = st.device
    if (d === null) return
    d.lastReadingWall = wallNow
    if (d.alarm !== null) {
      this.#clear(d.alarm, wallNow, 'system', { reason: 'reading', sensorId: st.id, readingTs: r.ts })
      d.alarm = null
    }
  }

  /**
   * The wall-clock check: a sensor silent past max(multiplier × its usual interval, min) goes
   * offline; a listed device goes offline at once on its MQTT Last Will (an 'offline' connection
   * state newer than its last reading) or when silent past its deadline, and back online (the
   * alarm clears) once its registry entry shows a newer reading. A sensor of an offline device
   * raises no alarm of its own (the device's covers it). `devices` null: devices are not watched here.
   */
  checkOffline (wallNow: number, devices: readonly DeviceLiveness[] | null): AlarmBatch | null {
    if (!this.#watchesOffline) return this.#take()
    if (devices !== null) {
      let added = false
      for (const d of this.#devices.values()) d.listed = false
      for (const l of devices) {
        if (!this.#devices.has(l.id)) added = true
        const d = this.#device(l.id, l.location)
        d.location = l.location
        d.listed = true
        d.intervalMs = 0
      }
      if (added) for (const st of this.#sensors.values()) st.device = undefined
      // Usual interval of a device: its most frequent sensor's.
      for (const st of this.#sensors.values()) {
        if (st.device === undefined) st.device = this.#deviceOf(st.id)
        const d = st.device
        if (d !== null && st.intervalMs > 0 && (d.intervalMs === 0 || st.intervalMs < d.intervalMs)) d.intervalMs = st.intervalMs
      }
      for (const l of devices) {
        const d = this.#devices.get(l.id)!
        const rule = this.#rulesOf('', l.location).offline
        if (rule === null) continue
        const lastSeen = Math.max(l.lastSeenAt ?? -Infinity, d.lastReadingWall)
        const deadline = Math.max(rule.multiplier * d.intervalMs, rule.minMs)
        const lastWill = l.connection === 'offline' && l.connectionAt !== null && l.connectionAt >= lastSeen
        const silent = Number.isFinite(lastSeen) && wallNow - lastSeen > deadline
        if ((lastWill || silent) && d.alarm === null) {
          d.alarm = this.#raise({ kind: 'device', id: d.id }, OFFLINE, rule.severity, wallNow, null, d.location, {
            reason: lastWill ? 'last_will' : 'silent', lastSeenMs: Number.isFinite(lastSeen) ? lastSeen : null, deadlineMs: deadline
          })
        } else if (!lastWill && !silent && d.alarm !== null) {
          this.#clear(d.alarm, wallNow, 'system', { reason: 'online', lastSeenMs: lastSeen })
          d.alarm = null
        }
      }
    }
    for (const st of this.#sensors.values()) {
      const rule = st.rules.offline
      if (rule === null || st.offline !== null || st.lastWall === -Infinity) continue
      if (st.device !== undefined && st.device !== null && st.device.alarm !== null) continue
      const deadline = Math.max(rule.multiplier * st.intervalMs, rule.minMs)
      if (wallNow - st.lastWall > deadline) {
        st.offline = this.#raise(st.originator, OFFLINE, rule.severity, wallNow, st.type, st.location, {
          reason: 'silent', lastSeenMs: st.lastWall, deadlineMs: deadline, intervalMs: st.intervalMs
        })
      }
    }
    return this.#take()
  }

  /** Ids of the alarms active here (to read back what operators did to them). */
  activeAlarmIds (): string[] {
    const ids: string[] = []
    for (const st of this.#sensors.values()) {
      for (const t of st.thresholds) if (t.alarm !== null) ids.push(t.alarm.id)
      if (st.burst?.alarm != null) ids.push(st.burst.alarm.id)
      if (st.stuck?.alarm != null) ids.push(st.stuck.alarm.id)
      if (st.drift?.alarm != null) ids.push(st.drift.alarm.id)
      if (st.offline !== null) ids.push(st.offline.id)
    }
    for (const d of this.#devices.values()) if (d.alarm !== null) ids.push(d.alarm.id)
    for (const a of this.#restoredAlarms.values()) ids.push(a.id)
    return ids
  }

  /**
   * Takes in operators' actions: an acknowledged alarm stays acknowledged (until its severity
   * rises); an alarm an operator cleared is over here too, and its condition is latched: no new
   * alarm of that (originator, type) until the condition has ended (the value back past the clear
   * threshold, a quiet period, the verdict off for its clear time). The latches are stored with
   * the next batch.
   */
  applyOperatorState (states: readonly OperatorState[]): void {
    const byId = new Map(states.map(s => [s.alarmId, s]))
    const take = (a: Alarm): boolean => {
      const s = byId.get(a.id)
      if (s === undefined) return false
      a.acknowledged = s.acknowledged
      return !s.active
    }
    for (const st of this.#sensors.values()) {
      for (const t of st.thresholds) {
        if (t.alarm !== null && take(t.alarm)) { t.alarm = null; t.latched = true; t.clearSince = NaN; this.#touch(st, t) }
      }
      const b = st.burst
      if (b !== null && b.alarm !== null && take(b.alarm)) { b.alarm = null; b.latched = true; b.times = []; this.#touch(st, b) }
      for (const f of [st.stuck, st.drift]) {
        if (f !== null && f.alarm !== null && take(f.alarm)) { f.alarm = null; f.latched = true; this.#touch(st, f) }
      }
      // Offline: a reading ends it anyway; cleared by an operator, the next silence raises a new one.
      if (st.offline !== null && take(st.offline)) { st.offline = null; st.lastWall = -Infinity }
    }
    for (const d of this.#devices.values()) {
      if (d.alarm !== null && take(d.alarm)) d.alarm = null
    }
  }

  /**
   * Every condition state that is not empty, as storage should hold it now (call it with no batch
   * in flight): what the log of changes folds into.
   */
  snapshotConditions (): ConditionChange[] {
    const out: ConditionChange[] = []
    for (const st of this.#sensors.values()) {
      for (const c of [...st.thresholds, st.burst, st.stuck, st.drift]) {
        if (c !== null && c.saved !== null) out.push({ originator: st.originator, type: 'type' in c ? c.type : ANOMALY_BURST, state: JSON.parse(c.saved) as Record<string, unknown>, partition: st.partition })
      }
    }
    for (const [key, state] of this.#restoredConditions) {
      const i = key.lastIndexOf('|')
      const id = key.slice(0, i)
      out.push({ originator: { kind: 'sensor', id }, type: key.slice(i + 1), state, partition: this.#partitionOf(id) })
    }
    return out
  }

  // ---------------------------------------------------------------------------------------------

  #threshold (st: SensorState, t: ThresholdState, value: number, ts: number): void {
    const rule = t.rule
    const sign = rule.direction === 'above' ? 1 : -1
    const levels = rule.levels
    let best = -1
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!
      if (sign * (value - level.value) > 0) {
        if (!isSet(t.since[i]!)) { t.since[i] = ts; this.#touch(st, t) }
        if (ts - t.since[i]! >= level.forMs) best = i
      } else if (isSet(t.since[i]!)) {
        t.since[i] = NaN
        this.#touch(st, t)
      }
    }
    const a = t.alarm
    if (a === null) {
      if (t.latched) {
        // Cleared by an operator: a new alarm only once the condition has ended.
        if (sign * (value - rule.clear) < 0) { t.latched = false; this.#touch(st, t) }
        return
      }
      if (best < 0) return
      const level = levels[best]!
      t.alarm = this.#raise(st.originator, t.type, level.severity, ts, st.type, st.location, {
        value, threshold: level.value, direction: rule.direction, pendingSinceMs: t.since[best], clearThreshold: rule.clear, lastValue: value, peak: value
      })
      t.clearSince = NaN
      this.#touch(st, t)
      return
    }
    if (sign * (value - levels[0]!.value) > 0) {
      // Seen holding again: a repeat.
      a.lastMs = ts
      const det = a.details
      det.lastValue = value
      if (sign * (value - (det.peak as number)) > 0) det.peak = value
      this.#changed.add(a)
      if (best >= 0 && severityRank(levels[best]!.severity) > severityRank(a.severity)) {
        this.#escalate(a, levels[best]!.severity, ts, { value, threshold: levels[best]!.value })
      }
    }
    if (sign * (value - rule.clear) < 0) {
      if (!isSet(t.clearSince)) { t.clearSince = ts; this.#touch(st, t) }
      if (ts - t.clearSince >= rule.clearForMs) {
        this.#clear(a, ts, 'system', { value, clearThreshold: rule.clear })
        t.alarm = null
        t.clearSince = NaN
        this.#touch(st, t)
      }
    } else if (isSet(t.clearSince)) {
      t.clearSince = NaN
      this.#touch(st, t)
    }
  }

  #burst (st: SensorState, b: BurstState, anomalous: boolean, ts: number): void {
    const rule = b.rule
    const times = b.times
    // The window is (ts − within, ts].
    const from = ts - rule.withinMs
    let drop = 0
    while (drop < times.length && times[drop]! <= from) drop++
    if (drop > 0) { times.splice(0, drop); this.#touch(st, b) }
    if (anomalous) {
      times.push(ts)
      if (times.length > rule.count) times.shift()
      b.last = ts
      this.#touch(st, b)
      const a = b.alarm
      if (a !== null) {
        a.lastMs = ts
        a.details.anomalies = (a.details.anomalies as number) + 1
        this.#changed.add(a)
      } else if (!b.latched && times.length >= rule.count) {
        b.alarm = this.#raise(st.originator, ANOMALY_BURST, rule.severity, ts, st.type, st.location, {
          count: rule.count, withinMs: rule.withinMs, firstMs: times[0], anomalies: times.length
        })
      }
      return
    }
    if ((b.alarm !== null || b.latched) && ts - b.last >= rule.quietMs) {
      if (b.alarm !== null) this.#clear(b.alarm, ts, 'system', { quietMs: rule.quietMs, lastAnomalyMs: b.last })
      b.alarm = null
      b.latched = false
      this.#touch(st, b)
    }
  }

  #flag (st: SensorState, f: FlagState, flagged: boolean, value: number, ts: number): void {
    if (flagged) {
      f.last = ts
      this.#touch(st, f)
      const a = f.alarm
      if (a !== null) {
        a.lastMs = ts
        a.details.flagged = (a.details.flagged as number) + 1
        a.details.lastValue = value
        this.#changed.add(a)
      } else if (!f.latched) {
        f.alarm = this.#raise(st.originator, f.type, f.rule.severity, ts, st.type, st.location, { value, lastValue: value, flagged: 1 })
      }
      return
    }
    if (ts - f.last >= f.rule.clearAfterMs) {
      if (f.alarm !== null) this.#clear(f.alarm, ts, 'system', { clearAfterMs: f.rule.clearAfterMs, lastFlaggedMs: f.last, value })
      f.alarm = null
      f.latched = false
      this.#touch(st, f)
    }
  }

  #interval (st: SensorState, ts: number): void {
    if (st.lastTs === -Infinity) return
    const d = ts - st.lastTs
    if (st.intervalMs === 0) st.intervalMs = d
    // Smoothed, and a gap counts at most 4 usual intervals (one outage does not stretch the deadline).
    else st.intervalMs += (Math.min(d, 4 * st.intervalMs) - st.intervalMs) * 0.125
  }

  #raise (originator: Originator, type: AlarmType, severity: AlarmSeverity, at: number, sensorType: string | null, location: string | null, details: Record<string, unknown>): Alarm {
    const id = alarmIdOf(originator, type, at)
    const labels: Record<string, string> = { alertname: type, severity, originator_kind: originator.kind, originator: originator.id }
    if (originator.kind === 'sensor') labels.sensor_id = originator.id
    if (originator.kind === 'device') labels.device_id = originator.id
    if (sensorType !== null) labels.sensor_type = sensorType
    if (location !== null) labels.location = location
    const a: Alarm = {
      id,
      originator,
      type,
      severity,
      sensorType,
      location,
      active: true,
      acknowledged: false,
      startMs: at,
      lastMs: at,
      clearMs: null,
      ackMs: null,
      ackBy: null,
      ackComment: null,
      details,
      labels
    }
    this.#changed.add(a)
    this.#event(id, 'raised', at, { ...details })
    this.#transitions.push({ alarmId: id, status: 'firing', idempotencyKey: `${id}|firing`, atMs: at })
    return a
  }

  /** A higher severity: the alarm fires again (key `${id}|firing@${severity}`) and needs a new acknowledgement. */
  #escalate (a: Alarm, severity: AlarmSeverity, at: number, details: Record<string, unknown>): void {
    const from = a.severity
    a.severity = severity
    a.labels.severity = severity
    a.acknowledged = false
    this.#changed.add(a)
    this.#event(a.id, 'severity_changed', at, { ...details, from, to: severity })
    this.#transitions.push({ alarmId: a.id, status: 'firing', idempotencyKey: `${a.id}|firing@${severity}`, atMs: at })
  }

  #clear (a: Alarm, at: number, by: string, details: Record<string, unknown>): void {
    a.active = false
    a.clearMs = at
    this.#changed.add(a)
    this.#event(a.id, 'cleared', at, details, by)
    this.#transitions.push({ alarmId: a.id, status: 'resolved', idempotencyKey: `${a.id}|resolved`, atMs: at })
  }

  #event (alarmId: string, kind: AlarmEventKind, atMs: number, details: Record<string, unknown>, by = 'system'): void {
    this.#events.push({ alarmId, kind, atMs, by, comment: null, details })
  }

  /** A condition of the sensor changed: its state is stored with this batch. */
  #touch (st: SensorState, c: { dirty: boolean }): void {
    c.dirty = true
    if (st.dirty) return
    st.dirty = true
    this.#dirty.push(st)
  }

  #device (id: string, location: string): DeviceState {
    let d = this.#devices.get(id)
    if (d === undefined) {
      d = { id, location, alarm: null, lastReadingWall: -Infinity, intervalMs: 0, listed: true }
      this.#devices.set(id, d)
    }
    return d
  }

  /** The device of a sensor `<device id>.<measurement>` (device ids may hold dots: the longest known prefix). */
  #deviceOf (sensorId: string): DeviceState | null {
    for (let i = sensorId.lastIndexOf('.'); i > 0; i = sensorId.lastIndexOf('.', i - 1)) {
      const d = this.#devices.get(sensorId.slice(0, i))
      if (d !== undefined) return d
    }
    return null
  }

  #rulesOf (sensorType: string, location: string): SensorRules {
    const key = `${sensorType}\u0000${location}`
    let r = this.#rulesCache.get(key)
    if (r === undefined) {
      r = rulesFor(this.rules, sensorType, location)
      this.#rulesCache.set(key, r)
    }
    return r
  }

  /** The state of a sensor, made (or re-made after its type or location changed) with its rules and any restored state. */
  #sensorFor (id: string, type: string, location: string, prev: SensorState | undefined): SensorState {
    if (prev !== undefined && prev.type === type && prev.location === location) return prev
    const st = new SensorState(id, type, location, prev?.partition ?? this.#partitionOf(id))
    const rules = st.rules = this.#rulesOf(type, location)
    const restored = (t: AlarmType): { state: Record<string, unknown> | undefined, alarm: Alarm | null } => {
      const key = `${id}|${t}`
      const state = this.#restoredConditions.get(key)
      const alarm = this.#restoredAlarms.get(key) ?? null
      this.#restoredConditions.delete(key)
      this.#restoredAlarms.delete(key)
      return { state, alarm }
    }
    // What the previous state of this sensor had (type or location changed): conditions of the same type carry on.
    const carry = <T extends { alarm: Alarm | null }>(pick: (p: SensorState) => T | null | undefined): T | null => prev === undefined ? null : pick(prev) ?? null
    for (const rule of rules.thresholds) {
      const type = thresholdType(rule.name)
      const old = carry(p => p.thresholds.find(t => t.type === type))
      const { state, alarm } = restored(type)
      const since = rule.levels.map((_, i) => num((state?.since as unknown[] | undefined)?.[i]))
      st.thresholds.push(old !== null && old.rule.levels.length === rule.levels.length
        ? { ...old, rule }
        : { rule, type, since, clearSince: num(state?.clearSince), alarm: old?.alarm ?? alarm, latched: state?.latched === true, saved: savedOf(state), dirty: false })
    }
    if (rules.anomalyBurst !== null) {
      const old = carry(p => p.burst)
      const { state, alarm } = restored(ANOMALY_BURST)
      st.burst = old !== null
        ? { ...old, rule: rules.anomalyBurst }
        : { rule: rules.anomalyBurst, times: Array.isArray(state?.times) ? (state.times as unknown[]).filter((x): x is number => typeof x === 'number') : [], last: num(state?.last), alarm, latched: state?.latched === true, saved: savedOf(state), dirty: false }
    }
    const flag = (type: AlarmType, rule: VerdictRule | null, old: FlagState | null): FlagState | null => {
      if (rule === null) return null
      if (old !== null) return { ...old, rule }
      const { state, alarm } = restored(type)
      return { rule, type, last: num(state?.last), alarm, latched: state?.latched === true, saved: savedOf(state), dirty: false }
    }
    st.stuck = flag(STUCK, rules.stuck, carry(p => p.stuck))
    st.drift = flag(DRIFT, rules.drift, carry(p => p.drift))
    if (prev !== undefined) {
      st.lastTs = prev.lastTs
      st.lastWall = prev.lastWall
      st.intervalMs = prev.intervalMs
      st.offline = prev.offline
      st.device = prev.device
    } else {
      st.offline = restored(OFFLINE).alarm
    }
    this.#sensors.set(id, st)
    return st
  }

  /** Hands out what the batch changed and starts the next one. */
  #take (): AlarmBatch | null {
    const conditions: ConditionChange[] = []
    const save = (st: SensorState, c: { saved: string | null, dirty: boolean }, type: AlarmType, state: Record<string, unknown> | null): void => {
      c.dirty = false
      const json = state === null ? null : JSON.stringify(state)
      if (json === c.saved) return
      c.saved = json
      conditions.push({ originator: st.originator, type, state, partition: st.partition })
    }
    for (const st of this.#dirty) {
      if (!st.dirty) continue
      st.dirty = false
      for (const t of st.thresholds) {
        if (!t.dirty) continue
        const empty = !t.latched && !isSet(t.clearSince) && t.since.every(x => !isSet(x))
        save(st, t, t.type, empty ? null : { since: t.since.map(orNull), clearSince: orNull(t.clearSince), latched: t.latched })
      }
      const b = st.burst
      if (b !== null && b.dirty) {
        const empty = b.times.length === 0 && b.alarm === null && !b.latched
        save(st, b, ANOMALY_BURST, empty ? null : { times: [...b.times], last: orNull(b.last), latched: b.latched })
      }
      for (const f of [st.stuck, st.drift]) {
        if (f === null || !f.dirty) continue
        const empty = f.alarm === null && !f.latched
        save(st, f, f.type, empty ? null : { last: orNull(f.last), latched: f.latched })
      }
    }
    if (this.#changed.size === 0 && this.#events.length === 0 && conditions.length === 0) {
      this.#dirty = []
      return null
    }
    const out: AlarmBatch = {
      alarms: [...this.#changed].map(a => ({ ...a, originator: { ...a.originator }, details: { ...a.details }, labels: { ...a.labels } })),
      events: this.#events,
      transitions: this.#transitions,
      conditions
    }
    this.#reset()
    return out
  }

  #reset (): void {
    this.#changed = new Set()
    this.#events = []
    this.#transitions = []
    for (const st of this.#dirty) {
      st.dirty = false
      for (const t of st.thresholds) t.dirty = false
      if (st.burst !== null) st.burst.dirty = false
      if (st.stuck !== null) st.stuck.dirty = false
      if (st.drift !== null) st.drift.dirty = false
    }
    this.#dirty = []
  }
}

const orNull = (x: number): number | null => isSet(x) ? x : null
const num = (x: unknown): number => typeof x === 'number' ? x : NaN
/** A restored state counts as stored (an empty one is deleted with the next change); its text may differ from ours, which only rewrites it. */
const savedOf = (state: Record<string, unknown> | undefined): string | null => state === undefined ? null : JSON.stringify(state)
