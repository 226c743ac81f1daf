// The alarm model: what an operator sees and acts on (ThingsBoard's lifecycle, Alertmanager's
// labels). Pure data; the core (src/alarms) computes transitions, storage keeps them, the notifier
// (src/notify) delivers them.

/** CRITICAL > MAJOR > MINOR > WARNING > INDETERMINATE (ThingsBoard's order). */
export const alarmSeverities = ['critical', 'major', 'minor', 'warning', 'indeterminate'] as const
export type AlarmSeverity = (typeof alarmSeverities)[number]

/** Active or cleared, each unacknowledged or acknowledged. */
export const alarmStatuses = ['active_unack', 'active_ack', 'cleared_unack', 'cleared_ack'] as const
export type AlarmStatus = (typeof alarmStatuses)[number]

/** What raised an alarm: one sensor, one device (several sensors), or a whole location. */
export type OriginatorKind = 'sensor' | 'device' | 'location'

export interface Originator {
  kind: OriginatorKind
  /** The sensor id, device id or location name. */
  id: string
}

/**
 * The type of an alarm: `threshold:<rule name>` (e.g. `threshold:co2_high`), `anomaly_burst`,
 * `stuck`, `drift`, `offline`. At most one active alarm per (originator, type).
 */
export type AlarmType = string

/** Labels of an alarm, as Alertmanager carries them (alertname, severity, sensor_id, location, ...). */
export type AlarmLabels = Record<string, string>

export interface Alarm {
  /** Stable across restarts and recomputations: `${kind}:${id}|${type}|${startMs}`. */
  id: string
  originator: Originator
  type: AlarmType
  severity: AlarmSeverity
  /** Sensor type and location of the originator (null when it has none, e.g. a device of mixed types). */
  sensorType: string | null
  location: string | null
  active: boolean
  acknowledged: boolean
  /** When the condition began to hold (after its pending period: the time it fired), epoch ms. Event time for reading conditions, wall time for offline. */
  startMs: number
  /** The last time the condition was seen holding (updated by repeats). */
  lastMs: number
  /** When it cleared (null while active). */
  clearMs: number | null
  ackMs: number | null
  ackBy: string | null
  ackComment: string | null
  /** The values that raised it and the thresholds (for people and the payload's annotations). */
  details: Record<string, unknown>
  labels: AlarmLabels
}

/** One entry of an alarm's history. */
export type AlarmEventKind = 'raised' | 'updated' | 'severity_changed' | 'cleared' | 'acknowledged' | 'cleared_by_operator'

export interface AlarmEvent {
  alarmId: string
  kind: AlarmEventKind
  atMs: number
  /** Who did it: `system` for conditions, the token's role or a name for operators. */
  by: string
  comment: string | null
  details: Record<string, unknown>
}

/**
 * A transition to notify: `firing` when an alarm is raised (or its severity rises), `resolved` when
 * it clears. The idempotency key is deterministic (recomputing the alarms gives the same keys), so a
 * receiver can drop a repeat after a crash: `${alarmId}|${status}` (`|repeat-${n}` for repeats;
 * `${alarmId}|firing@${severity}` when an active alarm's severity rises: it fires again).
 */
export interface AlarmTransition {
  alarmId: string
  status: 'firing' | 'resolved'
  idempotencyKey: string
  atMs: number
}
