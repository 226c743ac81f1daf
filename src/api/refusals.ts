// The 401 of a read refused for its token (RFC 6750: WWW-Authenticate Bearer, error="invalid_token"
// when a token or session was given and is not good), in the API's error shape with a stable code.
import { type FastifyReply } from 'fastify'

export type ReadRefusal = 'missing' | 'invalid' | 'expired'

const REALM = 'Bearer realm="iot-monitor"'

const messages: Record<ReadRefusal | 'invalid_session', string> = {
  missing: 'reading this API needs a token: send "Authorization: Bearer <viewer or admin token>" (the dashboard asks for it)',
  invalid: 'wrong token: neither the viewer nor the admin token of this server',
  invalid_session: 'the session cookie is not valid here (were the tokens changed?): send the token again (POST /api/session with "Authorization: Bearer <token>")',
  expired: 'the session has expired: send the token again (POST /api/session with "Authorization: Bearer <token>")'
}

/** A 401 for a read refused for `reason` (`session`: it was the cookie that failed). */
export async function refuseRead (reply: FastifyReply, reason: ReadRefusal, session = false): Promise<FastifyReply> {
  const message = reason === 'invalid' && session ? messages.invalid_session : messages[reason]
  return await reply.code(401)
    .header('www-authenticate', reason === 'missing' ? REALM : `${REALM}, error="invalid_token"`)
    .header('cache-control', 'no-store')
    .send({ error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message })
}
