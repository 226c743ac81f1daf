// The fault suite: PostgreSQL restarted while the stream runs (in the first second, mid-batch,
// during finalization, while idle) and stopped for 60 s, in the embedded mode and in the Kafka
// mode, on a real server and a real broker. Each case ends with the same process storing again;
// each mode ends with every produced reading stored once and windows and roll-ups equal to a
// recomputation. The time from PostgreSQL's return to the first stored batch is printed per case.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import postgres from 'postgres'
import { FINALITY_LOCK_CLASS, type Db, openPostgres } from '../../src/storage/index.ts'
import { type CliProcess, spawnCli, stopProc, until, waitExit } from '../helpers/cli-process.ts'
import { checkConsistency } from '../helpers/consistency.ts'
import { createServerDatabase, serverScript, serverUrl } from '../helpers/databases.ts'
import { kafkaBrokers, kafkaSkip, uniqueTopic } from '../helpers/kafka.ts'

const skip = serverUrl === null ? 'DATABASE_URL is not set (start a server: eval "$(npm run -s services:up)")' : false
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const number = (s: string): number => Number(s.replaceAll(',', ''))

/** Per case: wall time from PostgreSQL answering again to the process's first stored batch. */
const measured: Array<{ mode: string, fault: string, recoveryMs: number }> = []

/** A session of the test's own on the database under test: it watches the pipeline's sessions and holds locks. */
class Observer {
  readonly sql: postgres.Sql
  readonly url: string
  readonly database: string
  constructor (url: string) {
    this.url = url
    this.sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 })
    this.database = new URL(url).pathname.slice(1)
  }

  /** Sessions of the pipeline waiting for a lock in a statement LIKE `pattern`. */
  async blocked (pattern: string): Promise<boolean> {
    const rows = await this.sql.unsafe<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = $1 AND application_name = 'iot-monitor' AND wait_event_type = 'Lock' AND query LIKE $2`, [this.database, pattern])
    return rows[0]!.n > 0
  }

  /** No session of the pipeline is in a transaction or running a statement. */
  async idle (): Promise<boolean> {
    const rows = await this.sql.unsafe<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = $1 AND application_name = 'iot-monitor' AND state <> 'idle'`, [this.database])
    return rows[0]!.n === 0
  }

  /** Opens a transaction of its own that takes `lockSql` and holds it until the server goes down. */
  async hold (lockSql: string, params: unknown[] = []): Promise<postgres.Sql> {
    const holder = postgres(this.url, { max: 1, onnotice: () => {}, connect_timeout: 5 })
    const reserved = await holder.reserve()
    await reserved.unsafe('BEGIN')
    await reserved.unsafe(lockSql, params as postgres.ParameterOrJSON<never>[])
    return holder
  }

  async end (): Promise<void> {
    await this.sql.end({ timeout: 1 }).catch(() => {})
  }
}

/**
 * Stops the server (after `whileDown` when given, else at once), starts it again and waits until
 * `proc` stores a batch: returns when the server was back and the milliseconds from then to that batch.
 */
async function restartServer (proc: CliProcess, whileDown?: () => Promise<void>): Promise<Recovery> {
  await serverScript('down.sh')
  await whileDown?.()
  await serverScript('up.sh')
  const backAt = Date.now()
  const before = proc.lastStored()
  const storedAgain = (): [number, number] | undefined => proc.stored.find(([t, n]) => t > backAt && n > before)
  await until('a batch stored after PostgreSQL came back', () => storedAgain() !== undefined, 60_000, [proc])
  assert.equal(proc.child.exitCode, null, `the same process keeps running:\n${proc.output().slice(-3000)}`)
  return { backAt, recoveryMs: storedAgain()![0] - backAt }
}

interface Recovery { backAt: number, recoveryMs: number }

/** Restarts the server while one of the pipeline's sessions waits in a statement LIKE `pattern` behind a lock the test holds. */
async function restartWhileBlocked (proc: CliProcess, observer: Observer, lock: { sql: string, params?: unknown[] }, pattern: string): Promise<Recovery> {
  const holder = await observer.hold(lock.sql, lock.params)
  try {
    await until(`a pipeline session waiting in ${pattern}`, async () => await observer.blocked(pattern), 30_000, [proc])
    return await restartServer(proc)
  } finally {
    await holder.end({ timeout: 0 }).catch(() => {})
  }
}

async function finalCheck (db: Db, expected: number): Promise<void> {
  const report = await checkConsistency(db)
  assert.deepEqual(report.mismatches, [], 'windows and roll-ups equal a recomputation from the raw readings')
  assert.equal(report.readings, expected, 'stored = produced')
  assert.equal(report.storedAndLate, 0)
  assert.equal(report.countedInWindows, report.readings, 'no reading counted twice')
  const dups = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM (SELECT 1 FROM sensor_readings GROUP BY sensor_id, timestamp HAVING count(*) > 1) d')
  assert.equal(dups[0]!.n, 0, 'no reading stored twice')
}

describe('faults: PostgreSQL restarts and outages (real server)', { skip }, () => {
  let restore = false
  before(() => { restore = true })
  // Whatever happens in a case, the shared server is up again for the next suites.
  after(async () => { if (restore) await serverScript('up.sh') })
  after(() => {
    if (measured.length === 0) return
    console.log('Time from PostgreSQL back to the first stored batch:\n' +
      measured.map(m => `  ${m.mode.padEnd(9)} ${m.fault.padEnd(30)} ${(m.recoveryMs / 1000).toFixed(2)} s`).join('\n'))
  })

  test('embedded mode: restarted in the first second, mid-batch, during finalization, while idle, and stopped for 60 s; /ready and the API tell; every reading stored once', async () => {
    const created = await createServerDatabase(serverUrl!)
    const observer = new Observer(created.url)
    const proc = spawnCli('embedded', ['start', '--database-url', created.url, '--port', '0', '--start', '2026-03-01T00:00:00Z',
      '--speedup', '20', '--max-batch', '2000', '--ready-stall', '10m'], '200ms')
    try {
      await until('the process running', () => /is running: http/.test(proc.output()), 90_000, [proc])
      const base = /is running: (http:\/\/[^\s]+) /.exec(proc.output())![1]!
      const record = (fault: string, { recoveryMs }: Recovery): void => {
        measured.push({ mode: 'embedded', fault, recoveryMs })
        assert.ok(recoveryMs < 10_000, `${fault}: stored again ${recoveryMs} ms after PostgreSQL came back (target < 10 s)`)
      }

      record('restarted in the first second', await restartServer(proc))
      await until('windows stored', async () => await observer.sql`SELECT 1 FROM sensor_aggregates LIMIT 1`.then(r => r.length > 0), 30_000, [proc])
      record('restarted mid-batch', await restartWhileBlocked(proc, observer, { sql: 'SELECT 1 FROM sensor_aggregates FOR UPDATE' }, '%INSERT INTO sensor_aggregates%'))
      record('restarted during finalization', await restartWhileBlocked(proc, observer,
        { sql: 'SELECT pg_advisory_lock_shared($1, hashtext($2))', params: [FINALITY_LOCK_CLASS, 'iot-monitor/iot_sensors'] }, '%pg_advisory_xact_lock($1%'))
      await until('no transaction in flight', async () => await observer.idle(), 30_000, [proc])
      record('restarted while idle', await restartServer(proc))

      // Stopped for 60 s: readiness fails, data endpoints answer 503 with Retry-After, liveness stays fast.
      const downAt = Date.now()
      let notReadyAfterMs = -1
      let healthMs = 0
      let readyAgainAt = 0
      let readyPoll: Promise<void> = Promise.resolve()
      const outage = await restartServer(proc, async () => {
        await until('/ready not 200', async () => (await fetch(`${base}/ready`)).status === 503, 30_000, [proc])
        notReadyAfterMs = Date.now() - downAt
        const ready = await (await fetch(`${base}/ready`)).json() as { status: string, reasons: string[] }
        assert.equal(ready.status, 'not ready')
        assert.match(ready.reasons[0]!, /^the database has been unreachable for \d+ s/)
        const data = await fetch(`${base}/api/readings`)
        assert.equal(data.status, 503)
        assert.equal(data.headers.get('retry-after'), '5')
        assert.equal((await data.json() as { code: string }).code, 'IOT_ERR_DB_UNAVAILABLE')
        const t = performance.now()
        const health = await fetch(`${base}/health`)
        healthMs = performance.now() - t
        assert.equal(health.status, 200)
        await until('the status line waiting for PostgreSQL', () => /waiting for PostgreSQL/.test(proc.output().slice(-2000)), 20_000, [proc])
        await sleep(downAt + 60_000 - Date.now())
        // From before the server starts again: when /ready is 200 again.
        readyPoll = (async () => {
          const deadline = Date.now() + 60_000
          while (Date.now() < deadline && (await fetch(`${base}/ready`)).status !== 200) await sleep(100)
          readyAgainAt = Date.now()
        })()
      })
      record('stopped for 60 s', outage)
      await readyPoll
      const readyAgainMs = Math.max(0, readyAgainAt - outage.backAt)
      console.log(`embedded, stopped for 60 s: /ready 503 after ${(notReadyAfterMs / 1000).toFixed(1)} s, 200 again ${(readyAgainMs / 1000).toFixed(1)} s after the return; /health in ${healthMs.toFixed(0)} ms during the outage`)
      assert.ok(notReadyAfterMs < 30_000)
      assert.ok(readyAgainMs < 10_000, `/ready 200 again ${readyAgainMs} ms after the return`)
      const metrics = await (await fetch(`${base}/metrics`)).text()
      assert.match(metrics, /^iot_database_up 1$/m)
      // At least one per outage: an idle pooled connection that the restart closed may fail its next statement and count again.
      const reconnects = Number(/^iot_database_reconnects_total (\d+)$/m.exec(metrics)?.[1])
      assert.ok(reconnects >= 5, `five outages, ${reconnects} reconnects`)
      assert.match(metrics, /^iot_batch_consecutive_failures 0$/m)
      assert.match(metrics, /^iot_last_stored_batch_age_seconds \d/m)

      assert.equal(await stopProc(proc, 60_000), 0, proc.output().slice(-3000))
      const summary = /([\d,]+) readings accepted: ([\d,]+) stored, ([\d,]+) late, ([\d,]+) dead letters, ([\d,]+) duplicates\./.exec(proc.output())
      assert.ok(summary !== null, proc.output().slice(-3000))
      const [accepted, stored, late, dead, dups] = summary.slice(1).map(number)
      assert.deepEqual({ stored, late, dead, dups }, { stored: accepted, late: 0, dead: 0, dups: 0 })
      assert.match(proc.output(), /Stopped cleanly/)
      const db = await openPostgres(created.url)
      try {
        await finalCheck(db, accepted!)
      } finally {
        await db.close()
      }
    } finally {
      if (proc.child.exitCode === null) proc.child.kill('SIGKILL')
      await observer.end()
      await created.drop()
    }
  })

  test('embedded mode, a stop while PostgreSQL is down: the bus holds at most its capacity, and the process exits within --shutdown-timeout saying what it could not store; what was committed is intact', async () => {
    const created = await createServerDatabase(serverUrl!)
    const proc = spawnCli('embedded stop', ['start', '--database-url', created.url, '--port', '0', '--start', '2026-03-01T00:00:00Z',
      '--speedup', '60', '--bus-capacity', '3000', '--shutdown-timeout', '5s'], '200ms')
    try {
      await until('readings stored', () => proc.lastStored() > 5000, 90_000, [proc])
      await serverScript('down.sh')
      // The simulator produces 1,500 readings/s: after 5 s the bus is full and the simulator waits.
      await sleep(5000)
      const stopAt = Date.now()
      proc.child.kill('SIGTERM')
      const { code } = await waitExit(proc, 15_000)
      const tookMs = Date.now() - stopAt
      assert.equal(code, 1, proc.output().slice(-3000))
      assert.ok(tookMs < 8000, `exited ${tookMs} ms after SIGTERM (deadline 5 s)`)
      const out = proc.output()
      assert.match(out, /Not stopped within 5s: exiting without waiting\./)
      assert.match(out, /PostgreSQL has been unreachable for \d+ s \([^)]+\); everything stored before is kept\./)
      const held = Number(/([\d,]+) readings accepted into the embedded bus were not stored/.exec(out)?.[1]?.replaceAll(',', ''))
      assert.ok(held > 0 && held <= 3000, `the embedded bus held ${held} readings (capacity 3,000)`)
      await serverScript('up.sh')
      const db = await openPostgres(created.url)
      try {
        const report = await checkConsistency(db)
        assert.deepEqual(report.mismatches, [], 'what was committed is consistent')
        assert.ok(report.readings >= 5000)
        assert.equal(report.countedInWindows, report.readings)
      } finally {
        await db.close()
      }
    } finally {
      if (proc.child.exitCode === null) proc.child.kill('SIGKILL')
      await serverScript('up.sh')
      await created.drop()
    }
  })

  test('Kafka mode: ingest runs without PostgreSQL; the worker waits for it, then survives restarts in its first second, mid-batch, during finalization, while idle and a 60-s outage; every produced reading stored once', { skip: kafkaSkip }, async () => {
    const created = await createServerDatabase(serverUrl!)
    const observer = new Observer(created.url)
    const topic = uniqueTopic('faults')
    const kafka = ['--kafka-brokers', (kafkaBrokers ?? []).join(','), '--topic', topic, '--partitions', '4']
    const procs: CliProcess[] = []
    try {
      // PostgreSQL is down when both start: ingest produces, the worker waits.
      await serverScript('down.sh')
      // Event time ahead of the wall clock: the second producer (no --start) must continue after it, read from Kafka.
      const ingest = spawnCli('ingest A', ['ingest', ...kafka, '--start', '2027-03-01T00:00:00Z', '--speedup', '60'])
      procs.push(ingest)
      await until('ingest producing without PostgreSQL', () => /total [1-9][\d,]*/.test(ingest.output()), 90_000, procs)
      const worker = spawnCli('worker', ['worker', ...kafka, '--database-url', created.url, '--max-batch', '2000'], '200ms')
      procs.push(worker)
      await until('the worker waiting for PostgreSQL', () => /Waiting for PostgreSQL/.test(worker.output()), 60_000, procs)
      await serverScript('up.sh')
      await until('the worker running', () => /is running/.test(worker.output()), 60_000, procs)
      const record = (fault: string, { recoveryMs }: Recovery): void => {
        measured.push({ mode: 'Kafka', fault, recoveryMs })
        assert.ok(recoveryMs < 10_000, `${fault}: stored again ${recoveryMs} ms after PostgreSQL came back (target < 10 s)`)
      }

      record('restarted in the first second', await restartServer(worker))
      await until('windows stored', async () => await observer.sql`SELECT 1 FROM sensor_aggregates LIMIT 1`.then(r => r.length > 0), 30_000, procs)
      record('restarted mid-batch', await restartWhileBlocked(worker, observer, { sql: 'SELECT 1 FROM sensor_aggregates FOR UPDATE' }, '%INSERT INTO sensor_aggregates%'))
      record('restarted during finalization', await restartWhileBlocked(worker, observer,
        { sql: 'SELECT pg_advisory_lock_shared($1, hashtext($2))', params: [FINALITY_LOCK_CLASS, `iot-monitor/${topic}`] }, '%pg_advisory_xact_lock($1%'))
      record('stopped for 60 s', await restartServer(worker, async () => { await sleep(60_000) }))

      // Idle: the producer stops, the worker stores everything, PostgreSQL restarts, a new producer comes.
      assert.equal(await stopProc(ingest), 0, ingest.output().slice(-3000))
      const producedA = number(/([\d,]+) readings produced, all acknowledged by Kafka/.exec(ingest.output())?.[1] ?? 'NaN')
      await until('the worker caught up', async () => (await observer.sql`SELECT count(*)::int AS n FROM sensor_readings`)[0]!.n === producedA, 120_000, procs)
      await until('no transaction in flight', async () => await observer.idle() && await observer.idle(), 30_000, procs)
      await serverScript('down.sh')
      await serverScript('up.sh')
      const backAt = Date.now()
      const ingestB = spawnCli('ingest B', ['ingest', ...kafka, '--speedup', 'max', '--duration', '10m'])
      procs.push(ingestB)
      assert.equal((await waitExit(ingestB, 90_000)).code, 0, ingestB.output().slice(-3000))
      const producedB = number(/([\d,]+) readings produced, all acknowledged by Kafka/.exec(ingestB.output())?.[1] ?? 'NaN')
      assert.equal(producedB, 25 * 600)
      await until('the worker stored the new readings', () => worker.lastStored() >= producedA + producedB, 60_000, procs)
      const firstAfterIdle = worker.stored.find(([t, n]) => t > backAt && n > producedA)!
      // The figure includes the new producer's start (a second or two of tsx).
      record('restarted while idle', { backAt, recoveryMs: firstAfterIdle[0] - backAt })

      assert.equal(await stopProc(worker), 0, worker.output().slice(-3000))
      assert.match(worker.output(), /Stopped cleanly/)
      const summary = /([\d,]+) records consumed: ([\d,]+) stored, ([\d,]+) late, ([\d,]+) dead letters, ([\d,]+) duplicates\./.exec(worker.output())
      assert.ok(summary !== null, worker.output().slice(-3000))
      const [, stored, late, dead, dups] = summary.slice(1).map(number)
      // Had the second producer not continued after the first, its readings would repeat the first's: duplicates.
      assert.deepEqual({ stored, late, dead, dups }, { stored: producedA + producedB, late: 0, dead: 0, dups: 0 })
      const db = await openPostgres(created.url)
      try {
        await finalCheck(db, producedA + producedB)
      } finally {
        await db.close()
      }
    } finally {
      for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL')
      await serverScript('up.sh')
      await observer.end()
      await created.drop()
    }
  })
})
