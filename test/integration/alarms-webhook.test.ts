// Alarm notifications to a REAL HTTP webhook receiver (node:http in this test).
//
// 1. The notifier alone, on every test database, with alarm rows written as the worker writes them:
//    firing after group_wait, nothing more until the repeat interval, a numbered repeat, none after
//    an acknowledgement, resolved after a clear; a receiver answering 500 gets the same notification
//    again with back-off until it takes it; a 400 is not retried; a silenced alarm still shows and
//    nothing is sent.
// 2. End to end (the embedded system: memory bus, worker with the alarm core, notifier): sustained
//    high CO2 fires after the pending period (5 min of event time) and not before, nothing more
//    while it stays active, resolved once the value stays under the clear threshold; the same in a
//    silenced location raises an alarm that shows and sends nothing.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { type AddressInfo } from 'node:net'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { type AlertmanagerWebhook, NotificationDispatcher, type NotifyPolicy } from '../../src/notify/index.ts'
import { type Db, acknowledgeAlarm, alarmNotifications, clearAlarmByOperator, createSilence, listAlarms } from '../../src/storage/index.ts'
import { startSystem } from '../../src/app/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { insertAlarm, testAlarm } from '../helpers/alarms.ts'
import { createServerDatabase, serverUrl, testDatabases, type TestDatabase } from '../helpers/databases.ts'

interface Received { at: number, headers: IncomingHttpHeaders, body: AlertmanagerWebhook }

/** A webhook receiver: records every request; answers the statuses queued in `answers`, then 200. */
class Receiver {
  readonly received: Received[] = []
  readonly answers: number[] = []
  readonly #server: Server
  url = ''
  constructor () {
    this.#server = createServer((req, res) => {
      let text = ''
      req.on('data', (d: Buffer) => { text += d.toString() })
      req.on('end', () => {
        this.received.push({ at: Date.now(), headers: req.headers, body: JSON.parse(text) as AlertmanagerWebhook })
        res.statusCode = this.answers.shift() ?? 200
        res.end(res.statusCode === 200 ? 'ok' : 'nope')
      })
    })
  }

  async start (): Promise<this> {
    await new Promise<void>(resolve => this.#server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`
    return this
  }

  async stop (): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise<void>(resolve => this.#server.close(() => resolve()))
  }

  /** Keys of the alerts received, per request. */
  keys (): string[][] {
    return this.received.map(r => r.body.alerts.map(a => a.annotations.idempotency_key ?? ''))
  }

  async waitFor (n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.received.length < n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} requests; got ${JSON.stringify(this.keys())}`)
      await sleep(20)
    }
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const log = pino({ level: 'silent' })
const POLICY: Partial<NotifyPolicy> = { groupWaitMs: 300, groupIntervalMs: 1000, repeatIntervalMs: 2000 }

function dispatcher (db: Db, r: Receiver, registry: Registry): NotificationDispatcher {
  return new NotificationDispatcher({
    db,
    targets: [{ url: r.url, format: 'alertmanager' }],
    policy: POLICY,
    retry: { baseMs: 200, maxMs: 1000 },
    payload: { receiver: 'test', externalUrl: 'http://127.0.0.1:8080' },
    log,
    registry,
    pollMs: 25,
    repeatCheckMs: 25,
    // The whole back-off step: waits of exactly 200 ms, 400 ms, …
    random: () => 1
  })
}

const counted = async (registry: Registry): Promise<Record<string, number>> => {
  const m = await registry.getSingleMetric('iot_alarm_notifications_total')?.get()
  return Object.fromEntries((m?.values ?? []).map(v => [String(v.labels.result), v.value]))
}

for (const tdb of testDatabases) {
  describe(`notifier and a real webhook receiver on ${tdb.name}`, { skip: tdb.skip }, () => {
    let ctx: Awaited<ReturnType<TestDatabase['create']>>
    let db: Db
    let receiver: Receiver
    let registry: Registry
    let d: NotificationDispatcher
    before(async () => {
      ctx = await tdb.create()
      db = ctx.db
    })
    after(async () => { await ctx.drop() })
    const setUp = async (): Promise<void> => {
      await db.query('DELETE FROM alarms')
      await db.query('DELETE FROM alarm_silences')
      receiver = await new Receiver().start()
      registry = new Registry()
      d = dispatcher(db, receiver, registry)
    }
    const tearDown = async (): Promise<void> => {
      await d.stop()
      await receiver.stop()
    }

    test('firing after group_wait, a repeat after the repeat interval and none before, none after the acknowledgement, resolved after a clear', async () => {
      await setUp()
      try {
        const a = await insertAlarm(db, testAlarm({ sensor: 'co2-lab-01' }))
        const written = Date.now()
        d.start()
        await receiver.waitFor(1, 5000)
        const first = receiver.received[0]!
        assert.ok(first.at - written >= 300, `not before group_wait: ${first.at - written} ms`)
        assert.equal(first.body.status, 'firing')
        assert.equal(first.body.alerts[0]!.endsAt, '0001-01-01T00:00:00Z')
        assert.equal(first.body.alerts[0]!.labels.alertname, 'threshold:co2_high')
        assert.equal(first.headers['idempotency-key'], `${a.id}|firing`)
        assert.equal(first.body.idempotencyKey, `${a.id}|firing`)
        // Nothing more while it stays active, until the repeat interval (2 s after that delivery).
        await sleep(1500)
        assert.equal(receiver.received.length, 1, JSON.stringify(receiver.keys()))
        await receiver.waitFor(2, 5000)
        const repeat = receiver.received[1]!
        assert.equal(repeat.headers['idempotency-key'], `${a.id}|firing|repeat-1`)
        assert.ok(repeat.at - first.at >= 2000, `the repeat waited the repeat interval: ${repeat.at - first.at} ms`)
        // Acknowledged: no more repeats.
        await acknowledgeAlarm(db, a.id, { by: 'alice', comment: 'on it', atMs: Date.now() })
        await sleep(2600)
        assert.equal(receiver.received.length, 2, JSON.stringify(receiver.keys()))
        await clearAlarmByOperator(db, a.id, { by: 'alice', comment: 'fixed', atMs: Date.now() })
        await receiver.waitFor(3, 5000)
        const resolved = receiver.received[2]!
        assert.equal(resolved.body.status, 'resolved')
        assert.equal(resolved.headers['idempotency-key'], `${a.id}|resolved`)
        assert.notEqual(resolved.body.alerts[0]!.endsAt, '0001-01-01T00:00:00Z')
        await sleep(300)
        assert.deepEqual(receiver.keys(), [[`${a.id}|firing`], [`${a.id}|firing|repeat-1`], [`${a.id}|resolved`]])
        assert.deepEqual((await alarmNotifications(db, a.id)).map(n => [n.idempotencyKey, n.attempts, n.deliveredAt !== null, n.lastError]), [
          [`${a.id}|firing`, 1, true, null], [`${a.id}|firing|repeat-1`, 1, true, null], [`${a.id}|resolved`, 1, true, null]
        ])
        assert.deepEqual(await counted(registry), { delivered: 3 })
      } finally {
        await tearDown()
      }
    })

    test('a receiver answering 500 gets the same notification again with back-off until it takes it; a 400 is not retried', async () => {
      await setUp()
      try {
        receiver.answers.push(500, 500)
        const a = await insertAlarm(db, testAlarm({ sensor: 'co2-office-01', location: 'office' }))
        d.start()
        await receiver.waitFor(3, 8000)
        await sleep(300)
        assert.deepEqual(receiver.keys(), [[`${a.id}|firing`], [`${a.id}|firing`], [`${a.id}|firing`]])
        const [r1, r2, r3] = receiver.received as [Received, Received, Received]
        assert.ok(r2.at - r1.at >= 200, `first back-off 200 ms: ${r2.at - r1.at}`)
        assert.ok(r3.at - r2.at >= 400, `second back-off 400 ms: ${r3.at - r2.at}`)
        assert.ok(r2.headers['idempotency-key'] === r1.headers['idempotency-key'] && r3.headers['idempotency-key'] === r1.headers['idempotency-key'])
        assert.deepEqual((await alarmNotifications(db, a.id)).map(n => [n.attempts, n.deliveredAt !== null, n.lastError]), [[3, true, null]])
        assert.deepEqual(await counted(registry), { failed: 2, delivered: 1 })

        receiver.answers.push(400)
        const b = await insertAlarm(db, testAlarm({ sensor: 'co2-hall-01', location: 'hall' }))
        await receiver.waitFor(4, 5000)
        await sleep(1000)
        assert.equal(receiver.received.length, 4)
        assert.deepEqual((await alarmNotifications(db, b.id)).map(n => [n.attempts, n.deliveredAt !== null, n.lastError]), [[1, true, 'rejected: HTTP 400: nope']])
      } finally {
        await tearDown()
      }
    })

    test('a silenced alarm still shows and nothing is sent; its row is done as silenced', async () => {
      await setUp()
      try {
        const s = await createSilence(db, { matchers: [{ name: 'location', value: 'maint.*', isRegex: true, isEqual: true }], startsAt: Date.now() - 1000, endsAt: Date.now() + 3_600_000, createdBy: 'ops', comment: 'maintenance' })
        const silenced = await insertAlarm(db, testAlarm({ sensor: 'co2-maint-01', location: 'maintenance-room' }))
        const loud = await insertAlarm(db, testAlarm({ sensor: 'co2-lab-09', location: 'lab' }))
        d.start()
        await receiver.waitFor(1, 5000)
        // Less than the repeat interval (2 s): the loud alarm is not repeated yet.
        await sleep(1500)
        assert.deepEqual(receiver.keys(), [[`${loud.id}|firing`]])
        assert.deepEqual((await listAlarms(db, { active: true })).map(x => x.id).sort(), [loud.id, silenced.id].sort())
        assert.deepEqual((await alarmNotifications(db, silenced.id)).map(n => [n.attempts, n.deliveredAt !== null, n.lastError]), [[0, true, `silenced: ${s.id}`]])
        assert.deepEqual(await counted(registry), { silenced: 1, delivered: 1 })
      } finally {
        await tearDown()
      }
    })
  })
}

describe('end to end: readings through the worker and its alarm core to a real receiver', { skip: serverUrl === null ? 'DATABASE_URL is not set' : false }, () => {
  test('sustained high CO2 fires after the pending period and not before, repeats after the interval, resolves under the clear threshold; a silenced location sends nothing', { timeout: 120_000 }, async () => {
    const created = await createServerDatabase(serverUrl!)
    const receiver = await new Receiver().start()
    const { config } = loadConfig(['start', '--database-url', created.url, '--no-simulator', '--no-mqtt', '--webhook-url', receiver.url,
      '--group-wait', '0s', '--group-interval', '1s', '--repeat-interval', '4s', '--status', '0'], {})
    const sys = await startSystem(config, log, new Set(['ingest', 'worker']))
    try {
      const producer = sys.bus!.producer()
      const MIN = 60_000
      const t0 = Math.floor((Date.now() - 30 * MIN) / MIN) * MIN
      const send = async (sensor: string, location: string, fromS: number, toS: number, value: number): Promise<void> => {
        for (let s = fromS; s < toS; s += 10) {
          const wire = JSON.stringify({ sensor_id: sensor, sensor_type: 'co2', location, value, timestamp: new Date(t0 + s * 1000).toISOString(), unit: 'ppm' })
          while (!producer.tryProduce(sensor, wire)) await producer.writable()
        }
        await producer.flush()
      }
      const db = sys.db!
      // The readings also trip other alarms (an anomaly burst): only the threshold alarm is followed here.
      const co2 = (): Received[] => receiver.received.filter(r => r.body.alerts.some(a => a.labels.alertname === 'threshold:co2_high'))
      const co2Keys = (): string[][] => co2().map(r => r.body.alerts.map(a => a.annotations.idempotency_key ?? ''))
      const waitCo2 = async (n: number): Promise<void> => {
        const deadline = Date.now() + 15_000
        while (co2().length < n) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} CO2 notifications; got ${JSON.stringify(receiver.keys())}`)
          await sleep(50)
        }
      }
      const stored = async (n: number): Promise<void> => {
        const deadline = Date.now() + 20_000
        for (;;) {
          const [row] = await db.query<{ n: number }>('SELECT count(*) AS n FROM readings')
          if ((row?.n ?? 0) >= n) return
          if (Date.now() > deadline) throw new Error(`readings stored: ${row?.n}, expected ${n}`)
          await sleep(100)
        }
      }
      // 4 min 50 s above 1,200 ppm: still pending.
      await send('co2-e2e-01', 'lab', 0, 290, 1500)
      await stored(29)
      await sleep(1500)
      assert.deepEqual(co2Keys(), [], 'nothing before the pending period')
      assert.deepEqual((await listAlarms(db, { active: true })).filter(a => a.type === 'threshold:co2_high'), [])
      // Past 5 min: fires.
      await send('co2-e2e-01', 'lab', 290, 420, 1500)
      await waitCo2(1)
      const alarm = (await listAlarms(db, { active: true })).find(a => a.type === 'threshold:co2_high')
      assert.ok(alarm !== undefined)
      assert.equal(alarm.type, 'threshold:co2_high')
      assert.deepEqual(co2Keys(), [[`${alarm.id}|firing`]])
      assert.equal(co2()[0]!.body.status, 'firing')
      // Still high: nothing more until the repeat interval (4 s), then one repeat.
      await send('co2-e2e-01', 'lab', 420, 480, 1500)
      await sleep(2000)
      assert.equal(co2().length, 1, JSON.stringify(receiver.keys()))
      await waitCo2(2)
      assert.deepEqual(co2Keys()[1], [`${alarm.id}|firing|repeat-1`])
      // Under the clear threshold (1,000 ppm): resolved.
      await send('co2-e2e-01', 'lab', 480, 600, 900)
      await waitCo2(3)
      assert.deepEqual(co2Keys()[2], [`${alarm.id}|resolved`])
      assert.equal(co2()[2]!.body.status, 'resolved')

      // A silenced location: the alarm shows, nothing is sent.
      await createSilence(db, { matchers: [{ name: 'location', value: 'quiet-room', isRegex: false, isEqual: true }], startsAt: Date.now() - 1000, endsAt: Date.now() + 3_600_000, createdBy: 'test', comment: '' })
      const quiet = (): number => receiver.received.filter(r => r.body.alerts.some(a => a.labels.sensor_id === 'co2-e2e-02')).length
      await send('co2-e2e-02', 'quiet-room', 0, 420, 1500)
      const silenced = await (async () => {
        const deadline = Date.now() + 15_000
        for (;;) {
          const a = (await listAlarms(db, { active: true })).find(x => x.originator.id === 'co2-e2e-02' && x.type === 'threshold:co2_high')
          if (a !== undefined) return a
          if (Date.now() > deadline) throw new Error('no alarm for the silenced sensor')
          await sleep(100)
        }
      })()
      await sleep(2000)
      assert.equal(quiet(), 0, JSON.stringify(receiver.keys()))
      assert.match((await alarmNotifications(db, silenced.id))[0]?.lastError ?? '', /^silenced: \d+$/)
    } finally {
      await sys.stop()
      await receiver.stop()
      await created.drop()
    }
  })
})
