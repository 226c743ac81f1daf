// Alarms written straight into the tables (as the worker's alarm core writes them), for the tests of
// what operators and the notifier do with them: the row, its `raised` history entry, and its `firing`
// outbox row.
import type { Alarm } from '../../src/alarms/index.ts'
import { type Queryable } from '../../src/storage/index.ts'

export const T0 = Date.UTC(2026, 0, 15, 12, 0, 0)

export function testAlarm (over: Partial<Alarm> & { sensor?: string } = {}): Alarm {
  const { sensor = 'co2-lab-01', ...rest } = over
  const startMs = rest.startMs ?? T0
  const type = rest.type ?? 'threshold:co2_high'
  return {
    id: `sensor:${sensor}|${type}|${startMs}`,
    originator: { kind: 'sensor', id: sensor },
    type,
    severity: 'major',
    sensorType: 'co2',
    location: 'lab',
    active: true,
    acknowledged: false,
    startMs,
    lastMs: startMs,
    clearMs: null,
    ackMs: null,
    ackBy: null,
    ackComment: null,
    details: { value: 1450, threshold: 1200 },
    labels: {},
    ...rest
  }
}

/** Inserts the alarm, a `raised` event, and (unless `outbox` is false) its `${id}|firing` outbox row. */
export async function insertAlarm (db: Queryable, a: Alarm, opts: { outbox?: boolean } = {}): Promise<Alarm> {
  await db.query(`
    INSERT INTO alarms (alarm_id, originator_kind, originator_id, alarm_type, severity, sensor_type, location, active, acknowledged,
      start_ms, last_ms, clear_ms, ack_ms, ack_by, ack_comment, details, labels)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::text::jsonb, $17::text::jsonb)`,
  [a.id, a.originator.kind, a.originator.id, a.type, a.severity, a.sensorType, a.location, a.active, a.acknowledged,
    a.startMs, a.lastMs, a.clearMs, a.ackMs, a.ackBy, a.ackComment, JSON.stringify(a.details), JSON.stringify(a.labels)])
  await db.query("INSERT INTO alarm_events (alarm_id, kind, at_ms, details) VALUES ($1, 'raised', $2, $3::text::jsonb)", [a.id, a.startMs, JSON.stringify(a.details)])
  if (opts.outbox !== false) {
    await db.query("INSERT INTO alarm_outbox (idempotency_key, alarm_id, status, at_ms) VALUES ($1, $2, 'firing', $3)", [`${a.id}|firing`, a.id, a.startMs])
  }
  return a
}
