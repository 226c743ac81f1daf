// sensors: one row per sensor seen, with its first and newest event time.
import { type Reading, type ScoredReading } from '../domain/index.ts'
import { msToTimestamp, numberArray, textArray } from './arrays.ts'
import { type Queryable } from './db.ts'

/**
 * Records the sensors of a batch with the event time span it covered (one row per sensor; a
 * repeated delivery changes nothing). Location, type and unit follow the sensor's newest reading.
 */
export async function upsertSensors (tx: Queryable, scored: readonly ScoredReading[]): Promise<void> {
  if (scored.length === 0) return
  const seen = new Map<string, { r: Reading, first: number, last: number }>()
  for (const { reading: r } of scored) {
    const s = seen.get(r.sensorId)
    if (s === undefined) seen.set(r.sensorId, { r, first: r.ts, last: r.ts })
    else {
      if (r.ts < s.first) s.first = r.ts
      if (r.ts >= s.last) { s.last = r.ts; s.r = r }
    }
  }
  // In sensor order: concurrent workers lock rows in the same order.
  const rows = [...seen.values()].sort((a, b) => a.r.sensorId < b.r.sensorId ? -1 : a.r.sensorId > b.r.sensorId ? 1 : 0)
  await tx.query(`
    INSERT INTO sensors AS s (sensor_id, sensor_type, location, unit, first_seen, last_seen)
    SELECT id, t, l, u, ${msToTimestamp('f')}, ${msToTimestamp('la')}
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[]) AS x(id, t, l, u, f, la)
    ON CONFLICT (sensor_id) DO UPDATE SET
      first_seen = least(s.first_seen, excluded.first_seen),
      last_seen = greatest(s.last_seen, excluded.last_seen),
      sensor_type = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.sensor_type ELSE s.sensor_type END,
      location = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.location ELSE s.location END,
      unit = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.unit ELSE s.unit END`,
  [textArray(rows.map(x => x.r.sensorId)), textArray(rows.map(x => x.r.sensorType)), textArray(rows.map(x => x.r.location)),
    textArray(rows.map(x => x.r.unit)), numberArray(rows.map(x => x.first)), numberArray(rows.map(x => x.last))])
}
