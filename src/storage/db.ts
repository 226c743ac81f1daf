import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import postgres from 'postgres'
import { IotError } from '../domain/index.ts'

export type Row = Record<string, unknown>

/** Something SQL can be sent to: the database or an open transaction. */
export interface Queryable {
  query<T extends object = Row>(text: string, params?: readonly unknown[]): Promise<T[]>
  /** Bulk load with COPY … FROM STDIN (FORMAT binary): `data` is a whole stream, see copy-binary.ts. */
  copyFrom(table: string, columns: readonly string[], data: Buffer): Promise<void>
}

/** The storage port: PostgreSQL (postgres.js) or embedded PGlite, same SQL on both. */
export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite'
  /** Runs a script of several statements without parameters. */
  exec(script: string): Promise<void>
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  close(): Promise<void>
}

export interface DbOptions {
  /** postgres://… connection string; when absent the embedded PGlite database is used. */
  databaseUrl?: string | null
  /** PGlite data folder ('memory://' for a throwaway in-memory database). */
  dataDir?: string
  /** Pool size for PostgreSQL. */
  maxConnections?: number
}

function storageError (err: unknown, what: string): IotError {
  return new IotError('IOT_ERR_STORAGE', `${what}: ${(err as Error).message}`, { cause: err })
}

export async function openDb (opts: DbOptions = {}): Promise<Db> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts.maxConnections ?? 4) : openPglite(opts.dataDir ?? './data')
}

export async function openPostgres (url: string, max = 4): Promise<Db> {
  const parsed = new URL(url)
  const host = parsed.hostname === '' ? '127.0.0.1' : parsed.hostname.replace(/^\[|\]$/g, '')
  const port = parsed.port === '' ? 5432 : Number(parsed.port)
  // `socket` is a documented option of postgres.js that its type definitions lack.
  const options = {
    max,
    onnotice: () => {},
    // Seconds to wait for a connection (postgres.js: 30): an outage is noticed, and waited out with backoff, sooner.
    connect_timeout: 10,
    // Seconds before a pool connection tries again after a failed connect (postgres.js grows it to
    // 20 s): at most 2 s, so the stream resumes within seconds of the database's return. The
    // callers back off themselves (capped exponential, jittered) between attempts.
    backoff: (retries: number) => (0.5 + Math.random() / 2) * Math.min(0.1 * 2 ** retries, 2),
    // int8 as JS number: our int8 values (offsets, epoch ms) stay far below 2^53.
    types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
    // random_page_cost 1.1 (the usual value for SSDs and cached data, instead of the default 4, which
    // models spinning disks): otherwise the planner prefers the time index over the per-series index
    // for a filtered anomaly list, and reads ten times the rows (docs/ARCHITECTURE.md, Dashboard).
    connection: { application_name: 'iot-monitor', random_page_cost: '1.1' },
    // postgres.js leaves Nagle's algorithm on; a statement sent in several writes then waits for
    // the server's delayed ACK (~40 ms). Connect ourselves with TCP_NODELAY. The socket is handed
    // over while it connects (writes wait for the connection): a failed connect then reaches the
    // driver as the socket's 'error' and 'close', which it retries with backoff. A factory that
    // threw instead would leave that pool connection "connecting" forever (postgres.js closes it
    // only on 'close'), and after an outage of a few attempts every query would wait for good.
    socket: (o: { path?: string | false }) => typeof o.path === 'string' && o.path !== '' ? connect(o.path) : connect({ host, port, noDelay: true })
  }
  const sql = postgres(url, options)
  try {
    await sql`select 1`
  } catch (err) {
    await sql.end({ timeout: 1 })
    throw storageError(err, `cannot connect to PostgreSQL at ${url.replace(/\/\/[^@/]*@/, '//***@')}`)
  }
  const run = async <T extends object>(q: postgres.Sql | postgres.TransactionSql, text: string, params?: readonly unknown[]): Promise<T[]> =>
    // postgres.js types its parameters loosely; our callers pass strings, numbers, booleans and null.
    await q.unsafe(text, params as postgres.ParameterOrJSON<never>[] | undefined) as unknown as T[]
  // COPY FROM STDIN straight into the table. A row the server rejects (a duplicate key, a bad
  // value) fails the COPY and so the transaction; postgres.js 3.4.9 would never settle the stream
  // then (porsager/postgres#1173): scripts/patch-postgres.mjs (the postinstall) applies the fix of PR #1183.
  const copy = async (q: postgres.Sql | postgres.TransactionSql, table: string, columns: readonly string[], data: Buffer): Promise<void> => {
    const stream = await q.unsafe(`COPY ${table} (${columns.join(', ')}) FROM STDIN (FORMAT binary)`).writable()
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject)
      stream.end(data, (err?: Error | null) => { if (err == null) resolve(); else reject(err) })
    })
  }
  const queryable = (q: postgres.Sql | postgres.TransactionSql): Queryable => ({
    query: async (text, params) => await run(q, text, params),
    copyFrom: async (table, columns, data) => { await copy(q, table, columns, data) }
  })
  return {
    kind: 'postgres',
    ...queryable(sql),
    exec: async (script) => { await sql.unsafe(script) },
    transaction: async (fn) => await sql.begin(async tx => await fn(queryable(tx))) as Awaited<ReturnType<typeof fn>>,
    close: async () => { await sql.end({ timeout: 5 }) }
  }
}

/**
 * The embedded database runs as a single PostgreSQL backend: it checkpoints by itself when its
 * write-ahead log reaches max_wal_size, and keeps at least min_wal_size of recycled segments. The
 * server defaults (1 GB, 80 MB) let the data folder carry up to a gigabyte of log; a small
 * application's folder should hold its data.
 */
const pgliteSettings = ['-c', 'max_wal_size=64MB', '-c', 'min_wal_size=32MB']

/** Runs initdb for a new PGlite data folder in a child process: the memory it leaves behind goes with it. */
async function initPgliteDataDir (dataDir: string): Promise<void> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./pglite-init.mjs', import.meta.url)), dataDir], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await Promise.race([once(child, 'exit'), once(child, 'error').then(([err]) => { throw err })]) as [number | null]
  if (code !== 0) throw new Error(`initdb exited with code ${code}: ${stderr.slice(-500)}`)
}

/**
 * The embedded database is one PostgreSQL backend in this process: a second process on the same
 * folder (a second `npm start`, `iot-monitor devices` while it runs) would write beside it and can
 * corrupt it. The folder holds a lock file with the owner's pid while open; a lock whose process is
 * gone (killed) is taken over.
 */
function lockPgliteDataDir (dataDir: string): () => void {
  const file = join(dataDir, 'iot-monitor.lock')
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim())
    let alive = false
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 0)
        alive = true
      } catch (err) {
        alive = (err as { code?: string }).code === 'EPERM'
      }
    }
    if (alive) {
      throw new IotError('IOT_ERR_STORAGE', `the embedded database in ${dataDir} is in use by process ${pid} (iot-monitor running there?): ` +
        'stop it first; to manage devices while it runs, use the admin API (--admin-token)')
    }
  }
  writeFileSync(file, `${process.pid}\n`)
  return () => { rmSync(file, { force: true }) }
}

export async function openPglite (dataDir: string): Promise<Db> {
  let pg: PGlite
  let unlock = (): void => {}
  try {
    if (!dataDir.startsWith('memory://')) {
      mkdirSync(dataDir, { recursive: true })
      unlock = lockPgliteDataDir(dataDir)
      if (!existsSync(join(dataDir, 'PG_VERSION'))) await initPgliteDataDir(dataDir)
    }
    pg = await PGlite.create(dataDir, { parsers: { 20: (x: string) => Number(x) }, startParams: [...PGlite.defaultStartParams, ...pgliteSettings] })
  } catch (err) {
    unlock()
    if (err instanceof IotError) throw err
    throw storageError(err, `cannot open the embedded database in ${dataDir}`)
  }
  const run = async <T extends object>(q: Pick<PGlite, 'query'>, text: string, params?: readonly unknown[]): Promise<T[]> =>
    (await q.query<T>(text, params === undefined ? undefined : [...params])).rows
  const queryable = (q: Pick<PGlite, 'query'>): Queryable => ({
    query: async (text, params) => await run(q, text, params),
    copyFrom: async (table, columns, data) => {
      await q.query(`COPY ${table} (${columns.join(', ')}) FROM '/dev/blob' (FORMAT binary)`, [], { blob: new Blob([data]) })
    }
  })
  return {
    kind: 'pglite',
    ...queryable(pg),
    exec: async (script) => { await pg.exec(script) },
    transaction: async (fn) => await pg.transaction(async tx => await fn(queryable(tx))),
    close: async () => {
      await pg.close()
      unlock()
    }
  }
}
