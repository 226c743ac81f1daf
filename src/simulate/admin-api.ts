// The devices of a running iot-monitor through its admin API (/api/admin/devices, Bearer admin token):
// how `simulate` registers its devices while the embedded database is held by that process.
import { type AdminDeviceJson, type IssuedTokenJson } from '../api/index.ts'
import { type ErrorCode, IotError, errorCodes } from '../domain/index.ts'
import { type DeviceAdmin, type KnownDevice } from './provision.ts'
import { type SimulatedDevice } from './fleet-devices.ts'

/** How long one admin request may take. */
const REQUEST_TIMEOUT_MS = 10_000

const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && (errorCodes as readonly string[]).includes(code)
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * A DeviceAdmin over HTTP. `baseUrl` is where iot-monitor's API listens (http://127.0.0.1:8080).
 * Answers become IotErrors with the server's code (IOT_ERR_DEVICE_EXISTS, IOT_ERR_DEVICE_REVOKED,
 * ...): 401 IOT_ERR_UNAUTHORIZED (wrong admin token), 403 IOT_ERR_FORBIDDEN (the admin API is off),
 * an unreachable server or a foreign answer IOT_ERR_CONFIG.
 */
export function adminApiDevices (baseUrl: string, adminToken: string): DeviceAdmin {
  const base = baseUrl.replace(/\/+$/, '')
  if (!/^https?:\/\/[^\s/]+/.test(base)) throw new IotError('IOT_ERR_CONFIG', `--api: expected http://host:port, got "${baseUrl}"`)

  const call = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> => {
    const url = `${base}${path}`
    let res: Response
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
      })
    } catch (cause) {
      throw new IotError('IOT_ERR_CONFIG', `cannot reach iot-monitor's admin API at ${base} (${(cause as Error).message}): is it running there? (--api URL)`, { cause })
    }
    const text = await res.text()
    let json: unknown = null
    try {
      json = text === '' ? null : JSON.parse(text)
    } catch {
      // Not ours: reported below by status.
    }
    if (res.ok) return json
    const code = isRecord(json) ? json.code : undefined
    const message = isRecord(json) && typeof json.message === 'string' ? json.message : `HTTP ${res.status}`
    if (res.status === 401) throw new IotError('IOT_ERR_UNAUTHORIZED', `the admin API at ${base} refused the admin token: ${message}`)
    if (res.status === 403) throw new IotError('IOT_ERR_FORBIDDEN', `the admin API at ${base} is off: start iot-monitor with --admin-token (or IOT_ADMIN_TOKEN)`)
    if (isErrorCode(code)) throw new IotError(code, `${method} ${path}: ${message}`)
    throw new IotError('IOT_ERR_CONFIG', `${method} ${url} answered ${res.status}: is iot-monitor's API there? (--api URL)`)
  }

  const issued = (json: unknown, what: string): string => {
    if (!isRecord(json) || typeof json.token !== 'string') throw new IotError('IOT_ERR_CONFIG', `${what}: the admin API answered without a token`)
    return (json as unknown as IssuedTokenJson).token
  }

  return {
    where: `the admin API at ${base}`,
    list: async (): Promise<KnownDevice[]> => {
      const json = await call('GET', '/api/admin/devices')
      if (!isRecord(json) || !Array.isArray(json.devices)) throw new IotError('IOT_ERR_CONFIG', `GET ${base}/api/admin/devices: not a device list`)
      return (json.devices as AdminDeviceJson[]).map(d => ({ id: d.id, location: d.location, revoked: d.revoked_at !== null }))
    },
    add: async (d: SimulatedDevice): Promise<string> =>
      issued(await call('POST', '/api/admin/devices', { id: d.id, name: d.name, location: d.location }), `adding ${d.id}`),
    rotate: async (id: string): Promise<string> =>
      issued(await call('POST', `/api/admin/devices/${encodeURIComponent(id)}/rotate`), `rotating ${id}`)
  }
}
