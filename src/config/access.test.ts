import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { isLoopback, readRequiresToken } from './access.ts'

const VIEWER = 'viewer-token-0123456789'
const ADMIN = 'admin-token-0123456789'
const access = (host: string, over: { viewerToken?: string, adminToken?: string, allowAnonymousRead?: boolean } = {}): boolean =>
  readRequiresToken({ host, port: 8080, viewerToken: over.viewerToken ?? null, adminToken: over.adminToken ?? null, allowAnonymousRead: over.allowAnonymousRead ?? false })

describe('isLoopback', () => {
  test('127.0.0.0/8, ::1 in its spellings, IPv4-mapped 127.x and localhost are loopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '127.255.255.254', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST', 'localhost.']) {
      assert.equal(isLoopback(h), true, h)
    }
  })

  test('every other address or name is not: the wildcards, private and public addresses, host names', () => {
    for (const h of ['0.0.0.0', '::', '[::]', '192.168.1.10', '10.0.0.1', '128.0.0.1', '::2', '::ffff:10.0.0.1', 'fe80::1', 'my-host', 'localhost.example.com', '']) {
      assert.equal(isLoopback(h), false, h)
    }
  })
})

describe('readRequiresToken', () => {
  test('loopback without a viewer token: nothing is asked (npm start stays zero-config), also with an admin token', () => {
    assert.equal(access('127.0.0.1'), false)
    assert.equal(access('localhost', { adminToken: ADMIN }), false)
  })

  test('a viewer token is required wherever the API listens (a reverse proxy on the same machine)', () => {
    assert.equal(access('127.0.0.1', { viewerToken: VIEWER }), true)
    assert.equal(access('0.0.0.0', { viewerToken: VIEWER }), true)
  })

  test('beyond loopback: the admin token alone is asked for reading; --allow-anonymous-read opens it', () => {
    assert.equal(access('0.0.0.0', { adminToken: ADMIN }), true)
    assert.equal(access('192.168.1.10', { allowAnonymousRead: true }), false)
    assert.equal(access('::', { adminToken: ADMIN, allowAnonymousRead: true }), false)
  })

  test('beyond loopback with no token: IOT_ERR_CONFIG saying what to give', () => {
    assert.throws(() => access('0.0.0.0'), {
      name: 'IotError',
      code: 'IOT_ERR_CONFIG',
      message: '--host 0.0.0.0 serves the API beyond this machine, where reading it needs a token, and none is configured: ' +
        'give IOT_VIEWER_TOKEN=<at least 16 characters> (or --viewer-token; e.g. from `openssl rand -base64 32`) for the dashboard and scrapers, ' +
        'and IOT_ADMIN_TOKEN (or --admin-token) to manage devices; or --allow-anonymous-read to let anyone who reaches port 8080 read everything; ' +
        'or --host 127.0.0.1 to stay on this machine'
    })
  })
})
