// Adding, rotating and revoking devices: what the CLI and the admin API do. Each returns the new
// token once; only its digest is stored.
import {
  type Queryable, type StoredDevice, insertDevice, replaceDeviceToken, revokeDevice as storeRevocation
} from '../storage/index.ts'
import { validateDeviceId, validateLabel } from './device.ts'
import { hashToken, newDeviceToken } from './token.ts'

export interface DeviceInput {
  id: string
  name: string
  location: string
}

/** A device with the token just issued to it: the only time the token exists outside the device. */
export interface IssuedToken {
  device: StoredDevice
  token: string
}

/**
 * Adds a device with a new token. IOT_ERR_VALIDATION for a bad id, name or location;
 * IOT_ERR_DEVICE_EXISTS when the id is taken.
 */
export async function addDevice (db: Queryable, input: DeviceInput, now: number): Promise<IssuedToken> {
  const id = validateDeviceId(input.id)
  const name = validateLabel(input.name, 'name')
  const location = validateLabel(input.location, 'location')
  const token = newDeviceToken()
  const device = await insertDevice(db, { id, name, location, tokenHash: hashToken(token), at: now })
  return { device, token }
}

/**
 * Issues a new token; the old one is refused from the commit on (by processes that cached it,
 * within their cache's TTL). IOT_ERR_DEVICE_NOT_FOUND, IOT_ERR_DEVICE_REVOKED.
 */
export async function rotateDeviceToken (db: Queryable, id: string, now: number): Promise<IssuedToken> {
  validateDeviceId(id)
  const token = newDeviceToken()
  const device = await replaceDeviceToken(db, id, hashToken(token), now)
  return { device, token }
}

/** Revokes a device for good (`changed` is false when it was revoked already). IOT_ERR_DEVICE_NOT_FOUND. */
export async function revokeDevice (db: Queryable, id: string, now: number): Promise<{ device: StoredDevice, changed: boolean }> {
  validateDeviceId(id)
  return await storeRevocation(db, id, now)
}
