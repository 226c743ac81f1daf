#!/usr/bin/env node
// postinstall: applies four small fixes to the installed postgres.js (3.4.x; 3.4.10, the latest
// 3.x, still has none of them), with nothing but Node (so `npm ci --omit=dev` and installs of the
// packed tarball get it). Each fix is marked in the code by a comment ending in "patched by
// iot-monitor" and is detected by its own marker, so running this again changes nothing and a
// release that reshapes the code fails loudly instead of going unpatched. The fixes:
//
//  1. COPY FROM STDIN settling: porsager/postgres#1173, fix of PR #1183. Without it a COPY the
//     server rejects, or whose connection drops, never settles: the batch transaction would hang
//     instead of rolling back. Guarded by the storage tests (a duplicate key must fail a batch within
//     seconds). Drop once a postgres release merges PR #1183.
//  2. nextWrite() on a closed socket: porsager/postgres#1154 and #1208, fix of PR #1209. A write
//     deferred with setImmediate, or any write to a connection whose socket closed (a reserved one
//     whose backend died), ran `socket.write` on null: an uncatchable TypeError that took the
//     process down when PostgreSQL restarted. Patched, the queries reject with CONNECTION_CLOSED.
//     Guarded by src/storage/postgres-driver.test.ts. Drop once a release merges PR #1209 (or
//     otherwise guards nextWrite and settles the pending queries).
//  3. Pool poisoning: LanternOps/breeze#3225. terminate() and closed() cancel the deferred write
//     with clearImmediate but leave `nextWriteTimer` set (and the unsent `chunk` queued), so
//     write() never schedules a flush again: every reconnect's StartupMessage stays unsent
//     (CONNECT_TIMEOUT forever) or queries hang. Patched, both reset `chunk = nextWriteTimer = null`.
//     Guarded by src/storage/postgres-driver.test.ts. Drop once a release resets nextWriteTimer
//     in terminate() and closed().
//  4. Queries sent between a socket's 'error' and 'close' events (no upstream issue found; seen
//     in the #1208 repro about every other run, when the server's close arrives as an RST): the
//     'error' rejects the queries pending then, a query sent right after is written into the
//     destroyed socket (Node drops it), and closed() settles nothing when hadError: it hangs.
//     Patched, closed() settles them with CONNECTION_CLOSED whether or not the socket had an error.
//     Guarded by src/storage/postgres-driver.test.ts. Drop once a release does that.
//
// Usage: node scripts/patch-postgres.mjs [package-dir]
//   package-dir: the postgres package folder to patch (default: the one Node resolves from here;
//   the tests pass a copy of a pristine package).
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'

const MARK = 'patched by iot-monitor'

/**
 * Each fix: `marker` (in the comment it adds, once per edit) and its edits; an edit inserts
 * `insert` right after `anchor`, which must occur exactly once in the pristine file.
 */
const fixes = [
  {
    name: 'COPY FROM STDIN settling (PR #1183)',
    marker: `(porsager/postgres#1173, PR #1183; ${MARK})`,
    edits: [{
      anchor: '  function errored(err) {\n' +
        '    stream && (stream.destroy(err), stream = null)\n',
      insert: `    // Settle a COPY FROM STDIN the server rejected or whose connection dropped (porsager/postgres#1173, PR #1183; ${MARK})\n` +
        '    final && (final(err), final = null)\n'
    }]
  },
  {
    name: 'nextWrite on a closed socket (PR #1209)',
    marker: `(porsager/postgres#1154, #1208, PR #1209; ${MARK})`,
    edits: [{
      anchor: '  function nextWrite(fn) {\n',
      // error() (not errored()) also rejects the queries in `sent`, the ones pipelined behind the
      // current one; it only rejects promises, so it cannot throw here. true, as for a write that
      // socket.write accepted: false would park the connection in the `full` queue waiting for a
      // 'drain' that no socket will emit, and queries sent to it later (a reserved connection)
      // would then never reach execute() and never settle.
      insert: `    // No socket (closed() dropped it): settle the queries with a catchable CONNECTION_CLOSED instead of an uncaught TypeError from a timer (porsager/postgres#1154, #1208, PR #1209; ${MARK})\n` +
        '    if (!socket) {\n' +
        '      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n' +
        '      chunk = nextWriteTimer = null\n' +
        "      error(Errors.connection('CONNECTION_CLOSED', options))\n" +
        '      return true\n' +
        '    }\n'
    }]
  },
  {
    name: 'deferred write reset in terminate() and closed() (breeze#3225)',
    marker: `(LanternOps/breeze#3225; ${MARK})`,
    edits: [
      {
        anchor: '  function terminate() {\n' +
          '    terminated = true\n' +
          '    if (stream || query || initial || sent.length)\n' +
          "      error(Errors.connection('CONNECTION_DESTROYED', options))\n" +
          '\n' +
          '    clearImmediate(nextWriteTimer)\n',
        insert: `    // Forget the cancelled write, or write() never schedules a flush again on this connection (LanternOps/breeze#3225; ${MARK})\n` +
          '    chunk = nextWriteTimer = null\n'
      },
      {
        anchor: '  async function closed(hadError) {\n' +
          '    incoming = Buffer.alloc(0)\n' +
          '    remaining = 0\n' +
          '    incomings = null\n' +
          '    clearImmediate(nextWriteTimer)\n',
        insert: `    // Forget the cancelled write, or write() never schedules a flush again on this connection (LanternOps/breeze#3225; ${MARK})\n` +
          '    chunk = nextWriteTimer = null\n'
      }
    ]
  },
  {
    name: "queries sent between the socket's 'error' and 'close' (no upstream issue yet)",
    marker: `(queries sent after 'error'; ${MARK})`,
    edits: [{
      anchor: "    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))\n",
      // On a reset the socket emits 'error' (error() settles the queries pending then) and 'close'
      // (hadError) only later in the loop; a query sent in between is written into the destroyed
      // socket, which Node drops without a word. error() on a query it already rejected is a no-op.
      insert: `    // Settle the queries sent after the 'error' event too: their writes went nowhere (queries sent after 'error'; ${MARK})\n` +
        "    hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))\n"
    }]
  }
]

const count = (text, part) => text.split(part).length - 1

/** The patched text of one connection.js, and the names of the fixes it applied. */
function patchText (text, file) {
  const applied = []
  for (const fix of fixes) {
    const marks = count(text, fix.marker)
    if (marks === fix.edits.length) continue
    if (marks !== 0) {
      throw new Error(`${file} is partly patched for ${fix.name} (${marks} of ${fix.edits.length} markers): reinstall postgres`)
    }
    for (const { anchor, insert } of fix.edits) {
      const n = count(text, anchor)
      if (n !== 1) {
        throw new Error(`${file} ${n === 0 ? 'does not contain' : `contains ${n} copies of`} the code the fix "${fix.name}" applies to:\n${anchor.trimEnd()}`)
      }
      text = text.replace(anchor, () => anchor + insert)
    }
    applied.push(fix.name)
  }
  return { text, applied }
}

function fail (message) {
  console.error(`patch-postgres: ${message}`)
  process.exit(1)
}

// The folder npm installed postgres in (its package.json is not among its exports: search the lookup paths).
const root = process.argv[2] !== undefined
  ? resolve(process.argv[2])
  : (createRequire(import.meta.url).resolve.paths('postgres') ?? [])
      .map(dir => join(dir, 'postgres')).find(dir => existsSync(join(dir, 'package.json')))
if (root === undefined || !existsSync(join(root, 'package.json'))) {
  fail(`the postgres package is not installed${root === undefined ? '' : ` in ${root}`}`)
}
const { name, version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
if (name !== 'postgres' || !version.startsWith('3.4.')) {
  fail(`made for postgres 3.4.x, found ${name} ${version} in ${root}: check which of the fixes it still needs, then update scripts/patch-postgres.mjs`)
}

// Check every file before writing any, so a failure leaves the package as it was.
const results = []
try {
  for (const dir of ['src', 'cjs/src', 'cf/src']) {
    const file = join(root, dir, 'connection.js')
    if (!existsSync(file)) continue
    results.push({ dir, file, ...patchText(readFileSync(file, 'utf8'), `${dir}/connection.js (postgres ${version})`) })
  }
} catch (err) {
  fail(err.message)
}
if (results.length === 0) fail(`no connection.js in ${root}`)
for (const { file, text, applied } of results) {
  if (applied.length > 0) writeFileSync(file, text)
}
const changed = results.filter(r => r.applied.length > 0)
console.log(changed.length === 0
  ? `patch-postgres: postgres ${version} already patched (${fixes.length} fixes)`
  : `patch-postgres: postgres ${version} patched: ${changed.map(r => `${r.dir}/connection.js (${r.applied.join(', ')})`).join('; ')}`)
