// The dashboard: the built web app at /, its index for any other page path (client-side state lives
// in the query string), a JSON 404 for unknown /api paths and other methods. Without a build, / says
// how to make one.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type FastifyPluginAsync } from 'fastify'
import fastifyStatic from '@fastify/static'

export interface WebRoutesOptions {
  /** Folder of the built dashboard (null: no dashboard). */
  webRoot: string | null
}

export const webRoutes: FastifyPluginAsync<WebRoutesOptions> = async (app, { webRoot }) => {
  if (webRoot !== null && existsSync(join(webRoot, 'index.html'))) {
    await app.register(fastifyStatic, { root: webRoot, wildcard: false })
    // Set in this plugin, the handler still answers every unmatched path (there is one per prefix, and
    // this plugin has none); it runs in this plugin's context, where reply.sendFile exists.
    app.setNotFoundHandler((req, reply) => {
      if (req.method !== 'GET' || req.url.startsWith('/api/')) return reply.code(404).send({ error: 'not_found', code: 'IOT_ERR_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` })
      return reply.sendFile('index.html')
    })
  } else {
    app.get('/', async (_req, reply) => reply.type('text/html').send(
      '<!doctype html><title>iot-monitor</title><p>The dashboard is not built: run <code>npm run build:web</code> (npm start does it). The API is at <a href="/api/meta">/api/meta</a>.</p>'))
  }
}
