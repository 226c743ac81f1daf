// sensors: the dimension of the readings. One row per sensor with its type, location and unit, and
// the first and newest event time seen; a new row (a new key) only when a sensor's type, location
// or unit changes, so every stored reading keeps where and what it was.
import { type Reading, type ScoredReading } from '../domain/index.ts'
import { msToTimestamp, numberArray, textArray } from './arrays.ts'
import { type Queryable } from './db.ts'
import { keyConds } from './filter-sql.ts'

/** The identity of a sensor row: id, type, location and unit. */
export const seriesOf = (r: Reading): string => `${r.sensorId}\u0000${r.sensorType}\u0000${r.location}\u0000${r.unit}`

/**
 * Records the sensors of a batch with the event time span it covered, and their learnt cadence
 * (ms by sensor id, where known), and returns their keys by `seriesOf` (a repeated delivery changes
 * nothing).
 */
export async function upsertSensors (tx: Queryable, scored: readonly ScoredReading[], cadence?: ReadonlyMap<string, number>): Promise<Map<string, number>> {
  if (scored.length === 0) return new Map()
  const seen = new Map<string, { r: Reading, first: number, last: number }>()
  for (const { reading: r } of scored) {
    const key = seriesOf(r)
    const s = seen.get(key)
    if (s === undefined) seen.set(key, { r, first: r.ts, last: r.ts })
    else {
      if (r.ts < s.first) s.first = r.ts
      if (r.ts > s.last) s.last = r.ts
    }
  }
  // In a fixed order: concurrent workers lock rows in the same order.
  const rows = [...seen].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([, x]) => x)
  const stored = await tx.query<{ k: number, id: string, t: string, l: string, u: string }>(`
    INSERT INTO sensors AS s (sensor_id, sensor_type, location, unit, first_seen, last_seen, cadence_ms)
    SELECT id, t, l, u, ${msToTimestamp('f')}, ${msToTimestamp('la')}, c
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[]) AS x(id, t, l, u, f, la, c)
    ON CONFLICT (sensor_id, sensor_type, location, unit) DO UPDATE SET
      first_seen = least(s.first_seen, excluded.first_seen),
      last_seen = greatest(s.last_seen, excluded.last_seen),
      cadence_ms = coalesce(excluded.cadence_ms, s.cadence_ms)
    RETURNING sensor_key AS k, sensor_id AS id, sensor_type AS t, location AS l, unit AS u`,
  [textArray(rows.map(x => x.r.sensorId)), textArray(rows.map(x => x.r.sensorType)), textArray(rows.map(x => x.r.location)),
    textArray(rows.map(x => x.r.unit)), numberArray(rows.map(x => x.first)), numberArray(rows.map(x => x.last)),
    numberArray(rows.map(x => cadence?.get(x.r.sensorId) ?? null))])
  return new Map(stored.map(s => [`${s.id}\u0000${s.t}\u0000${s.l}\u0000${s.u}`, s.k]))
}

/**
 * Keys of names in a dimension table that assigns one on first sight (anomaly_kinds,
 * model_versions): inserts the missing names and returns every name's key.
 */
export async function nameKeys (tx: Queryable, table: 'anomaly_kinds' | 'model_versions', names: ReadonlySet<string>): Promise<Map<string, number>> {
  if (names.size === 0) return new Map()
  const [key, name] = table === 'anomaly_kinds' ? ['kind_key', 'name'] : ['model_key', 'version']
  const list = textArray([...names].sort())
  const select = `SELECT ${key} AS k, ${name} AS n FROM ${table} WHERE ${name} = ANY($1::text[])`
  // The insert's own rows come back from RETURNING, the others from the select (same snapshot).
  let rows = await tx.query<{ k: number, n: string }>(`
    WITH ins AS (INSERT INTO ${table} (${name}) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING ${key} AS k, ${name} AS n)
    SELECT k, n FROM ins UNION ALL ${select}`, [list])
  // A name another transaction inserted and committed meanwhile is visible to a new statement.
  if (rows.length < names.size) rows = await tx.query(select, [list])
  return new Map(rows.map(r => [r.n, r.k]))
}

/** The keys of the sensor rows of a location and/or type (every place and type a sensor has had). */
export async function sensorKeys (db: Queryable, f: { location?: string | undefined, sensorType?: string | undefined }): Promise<number[]> {
  const params: unknown[] = []
  const conds = keyConds(f, params)
  const rows = await db.query<{ k: number }>(`SELECT sensor_key AS k FROM sensors ${conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : ''} ORDER BY 1`, params)
  return rows.map(r => r.k)
}
