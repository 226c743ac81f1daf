// A list endpoint: GET with a querystring schema, answering `{ count, <name>: the rows as JSON }`.
import { type FastifyInstance } from 'fastify'
import { type Static, type TSchema } from '@sinclair/typebox'

export function listRoute<Query extends TSchema, Row, Json> (
  app: FastifyInstance,
  url: string,
  query: Query,
  name: string,
  load: (q: Static<Query>) => Promise<readonly Row[]>,
  json: (row: Row) => Json
): void {
  app.get<{ Querystring: Static<Query> }>(url, { schema: { querystring: query } }, async (req) => {
    const rows = await load(req.query)
    return { count: rows.length, [name]: rows.map(json) }
  })
}
