// The alarm endpoints through app.inject() on PGlite: the list with its counts, one alarm with its
// history and notifications, acknowledgement and clearing (admin token when one is configured: 401,
// 403 for the viewer, open when none is), silences, the live stream's `alarms` event, and the gauge
// iot_alarms{state,severity} on /metrics.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type FastifyInstance } from 'fastify'
import { PipelineMetrics } from '../pipeline/index.ts'
import { type Db } from '../storage/index.ts'
import { T0, insertAlarm, testAlarm } from '../../test/helpers/alarms.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import { buildApp } from './app.ts'
import { type AlarmDetailJson, type AlarmListJson, type LiveAlarmsJson, type SilenceJson } from './contract.ts'
import { LiveHub } from './live.ts'

const ADMIN = 'admin-token-for-the-alarm-tests-0123'
const VIEWER = 'viewer-token-for-the-alarm-tests-0123'
const NOW = T0 + 3_600_000
const status = (): { watermark: number, lag: number, latency: null } => ({ watermark: T0, lag: 0, latency: null })
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` })
const enc = encodeURIComponent

describe('alarms API', () => {
  const tdb = testDatabases[0]!
  let ctx: Awaited<ReturnType<TestDatabase['create']>>
  let db: Db
  let app: FastifyInstance
  let open: FastifyInstance
  let hub: LiveHub
  const metrics = new PipelineMetrics(undefined, false)
  before(async () => {
    ctx = await tdb.create()
    db = ctx.db
    hub = new LiveHub()
    app = await buildApp({ db, registry: metrics.registry, status, webRoot: null, adminToken: ADMIN, viewerToken: VIEWER, readRequiresToken: true, now: () => NOW, live: hub, alarmPollMs: 20 })
    open = await buildApp({ db, registry: new PipelineMetrics(undefined, false).registry, status, webRoot: null, now: () => NOW })
  })
  after(async () => {
    await app.close()
    await open.close()
    hub.close()
    await ctx.drop()
  })

  test('list, one alarm with history, acknowledge and clear with the admin token; refusals', async () => {
    const a = await insertAlarm(db, testAlarm({ sensor: 'co2-lab-01', severity: 'critical' }))
    const b = await insertAlarm(db, testAlarm({ sensor: 'co2-lab-02', startMs: T0 + 1000 }))
    const list = await app.inject({ url: '/api/alarms', headers: bearer(VIEWER) })
    assert.equal(list.statusCode, 200)
    const body = list.json<AlarmListJson>()
    assert.equal(body.as_of, new Date(NOW).toISOString())
    assert.deepEqual(body.alarms.map(x => [x.id, x.status, x.severity]), [[a.id, 'active_unack', 'critical'], [b.id, 'active_unack', 'major']])
    assert.deepEqual(body.alarms[0], {
      id: a.id,
      originator: { kind: 'sensor', id: 'co2-lab-01' },
      type: 'threshold:co2_high',
      severity: 'critical',
      status: 'active_unack',
      sensor_type: 'co2',
      location: 'lab',
      start: '2026-01-15T12:00:00.000Z',
      last: '2026-01-15T12:00:00.000Z',
      cleared_at: null,
      acknowledged_at: null,
      acknowledged_by: null,
      ack_comment: null,
      details: { value: 1450, threshold: 1200 },
      labels: {}
    })
    assert.equal(body.counts.active_unack.critical, 1)
    assert.equal(body.counts.active_unack.major, 1)
    assert.equal((await app.inject({ url: '/api/alarms?state=nope', headers: bearer(VIEWER) })).statusCode, 400)
    assert.equal((await app.inject({ url: '/api/alarms' })).statusCode, 401, 'reading needs a token here')

    const ack = `/api/alarms/${enc(a.id)}/ack`
    const payload = { comment: 'on it' }
    assert.equal((await app.inject({ method: 'POST', url: ack, payload, headers: bearer(VIEWER) })).statusCode, 403)
    assert.equal((await app.inject({ method: 'POST', url: ack, payload, headers: bearer('wrong-token-0123456789') })).statusCode, 401)
    const done = await app.inject({ method: 'POST', url: ack, payload, headers: bearer(ADMIN) })
    assert.equal(done.statusCode, 200, done.body)
    const acked = done.json<{ alarm: { status: string, acknowledged_by: string, ack_comment: string, acknowledged_at: string } }>().alarm
    assert.deepEqual([acked.status, acked.acknowledged_by, acked.ack_comment, acked.acknowledged_at], ['active_ack', 'admin', 'on it', new Date(NOW).toISOString()])
    const again = await app.inject({ method: 'POST', url: ack, payload, headers: bearer(ADMIN) })
    assert.equal(again.statusCode, 409)
    assert.equal(again.json<{ code: string }>().code, 'IOT_ERR_ALARM_STATE')
    const missing = await app.inject({ method: 'POST', url: '/api/alarms/nope/ack', payload, headers: bearer(ADMIN) })
    assert.deepEqual([missing.statusCode, missing.json<{ code: string }>().code], [404, 'IOT_ERR_ALARM_NOT_FOUND'])
    const bad = await app.inject({ method: 'POST', url: `/api/alarms/${enc(b.id)}/ack`, payload: { comment: 5 }, headers: bearer(ADMIN) })
    assert.deepEqual([bad.statusCode, bad.json<{ code: string }>().code], [400, 'IOT_ERR_VALIDATION'])

    const cleared = await app.inject({ method: 'POST', url: `/api/alarms/${enc(b.id)}/clear`, payload: { comment: 'false alarm', by: 'carol' }, headers: bearer(ADMIN) })
    assert.equal(cleared.statusCode, 200, cleared.body)
    const detail = (await app.inject({ url: `/api/alarms/${enc(b.id)}`, headers: bearer(VIEWER) })).json<AlarmDetailJson>()
    assert.equal(detail.alarm.status, 'cleared_unack')
    assert.deepEqual(detail.history.map(e => [e.kind, e.by, e.comment]), [['raised', 'system', null], ['cleared_by_operator', 'carol', 'false alarm']])
    assert.deepEqual(detail.notifications.map(n => [n.idempotency_key, n.status, n.attempts, n.done_at]), [[`${b.id}|firing`, 'firing', 0, null], [`${b.id}|resolved`, 'resolved', 0, null]])
    assert.equal((await app.inject({ url: `/api/alarms/${enc('no|such')}`, headers: bearer(VIEWER) })).statusCode, 404)

    // Without an admin token configured, whoever reads may act; `by` is then "operator".
    const c = await insertAlarm(db, testAlarm({ sensor: 'co2-lab-03' }))
    const anon = await open.inject({ method: 'POST', url: `/api/alarms/${enc(c.id)}/ack`, payload: {} })
    assert.equal(anon.statusCode, 200, anon.body)
    assert.equal(anon.json<{ alarm: { acknowledged_by: string, ack_comment: null } }>().alarm.acknowledged_by, 'operator')

    const text = (await app.inject({ url: '/metrics', headers: bearer(VIEWER) })).body
    assert.match(text, /^iot_alarms\{state="active_ack",severity="critical"\} 1$/m)
    assert.match(text, /^iot_alarms\{state="active_ack",severity="major"\} 1$/m)
    assert.match(text, /^iot_alarms\{state="cleared_unack",severity="major"\} 1$/m)
    assert.match(text, /^iot_alarms\{state="active_unack",severity="major"\} 0$/m)
    assert.match(text, /^iot_api_refused_total\{scope="admin",reason="forbidden"\} 1$/m)
  })

  test('silences: create (objects, text or a map of equalities; duration or ends_at), list, delete; refusals', async () => {
    const h = bearer(ADMIN)
    const made = await app.inject({ method: 'POST', url: '/api/silences', headers: h, payload: { matchers: ['location="lab"', { name: 'alertname', value: 'offline|stuck', isRegex: true }], duration: '2h', comment: 'maintenance' } })
    assert.equal(made.statusCode, 201, made.body)
    const s = made.json<{ silence: SilenceJson }>().silence
    assert.deepEqual({ ...s, id: 0, created_at: '' }, {
      id: 0,
      matchers: [{ name: 'location', value: 'lab', isRegex: false, isEqual: true }, { name: 'alertname', value: 'offline|stuck', isRegex: true, isEqual: true }],
      starts_at: new Date(NOW).toISOString(),
      ends_at: new Date(NOW + 7_200_000).toISOString(),
      created_by: 'admin',
      comment: 'maintenance',
      created_at: '',
      state: 'active'
    })
    const later = await app.inject({ method: 'POST', url: '/api/silences', headers: h, payload: { matchers: { sensor_id: 't-1' }, starts_at: new Date(NOW + 60_000).toISOString(), ends_at: new Date(NOW + 120_000).toISOString() } })
    assert.equal(later.statusCode, 201, later.body)
    const listed = (await app.inject({ url: '/api/silences', headers: bearer(VIEWER) })).json<{ silences: SilenceJson[] }>().silences
    assert.deepEqual(listed.map(x => [x.id, x.state]), [[s.id, 'active'], [later.json<{ silence: SilenceJson }>().silence.id, 'pending']])
    for (const payload of [
      { matchers: [], duration: '1h' },
      { matchers: ['location=~".*"'], duration: '1h' },
      { matchers: ['location="lab"'] },
      { matchers: ['location="lab"'], duration: 'soon' },
      { matchers: ['location="lab"'], ends_at: new Date(NOW - 1000).toISOString() }
    ]) {
      const r = await app.inject({ method: 'POST', url: '/api/silences', headers: h, payload })
      assert.deepEqual([r.statusCode, r.json<{ code: string }>().code], [400, 'IOT_ERR_VALIDATION'], JSON.stringify(payload))
    }
    assert.equal((await app.inject({ method: 'POST', url: '/api/silences', headers: bearer(VIEWER), payload: { matchers: ['a="b"'], duration: '1h' } })).statusCode, 403)
    assert.equal((await app.inject({ method: 'DELETE', url: `/api/silences/${s.id}`, headers: bearer(VIEWER) })).statusCode, 403)
    assert.equal((await app.inject({ method: 'DELETE', url: `/api/silences/${s.id}`, headers: h })).statusCode, 200)
    const gone = await app.inject({ method: 'DELETE', url: `/api/silences/${s.id}`, headers: h })
    assert.deepEqual([gone.statusCode, gone.json<{ code: string }>().code], [404, 'IOT_ERR_SILENCE_NOT_FOUND'])
  })

  test('live: an `alarms` event with the counts and the changed alarm after an acknowledgement', async () => {
    const a = await insertAlarm(db, testAlarm({ sensor: 'co2-live-01' }))
    const events: LiveAlarmsJson[] = []
    const unsubscribe = hub.subscribe({}, chunk => {
      const m = /^event: alarms\ndata: (.*)\n\n$/s.exec(chunk)
      if (m !== null) events.push(JSON.parse(m[1]!) as LiveAlarmsJson)
      return true
    })
    try {
      // The first poll sets the mark; the acknowledgement moves it.
      await new Promise(resolve => setTimeout(resolve, 100))
      const r = await app.inject({ method: 'POST', url: `/api/alarms/${enc(a.id)}/ack`, payload: { comment: 'seen' }, headers: bearer(ADMIN) })
      assert.equal(r.statusCode, 200)
      const deadline = Date.now() + 5000
      while (!events.some(e => e.changed.some(x => x.id === a.id)) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
      const e = events.find(x => x.changed.some(y => y.id === a.id))
      assert.ok(e !== undefined, 'an alarms event names the acknowledged alarm')
      assert.deepEqual(e.changed.map(x => [x.id, x.status, x.ack_comment]), [[a.id, 'active_ack', 'seen']])
      assert.equal(e.counts.active_ack.major >= 1, true)
    } finally {
      unsubscribe?.()
    }
  })
})
