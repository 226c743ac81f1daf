// The database of a process that must run without it: the distributed `ingest` role looks devices
// up in PostgreSQL, but it has to keep producing to Kafka while PostgreSQL is away (issue 14), also
// when it starts during an outage. So it does not wait for the database as `worker` and `api` do:
// it connects in the background, and until then every statement fails at once with
// IOT_ERR_DB_UNAVAILABLE (the device registry then serves what it has, and refuses the rest for now).
import { setTimeout as sleep } from 'node:timers/promises'
import { type Logger } from 'pino'
import { IotError } from '../domain/index.ts'
import { Backoff } from '../pipeline/index.ts'
import { type Db, type Queryable, isUnavailable } from '../storage/index.ts'

export interface BackgroundDbOptions {
  /** Opens the database (one attempt; openPostgres asks SELECT 1). */
  open: () => Promise<Db>
  log: Logger
  /**
   * How long the start waits for the first attempt (default 3 s): a wrong password or a missing
   * database fails the start when it is answered within this time; a database that does not answer
   * does not hold the start up.
   */
  firstAttemptMs?: number
  /** Waits between attempts (default 0.5 s doubling to 5 s, jittered). */
  backoff?: Backoff
}

export class BackgroundDb {
  /** The database as the process uses it: fails with IOT_ERR_DB_UNAVAILABLE until connected. */
  readonly db: Db
  readonly #o: BackgroundDbOptions
  readonly #stop = new AbortController()
  #connected: Db | null = null
  #lastError: unknown = null
  /** open() has returned: a refusal is no longer the start's to report. */
  #started = false
  #refusalSaid = false
  #loop: Promise<void> = Promise.resolve()

  private constructor (o: BackgroundDbOptions) {
    this.#o = o
    const current = (): Db => {
      if (this.#connected !== null) return this.#connected
      throw new IotError('IOT_ERR_DB_UNAVAILABLE', 'PostgreSQL has not answered since this process started (connecting in the background)',
        this.#lastError === null ? undefined : { cause: this.#lastError })
    }
    const queryable: Queryable = {
      query: async (text, params) => await current().query(text, params),
      copyFrom: async (table, columns, data) => { await current().copyFrom(table, columns, data) }
    }
    this.db = {
      kind: 'postgres',
      ...queryable,
      exec: async (script) => { await current().exec(script) },
      transaction: async (fn) => await current().transaction(fn),
      close: async () => { await this.close() }
    }
  }

  /**
   * Starts connecting. Resolves once connected, or once the first attempt failed because the
   * database is out of reach or took longer than `firstAttemptMs` (attempts go on in the
   * background); rejects when the first attempt failed for another reason (a wrong password, a
   * missing database), as `worker` and `api` fail then.
   */
  static async open (o: BackgroundDbOptions): Promise<BackgroundDb> {
    const bg = new BackgroundDb(o)
    const first = o.open()
    bg.#loop = bg.#connect(first)
    const waited = new AbortController()
    const outcome = await Promise.race([
      first.then(() => null, (err: unknown) => err),
      sleep(o.firstAttemptMs ?? 3000, 'slow' as const, { signal: waited.signal }).catch(() => null)
    ])
    waited.abort()
    bg.#started = true
    if (outcome === null) {
      await bg.#loop
    } else if (outcome !== 'slow' && !isUnavailable(outcome)) {
      await bg.close()
      throw outcome
    } else {
      o.log.warn({ err: outcome === 'slow' ? 'no answer yet' : (outcome as Error).message },
        'PostgreSQL does not answer: starting without it and connecting in the background (devices are looked up once it answers).')
    }
    return bg
  }

  get connected (): boolean {
    return this.#connected !== null
  }

  /** Why the last attempt failed (null: none failed yet). */
  get lastError (): unknown {
    return this.#lastError
  }

  /** Stops the attempts (one under way is not waited for: it closes what it gets) and closes the database. */
  async close (): Promise<void> {
    this.#stop.abort()
    const db = this.#connected
    this.#connected = null
    await db?.close()
  }

  async #connect (first: Promise<Db>): Promise<void> {
    const backoff = this.#o.backoff ?? new Backoff({ initialMs: 500, maxMs: 5000 })
    let attempt = first
    for (;;) {
      try {
        const db = await attempt
        if (this.#stop.signal.aborted) {
          await db.close()
          return
        }
        // Its return is logged by the process's DbAvailability, whose probe notices it.
        this.#connected = db
        return
      } catch (err) {
        this.#lastError = err
        // A wrong password or a missing database after a start that could not tell yet: said
        // once at error level, and tried again (it may be fixed without a restart).
        if (!isUnavailable(err) && this.#started && !this.#refusalSaid && !this.#stop.signal.aborted) {
          this.#refusalSaid = true
          this.#o.log.error({ err }, 'PostgreSQL refuses the connection; trying again.')
        }
      }
      try {
        await sleep(backoff.next(), undefined, { signal: this.#stop.signal })
      } catch {
        return
      }
      attempt = this.#o.open()
    }
  }
}
