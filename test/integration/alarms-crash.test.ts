// Alarms across a crash: the embedded system (simulator → worker → alarms → outbox → webhook) is
// killed with SIGKILL while transitions wait in the outbox for a receiver that refuses them (each
// is "between its transition and its delivery"), then restarted. Afterwards the alarms table equals
// a recomputation from the stored readings, the outbox holds each recomputed transition exactly
// once under its idempotency key, and a real HTTP receiver gets every one of them at least once.
// On PostgreSQL and on PGlite's data folder.
import { type TestContext, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultAlarmRules, isReadingAlarm, recomputeAlarmHistory } from '../../src/alarms/index.ts'
import { type Db, listAllAlarms, loadReadingsForAlarms, migrate, openPglite, openPostgres } from '../../src/storage/index.ts'
import { spawnCli, stopProc, until, waitExit } from '../helpers/cli-process.ts'
import { checkConsistency } from '../helpers/consistency.ts'
import { createServerDatabase, serverUrl } from '../helpers/databases.ts'

/** The simulated run; PGlite's takes an hour of event time (its COPY is several times slower: the suite's time budget). */
const run = (duration: string): string[] => ['--start', '2026-03-01T00:00:00Z', '--duration', duration, '--speedup', 'max', '--max-batch', '2000', '--port', '0', '--no-mqtt']

/** A webhook receiver: refuses (503) while `accepting` is false; keeps the idempotency key of every alert it accepted. */
async function receiver (): Promise<{ url: string, server: Server, keys: Set<string>, requests: () => number, accept: (on: boolean) => void }> {
  const keys = new Set<string>()
  let requests = 0
  let accepting = false
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      requests++
      if (!accepting) {
        res.writeHead(503).end()
        return
      }
      const payload = JSON.parse(body) as { alerts?: { annotations?: Record<string, string> }[], idempotencyKeys?: string[] }
      for (const a of payload.alerts ?? []) if (a.annotations?.idempotency_key !== undefined) keys.add(a.annotations.idempotency_key)
      for (const k of payload.idempotencyKeys ?? []) keys.add(k)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/hook`, server, keys, requests: () => requests, accept: (on) => { accepting = on } }
}

async function crashAndRecompute (t: TestContext, target: string[], open: () => Promise<Db>, duration: string): Promise<void> {
  const RUN = run(duration)
  const hook = await receiver()
  // Refused deliveries come back within a second (the default back-off reaches minutes), and rows
  // the killed process had claimed are free 7 s later (2 × the request timeout + 5 s; default 25 s).
  const notify = ['--webhook-url', hook.url, '--group-wait', '100ms', '--group-interval', '200ms', '--retry-wait', '200ms', '--retry-max-wait', '1s',
    '--webhook-timeout', '1s']
  try {
    // 1. Run until a transition was committed and its delivery refused, then kill.
    const first = spawnCli('alarms-crash first run', ['start', ...target, ...RUN, ...notify], '200ms')
    await until('a notification attempt', () => {
      assert.equal(first.child.exitCode, null, `exited before the kill: ${first.output().slice(-3000)}`)
      return hook.requests() > 0
    }, 90_000, [first])
    first.child.kill('SIGKILL')
    assert.equal((await waitExit(first, 10_000)).signal, 'SIGKILL')
    assert.equal(hook.keys.size, 0, 'nothing was delivered before the kill')

    let db = await open()
    const atKill = await checkConsistency(db)
    assert.deepEqual(atKill.mismatches, [])
    const outboxAtKill = await db.query<{ k: string }>('SELECT idempotency_key AS k FROM alarm_outbox WHERE delivered_at IS NULL')
    assert.ok(outboxAtKill.length > 0, 'transitions waited for delivery at the kill')
    await db.close()

    // 2. Restart: the run continues (the receiver still refuses) and ends.
    const second = spawnCli('alarms-crash second run', ['start', ...target, ...RUN, ...notify], '200ms')
    const { code } = await waitExit(second, 180_000)
    assert.equal(code, 0, second.output().slice(-3000))

    db = await open()
    let expectedKeys: string[]
    try {
      const history = recomputeAlarmHistory(await loadReadingsForAlarms(db), defaultAlarmRules)
      const stored = (await listAllAlarms(db)).filter(a => isReadingAlarm(a.type))
      assert.ok(stored.length >= 3, `the run raised alarms (${stored.length})`)
      assert.deepEqual(stored, history.alarms, 'the alarms table equals a recomputation from the stored readings')
      const outbox = await db.query<{ k: string, id: string }>('SELECT idempotency_key AS k, alarm_id AS id FROM alarm_outbox ORDER BY k')
      expectedKeys = history.transitions.map(t => t.idempotencyKey).sort()
      assert.deepEqual(outbox.map(o => o.k), expectedKeys, 'the outbox holds each transition once')
      for (const k of outboxAtKill) assert.ok(expectedKeys.includes(k.k), `a transition written before the kill (${k.k}) is one of the recomputed ones`)
      const events = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM alarm_events WHERE kind IN ('raised', 'severity_changed', 'cleared')")
      assert.equal(events[0]!.n, history.transitions.length, 'history: one entry per transition')
      const types = new Map<string, number>()
      for (const a of stored) types.set(a.type, (types.get(a.type) ?? 0) + 1)
      t.diagnostic(`${stored.length} alarms (${[...types].map(([k, n]) => `${k} ${n}`).join(', ')}), ${expectedKeys.length} transitions, ${outboxAtKill.length} waiting at the kill`)
    } finally {
      await db.close()
    }

    // 3. The receiver accepts now; a process without a simulator delivers what waits.
    hook.accept(true)
    const third = spawnCli('alarms-crash delivery', ['start', ...target, '--no-simulator', '--no-mqtt', '--port', '0', ...notify], '1s')
    await until('every transition delivered', () => expectedKeys.every(k => hook.keys.has(k)), 120_000, [third])
    assert.equal(await stopProc(third), 0, third.output().slice(-3000))
    assert.deepEqual([...hook.keys].filter(k => !expectedKeys.includes(k)), [], 'nothing delivered that is not a transition')
  } finally {
    hook.server.close()
  }
}

test('alarms crash - SIGKILL between a transition and its delivery on PostgreSQL: alarms equal a recomputation, each transition once', { skip: serverUrl === null ? 'DATABASE_URL not set' : false }, async (t) => {
  const created = await createServerDatabase(serverUrl!)
  try {
    const setup = await openPostgres(created.url)
    await migrate(setup)
    await setup.close()
    await crashAndRecompute(t, ['--database-url', created.url], async () => await openPostgres(created.url), '2h')
  } finally {
    await created.drop()
  }
})

test('alarms crash - SIGKILL between a transition and its delivery on the PGlite data folder', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iot-alarms-crash-'))
  try {
    await crashAndRecompute(t, ['--data-dir', dir], async () => await openPglite(dir), '1h')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
