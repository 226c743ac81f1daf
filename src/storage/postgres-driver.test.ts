// The fixes scripts/patch-postgres.mjs (the postinstall) applies to postgres.js 3.4.x for a
// PostgreSQL server that restarts or drops connections, each against the real server (none of them
// shows on PGlite, which has no socket): a query on a connection whose socket is gone must reject
// with a catchable error, never throw from a timer (porsager/postgres#1208) nor hang, and a
// connection whose socket died with a write queued must connect again (LanternOps/breeze#3225).
// Then the script itself, on a pristine copy of the package.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { serverUrl } from '../../test/helpers/databases.ts'

/** How long a query may take to settle before the test calls it a hang. */
const SETTLE_MS = 5_000

type Outcome<T> = { value: T } | { error: unknown }

/**
 * Turns an uncaughtException while a test runs into a rejection of `uncaught` (the driver's defect
 * throws from a setImmediate callback, where no caller can catch it); `stop` removes the listener.
 */
function watchUncaught (): { uncaught: Promise<never>, stop: () => void } {
  let fail: (err: Error) => void = () => {}
  const uncaught = new Promise<never>((_resolve, reject) => { fail = reject })
  uncaught.catch(() => {}) // awaited only through settle()
  const listener = (err: Error): void => { fail(new Error(`uncaughtException: ${err.message}`, { cause: err })) }
  process.on('uncaughtException', listener)
  return { uncaught, stop: () => { process.off('uncaughtException', listener) } }
}

/** How `p` settles; throws when it does not within `ms`, or when an uncaught exception comes first. */
async function settle<T> (p: Promise<T>, what: string, uncaught: Promise<never>, ms = SETTLE_MS): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p.then(value => ({ value }), (error: unknown) => ({ error })),
      uncaught,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} did not settle within ${ms} ms`)) }, ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The error `p` rejected with (fails when it resolved). */
function rejection (outcome: Outcome<unknown>, what: string): Error & { code?: string } {
  assert.ok('error' in outcome, `${what} resolved, it should have been rejected`)
  assert.ok(outcome.error instanceof Error, `${what} rejected with a non-error: ${String(outcome.error)}`)
  return outcome.error
}

/** The value `p` resolved with (fails, showing the error, when it rejected). */
function resolution<T> (outcome: Outcome<T>, what: string): T {
  if ('error' in outcome) assert.fail(`${what} rejected: ${(outcome.error as Error).message} (${(outcome.error as { code?: string }).code})`)
  return outcome.value
}

/** postgres.js returns arrays of its own class (Result): compare as plain arrays. */
const plain = (rows: readonly object[]): object[] => rows.map(r => ({ ...r }))

describe('postgres.js on a PostgreSQL server whose connections die', { skip: serverUrl === null ? 'DATABASE_URL is not set (start a server: eval "$(npm run -s services:up)")' : false }, () => {
  const url = serverUrl ?? ''
  let admin: postgres.Sql
  before(() => { admin = postgres(url, { max: 1, onnotice: () => {} }) })
  after(async () => { await admin.end({ timeout: 5 }) })

  /**
   * Client options whose `socket` (an option postgres.js documents but its .d.ts lacks, hence the
   * variable rather than a literal) opens real TCP connections to the server; `onSocket` sees each
   * one, connected, before the driver gets it, and may delay handing it over.
   */
  function withSockets (onSocket: (s: Socket, n: number) => Promise<void> | void, extra: { max: number, connect_timeout?: number }) {
    const { hostname, port } = new URL(url)
    const sockets: Socket[] = []
    const options = {
      onnotice: () => {},
      ...extra,
      socket: async () => {
        const s = connect({ host: hostname, port: Number(port === '' ? 5432 : port) })
        await once(s, 'connect')
        sockets.push(s)
        await onSocket(s, sockets.length)
        return s
      }
    }
    return { options, sockets }
  }

  test('a reserved connection whose backend was terminated rejects its next queries with CONNECTION_CLOSED instead of throwing from nextWrite (porsager/postgres#1208)', async () => {
    const sql = postgres(url, { max: 2, onnotice: () => {} })
    const { uncaught, stop } = watchUncaught()
    try {
      const reserved = await sql.reserve()
      const [backend] = await reserved<Array<{ pid: number }>>`select pg_backend_pid() as pid`
      assert.ok(backend !== undefined)
      const [killed] = await admin<Array<{ ok: boolean }>>`select pg_terminate_backend(${backend.pid}) as ok`
      assert.equal(killed?.ok, true, 'the reserved connection\'s backend was terminated')

      // The first query meets the dying socket: the server's FIN (CONNECTION_CLOSED) or its RST
      // (ECONNRESET; EPIPE when the write comes after it), whichever the kernel reports first.
      const first = rejection(await settle(reserved`select 1`, 'the first query after the kill', uncaught), 'the first query after the kill')
      assert.ok(['CONNECTION_CLOSED', 'ECONNRESET', 'EPIPE'].includes(first.code ?? ''), `first query: ${first.code} ${first.message}`)
      // Unpatched, the next query's deferred write runs `socket.write` on the null socket: an
      // uncaughtException (or, after an RST, the query is written into the destroyed socket and
      // never settles). The later queries find no socket at all; a statement of 1024 bytes or more
      // is written at once instead of deferred, and must not leave the connection waiting for a
      // 'drain' either (the query after it would never be sent).
      const large = `select 1 -- ${'x'.repeat(1024)}`
      for (const [which, query] of [['second', () => reserved`select 1`], ['third', () => reserved`select 1`],
        ['large', () => reserved.unsafe(large)], ['second large', () => reserved.unsafe(large)]] as const) {
        const err = rejection(await settle(query(), `the ${which} query after the kill`, uncaught), `the ${which} query after the kill`)
        assert.equal(err.code, 'CONNECTION_CLOSED', `${which} query: ${err.message}`)
      }
    } finally {
      stop()
      // end() without a timeout would wait for the rejected query forever (porsager/postgres#1130).
      await sql.end({ timeout: 1 })
    }
  })

  test('a connection whose socket closed while its StartupMessage flush was queued connects again (LanternOps/breeze#3225)', async () => {
    // The first socket hands itself to the driver from a setImmediate callback, so the driver's
    // connected() runs in the check phase and its write(StartupMessage), smaller than 1024 bytes,
    // queues the flush with setImmediate for the next turn of the event loop; the socket is
    // destroyed in that same check phase, and libuv runs close callbacks at the end of the turn:
    // the real 'close' event reaches closed() before the queued flush. That is the order of a
    // socket that dies the turn a write was deferred, without emitting anything ourselves.
    // Unpatched, closed() cancels the flush but leaves `nextWriteTimer` set, so the reconnect's
    // StartupMessage is never sent: CONNECT_TIMEOUT, on every later attempt too.
    const { options, sockets } = withSockets(async (s, n) => {
      if (n === 1) await new Promise<void>(resolve => { setImmediate(resolve); setImmediate(() => { s.destroy() }) })
    }, { max: 1, connect_timeout: 2 })
    const sql = postgres(url, options)
    const { uncaught, stop } = watchUncaught()
    try {
      for (const which of ['first', 'second']) {
        const rows = resolution(await settle(sql<Array<{ x: number }>>`select 1 as x`, `the ${which} query`, uncaught), `the ${which} query`)
        assert.deepEqual(plain(rows), [{ x: 1 }])
      }
      assert.equal(sockets.length, 2, 'one socket destroyed during the startup, one that worked')
      assert.deepEqual(sockets.map(s => s.destroyed), [true, false])
    } finally {
      stop()
      await sql.end({ timeout: 1 })
    }
  })

  /** Waits until the backend `pid` runs a statement. */
  async function untilActive (pid: number | undefined): Promise<void> {
    assert.ok(pid !== undefined)
    for (const deadline = Date.now() + SETTLE_MS; Date.now() < deadline;) {
      const [row] = await admin<Array<{ state: string | null }>>`select state from pg_stat_activity where pid = ${pid}`
      if (row?.state === 'active') return
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    assert.fail(`backend ${pid} did not start its statement within ${SETTLE_MS} ms`)
  }

  test('a query sent between the socket\'s error and close events rejects with CONNECTION_CLOSED instead of hanging', async () => {
    // A connection reset: Node destroys the socket with the error (ECONNRESET) and emits 'error'
    // at once, 'close' only at the end of the event-loop turn. The driver rejects the running
    // query on 'error'; a query sent right after (a retry) is written into the destroyed socket,
    // which drops it silently, and unpatched closed(hadError) settles nothing: it hangs.
    const { options, sockets } = withSockets(() => {}, { max: 1 })
    const sql = postgres(url, options)
    const { uncaught, stop } = watchUncaught()
    let pid: number | undefined
    try {
      const reserved = await sql.reserve()
      pid = (await reserved<Array<{ pid: number }>>`select pg_backend_pid() as pid`)[0]?.pid
      assert.equal(sockets.length, 1)
      // settle() subscribes at once, and a postgres.js query is sent when it is subscribed to.
      const running = settle(reserved`select pg_sleep(5)`, 'the running query', uncaught)
      await untilActive(pid)
      // Destroyed here, in the poll phase (the server's reply just came in): the driver gets
      // 'error' before this turn ends, the next query's deferred write runs in its check phase,
      // 'close' at its end.
      const reset = Object.assign(new Error('read ECONNRESET (simulated)'), { code: 'ECONNRESET' })
      sockets[0]?.destroy(reset)
      const first = rejection(await running, 'the running query')
      assert.equal(first, reset, 'the running query rejects with the socket\'s error')
      const err = rejection(await settle(reserved`select 1`, 'the query sent after the error', uncaught), 'the query sent after the error')
      assert.equal(err.code, 'CONNECTION_CLOSED', err.message)
    } finally {
      stop()
      if (pid !== undefined) await admin`select pg_terminate_backend(${pid})`
      await sql.end({ timeout: 1 })
    }
  })
})

describe('scripts/patch-postgres.mjs', () => {
  const script = fileURLToPath(new URL('../../scripts/patch-postgres.mjs', import.meta.url))
  // Where Node finds postgres from here, as the script looks for it.
  const installed = (createRequire(import.meta.url).resolve.paths('postgres') ?? [])
    .map(d => join(d, 'postgres')).find(d => existsSync(join(d, 'package.json'))) ?? 'node_modules/postgres'
  const { version } = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { version: string }
  const files = ['src', 'cjs/src', 'cf/src'].map(d => `${d}/connection.js`)
  const markers = ['PR #1183; patched by iot-monitor', 'PR #1209; patched by iot-monitor', 'breeze#3225; patched by iot-monitor', 'after \'error\'; patched by iot-monitor']
  const dir = mkdtempSync(join(tmpdir(), 'patch-postgres-'))
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  // A pristine copy of the installed version: from npm's cache (`npm ci` put it there), else the registry.
  const pack = spawnSync('npm', ['pack', `postgres@${version}`, '--prefer-offline', '--silent', '--pack-destination', dir], { encoding: 'utf8', timeout: 60_000 })
  const packed = pack.status === 0 ? pack.stdout.trim().split('\n').pop() : undefined
  const pristine = join(dir, 'pristine')
  const untar = packed === undefined
    ? null
    : spawnSync('sh', ['-c', 'mkdir -p "$2" && tar xzf "$1" -C "$2" --strip-components=1', 'sh', join(dir, packed), pristine], { encoding: 'utf8' })
  // In CI the script's tests always run (they fail there when the package cannot be had).
  const skip = untar?.status === 0 || process.env.CI === 'true' ? false : `postgres@${version} could not be packed (${(pack.stderr + (untar?.stderr ?? '')).trim().split('\n')[0]})`

  const run = (pkg: string) => spawnSync(process.execPath, [script, pkg], { encoding: 'utf8', timeout: 30_000 })
  const read = (pkg: string): string[] => files.map(f => readFileSync(join(pkg, f), 'utf8'))

  test('patches a pristine package: each fix once in every connection.js, lines only added, then nothing to do', { skip }, () => {
    const pkg = join(dir, 'fresh')
    cpSync(pristine, pkg, { recursive: true })
    const before = read(pkg)
    for (const text of before) for (const m of markers) assert.equal(text.includes(m), false, `pristine has ${m}`)
    const first = run(pkg)
    assert.equal(first.status, 0, first.stderr)
    assert.match(first.stdout, new RegExp(`^patch-postgres: postgres ${version.replace(/\./g, '\\.')} patched: src/connection\\.js`))
    const patched = read(pkg)
    patched.forEach((text, i) => {
      // 1 + 2 markers (breeze#3225 patches terminate() and closed()) + 1.
      assert.deepEqual(markers.map(m => text.split(m).length - 1), [1, 1, 2, 1], files[i])
      const lines = text.split('\n')
      const old = (before[i] ?? '').split('\n')
      assert.equal(lines.length - old.length, 2 + 7 + 2 + 2 + 2, `${files[i]}: lines added`)
      // Every pristine line is still there, in order.
      let j = 0
      for (const line of lines) if (line === old[j]) j++
      assert.equal(j, old.length, `${files[i]} kept every line of the pristine file`)
    })
    // The installed package is the same patch of the same version.
    assert.deepEqual(patched, read(installed), 'node_modules/postgres carries exactly this patch')
    const again = run(pkg)
    assert.equal(again.status, 0, again.stderr)
    assert.equal(again.stdout.trim(), `patch-postgres: postgres ${version} already patched (4 fixes)`)
    assert.deepEqual(read(pkg), patched)
  })

  test('refuses, changing no file, when the code a fix applies to is missing', { skip }, () => {
    const pkg = join(dir, 'reshaped')
    cpSync(pristine, pkg, { recursive: true })
    const cf = join(pkg, 'cf/src/connection.js')
    writeFileSync(cf, readFileSync(cf, 'utf8').replace('  function nextWrite(fn) {\n', '  function nextWrite(fn, x) {\n'))
    const before = read(pkg)
    const r = run(pkg)
    assert.equal(r.status, 1)
    assert.match(r.stderr, /^patch-postgres: cf\/src\/connection\.js \(postgres [\d.]+\) does not contain the code the fix "nextWrite on a closed socket \(PR #1209\)" applies to:\n {2}function nextWrite\(fn\) \{\n$/)
    assert.deepEqual(read(pkg), before, 'src and cjs/src were not patched either')
  })
})
