// A mosquitto of the test's own (never the system service): a temp config on a free port of
// 127.0.0.1, started, killed and restarted by the test. Debian packages `mosquitto` and
// `mosquitto-clients`; in CI (CI=true) the suites that need them may not be skipped.
import assert from 'node:assert/strict'
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const hasMosquitto = spawnSync('sh', ['-c', 'command -v mosquitto && command -v mosquitto_pub'], { encoding: 'utf8' }).status === 0

if (process.env.CI === 'true' && !hasMosquitto) {
  throw new Error('CI=true but mosquitto / mosquitto_pub are not installed (apt-get install mosquitto mosquitto-clients): the MQTT suites may not be skipped in CI.')
}

/** Why a mosquitto suite is skipped outside CI, or false when mosquitto is installed. */
export const mosquittoSkip: string | false = hasMosquitto ? false : 'mosquitto is not installed (apt-get install mosquitto mosquitto-clients)'

/** A TCP port nobody listens on right now. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  assert.ok(address !== null && typeof address === 'object')
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return address.port
}

export class Mosquitto {
  readonly port: number
  readonly #dir: string
  readonly #config: string
  #process: ChildProcess | null = null
  #exited: Promise<void> = Promise.resolve()

  private constructor (port: number, persistence: boolean, maxQueuedMessages: number | null) {
    this.port = port
    this.#dir = mkdtempSync(join(tmpdir(), 'iot-mosquitto-'))
    // Started as root, mosquitto drops to the `mosquitto` user before it writes its database.
    chmodSync(this.#dir, 0o777)
    this.#config = join(this.#dir, 'mosquitto.conf')
    writeFileSync(this.#config, [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      // With persistence, a clean shutdown (SIGTERM) saves sessions and their queued messages.
      `persistence ${persistence ? 'true' : 'false'}`,
      `persistence_location ${this.#dir}/`,
      // QoS 1 messages queued per offline persistent session before mosquitto drops more (its default: 1000).
      ...(maxQueuedMessages === null ? [] : [`max_queued_messages ${maxQueuedMessages}`]),
      'log_dest none',
      ''
    ].join('\n'))
  }

  /**
   * Starts mosquitto on a free port; `persistence` keeps sessions across a clean restart;
   * `maxQueuedMessages` raises what it queues for a session that is away (default 1000).
   */
  static async start (opts: { persistence?: boolean, maxQueuedMessages?: number } = {}): Promise<Mosquitto> {
    const broker = new Mosquitto(await freePort(), opts.persistence ?? false, opts.maxQueuedMessages ?? null)
    await broker.#launch()
    return broker
  }

  get url (): string {
    return `mqtt://127.0.0.1:${this.port}`
  }

  async #launch (): Promise<void> {
    const child = spawn('mosquitto', ['-c', this.#config], { stdio: 'ignore' })
    this.#process = child
    this.#exited = new Promise(resolve => child.once('exit', () => { resolve() }))
    const deadline = Date.now() + 5000
    for (;;) {
      if (child.exitCode !== null) assert.fail(`mosquitto exited with ${child.exitCode}`)
      if (await accepts(this.port)) return
      if (Date.now() > deadline) assert.fail('mosquitto did not listen within 5 s')
      await sleep(20)
    }
  }

  /** Ends the broker: SIGKILL loses everything in memory, SIGTERM saves sessions when persistent. */
  async kill (signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const child = this.#process
    if (child === null) return
    this.#process = null
    if (child.exitCode === null) child.kill(signal)
    await this.#exited
  }

  /** Ends it (see kill) and starts it again on the same port with the same config. */
  async restart (signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    await this.kill(signal)
    await this.#launch()
  }

  /** Publishes with mosquitto_pub (a client that is not ours). */
  async publish (topic: string, message: string, opts: { qos?: 0 | 1 | 2, retain?: boolean } = {}): Promise<void> {
    const args = ['-h', '127.0.0.1', '-p', String(this.port), '-t', topic, '-m', message, '-q', String(opts.qos ?? 1)]
    if (opts.retain === true) args.push('-r')
    await new Promise<void>((resolve, reject) => {
      execFile('mosquitto_pub', args, { timeout: 5000 }, (err, _stdout, stderr) => {
        if (err !== null) reject(new Error(`mosquitto_pub failed: ${stderr}`, { cause: err }))
        else resolve()
      })
    })
  }

  async stop (): Promise<void> {
    await this.kill()
    rmSync(this.#dir, { recursive: true, force: true })
  }
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}
