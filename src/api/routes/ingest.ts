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
// Limits, each with its answer (the telemetry route in the API's error shape, the write route in
// InfluxDB's {code, message}, which Telegraf and the InfluxDB clients read):
//   - requests per device (a token bucket, DeviceIngest.rateLimit): 429 with Retry-After, code
//     IOT_ERR_RATE_LIMITED / "too many requests"; checked with the token, before the body is read
//   - the body (MAX_TELEMETRY_BYTES, MAX_WRITE_BYTES; gzip: after decompression): 413, code
//     IOT_ERR_TOO_LARGE / "request too large" (Telegraf splits its batch on a 413)
//   - a JSON payload's bytes and values, a line protocol body's lines and a line's bytes
//     (src/ingest limits): 400 with the rejections' reasons (too_large, too_many_values,
//     too_many_lines), kept in the dead letters
// Both refusals are counted in iot_ingest_refused_total{reason="rate_limited"|"too_large"}.
import { gunzip } from 'node:zlib'
import { promisify } from 'node:util'
import { type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { type Counter } from 'prom-client'
import { IotError } from '../../domain/index.ts'
import { type IngestDevice, type Precision, RateLimiter, defaultDeviceRateLimit, precisions } from '../../ingest/index.ts'
import { type IngestOutcome } from '../../sources/index.ts'
import { type DeviceIngest } from '../deps.ts'

const gunzipAsync = promisify(gunzip)

export interface IngestRoutesOptions {
  ingest: DeviceIngest
  /** Wall clock of the rate limit. */
  now: () => number
  /** iot_ingest_refused_total: rate_limited and too_large are counted here. */
  refused: Counter<'reason'>
}

const TELEMETRY_ROUTE = '/api/v1/:token/telemetry'
const WRITE_ROUTE = '/api/v2/write'
/** The routes devices write to, with their device tokens (the read API's token does not apply). */
export const INGEST_ROUTES: ReadonlySet<string> = new Set([TELEMETRY_ROUTE, WRITE_ROUTE])

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
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new IotError('IOT_ERR_TOO_LARGE', `the body decompresses to more than ${max} bytes`)
    throw new IotError('IOT_ERR_VALIDATION', `the gzip body does not decompress: ${(err as Error).message}`)
  }
}

export const ingestRoutes: FastifyPluginAsync<IngestRoutesOptions> = async (app, { ingest, now, refused }) => {
  // Bodies are taken as bytes here (this plugin only): the decoders read them, and report broken
  // JSON as a dead letter instead of Fastify's 400 that keeps nothing.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_WRITE_BYTES }, (_req, body, done) => { done(null, body) })

  const limit = ingest.rateLimit === undefined ? defaultDeviceRateLimit : ingest.rateLimit
  const limiter = limit === null ? null : new RateLimiter(limit)
  /** The device each request was authenticated as (in its onRequest hook, before the body is read). */
  const devices = new WeakMap<FastifyRequest, IngestDevice>()
  const isWrite = (req: FastifyRequest): boolean => req.routeOptions.url === WRITE_ROUTE

  const refuse = async (reply: FastifyReply, influx: boolean): Promise<FastifyReply> => {
    const message = 'unknown, revoked or missing device token'
    return await reply.code(401).header('www-authenticate', influx ? 'Token' : 'Bearer')
      .send(influx ? { code: 'unauthorized', message } : { error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message })
  }
  /**
   * Who is writing and whether they may now: runs before the body is read, so an unknown token or
   * a device over its rate costs no upload. 401, 429 with Retry-After, or on to the handler.
   */
  const admit = async (req: FastifyRequest, reply: FastifyReply, token: string | null): Promise<FastifyReply | undefined> => {
    const influx = isWrite(req)
    const device = token === null ? null : await ingest.authenticate(token)
    if (device === null) return await refuse(reply, influx)
    const waitMs = limiter === null ? 0 : limiter.tryTake(device.id, now())
    if (limiter !== null && waitMs > 0) {
      refused.inc({ reason: 'rate_limited' })
      const retryAfterS = Math.ceil(waitMs / 1000)
      const { perSecond, burst } = limiter.limit
      const message = `device ${device.id} is over its rate limit of ${perSecond} requests/s (bursts of ${burst}); retry after ${retryAfterS} s`
      return await reply.code(429).header('retry-after', String(retryAfterS))
        .send(influx ? { code: 'too many requests', message } : { error: 'too_many_requests', code: 'IOT_ERR_RATE_LIMITED', message })
    }
    devices.set(req, device)
    return undefined
  }
  // A body over its limit: Fastify's FST_ERR_CTP_BODY_TOO_LARGE (the Content-Length, or the bytes
  // as they come), or a gzip body that decompresses to more. Other errors go on to the app's handler.
  app.setErrorHandler(async (err: { code?: string, message: string }, req, reply) => {
    if (err.code !== 'FST_ERR_CTP_BODY_TOO_LARGE' && err.code !== 'IOT_ERR_TOO_LARGE') throw err
    refused.inc({ reason: 'too_large' })
    const influx = isWrite(req)
    const max = influx ? MAX_WRITE_BYTES : MAX_TELEMETRY_BYTES
    const message = err.code === 'IOT_ERR_TOO_LARGE'
      ? `${err.message} (the limit of this endpoint); send smaller batches`
      : `the body is larger than ${max} bytes (the limit of this endpoint); send smaller batches`
    return await reply.code(413).send(influx ? { code: 'request too large', message } : { error: 'payload_too_large', code: 'IOT_ERR_TOO_LARGE', message })
  })
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

  app.post<{ Params: Static<typeof TokenParams> }>(TELEMETRY_ROUTE, {
    bodyLimit: MAX_TELEMETRY_BYTES,
    schema: { params: TokenParams },
    onRequest: async (req, reply) => await admit(req, reply, req.params.token)
  }, async (req, reply) => {
    const device = devices.get(req)
    if (device === undefined) return await refuse(reply, false)
    const text = await bodyText(req, MAX_TELEMETRY_BYTES)
    const out = await put(reply, async () => await ingest.gateway.telemetry(device, text, { waitMs: BUS_WAIT_MS }))
    return out === null ? reply : await answerOutcome(reply, out, 200)
  })

  app.post<{ Querystring: Static<typeof WriteQuery> }>(WRITE_ROUTE, {
    schema: { querystring: WriteQuery },
    onRequest: async (req, reply) => await admit(req, reply, /^Token\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1] ?? null)
  }, async (req, reply) => {
    const device = devices.get(req)
    if (device === undefined) return await refuse(reply, true)
    const text = await bodyText(req, MAX_WRITE_BYTES)
    const precision: Precision = req.query.precision ?? 'ns'
    const out = await put(reply, async () => await ingest.gateway.lineProtocol(device, text, precision, { waitMs: BUS_WAIT_MS }))
    return out === null ? reply : await answerOutcome(reply, out, 204)
  })
}
