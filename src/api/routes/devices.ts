// Devices: GET /api/devices for the dashboard (no secrets), and the admin API that manages them:
// GET /api/admin/devices, POST /api/admin/devices {id, name, location} (201, with the token),
// POST /api/admin/devices/:id/rotate (a new token), POST /api/admin/devices/:id/revoke.
// The admin routes answer only requests with `Authorization: Bearer <admin token>` (--admin-token,
// IOT_ADMIN_TOKEN): 401 with WWW-Authenticate without it or with a wrong one, and 403 for every
// request while no admin token is configured (the admin API is off by default).
import { createHash, timingSafeEqual } from 'node:crypto'
import { type FastifyPluginAsync, type FastifyReply } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { type DeviceRegistry, type StoredDevice, addDevice, deviceStatus, listDevices, revokeDevice, rotateDeviceToken } from '../../devices/index.ts'
import { type ErrorCode, IotError } from '../../domain/index.ts'
import { type Queryable } from '../../storage/index.ts'
import { type AdminDeviceJson, type DeviceJson, type DeviceListJson, type IssuedTokenJson, type RevokedDeviceJson } from '../contract.ts'
import { iso, isoOrNull } from '../json.ts'
import { querySchema } from '../query.ts'

export interface DeviceRoutesOptions {
  db: Queryable
  /** The admin API's bearer token; null turns the admin routes off (403). */
  adminToken: string | null
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

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

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

export const deviceRoutes: FastifyPluginAsync<DeviceRoutesOptions> = async (app, { db, adminToken, now, registry }) => {
  app.get('/api/devices', { schema: { querystring: NoQuery } }, async (): Promise<DeviceListJson> => {
    const t = now()
    return { devices: (await listDevices(db)).filter(d => d.revokedAt === null).map(d => deviceJson(d, t)) }
  })

  // The admin routes in a plugin of their own: the hook and the error handler apply to them only.
  await app.register(async admin => {
    // Compared as SHA-256 digests with timingSafeEqual: equal lengths whatever was sent, and no
    // timing difference that depends on how much of the token a guess got right.
    const expected = adminToken === null ? null : digest(adminToken)
    admin.addHook('onRequest', async (req, reply) => {
      if (expected === null) return await reply.code(403).send(disabledBody)
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? '')
      if (m === null) {
        return await reply.code(401).header('www-authenticate', realm)
          .send({ error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message: 'the admin API needs "Authorization: Bearer <admin token>"' })
      }
      if (!timingSafeEqual(digest(m[1]!), expected)) {
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
