// What a device is: its id rules, its sensors' ids, and whether it is online.
import { IotError } from '../domain/index.ts'
import { type StoredDevice } from '../storage/index.ts'

/** A device as the ingest knows it once its token is accepted. */
export interface Device {
  id: string
  name: string
  location: string
}

/** 1-64 of [A-Za-z0-9._-] (the migration checks the same). */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/
/** Names and locations: 1-128 characters (a reading's location on the wire is at most 128) and no control character. */
const MAX_LABEL_LENGTH = 128
const CONTROL = /\p{Cc}/u

/** Throws IOT_ERR_VALIDATION unless `id` is a valid device id. */
export function validateDeviceId (id: string): string {
  if (!DEVICE_ID_PATTERN.test(id)) throw new IotError('IOT_ERR_VALIDATION', `a device id is 1-64 of A-Z a-z 0-9 . _ -, got ${JSON.stringify(id)}`)
  return id
}

/** Throws IOT_ERR_VALIDATION unless `value` is a usable name or location (`what` names it in the message). */
export function validateLabel (value: string, what: 'name' | 'location'): string {
  if ([...value].length > MAX_LABEL_LENGTH || value.trim() === '' || CONTROL.test(value)) {
    throw new IotError('IOT_ERR_VALIDATION', `a device ${what} is 1-128 characters, not blank, without control characters, got ${JSON.stringify(value)}`)
  }
  return value
}

/** A device heard within this span of wall time is online (unless a newer MQTT state says otherwise). */
export const ONLINE_WITHIN_MS = 120_000

export type DeviceStatus = 'online' | 'offline' | 'unknown'

/**
 * Online or offline, from the newest evidence: the MQTT connection state when it was reported
 * after the last reading (a Last Will says 'offline' at once), else whether a reading came within
 * ONLINE_WITHIN_MS (devices that send over HTTP have no connection state); 'unknown' when the
 * device was never heard.
 */
export function deviceStatus (d: Pick<StoredDevice, 'lastSeenAt' | 'connection' | 'connectionAt'>, now: number): DeviceStatus {
  if (d.connection !== null && (d.lastSeenAt === null || (d.connectionAt ?? -Infinity) >= d.lastSeenAt)) return d.connection
  if (d.lastSeenAt === null) return 'unknown'
  return now - d.lastSeenAt <= ONLINE_WITHIN_MS ? 'online' : 'offline'
}
