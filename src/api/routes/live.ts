// GET /api/live: Server-Sent Events. The hub pushes what each stored batch changed; the browser's
// EventSource reconnects by itself. With no worker in this process, the hub is fed by tailing the
// database while dashboards are connected.
import { type FastifyPluginAsync } from 'fastify'
import { type Static } from '@sinclair/typebox'
import { type Queryable } from '../../storage/index.ts'
import { type LiveHub } from '../live.ts'
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

/** Bytes a live stream may have waiting in its socket before messages to it are skipped. */
const MAX_BUFFERED = 2_000_000

export const liveRoutes: FastifyPluginAsync<LiveRoutesOptions> = async (app, { hub, tail: tailed, sampler }) => {
  const tail = tailed === null ? null : new DbTail(tailed.db, hub, { openSpanMs: tailed.openSpanMs })
  const streams = new Set<() => void>()

  app.get<{ Querystring: Static<typeof LiveQuery> }>('/api/live', { schema: { querystring: LiveQuery } }, (req, reply) => {
    const res = reply.raw
    reply.hijack()
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    res.write('retry: 2000\n: connected\n\n')
    // A client that does not read falls behind by at most MAX_BUFFERED bytes; then messages are skipped.
    const unsubscribe = hub.subscribe({ location: req.query.location, sensorType: req.query.sensor_type }, chunk => {
      if (res.writableLength > MAX_BUFFERED) return false
      res.write(chunk)
      return true
    })
    const ping = setInterval(() => { res.write(': ping\n\n') }, 15_000)
    const end = (): void => {
      clearInterval(ping)
      unsubscribe()
      streams.delete(end)
      res.end()
    }
    streams.add(end)
    req.raw.on('close', end)
    tail?.start()
    sampler.tick()
  })

  // Open streams would keep the server from closing.
  app.addHook('preClose', async () => {
    tail?.stop()
    for (const end of [...streams]) end()
  })
}
