// How operators stop iot-monitor: SIGINT or SIGTERM, to the `npm start` process (as systemd, Docker
// and scripts do) or to the app itself, nothing killed. The port must be free within the stop
// deadline and every accepted reading stored; with Kafka gone mid-run the process still ends within
// the deadline, says what it could not flush, and nothing Kafka acknowledged is lost.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Db, openPglite, openPostgres } from '../../src/storage/index.ts'
import { checkConsistency } from '../helpers/consistency.ts'
import { createServerDatabase, serverUrl } from '../helpers/databases.ts'
import { brokerScript, kafkaBrokers, kafkaSkip, uniqueTopic } from '../helpers/kafka.ts'

const root = new URL('../../', import.meta.url).pathname
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

interface Started { npm: ChildProcess, app: number, url: string, port: number, output: () => string }

async function until<T> (what: string, timeoutMs: number, probe: () => Promise<T | null> | T | null, output: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== null) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${output().slice(-4000)}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** The process npm runs for `start` (npm execs it: no shell in between). */
function childOf (pid: number): number | null {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(s => s !== '').map(Number)
    return kids[0] ?? null
  } catch {
    return null
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function portFree (port: number): Promise<boolean> {
  const socket = connect({ host: '127.0.0.1', port })
  return await new Promise(resolve => {
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => { resolve(true) })
  })
}

/** `npm start -- args` as a user runs it, until the app stores readings. */
async function npmStart (args: string[]): Promise<Started> {
  const child = spawn(npm, ['start', '--', '--port', '0', '--status', '1s', ...args], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '', npm_config_update_notifier: 'false' }
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const output = (): string => out
  // The first start builds dist/ and the dashboard (npm's prestart).
  const url = await until('the listening address', 120_000, () => /is running: (http:\/\/[^\s]+)/.exec(out)?.[1] ?? null, output)
  const app = await until('the app process', 5000, () => childOf(child.pid!), output)
  await until('readings stored', 60_000, () => /\| stored [1-9][\d,]* \|/.test(out) ? true : null, output)
  return { npm: child, app, url, port: Number(new URL(url).port), output }
}

/** Waits for the npm process to exit; fails (and kills everything) after `ms`. */
async function exited (s: Started, ms: number): Promise<number | null> {
  if (s.npm.exitCode !== null) return s.npm.exitCode
  const timer = setTimeout(() => { s.npm.kill('SIGKILL'); if (alive(s.app)) process.kill(s.app, 'SIGKILL') }, ms)
  const [code] = await once(s.npm, 'exit') as [number | null]
  clearTimeout(timer)
  return code
}

/** "N readings accepted: M stored, L late, D dead letters, X duplicates." */
function accepted (out: string): { accepted: number, stored: number, late: number, dead: number, dups: number } {
  const m = /([\d,]+) readings accepted: ([\d,]+) stored, ([\d,]+) late, ([\d,]+) dead letters, ([\d,]+) duplicates\./.exec(out)
  assert.ok(m !== null, `no summary in:\n${out.slice(-3000)}`)
  const n = (i: number): number => Number(m[i]!.replaceAll(',', ''))
  return { accepted: n(1), stored: n(2), late: n(3), dead: n(4), dups: n(5) }
}

async function count (db: Db, sql: string): Promise<number> {
  return (await db.query<{ n: number }>(sql))[0]!.n
}

const DEADLINE_S = 20

describe('stopping npm start with a signal (embedded)', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    for (const target of ['npm', 'app'] as const) {
      test(`${signal} to the ${target === 'npm' ? 'npm start' : 'app'} process: port free within the deadline, every accepted reading stored`, async () => {
        const dir = mkdtempSync(join(tmpdir(), 'iot-lifecycle-'))
        let s: Started | null = null
        try {
          s = await npmStart(['--data-dir', dir, '--speedup', '120', '--shutdown-timeout', `${DEADLINE_S}s`])
          const t0 = Date.now()
          process.kill(target === 'npm' ? s.npm.pid! : s.app, signal)
          const code = await exited(s, (DEADLINE_S + 10) * 1000)
          const took = Date.now() - t0
          assert.equal(code, 0, s.output().slice(-3000))
          assert.ok(took < DEADLINE_S * 1000, `stopped in ${took} ms`)
          assert.match(s.output(), /Stopped cleanly\./)
          assert.equal(alive(s.app), false, 'no app process left behind')
          assert.equal(await portFree(s.port), true, 'the port is free')
          const summary = accepted(s.output())
          assert.ok(summary.accepted > 0)
          assert.equal(summary.stored + summary.late + summary.dead + summary.dups, summary.accepted, 'every accepted reading is accounted for')
          const db = await openPglite(dir)
          try {
            assert.equal(await count(db, 'SELECT count(*)::int AS n FROM readings'), summary.stored)
            assert.equal(await count(db, 'SELECT count(*)::int AS n FROM late_readings'), summary.late)
            const report = await checkConsistency(db)
            assert.deepEqual(report.mismatches, [])
          } finally {
            await db.close()
          }
        } finally {
          if (s !== null && s.npm.exitCode === null) s.npm.kill('SIGKILL')
          if (s !== null && alive(s.app)) process.kill(s.app, 'SIGKILL')
          rmSync(dir, { recursive: true, force: true })
        }
      })
    }
  }
})

const kafkaReason = kafkaSkip !== false ? kafkaSkip : serverUrl === null ? 'DATABASE_URL is not set' : false

describe('stopping npm start with Kafka gone mid-run', { skip: kafkaReason }, () => {
  const brokers = (kafkaBrokers ?? []).join(',')
  let url = ''
  let drop: () => Promise<void> = async () => {}
  before(async () => {
    const created = await createServerDatabase(serverUrl ?? '')
    url = created.url
    drop = created.drop
  })
  after(async () => { await drop() })

  test('SIGTERM to npm start after the broker stopped: ends within the deadline, says what it left; nothing Kafka acknowledged is lost', async () => {
    const topic = uniqueTopic('lifecycle')
    const group = uniqueTopic('lifecycle')
    const common = ['--kafka-brokers', brokers, '--database-url', url, '--topic', topic, '--group', group, '--partitions', '2']
    const deadline = 10
    let s: Started | null = null
    let brokerDown = false
    try {
      s = await npmStart([...common, '--speedup', '60', '--shutdown-timeout', `${deadline}s`])
      brokerScript('down.sh')
      brokerDown = true
      await new Promise(resolve => setTimeout(resolve, 2000))
      const t0 = Date.now()
      process.kill(s.npm.pid!, 'SIGTERM')
      const code = await exited(s, (deadline + 15) * 1000)
      const took = Date.now() - t0
      assert.equal(code, 1, 'a stop that could not store everything is not a clean one')
      assert.ok(took < (deadline + 3) * 1000, `ended in ${took} ms`)
      assert.match(s.output(), new RegExp(`Not stopped within ${deadline}s: exiting without waiting\\.`))
      assert.match(s.output(), /readings (were not acknowledged by Kafka|in Kafka are not stored yet)/, 'it says what it left')
      assert.equal(alive(s.app), false, 'no app process left behind')
      assert.equal(await portFree(s.port), true, 'the port is free')
    } finally {
      if (s !== null && s.npm.exitCode === null) s.npm.kill('SIGKILL')
      if (s !== null && alive(s.app)) process.kill(s.app, 'SIGKILL')
      if (brokerDown) brokerScript('up.sh')
    }
    // Everything Kafka acknowledged is there: a worker stores every record of the topic, once.
    const inTopic = spawnSync('kcat', ['-b', brokers, '-C', '-t', topic, '-e', '-q', '-f', '%o\n'], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(inTopic.status, 0, inTopic.stderr)
    const records = inTopic.stdout.split('\n').filter(l => l !== '').length
    assert.ok(records > 0)
    const worker = spawn(process.execPath, ['bin/iot-monitor.js', 'worker', ...common, '--status', '0'], { cwd: root, stdio: 'ignore' })
    const db = await openPostgres(url)
    try {
      await until('every record of the topic stored', 120_000, async () => {
        const n = await count(db, 'SELECT (SELECT count(*) FROM readings) + (SELECT count(*) FROM late_readings) AS n')
        return n >= records ? n : null
      })
      worker.kill('SIGTERM')
      await once(worker, 'exit')
      assert.equal(await count(db, 'SELECT (SELECT count(*) FROM readings) + (SELECT count(*) FROM late_readings) AS n'), records)
      assert.deepEqual((await checkConsistency(db)).mismatches, [])
    } finally {
      if (worker.exitCode === null) worker.kill('SIGKILL')
      await db.close()
    }
  })
})
