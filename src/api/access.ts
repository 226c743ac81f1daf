// Who may read: when reading needs a token (src/config readRequiresToken: a viewer token is
// configured, or the API listens beyond loopback), every route of the read API (/api/..., the live
// stream /api/live, /metrics) answers only requests with `Authorization: Bearer <viewer or admin
// token>` or a valid session cookie (POST /api/session). Open whatever the setting: /health and
// /ready (probes), POST /api/session (it checks the token itself), the dashboard's files. The admin
// API checks its own token (routes/devices.ts); device ingest its device tokens (routes/ingest.ts).
// A refusal is a 401 with WWW-Authenticate (RFC 6750) and code IOT_ERR_UNAUTHORIZED, counted in
// iot_api_refused_total{scope="read", reason}.
import { type FastifyInstance } from 'fastify'
import { type Counter } from 'prom-client'
import { type ReadRefusal, refuseRead } from './refusals.ts'
import { type SessionCookies } from './session.ts'
import { type ApiTokens, bearerToken } from './tokens.ts'
import { INGEST_ROUTES } from './routes/index.ts'

export type RouteAccess = 'open' | 'read' | 'admin' | 'device'

const OPEN_ROUTES: ReadonlySet<string> = new Set(['/health', '/ready', '/api/session'])

/**
 * The access a request needs, from the route it matched (its pattern, as the router decoded the
 * path: an encoded path cannot pass for another route), else, for a path no route has, from the
 * path itself (unknown /api/... paths are read routes: their 404 waits for a token).
 */
export function accessOf (routeUrl: string | undefined, rawUrl: string): RouteAccess {
  const path = routeUrl ?? rawUrl.split('?')[0] ?? ''
  if (OPEN_ROUTES.has(path)) return 'open'
  if (INGEST_ROUTES.has(path)) return 'device'
  if (path === '/api/admin' || path.startsWith('/api/admin/')) return 'admin'
  if (path === '/metrics' || path === '/api' || path.startsWith('/api/')) return 'read'
  return 'open'
}

export interface ReadGuardOptions {
  tokens: ApiTokens
  sessions: SessionCookies
  now: () => number
  refused: Counter<'scope' | 'reason'>
}

/**
 * Adds the read check to every route of `app` (call it before the route plugins are registered).
 * A request with an Authorization header is judged by it alone; without one, by its session cookie.
 */
export function guardReads (app: FastifyInstance, { tokens, sessions, now, refused }: ReadGuardOptions): void {
  app.addHook('onRequest', async (req, reply) => {
    if (accessOf(req.routeOptions.url, req.url) !== 'read') return
    const header = req.headers.authorization
    if (header !== undefined) {
      const token = bearerToken(header)
      if (token !== null && tokens.roleOf(token) !== null) return
      const reason: ReadRefusal = token === null ? 'missing' : 'invalid'
      refused.inc({ scope: 'read', reason })
      return await refuseRead(reply, reason)
    }
    const session = sessions.check(req.headers.cookie, now())
    if (session === 'ok') return
    refused.inc({ scope: 'read', reason: session })
    return await refuseRead(reply, session, true)
  })
}
