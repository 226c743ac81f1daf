// The module rule of DESIGN.md section 4: a folder with an index.ts is a module, and code outside
// it imports only that index.ts, never a file inside. Checked on every import of src/, test/ and
// bench/ (`import … from`, `export … from`, `import('…')`).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'

const root = resolve(import.meta.dirname, '..')

function sources (dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) {
      if (name !== 'node_modules' && name !== 'fixtures') sources(p, out)
    } else if (/\.(ts|mjs)$/.test(name)) out.push(p)
  }
  return out
}

/** The outermost module (folder with an index.ts under src/) holding `file` that does not also hold `from`. */
function moduleEntered (file: string, from: string): string | null {
  const src = join(root, 'src')
  let dir = dirname(file)
  let entered: string | null = null
  while (dir.startsWith(src + sep)) {
    const holdsImporter = from.startsWith(dir + sep)
    if (holdsImporter) break
    if (existsSync(join(dir, 'index.ts'))) entered = dir
    dir = dirname(dir)
  }
  return entered
}

test('layout - code outside a module imports only its index.ts', () => {
  const files = ['src', 'test', 'bench'].flatMap(d => sources(join(root, d)))
  const breaches: string[] = []
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(file), m[1]!)
      const mod = moduleEntered(target, file)
      if (mod !== null && target !== join(mod, 'index.ts')) breaches.push(`${relative(root, file)} -> ${relative(root, target)}`)
    }
  }
  assert.deepEqual(breaches, [])
})

test('layout - every folder of src/ with code is a module with an index.ts', () => {
  const missing: string[] = []
  const walk = (dir: string): void => {
    const names = readdirSync(dir)
    const code = names.some(n => n.endsWith('.ts') && !n.endsWith('.test.ts'))
    if (code && dir !== join(root, 'src') && !names.includes('index.ts')) missing.push(relative(root, dir))
    for (const n of names) {
      const p = join(dir, n)
      if (statSync(p).isDirectory() && n !== 'migrations' && n !== 'fixtures') walk(p)
    }
  }
  walk(join(root, 'src'))
  assert.deepEqual(missing, [])
})
