import { isIP } from 'node:net'
import { IotError } from '../domain/index.ts'
import { type Config } from './config.ts'

/** Whether `host` (the API's --host) is reachable from this machine only: 127.0.0.0/8, ::1, localhost. */
export function isLoopback (host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (h === 'localhost' || h === 'localhost.') return true
  const v4 = h.startsWith('::ffff:') && isIP(h.slice(7)) === 4 ? h.slice(7) : h
  if (isIP(v4) === 4) return v4.split('.')[0] === '127'
  if (isIP(h) === 6) return /^(0{0,4}:){2,7}0{0,3}1$/.test(h)
  return false
}

/**
 * Whether reading the API (/api/..., the live stream, /metrics) needs a viewer or admin token:
 * when a viewer token is configured (wherever the API listens), and when it listens beyond loopback
 * (unless --allow-anonymous-read). On loopback without a viewer token nothing is asked, so
 * `npm start` stays zero-config. Beyond loopback with no token at all, the API would be open to
 * the network: IOT_ERR_CONFIG, saying what to give.
 */
export function readRequiresToken (c: Pick<Config, 'host' | 'port' | 'viewerToken' | 'adminToken' | 'allowAnonymousRead'>): boolean {
  if (c.viewerToken !== null) return true
  if (isLoopback(c.host) || c.allowAnonymousRead) return false
  if (c.adminToken === null) {
    throw new IotError('IOT_ERR_CONFIG',
      `--host ${c.host} serves the API beyond this machine, where reading it needs a token, and none is configured: ` +
      'give IOT_VIEWER_TOKEN=<at least 16 characters> (or --viewer-token; e.g. from `openssl rand -base64 32`) for the dashboard and scrapers, ' +
      'and IOT_ADMIN_TOKEN (or --admin-token) to manage devices; or --allow-anonymous-read to let anyone who reaches ' +
      `port ${c.port} read everything; or --host 127.0.0.1 to stay on this machine`)
  }
  return true
}
