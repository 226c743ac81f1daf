#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node:test through tsx.
// Node 20's --test takes no globs, so the files are listed here. Extra args narrow the set:
//   npm test -- src/windowing      (only files whose path contains one of the args)
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

function walk (dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

const filters = process.argv.slice(2)
const files = ['src', 'test'].flatMap(d => walk(d, []))
  .filter(f => filters.length === 0 || filters.some(x => f.includes(x)))
  .sort()
if (files.length === 0) {
  console.error('No test files matched.')
  process.exit(1)
}
// One file at a time: the Kafka suite restarts the shared broker, which other files must not see.
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: 'inherit'
})
process.exit(r.status ?? 1)
