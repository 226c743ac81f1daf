// The simulated devices in iot-monitor's device registry, with tokens to connect with: through the
// admin API of a running iot-monitor, or directly in the database.
import { addDevice, listDevices, rotateDeviceToken } from '../devices/index.ts'
import { IotError } from '../domain/index.ts'
import { type Queryable, migrate, openDb } from '../storage/index.ts'
import { adminApiDevices } from './admin-api.ts'
import { type SimulatedDevice } from './fleet-devices.ts'
import { type FleetMember } from './mqtt-fleet.ts'

/** A registered device, as far as provisioning needs to know it. */
export interface KnownDevice {
  id: string
  location: string
  revoked: boolean
}

/** Where devices are registered: the admin API or the database. */
export interface DeviceAdmin {
  /** For messages: "the admin API at …", "the database". */
  readonly where: string
  list(): Promise<KnownDevice[]>
  /** Adds the device; resolves with its new token. */
  add(device: SimulatedDevice): Promise<string>
  /** Issues a new token (the old one stops working). */
  rotate(id: string): Promise<string>
}

/**
 * Where `simulate` registers its devices:
 * - `api`: the admin API of a running iot-monitor (`--api URL`, `--admin-token T`); the way while
 *   it runs on the embedded database, whose folder it holds.
 * - `database`: the database itself, as `iot-monitor devices` does (--database-url / DATABASE_URL,
 *   else the embedded one in --data-dir), migrated first. A running process sees a new token at
 *   once and a rotation within its token cache's 5 s.
 */
export type TokenSource =
  | { kind: 'api', url: string, adminToken: string }
  | { kind: 'database', databaseUrl: string | null, dataDir: string }

export interface Provisioned {
  members: FleetMember[]
  /** Devices added, given a new token, and found registered and left as they were. */
  added: number
  rotated: number
  kept: number
}

/** Requests at once against the admin API or the database. */
const CONCURRENCY = 8

/** A DeviceAdmin over a database connection (the functions of `iot-monitor devices`). */
export function databaseDevices (db: Queryable, now: () => number = Date.now): DeviceAdmin {
  return {
    where: 'the database',
    list: async () => (await listDevices(db)).map(d => ({ id: d.id, location: d.location, revoked: d.revokedAt !== null })),
    add: async (d) => (await addDevice(db, { id: d.id, name: d.name, location: d.location }, now())).token,
    rotate: async (id) => (await rotateDeviceToken(db, id, now())).token
  }
}

/**
 * Makes every simulated device a registered device with the simulator's location:
 * - not registered: added (a new token);
 * - registered at the same location: given a new token when `tokens` (the built-in broker needs
 *   it: only digests are stored, so the old token cannot be read back), else left as it is;
 * - registered elsewhere, or revoked: IOT_ERR_DEVICE_EXISTS / IOT_ERR_DEVICE_REVOKED, nothing
 *   published (a reading would land at the wrong location, or be refused): choose other ids with
 *   --device-prefix.
 * Members come back in the order of `devices`, with `token` null when none was issued.
 */
export async function provisionDevices (admin: DeviceAdmin, devices: readonly SimulatedDevice[], opts: { tokens: boolean }): Promise<Provisioned> {
  const known = new Map((await admin.list()).map(d => [d.id, d]))
  for (const d of devices) {
    const k = known.get(d.id)
    if (k === undefined) continue
    if (k.revoked) {
      throw new IotError('IOT_ERR_DEVICE_REVOKED', `device ${d.id} is revoked in ${admin.where}: a revoked id stays taken; choose other ids with --device-prefix`)
    }
    if (k.location !== d.location) {
      throw new IotError('IOT_ERR_DEVICE_EXISTS', `device ${d.id} is registered in ${admin.where} at "${k.location}", the simulated one is at "${d.location}": choose other ids with --device-prefix`)
    }
  }
  const result: Provisioned = { members: new Array<FleetMember>(devices.length), added: 0, rotated: 0, kept: 0 }
  for (let from = 0; from < devices.length; from += CONCURRENCY) {
    await Promise.all(devices.slice(from, from + CONCURRENCY).map(async (device, i) => {
      let token: string | null = null
      if (!known.has(device.id)) {
        token = await admin.add(device)
        result.added++
      } else if (opts.tokens) {
        token = await admin.rotate(device.id)
        result.rotated++
      } else {
        result.kept++
      }
      result.members[from + i] = { device, token }
    }))
  }
  return result
}

/** Provisions through the admin API or the database (opened, migrated and closed here). */
export async function provisionFleet (
  source: TokenSource, devices: readonly SimulatedDevice[], opts: { tokens: boolean }
): Promise<Provisioned> {
  if (source.kind === 'api') return await provisionDevices(adminApiDevices(source.url, source.adminToken), devices, opts)
  const db = await openDb({ databaseUrl: source.databaseUrl, dataDir: source.dataDir })
  try {
    await migrate(db)
    return await provisionDevices(databaseDevices(db), devices, opts)
  } finally {
    await db.close()
  }
}
