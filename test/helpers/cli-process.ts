// The CLI as a child process for the cross-component tests: its output kept, its status lines read
// (stored readings over wall time), waits that fail with the output, and a clean stop.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('../../', import.meta.url).pathname
const cli = new URL('../../src/cli.ts', import.meta.url).pathname

export interface CliProcess {
  child: ChildProcess
  name: string
  output: () => string
  /** [wall ms, stored readings] from each status line ("stored N"), oldest first. */
  stored: Array<[number, number]>
  /** The newest stored count of the status lines (0 before the first). */
  lastStored: () => number
}

/**
 * Runs `iot-monitor ARGS` through tsx, without DATABASE_URL and KAFKA_BROKERS from the test's
 * environment (each test names its own). TEST_CHILD_LOG sets the children's log level (warn);
 * TEST_LOG_DIR keeps each process's whole output for a post-mortem.
 */
export function spawnCli (name: string, args: string[], status = '500ms'): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args, '--log-level', process.env.TEST_CHILD_LOG ?? 'warn', '--status', status],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '', KAFKA_BROKERS: '' } })
  let out = ''
  const file = process.env.TEST_LOG_DIR === undefined ? null : join(process.env.TEST_LOG_DIR, `${name.replace(/\W+/g, '_')}.log`)
  const stored: Array<[number, number]> = []
  const keep = (d: Buffer): void => {
    const text = d.toString()
    out += text
    for (const m of text.matchAll(/ \| stored ([\d,]+)/g)) stored.push([Date.now(), Number(m[1]!.replaceAll(',', ''))])
    if (file !== null) appendFileSync(file, d)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  return { child, name, output: () => out, stored, lastStored: () => stored.at(-1)?.[1] ?? 0 }
}

/** Waits for a process to exit; after `ms` it is killed and the wait fails with its output. */
export async function waitExit (p: CliProcess, ms: number): Promise<{ code: number | null, signal: string | null }> {
  const { exitCode, signalCode } = p.child
  if (exitCode !== null || signalCode !== null) return { code: exitCode, signal: signalCode }
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; p.child.kill('SIGKILL') }, ms)
  const [code, signal] = await once(p.child, 'exit') as [number | null, string | null]
  clearTimeout(timer)
  assert.ok(!timedOut, `${p.name} did not exit within ${ms} ms:\n${p.output().slice(-4000)}`)
  return { code, signal }
}

/** SIGTERM and the exit code (a clean stop is 0). */
export async function stopProc (p: CliProcess, ms = 30_000): Promise<number | null> {
  p.child.kill('SIGTERM')
  return (await waitExit(p, ms)).code
}

/** Polls `probe` every 200 ms until it holds; fails after `timeoutMs` with the processes' output. */
export async function until (what: string, probe: () => Promise<boolean> | boolean, timeoutMs: number, procs: CliProcess[] = []): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await probe()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}\n` + procs.map(p => `--- ${p.name}:\n${p.output().slice(-3000)}`).join('\n'))
    }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}
