// devices: the nodes that send readings themselves, each with the SHA-256 digest of its token
// (migration 0008). Tokens never reach this file: callers hash them (src/devices). Times are epoch
// ms of the caller's wall clock, so what a test or an operator passes is what is stored.
import { IotError } from '../domain/index.ts'
import { msToTimestamp, numberArray, textArray, timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'

/** MQTT session state as the broker last reported it (Last Will: 'offline'). */
export type DeviceConnection = 'online' | 'offline'

export interface StoredDevice {
  id: string
  name: string
  location: string
  createdAt: number
  /** When the current token was issued (at add, then at each rotation). */
  tokenIssuedAt: number
  revokedAt: number | null
  /** Wall time of the newest reading received from it (null: never heard). */
  lastSeenAt: number | null
  connection: DeviceConnection | null
  connectionAt: number | null
}

export interface NewDevice {
  id: string
  name: string
  location: string
  /** SHA-256 of the token (32 bytes). */
  tokenHash: Buffer
  /** Epoch ms: created_at and token_issued_at. */
  at: number
}

const columns = `device_id AS id, name, location, ${timestampToMs('created_at')} AS "createdAt",
  ${timestampToMs('token_issued_at')} AS "tokenIssuedAt", ${timestampToMs('revoked_at')} AS "revokedAt",
  ${timestampToMs('last_seen_at')} AS "lastSeenAt", connection, ${timestampToMs('connection_at')} AS "connectionAt"`

/** The digest as a parameter: hex text decoded in SQL reads the same on postgres.js and PGlite. */
const hex = (hash: Buffer): string => {
  if (hash.length !== 32) throw new IotError('IOT_ERR_VALIDATION', `a token hash is 32 bytes (SHA-256), got ${hash.length}`)
  return hash.toString('hex')
}

const notFound = (id: string): IotError => new IotError('IOT_ERR_DEVICE_NOT_FOUND', `no device "${id}"`)

/** Adds a device; IOT_ERR_DEVICE_EXISTS when its id is taken (also by a revoked device: ids are never reused). */
export async function insertDevice (db: Queryable, d: NewDevice): Promise<StoredDevice> {
  const [row] = await db.query<StoredDevice>(`
    INSERT INTO devices (device_id, name, location, token_hash, created_at, token_issued_at)
    VALUES ($1, $2, $3, decode($4, 'hex'), ${msToTimestamp('$5::float8')}, ${msToTimestamp('$5::float8')})
    ON CONFLICT (device_id) DO NOTHING
    RETURNING ${columns}`, [d.id, d.name, d.location, hex(d.tokenHash), d.at])
  if (row === undefined) throw new IotError('IOT_ERR_DEVICE_EXISTS', `a device "${d.id}" exists already (revoked devices keep their ids)`)
  return row
}

/** Every device, revoked ones too, by id. */
export async function listDevices (db: Queryable): Promise<StoredDevice[]> {
  return await db.query<StoredDevice>(`SELECT ${columns} FROM devices ORDER BY device_id`)
}

export async function findDevice (db: Queryable, id: string): Promise<StoredDevice | null> {
  const [row] = await db.query<StoredDevice>(`SELECT ${columns} FROM devices WHERE device_id = $1`, [id])
  return row ?? null
}

/**
 * The device a token digest belongs to, revoked or not (callers refuse revoked ones and can say
 * why); one probe of the unique index on token_hash.
 */
export async function findDeviceByTokenHash (db: Queryable, tokenHash: Buffer): Promise<StoredDevice | null> {
  const [row] = await db.query<StoredDevice>(`SELECT ${columns} FROM devices WHERE token_hash = decode($1, 'hex')`, [hex(tokenHash)])
  return row ?? null
}

/**
 * Replaces a device's token digest: the old token stops matching with this statement's commit.
 * IOT_ERR_DEVICE_NOT_FOUND for an unknown id, IOT_ERR_DEVICE_REVOKED for a revoked device.
 */
export async function replaceDeviceToken (db: Queryable, id: string, tokenHash: Buffer, at: number): Promise<StoredDevice> {
  const [row] = await db.query<StoredDevice>(`
    UPDATE devices SET token_hash = decode($2, 'hex'), token_issued_at = ${msToTimestamp('$3::float8')}
    WHERE device_id = $1 AND revoked_at IS NULL
    RETURNING ${columns}`, [id, hex(tokenHash), at])
  if (row !== undefined) return row
  const existing = await findDevice(db, id)
  if (existing === null) throw notFound(id)
  throw new IotError('IOT_ERR_DEVICE_REVOKED', `device "${id}" was revoked at ${new Date(existing.revokedAt ?? 0).toISOString()}; a revoked device gets no new token`)
}

/**
 * Revokes a device: its token is refused from now on. Revoking a revoked device changes nothing
 * (the first revocation time stays); `changed` says which it was.
 */
export async function revokeDevice (db: Queryable, id: string, at: number): Promise<{ device: StoredDevice, changed: boolean }> {
  const [row] = await db.query<StoredDevice>(`
    UPDATE devices SET revoked_at = ${msToTimestamp('$2::float8')} WHERE device_id = $1 AND revoked_at IS NULL
    RETURNING ${columns}`, [id, at])
  if (row !== undefined) return { device: row, changed: true }
  const existing = await findDevice(db, id)
  if (existing === null) throw notFound(id)
  return { device: existing, changed: false }
}

/**
 * Records when devices were last heard, many in one statement (the ingest calls it every few
 * seconds with what it heard meanwhile, never per reading). A time never moves back; unknown ids
 * are ignored. Returns the rows changed.
 */
export async function recordDevicesSeen (db: Queryable, seen: ReadonlyMap<string, number>): Promise<number> {
  if (seen.size === 0) return 0
  // Sorted: concurrent flushes of overlapping devices tend to lock rows in the same order.
  const entries = [...seen].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  const rows = await db.query(`
    UPDATE devices AS d SET last_seen_at = ${msToTimestamp('x.at')}
    FROM unnest($1::text[], $2::float8[]) AS x(id, at)
    WHERE d.device_id = x.id AND (d.last_seen_at IS NULL OR d.last_seen_at < ${msToTimestamp('x.at')})
    RETURNING 1`, [textArray(entries.map(([id]) => id)), numberArray(entries.map(([, at]) => at))])
  return rows.length
}

/**
 * Sets a device's connection state as of `at` (MQTT: 'online' at CONNECT, 'offline' from its Last
 * Will or a clean disconnect). A report older than the stored one is ignored (messages can arrive
 * out of order); returns whether it was applied (false too for an unknown id).
 */
export async function setDeviceConnection (db: Queryable, id: string, connection: DeviceConnection, at: number): Promise<boolean> {
  const rows = await db.query(`
    UPDATE devices SET connection = $2, connection_at = ${msToTimestamp('$3::float8')}
    WHERE device_id = $1 AND (connection_at IS NULL OR connection_at <= ${msToTimestamp('$3::float8')})
    RETURNING 1`, [id, connection, at])
  return rows.length > 0
}

/**
 * Every device whose connection state is `online` becomes `offline` at `at`: called as the
 * built-in broker starts, which has no connection yet. States left `online` belong to connections
 * a crash or stop cut without their Last Will; a device that reconnects says `online` again.
 * Returns how many changed.
 */
export async function markOnlineDevicesOffline (db: Queryable, at: number): Promise<number> {
  const rows = await db.query(`
    UPDATE devices SET connection = 'offline', connection_at = ${msToTimestamp('$1::float8')}
    WHERE connection = 'online' AND connection_at <= ${msToTimestamp('$1::float8')} RETURNING 1`, [at])
  return rows.length
}

/** A measurement a device reports, as the stored readings know it (the `sensors` table). */
export interface DeviceSensor {
  deviceId: string
  sensorType: string
  unit: string
  /** The learnt cadence (median interval between its readings, ms), null until the worker knows it. */
  cadenceMs: number | null
}

/**
 * The sensors of every device that has stored readings, by device id, type and unit: the rows of
 * `sensors` whose id is `<device id>.<sensor type>`, as the ingest names a device's sensors (a type
 * has no dot, so each sensor belongs to one device whatever dots device ids hold). One pass over
 * `sensors`, hashed on the device part of the id.
 */
export async function deviceSensors (db: Queryable): Promise<DeviceSensor[]> {
  const rows = await db.query<DeviceSensor>(`
    SELECT d.device_id AS "deviceId", s.sensor_type AS "sensorType", s.unit,
      (array_agg(s.cadence_ms ORDER BY s.last_seen DESC) FILTER (WHERE s.cadence_ms IS NOT NULL))[1] AS "cadenceMs"
    FROM sensors s
    JOIN devices d ON d.device_id = left(s.sensor_id, length(s.sensor_id) - length(s.sensor_type) - 1)
    WHERE s.sensor_id = d.device_id || '.' || s.sensor_type
    GROUP BY 1, 2, 3`)
  // Sorted here, by code point: the same order on every server whatever its collation.
  const cmp = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0
  return rows.sort((a, b) => cmp(a.deviceId, b.deviceId) || cmp(a.sensorType, b.sensorType) || cmp(a.unit, b.unit))
}
