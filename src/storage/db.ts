import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync } from 'node:fs'
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
  /** Bulk load with COPY … FROM STDIN (text format): `rows` is tab-separated lines, see copyText. */
  copyFrom(table: string, columns: readonly string[], rows: string): Promise<void>
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
    // int8 as JS number: our int8 values (offsets, epoch ms) stay far below 2^53.
    types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
    // random_page_cost 1.1 (the usual value for SSDs and cached data, instead of the default 4, which
    // models spinning disks): otherwise the planner prefers the time index over the per-series index
    // for a filtered anomaly list, and reads ten times the rows (docs/ARCHITECTURE.md, Dashboard).
    connection: { application_name: 'iot-monitor', random_page_cost: '1.1' },
    // postgres.js leaves Nagle's algorithm on; a statement sent in several writes then waits for
    // the server's delayed ACK (~40 ms). Connect ourselves with TCP_NODELAY.
    socket: async (o: { path?: string | false }) => {
      const s = typeof o.path === 'string' && o.path !== '' ? connect(o.path) : connect({ host, port, noDelay: true })
      await once(s, 'connect')
      return s
    }
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
  // postgres.js 3.4 never settles a COPY … FROM STDIN that the server rejects (porsager/postgres#1173):
  // the transaction would hang instead of rolling back. So COPY goes into a session-local staging
  // table of text columns, which cannot reject anything, and one INSERT … SELECT casts the rows into
  // the real table, where a failure (a duplicate key, a bad value) surfaces as an ordinary error.
  const columnTypes = new Map<string, Map<string, string>>()
  const copy = async (q: postgres.Sql | postgres.TransactionSql, table: string, columns: readonly string[], rows: string): Promise<void> => {
    let types = columnTypes.get(table)
    if (types === undefined) {
      const cols = await run<{ name: string, type: string }>(q, `SELECT attname AS name, format_type(atttypid, atttypmod) AS type
        FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, [table])
      types = new Map(cols.map(c => [c.name, c.type]))
      columnTypes.set(table, types)
    }
    const stage = `copy_stage_${table}`
    await q.unsafe(`CREATE TEMP TABLE IF NOT EXISTS ${stage} (${columns.map(c => `${c} text`).join(', ')}) ON COMMIT DELETE ROWS`)
    await q.unsafe(`TRUNCATE ${stage}`)
    const stream = await q.unsafe(`COPY ${stage} (${columns.join(', ')}) FROM STDIN`).writable()
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject)
      stream.end(rows, () => resolve())
    })
    const casts = columns.map(c => `${c}::${types.get(c) ?? 'text'}`)
    await q.unsafe(`INSERT INTO ${table} (${columns.join(', ')}) SELECT ${casts.join(', ')} FROM ${stage}`)
  }
  const queryable = (q: postgres.Sql | postgres.TransactionSql, inTransaction: boolean): Queryable => ({
    query: async (text, params) => await run(q, text, params),
    // The staging table empties at commit: outside a transaction, open one for the two steps.
    copyFrom: async (table, columns, rows) => {
      if (inTransaction) await copy(q, table, columns, rows)
      else await sql.begin(async tx => { await copy(tx, table, columns, rows) })
    }
  })
  return {
    kind: 'postgres',
    ...queryable(sql, false),
    exec: async (script) => { await sql.unsafe(script) },
    transaction: async (fn) => await sql.begin(async tx => await fn(queryable(tx, true))) as Awaited<ReturnType<typeof fn>>,
    close: async () => { await sql.end({ timeout: 5 }) }
  }
}

/** Runs initdb for a new PGlite data folder in a child process: the memory it leaves behind goes with it. */
async function initPgliteDataDir (dataDir: string): Promise<void> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./pglite-init.mjs', import.meta.url)), dataDir], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await Promise.race([once(child, 'exit'), once(child, 'error').then(([err]) => { throw err })]) as [number | null]
  if (code !== 0) throw new Error(`initdb exited with code ${code}: ${stderr.slice(-500)}`)
}

export async function openPglite (dataDir: string): Promise<Db> {
  let pg: PGlite
  try {
    if (!dataDir.startsWith('memory://')) {
      mkdirSync(dataDir, { recursive: true })
      if (!existsSync(join(dataDir, 'PG_VERSION'))) await initPgliteDataDir(dataDir)
    }
    pg = await PGlite.create(dataDir, { parsers: { 20: (x: string) => Number(x) } })
  } catch (err) {
    throw storageError(err, `cannot open the embedded database in ${dataDir}`)
  }
  const run = async <T extends object>(q: Pick<PGlite, 'query'>, text: string, params?: readonly unknown[]): Promise<T[]> =>
    (await q.query<T>(text, params === undefined ? undefined : [...params])).rows
  const queryable = (q: Pick<PGlite, 'query'>): Queryable => ({
    query: async (text, params) => await run(q, text, params),
    copyFrom: async (table, columns, rows) => {
      await q.query(`COPY ${table} (${columns.join(', ')}) FROM '/dev/blob'`, [], { blob: new Blob([rows]) })
    }
  })
  return {
    kind: 'pglite',
    ...queryable(pg),
    exec: async (script) => { await pg.exec(script) },
    transaction: async (fn) => await pg.transaction(async tx => await fn(queryable(tx))),
    close: async () => { await pg.close() }
  }
}
