#!/usr/bin/env node
// Builds what production runs: src/ compiled to dist/ (tsc, tsconfig.build.json, plus the SQL
// migrations and the plain .mjs entries), and the dashboard (web/ → web/dist, see build-web.mjs).
// Each part is rebuilt only when a source is newer than its build, unless --force.
//   node scripts/build.mjs [--force]
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildWeb } from './build-web.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const src = join(root, 'src')
const dist = join(root, 'dist')
const marker = join(dist, '.built')
/** Files of src/ that production does not run: tests, test fixtures, and dev-only tooling. */
const notShipped = (p) => /\.(test|fixture)\.ts$/.test(p) || p.includes('/fixtures/') || p.endsWith('simd-assemble.ts') || p.endsWith('trainer-thread.mjs')
/** Files copied as they are (tsc emits only .ts): migrations and plain ES modules run in child processes. */
const asset = (p) => p.endsWith('.sql') || p.endsWith('.mjs')

function files (dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    if (entry.isDirectory()) files(p, out)
    else if (!notShipped(p)) out.push(p)
  }
  return out
}

/** Why dist/ must be rebuilt, or null when it is up to date. */
function staleReason () {
  if (!existsSync(marker)) return 'dist is missing'
  const built = statSync(marker).mtimeMs
  for (const f of [...files(src), join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json'), join(root, 'package-lock.json')]) {
    if (existsSync(f) && statSync(f).mtimeMs > built) return `${relative(root, f)} changed`
  }
  return null
}

function buildServer (force) {
  const reason = force ? 'forced' : staleReason()
  if (reason === null) {
    console.log('server: dist is up to date')
    return
  }
  let tsc
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  } catch {
    throw new Error(`dist must be built (${reason}) but TypeScript is not installed: run \`npm ci\` (with dev dependencies), then \`npm run build\``)
  }
  const t0 = Date.now()
  rmSync(dist, { recursive: true, force: true })
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
  if (r.status !== 0) throw new Error(`tsc exited with ${r.status ?? r.signal}`)
  for (const f of files(src).filter(asset)) {
    const to = join(dist, relative(src, f))
    mkdirSync(dirname(to), { recursive: true })
    copyFileSync(f, to)
  }
  writeFileSync(marker, `${new Date().toISOString()}\n`)
  console.log(`server: built dist in ${((Date.now() - t0) / 1000).toFixed(1)} s (${reason})`)
}

const force = process.argv.includes('--force')
try {
  buildServer(force)
  await buildWeb({ force })
} catch (err) {
  console.error(`build failed: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
}
