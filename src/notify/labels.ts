// What an alarm looks like to a receiver: Alertmanager's labels (identity: alertname, severity, the
// originator, location, sensor type, plus the core's own labels) and annotations (what people read,
// and our keys), and Alertmanager's fingerprint of the labels.
import type { Alarm } from '../alarms/index.ts'
import { alarmStatusOf } from '../storage/index.ts'

export type Labels = Record<string, string>

/** Label names as the originator kinds put them. */
const ORIGINATOR_LABEL: Record<Alarm['originator']['kind'], string> = { sensor: 'sensor_id', device: 'device_id', location: 'location' }

/**
 * The labels of an alarm's notifications: alertname (the alarm type), the originator (`sensor_id`,
 * `device_id` or `location`), `location` and `sensor_type` when known, then the labels the alarm
 * core gave it; `severity` is always the alarm's current one.
 */
export function notificationLabels (a: Alarm): Labels {
  const l: Labels = { alertname: a.type }
  l[ORIGINATOR_LABEL[a.originator.kind]] = a.originator.id
  if (a.location !== null) l.location = a.location
  if (a.sensorType !== null) l.sensor_type = a.sensorType
  for (const [k, v] of Object.entries(a.labels)) l[k] = String(v)
  l.severity = a.severity
  return l
}

/** A detail value as text for people. */
function detailText (v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000)
  if (typeof v === 'string') return v
  return JSON.stringify(v)
}

/**
 * The annotations: `summary` and `description` (the core's own when its details carry them, else made
 * from the type, the originator and the details), the alarm's id and ThingsBoard status, and the
 * idempotency key of this transition.
 */
export function notificationAnnotations (a: Alarm, idempotencyKey: string): Labels {
  const d = a.details
  const where = a.originator.kind === 'location' ? `location ${a.originator.id}` : `${a.originator.kind} ${a.originator.id}${a.location === null ? '' : ` (${a.location})`}`
  const summary = typeof d.summary === 'string' ? d.summary : `${a.type} on ${where}`
  const description = typeof d.description === 'string'
    ? d.description
    : Object.entries(d).filter(([k]) => k !== 'summary').map(([k, v]) => `${k}: ${detailText(v)}`).join(', ')
  const out: Labels = { summary, alarm_id: a.id, alarm_status: alarmStatusOf(a), idempotency_key: idempotencyKey }
  if (description !== '') out.description = description
  if (a.ackBy !== null) out.acknowledged_by = a.ackBy
  if (a.ackComment !== null && a.ackComment !== '') out.ack_comment = a.ackComment
  return out
}

// FNV-1a, 64 bits, as prometheus/common's labelSetToFingerprint: over the label names in byte order,
// each name and value followed by the separator byte 255.
const FNV_OFFSET = 14695981039346656037n
const FNV_PRIME = 1099511628211n
const MASK = (1n << 64n) - 1n
const utf8 = new TextEncoder()

function fnvAdd (h: bigint, bytes: Uint8Array): bigint {
  for (const b of bytes) h = ((h ^ BigInt(b)) * FNV_PRIME) & MASK
  return h
}

/** Alertmanager's fingerprint of a label set: 16 hex digits (`%016x` of the FNV-1a hash). */
export function fingerprint (labels: Labels): string {
  const names = Object.keys(labels).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
  let h = FNV_OFFSET
  const sep = Uint8Array.of(255)
  for (const n of names) {
    h = fnvAdd(h, utf8.encode(n))
    h = fnvAdd(h, sep)
    h = fnvAdd(h, utf8.encode(labels[n]!))
    h = fnvAdd(h, sep)
  }
  return h.toString(16).padStart(16, '0')
}
