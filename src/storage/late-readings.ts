// late_readings: readings that arrived after their window was final, kept with how late they were.
import { type Reading } from '../domain/index.ts'
import { boolArray, msToTimestamp, numberArray, textArray, timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'
import { type QueryFilter, whereFilter } from './filter-sql.ts'

/** A reading that arrived after its window was final. */
export interface LateReading {
  reading: Reading
  windowStart: number
  watermark: number
  latenessMs: number
}

/** Keeps late readings (a key already kept is skipped). Returns rows inserted. */
export async function insertLateReadings (tx: Queryable, late: readonly LateReading[]): Promise<number> {
  if (late.length === 0) return 0
  const r = late.map(x => x.reading)
  const res = await tx.query<{ n: number }>(`
    WITH ins AS (
      INSERT INTO late_readings (sensor_id, sensor_type, location, value, timestamp, unit, anomaly, anomaly_type, seq,
        window_start, watermark, lateness_ms)
      SELECT s, t, l, v, ${msToTimestamp('ts')}, u, a, ak, sq, ${msToTimestamp('ws')}, ${msToTimestamp('wm')}, round(lt)
      FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::bool[], $8::text[],
        $9::int8[], $10::float8[], $11::float8[], $12::float8[]) AS x(s, t, l, v, ts, u, a, ak, sq, ws, wm, lt)
      ON CONFLICT DO NOTHING RETURNING 1)
    SELECT count(*)::int AS n FROM ins`,
  [textArray(r.map(x => x.sensorId)), textArray(r.map(x => x.sensorType)), textArray(r.map(x => x.location)),
    numberArray(r.map(x => x.value)), numberArray(r.map(x => x.ts)), textArray(r.map(x => x.unit)),
    boolArray(r.map(x => x.anomaly)), textArray(r.map(x => x.anomalyKind)), numberArray(r.map(x => x.seq)),
    numberArray(late.map(x => x.windowStart)), numberArray(late.map(x => x.watermark)), numberArray(late.map(x => x.latenessMs))])
  return res[0]?.n ?? 0
}

export interface LateReadingRow {
  sensorId: string
  location: string
  sensorType: string
  value: number
  timestamp: number
  windowStart: number
  latenessMs: number
}

export async function recentLateReadings (db: Queryable, f: QueryFilter): Promise<LateReadingRow[]> {
  const w = whereFilter(f, 'timestamp')
  return await db.query<LateReadingRow>(`SELECT sensor_id AS "sensorId", location, sensor_type AS "sensorType", value,
    ${timestampToMs('timestamp')} AS timestamp, ${timestampToMs('window_start')} AS "windowStart", lateness_ms AS "latenessMs"
    FROM late_readings ${w.sql} ORDER BY received_at DESC, late_readings.timestamp DESC LIMIT $${w.params.length}`, w.params)
}
