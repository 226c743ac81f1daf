import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { IotError } from '../domain/index.ts'
import { type Db } from './db.ts'

const dir = fileURLToPath(new URL('./migrations/', import.meta.url))
/** Arbitrary constant: serialises concurrent migrators (several workers starting at once). */
const LOCK_KEY = 727_001

/**
 * Applies the SQL files in migrations/ that have not run yet, in one transaction; with `upTo`,
 * only those up to that file name (tests of an upgrade from an older schema).
 */
export async function migrate (db: Db, opts: { upTo?: string } = {}): Promise<string[]> {
  const files = readdirSync(dir).filter(f => f.endsWith('.sql') && (opts.upTo === undefined || f <= opts.upTo)).sort()
  const applied: string[] = []
  await db.transaction(async tx => {
    // The lock first: two migrators on a fresh database would otherwise race to create the table.
    await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY])
    await tx.query('CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())')
    const done = new Set((await tx.query<{ name: string }>('SELECT name FROM schema_migrations')).map(r => r.name))
    for (const f of files) {
      if (done.has(f)) continue
      try {
        // Statements run one by one: the extended protocol takes one statement per call.
        for (const stmt of splitSql(readFileSync(join(dir, f), 'utf8'))) await tx.query(stmt)
      } catch (err) {
        throw new IotError('IOT_ERR_MIGRATION', `migration ${f} failed: ${(err as Error).message}`, { cause: err })
      }
      await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [f])
      applied.push(f)
    }
  })
  return applied
}

/**
 * Splits a migration script on semicolons at line ends, dropping comments, but never inside a
 * dollar-quoted body (`DO $$ … $$`). Our files keep no ';' or '--' inside strings.
 */
export function splitSql (script: string): string[] {
  const statements: string[] = []
  let current = ''
  let quoted = false
  for (const line of script.split(/\r?\n/)) {
    const code = quoted ? line : line.replace(/--.*$/, '')
    if ((code.match(/\$\$/g)?.length ?? 0) % 2 === 1) quoted = !quoted
    current += code + '\n'
    if (!quoted && /;\s*$/.test(code)) {
      statements.push(current.trim().replace(/;$/, '').trim())
      current = ''
    }
  }
  statements.push(current.trim())
  return statements.filter(s => s.length > 0)
}
