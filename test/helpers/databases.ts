// The databases every storage and pipeline test runs on: embedded PGlite always, and a real
// PostgreSQL server when DATABASE_URL is set. In CI (CI=true) the PostgreSQL suites are mandatory.
import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { type Db, migrate, openPglite, openPostgres } from '../../src/storage/index.ts'

export interface TestDatabase {
  name: 'pglite' | 'postgres'
  /** Why its suites are skipped (no server outside CI), or false: report it with `{ skip }`. */
  skip: string | false
  /** A fresh, migrated database; `url` is set for PostgreSQL (to hand to child processes). */
  create(): Promise<{ db: Db, url: string | null, drop(): Promise<void> }>
}

export const serverUrl = process.env.DATABASE_URL ?? null

if (process.env.CI === 'true' && serverUrl === null) {
  throw new Error('CI=true but DATABASE_URL is not set: the PostgreSQL suites may not be skipped in CI.')
}

/** Creates an empty database on the server and returns its URL. */
export async function createServerDatabase (url: string): Promise<{ url: string, drop(): Promise<void> }> {
  const name = `iot_test_${randomBytes(6).toString('hex')}`
  const admin = postgres(url, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE ${name}`)
  await admin.end()
  const u = new URL(url)
  u.pathname = `/${name}`
  return {
    url: u.toString(),
    drop: async () => {
      const a = postgres(url, { max: 1, onnotice: () => {} })
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await a.end()
    }
  }
}

export const testDatabases: TestDatabase[] = [
  {
    name: 'pglite',
    skip: false,
    create: async () => {
      const db = await openPglite('memory://')
      await migrate(db)
      return { db, url: null, drop: async () => { await db.close() } }
    }
  }
]

testDatabases.push({
  name: 'postgres',
  skip: serverUrl === null ? 'DATABASE_URL is not set (start a server: eval "$(npm run -s services:up)")' : false,
  create: async () => {
    if (serverUrl === null) throw new Error('DATABASE_URL is not set')
    const created = await createServerDatabase(serverUrl)
    const db = await openPostgres(created.url)
    await migrate(db)
    return {
      db,
      url: created.url,
      drop: async () => {
        await db.close()
        await created.drop()
      }
    }
  }
})

/** Which databases run; printed so CI output shows the PostgreSQL suites ran. */
export const databaseNames = testDatabases.filter(d => d.skip === false).map(d => d.name).join(', ')

/**
 * Stops or starts the shared PostgreSQL server (keeping its data) through the scripts that started
 * it, as an operator's restart would. The test files run one at a time, so no other suite sees it.
 */
export async function serverScript (script: 'down.sh' | 'up.sh'): Promise<void> {
  const { execFile } = await import('node:child_process')
  await new Promise<void>((resolve, reject) => {
    execFile('bash', [`deploy/postgres/${script}`], { cwd: new URL('../../', import.meta.url).pathname, timeout: 120_000 }, (err, _stdout, stderr) => {
      if (err === null) resolve()
      else reject(new Error(`deploy/postgres/${script} failed: ${stderr}`))
    })
  })
}
