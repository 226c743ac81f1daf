#!/usr/bin/env node
// Builds the dashboard (web/ → web/dist) with Vite's JS API, only when web/dist is missing or older
// than a source file under web/ or package-lock.json. Prints one line either way.
//   node scripts/build-web.mjs [--force]
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const web = join(root, 'web')
const dist = join(web, 'dist')
const marker = join(dist, 'index.html')

/** Newest modification time of the files under dir, skipping dist and node_modules. */
function newestMtime (dir) {
  let newest = 0
  let file = ''
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (p === dist || entry.name === 'node_modules') continue
      const sub = newestMtime(p)
      if (sub.mtime > newest) ({ mtime: newest, file } = sub)
    } else {
      const m = statSync(p).mtimeMs
      if (m > newest) { newest = m; file = p }
    }
  }
  return { mtime: newest, file }
}

/** Why web/dist must be rebuilt, or null when it is up to date. */
export function staleReason () {
  if (!existsSync(marker)) return 'web/dist is missing'
  const built = statSync(marker).mtimeMs
  const src = newestMtime(web)
  if (src.mtime > built) return `${relative(root, src.file)} changed`
  const lock = join(root, 'package-lock.json')
  if (existsSync(lock) && statSync(lock).mtimeMs > built) return 'package-lock.json changed'
  return null
}

export async function buildWeb ({ force = false } = {}) {
  const reason = force ? 'forced' : staleReason()
  if (reason === null) {
    console.log('web: web/dist is up to date')
    return false
  }
  const t0 = Date.now()
  const { build } = await import('vite')
  await build({ configFile: join(web, 'vite.config.ts'), logLevel: 'warn' })
  console.log(`web: built web/dist in ${((Date.now() - t0) / 1000).toFixed(1)} s (${reason})`)
  return true
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildWeb({ force: process.argv.includes('--force') }).catch(err => {
    console.error(`web: build failed: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  })
}
