// POST /api/session: the dashboard sends its token (`Authorization: Bearer <viewer or admin token>`)
// and gets a session cookie for the live stream, which the browser's EventSource cannot send a
// header to (see ../session.ts). 200 {role, expires_at}; 401 for a missing or wrong token, counted
// as a read refusal. Where reading needs no token, 200 {role: null, expires_at: null} and no cookie.
import { type FastifyPluginAsync } from 'fastify'
import { type Counter } from 'prom-client'
import { refuseRead } from '../refusals.ts'
import { type SessionJson } from '../contract.ts'
import { iso } from '../json.ts'
import { querySchema } from '../query.ts'
import { type SessionCookies } from '../session.ts'
import { type ApiTokens, bearerToken } from '../tokens.ts'

export interface SessionRoutesOptions {
  tokens: ApiTokens
  sessions: SessionCookies
  /** Reading needs a token here; else there is nothing to open a session for. */
  readRequiresToken: boolean
  now: () => number
  refused: Counter<'scope' | 'reason'>
}

export const sessionRoutes: FastifyPluginAsync<SessionRoutesOptions> = async (app, { tokens, sessions, readRequiresToken, now, refused }) => {
  app.post('/api/session', { schema: { querystring: querySchema({}) } }, async (req, reply): Promise<SessionJson> => {
    reply.header('cache-control', 'no-store')
    if (!readRequiresToken) return { role: null, expires_at: null }
    const token = bearerToken(req.headers.authorization)
    const role = token === null ? null : tokens.roleOf(token)
    if (role === null) {
      const reason = token === null ? 'missing' : 'invalid'
      refused.inc({ scope: 'read', reason })
      return await refuseRead(reply, reason)
    }
    const { value, expiresAt } = sessions.issue(now())
    reply.header('set-cookie', sessions.setCookie(value, req.protocol === 'https'))
    return { role, expires_at: iso(expiresAt) }
  })
}
