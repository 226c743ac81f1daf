// Devices: GET /api/devices for the dashboard (no secrets; with each device's sensors and the
// staleness rule of its status), and the admin API that manages them:
// GET /api/admin/devices, POST /api/admin/devices {id, name, location} (201, with the token),
// POST /api/admin/devices/:id/rotate (a new token), POST /api/admin/devices/:id/revoke.
// The admin routes answer only requests with `Authorization: Bearer <admin token>` (--admin-token,
// IOT_ADMIN_TOKEN): 401 with WWW-Authenticate without it or with a wrong one, 403 for the viewer
// token (it reads, it does not manage), and 403 for every request while no admin token is
// configured (the admin API is off by default). Refusals are counted in
// iot_api_refused_total{scope="admin"}. A session cookie never opens these routes.
import { type FastifyPluginAsync, type FastifyReply } from 'fastify'
import { type Counter } from 'prom-client'
import { Type, type Static } from '@sinclair/typebox'
import {
  type DeviceRegistry, type StoredDevice, ONLINE_WITHIN_MS, addDevice, deviceStatus, listDevices, revokeDevice, rotateDeviceToken
} from '../../devices/index.ts'
import { type ErrorCode, IotError } from '../../domain/index.ts'
import { type Queryable, deviceSensors } from '../../storage/index.ts'
import {
  type AdminDeviceJson, type DeviceJson, type DeviceListJson, type DeviceSensorJson, type IssuedTokenJson, type RevokedDeviceJson
} from '../contract.ts'
import { iso, isoOrNull } from '../json.ts'
import { querySchema } from '../query.ts'
import { type ApiTokens, bearerToken } from '../tokens.ts'

export interface DeviceRoutesOptions {
  db: Queryable
  /** The API's tokens; without an admin token the admin routes are off (403). */
  tokens: ApiTokens
  /** iot_api_refused_total: admin refusals are counted with scope admin. */
  refused: Counter<'scope' | 'reason'>
  /** Wall clock: times stored at add, rotate and revoke; online status. */
  now: () => number
  /** The registry of this process's ingest, if any: told at once when a device's token changes. */
  registry: DeviceRegistry | undefined
}

/** Shapes only: the values (id pattern, name and location lengths) are checked by src/devices, with its messages. */
const NewDeviceBody = Type.Object({ id: Type.String(), name: Type.String(), location: Type.String() }, { additionalProperties: false })
const IdParams = Type.Object({ id: Type.String() })
const NoQuery = querySchema({})

/** Device errors as HTTP answers; anything else goes on to the app's handler (400, 503, 500). */
const answers: Partial<Record<ErrorCode, [number, string]>> = {
  IOT_ERR_DEVICE_NOT_FOUND: [404, 'not_found'],
  IOT_ERR_DEVICE_EXISTS: [409, 'conflict'],
  IOT_ERR_DEVICE_REVOKED: [409, 'conflict']
}

const disabledBody = {
  error: 'forbidden',
  code: 'IOT_ERR_FORBIDDEN',
  message: 'the admin API is off: no admin token is configured; start the server with IOT_ADMIN_TOKEN=<at least 16 characters> (or --admin-token)'
}
const realm = 'Bearer realm="iot-monitor"'

const deviceJson = (d: StoredDevice, now: number): DeviceJson =>
  ({ id: d.id, name: d.name, location: d.location, last_seen: isoOrNull(d.lastSeenAt), status: deviceStatus(d, now) })

const adminJson = (d: StoredDevice, now: number): AdminDeviceJson => ({
  ...deviceJson(d, now),
  created_at: iso(d.createdAt),
  token_issued_at: iso(d.tokenIssuedAt),
  revoked_at: isoOrNull(d.revokedAt),
  connection: d.connection,
  connection_at: isoOrNull(d.connectionAt)
})

export const deviceRoutes: FastifyPluginAsync<DeviceRoutesOptions> = async (app, { db, tokens, refused, now, registry }) => {
  app.get('/api/devices', { schema: { querystring: NoQuery } }, async (): Promise<DeviceListJson> => {
    const t = now()
    const [devices, sensors] = await Promise.all([listDevices(db), deviceSensors(db)])
    const byDevice = new Map<string, DeviceSensorJson[]>()
    for (const s of sensors) {
      const list = byDevice.get(s.deviceId)
      const json = { sensor_type: s.sensorType, unit: s.unit, cadence_ms: s.cadenceMs }
      if (list === undefined) byDevice.set(s.deviceId, [json])
      else list.push(json)
    }
    return {
      as_of: iso(t),
      online_within_s: ONLINE_WITHIN_MS / 1000,
      devices: devices.filter(d => d.revokedAt === null).map(d => ({ ...deviceJson(d, t), sensors: byDevice.get(d.id) ?? [] }))
    }
  })

  // The admin routes in a plugin of their own: the hook and the error handler apply to them only.
  await app.register(async admin => {
    // Tokens are compared in constant time (see ../tokens.ts).
    admin.addHook('onRequest', async (req, reply) => {
      if (!tokens.hasAdmin) return await reply.code(403).send(disabledBody)
      const token = bearerToken(req.headers.authorization)
      if (token === null) {
        refused.inc({ scope: 'admin', reason: 'missing' })
        return await reply.code(401).header('www-authenticate', realm)
          .send({ error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message: 'the admin API needs "Authorization: Bearer <admin token>"' })
      }
      const role = tokens.roleOf(token)
      if (role === 'viewer') {
        refused.inc({ scope: 'admin', reason: 'forbidden' })
        return await reply.code(403).header('www-authenticate', `${realm}, error="insufficient_scope"`)
          .send({ error: 'forbidden', code: 'IOT_ERR_FORBIDDEN', message: 'the viewer token reads; managing devices needs the admin token' })
      }
      if (role !== 'admin') {
        refused.inc({ scope: 'admin', reason: 'invalid' })
        return await reply.code(401).header('www-authenticate', `${realm}, error="invalid_token"`)
          .send({ error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message: 'wrong admin token' })
      }
    })
    admin.setErrorHandler(async (err, _req, reply) => {
      // Thrown on, an error reaches the app's handler (400 for validation, 503 while the database is away, else 500).
      if (!(err instanceof IotError)) throw err
      const answer = answers[err.code]
      if (answer === undefined) throw err
      return await reply.code(answer[0]).send({ error: answer[1], code: err.code, message: err.message })
    })
    // A token is in the answer: no cache may keep it.
    const noStore = (reply: FastifyReply): void => { reply.header('cache-control', 'no-store') }

    admin.get('/api/admin/devices', { schema: { querystring: NoQuery } }, async (): Promise<{ devices: AdminDeviceJson[] }> => {
      const t = now()
      return { devices: (await listDevices(db)).map(d => adminJson(d, t)) }
    })

    admin.post<{ Body: Static<typeof NewDeviceBody> }>('/api/admin/devices', { schema: { body: NewDeviceBody, querystring: NoQuery } },
      async (req, reply): Promise<IssuedTokenJson> => {
        const t = now()
        const { device, token } = await addDevice(db, req.body, t)
        registry?.forget(device.id) // its id may be cached as unknown
        noStore(reply)
        reply.code(201)
        return { device: adminJson(device, t), token }
      })

    admin.post<{ Params: Static<typeof IdParams> }>('/api/admin/devices/:id/rotate', { schema: { params: IdParams, querystring: NoQuery } },
      async (req, reply): Promise<IssuedTokenJson> => {
        const t = now()
        const { device, token } = await rotateDeviceToken(db, req.params.id, t)
        registry?.forget(device.id)
        noStore(reply)
        return { device: adminJson(device, t), token }
      })

    admin.post<{ Params: Static<typeof IdParams> }>('/api/admin/devices/:id/revoke', { schema: { params: IdParams, querystring: NoQuery } },
      async (req): Promise<RevokedDeviceJson> => {
        const t = now()
        const { device, changed } = await revokeDevice(db, req.params.id, t)
        registry?.forget(device.id)
        return { device: adminJson(device, t), changed }
      })
  })
}
