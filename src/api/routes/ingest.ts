// Devices writing over HTTP, in the shapes their firmware and agents already speak:
//   POST /api/v1/<token>/telemetry          ThingsBoard: {"temperature":22.5}, {"ts":ms,"values":{...}}, or an array
//   POST /api/v2/write?precision=ns|us|ms|s InfluxDB v2: line protocol, `Authorization: Token <token>`
//                                           (Telegraf's outputs.influxdb_v2, the InfluxDB client libraries; org
//                                           and bucket are accepted and ignored; gzip bodies too)
// The token names the device. All accepted: 200 (telemetry) or 204 (write). Some values or lines
// rejected: the good ones are kept and the bad ones go to the dead letters with their line and
// reason; the answer is 400 with how many of each (InfluxDB's "partial write"), so that no client
// sends the good ones again. A wrong, revoked or missing token: 401, nothing stored. The bus full
// for longer than a moment: 503 with Retry-After.
import { gunzip } from 'node:zlib'
import { promisify } from 'node:util'
import { type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { IotError } from '../../domain/index.ts'
import { type Precision, precisions } from '../../ingest/index.ts'
import { type IngestOutcome } from '../../sources/index.ts'
import { type DeviceIngest } from '../deps.ts'

const gunzipAsync = promisify(gunzip)

export interface IngestRoutesOptions {
  ingest: DeviceIngest
}

/** Largest body taken, after decompression: a Telegraf batch of 5,000 lines is about 1 MB. */
const MAX_WRITE_BYTES = 16 * 1024 * 1024
const MAX_TELEMETRY_BYTES = 1024 * 1024
/** How long a write waits for room on a full bus before answering 503. */
const BUS_WAIT_MS = 2000
const RETRY_AFTER_S = 5

const TokenParams = Type.Object({ token: Type.String({ maxLength: 200 }) })
const WriteQuery = Type.Object({
  precision: Type.Optional(Type.Union(precisions.map(p => Type.Literal(p)))),
  org: Type.Optional(Type.String()),
  orgID: Type.Optional(Type.String()),
  bucket: Type.Optional(Type.String())
}, { additionalProperties: false })

/** The request body as text: decompressed when sent with Content-Encoding: gzip, bounded either way. */
async function bodyText (req: FastifyRequest, max: number): Promise<string> {
  const raw = req.body as Buffer
  const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase()
  if (encoding === 'identity') return raw.toString('utf8')
  if (encoding !== 'gzip') throw new IotError('IOT_ERR_VALIDATION', `Content-Encoding ${encoding} is not supported (identity or gzip)`)
  try {
    return (await gunzipAsync(raw, { maxOutputLength: max })).toString('utf8')
  } catch (err) {
    throw new IotError('IOT_ERR_VALIDATION', `the gzip body does not decompress within ${max} bytes: ${(err as Error).message}`)
  }
}

export const ingestRoutes: FastifyPluginAsync<IngestRoutesOptions> = async (app, { ingest }) => {
  // Bodies are taken as bytes here (this plugin only): the decoders read them, and report broken
  // JSON as a dead letter instead of Fastify's 400 that keeps nothing.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_WRITE_BYTES }, (_req, body, done) => { done(null, body) })

  const refuse = async (reply: FastifyReply, influx: boolean): Promise<FastifyReply> => {
    const message = 'unknown, revoked or missing device token'
    return await reply.code(401).header('www-authenticate', influx ? 'Token' : 'Bearer')
      .send(influx ? { code: 'unauthorized', message } : { error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message })
  }
  const answerOutcome = async (reply: FastifyReply, out: IngestOutcome, okStatus: 200 | 204): Promise<FastifyReply> => {
    if (out.rejected === 0) return await (okStatus === 204 ? reply.code(204).send() : reply.code(200).send({ accepted: out.accepted, rejected: 0 }))
    return await reply.code(400).send({
      code: 'invalid',
      message: `partial write: ${out.accepted} readings accepted, ${out.rejected} rejected (kept in the dead letters)`,
      accepted: out.accepted,
      rejected: out.rejected,
      rejections: out.rejections
    })
  }
  const put = async <T>(reply: FastifyReply, run: () => Promise<T>): Promise<T | null> => {
    try {
      return await run()
    } catch (err) {
      if ((err as { code?: string }).code !== 'IOT_ERR_BUS_FULL') throw err
      await reply.code(503).header('retry-after', String(RETRY_AFTER_S)).send({ code: 'unavailable', message: (err as Error).message })
      return null
    }
  }

  app.post<{ Params: Static<typeof TokenParams> }>('/api/v1/:token/telemetry', {
    bodyLimit: MAX_TELEMETRY_BYTES, schema: { params: TokenParams }
  }, async (req, reply) => {
    const device = await ingest.authenticate(req.params.token)
    if (device === null) return await refuse(reply, false)
    const text = await bodyText(req, MAX_TELEMETRY_BYTES)
    const out = await put(reply, async () => await ingest.gateway.telemetry(device, text, { waitMs: BUS_WAIT_MS }))
    return out === null ? reply : await answerOutcome(reply, out, 200)
  })

  app.post<{ Querystring: Static<typeof WriteQuery> }>('/api/v2/write', { schema: { querystring: WriteQuery } }, async (req, reply) => {
    const auth = /^Token\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))
    const device = auth === null ? null : await ingest.authenticate(auth[1]!)
    if (device === null) return await refuse(reply, true)
    const text = await bodyText(req, MAX_WRITE_BYTES)
    const precision: Precision = req.query.precision ?? 'ns'
    const out = await put(reply, async () => await ingest.gateway.lineProtocol(device, text, precision, { waitMs: BUS_WAIT_MS }))
    return out === null ? reply : await answerOutcome(reply, out, 204)
  })
}
