// GET /api/live: Server-Sent Events. The hub pushes what each stored batch changed; the browser's
// EventSource reconnects by itself. With no worker in this process, the hub is fed by tailing the
// database while dashboards are connected. Past the hub's caps (LiveHubOptions maxClients,
// maxClientsPerAddress) a client gets a 503 with Retry-After before anything is streamed.
import { type FastifyPluginAsync } from 'fastify'
import { type Static } from '@sinclair/typebox'
import { type Queryable } from '../../storage/index.ts'
import { type LiveCap, type LiveHub } from '../live.ts'
import { type PipelineSampler } from '../pipeline-sampler.ts'
import { querySchema, rangeFields } from '../query.ts'
import { DbTail } from '../tail.ts'

export interface LiveRoutesOptions {
  hub: LiveHub
  /** No worker here: what the workers store is read back from this database (null: a worker in this process feeds the hub). */
  tail: { db: Queryable, openSpanMs: number } | null
  /** Sends a new client the pipeline state at once (the sampler sends it every second after). */
  sampler: PipelineSampler
}

const LiveQuery = querySchema({ location: rangeFields.location, sensor_type: rangeFields.sensor_type })

/**
 * Bytes a live stream may have waiting in its socket before messages to it are skipped. What waits
 * is the shared Buffers of toBytes, so slow clients mostly hold the same memory, not this much each.
 */
const MAX_BUFFERED = 2_000_000

/** A pipeline tick this recent is sent to a new client as it is, instead of a new sample for everyone (the sampler ticks every second). */
const PIPELINE_FRESH_MS = 1000

/** Refusals are logged at most this often (with their count), not one line each. */
const FULL_LOG_INTERVAL_MS = 60_000

const fullMessage = (cap: LiveCap, hub: LiveHub): string => cap === 'total'
  ? `the live stream has its maximum of ${hub.options.maxClients} clients; retry later`
  : `the live stream has its maximum of ${hub.options.maxClientsPerAddress} clients from one address; retry later`

export const liveRoutes: FastifyPluginAsync<LiveRoutesOptions> = async (app, { hub, tail: tailed, sampler }) => {
  const tail = tailed === null ? null : new DbTail(tailed.db, hub, { openSpanMs: tailed.openSpanMs })
  /** How to end each open stream (the server's close ends them all). */
  const streams = new Set<() => void>()
  let refusedSinceLog = 0
  let lastFullLog = -Infinity
  // The hub writes one string to every client of a filter in turn. Written as a string, each socket
  // would encode its own copy (held until the client has read it: a slow client holds up to
  // MAX_BUFFERED of them); a Buffer is handed to the socket as it is. So each string is encoded once,
  // into the Buffer that all its clients share; only the last one is kept.
  let lastText = ''
  let lastBytes = Buffer.alloc(0)
  const toBytes = (text: string): Buffer => {
    if (text !== lastText) {
      lastText = text
      lastBytes = Buffer.from(text)
    }
    return lastBytes
  }

  app.get<{ Querystring: Static<typeof LiveQuery> }>('/api/live', { schema: { querystring: LiveQuery } }, (req, reply) => {
    const res = reply.raw
    // The client hung up before its stream began: its 'close' has passed, so nothing would ever remove it from the hub.
    if (res.destroyed || req.raw.socket.destroyed) {
      reply.hijack()
      return
    }
    // A client that does not read falls behind by at most MAX_BUFFERED bytes; then messages are skipped.
    const unsubscribe = hub.subscribe({ location: req.query.location, sensorType: req.query.sensor_type }, chunk => {
      if (res.destroyed || res.writableLength > MAX_BUFFERED) return false
      res.write(toBytes(chunk))
      return true
    }, req.ip)
    if (unsubscribe === null) {
      const cap = hub.capReached(req.ip) ?? 'total'
      refusedSinceLog++
      const now = Date.now()
      if (now - lastFullLog >= FULL_LOG_INTERVAL_MS) {
        req.log.warn({ refused: refusedSinceLog, cap, clients: hub.clients, maxClients: hub.options.maxClients, maxClientsPerAddress: hub.options.maxClientsPerAddress },
          'Live stream full: clients answered 503.')
        lastFullLog = now
        refusedSinceLog = 0
      }
      return reply.code(503).header('retry-after', String(hub.options.retryAfterSeconds))
        .send({ error: 'unavailable', code: 'IOT_ERR_LIVE_FULL', message: fullMessage(cap, hub) })
    }
    // From here the stream is ours: nothing else is written between subscribing and the header (no await).
    reply.hijack()
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    res.write('retry: 2000\n: connected\n\n')
    let ended = false
    // Runs once: on the connection's close, or at the server's close (whose res.end() then closes it again).
    const end = (): void => {
      if (ended) return
      ended = true
      unsubscribe()
      streams.delete(end)
      res.end()
    }
    streams.add(end)
    res.once('close', end)
    tail?.start()
    // The pipeline state at once. A new sample is broadcast to every client, so when clients arrive
    // together (a server restart reconnects every dashboard) each would make all the others one more
    // write: the last one, if fresh, goes to this client alone.
    const pipeline = hub.recentBroadcast('pipeline', PIPELINE_FRESH_MS)
    if (pipeline !== null) res.write(toBytes(pipeline))
    else sampler.tick()
  })

  // Open streams would keep the server from closing.
  app.addHook('preClose', async () => {
    tail?.stop()
    for (const end of [...streams]) end()
  })
}
