#!/usr/bin/env node
// postinstall: applies the one-line fix of porsager/postgres PR #1183 to the installed postgres.js
// (3.4.x), with nothing but Node (so `npm ci --omit=dev` and installs of the packed tarball get it).
// Without it a COPY … FROM STDIN that the server rejects, or whose connection drops, never settles:
// the batch transaction would hang instead of rolling back (porsager/postgres#1173). The storage
// tests guard it (a duplicate key must fail a batch within seconds). Drop this once a postgres
// release carries the fix.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const anchor = '  function errored(err) {\n    stream && (stream.destroy(err), stream = null)\n'
const fix = '    // Settle a COPY FROM STDIN the server rejected or whose connection dropped (porsager/postgres#1173, PR #1183; patched by iot-monitor)\n' +
  '    final && (final(err), final = null)\n'

// The folder npm installed postgres in (its package.json is not among its exports: search the lookup paths).
const root = (createRequire(import.meta.url).resolve.paths('postgres') ?? [])
  .map(dir => join(dir, 'postgres')).find(dir => existsSync(join(dir, 'package.json')))
if (root === undefined) {
  console.error('patch-postgres: the postgres package is not installed')
  process.exit(1)
}
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
if (!version.startsWith('3.4.')) {
  console.error(`patch-postgres: made for postgres 3.4.x, found ${version}: check whether it still needs the COPY fix, then update scripts/patch-postgres.mjs`)
  process.exit(1)
}
let patched = 0
for (const dir of ['src', 'cjs/src', 'cf/src']) {
  const file = join(root, dir, 'connection.js')
  if (!existsSync(file)) continue
  const text = readFileSync(file, 'utf8')
  if (text.includes('final && (final(err), final = null)')) continue
  if (!text.includes(anchor)) {
    console.error(`patch-postgres: ${file} (postgres ${version}) does not have the code the fix applies to`)
    process.exit(1)
  }
  writeFileSync(file, text.replace(anchor, anchor + fix))
  patched++
}
console.log(`patch-postgres: postgres ${version} ${patched > 0 ? `patched (${patched} files)` : 'already patched'}`)
