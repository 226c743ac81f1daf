// The notifier's pure parts: Alertmanager's fingerprint (prometheus/common's test vectors), the
// payloads, matchers, the back-off, grouping (group_wait, group_interval), silences, obsolete
// repeats and the repeat schedule.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Alarm } from '../alarms/index.ts'
import { type StoredSilence } from '../storage/index.ts'
import { T0, testAlarm } from '../../test/helpers/alarms.ts'
import {
  type NotificationItem, type NotifyPolicy, alertmanagerPayload, defaultNotifyPolicy, dueRepeats, fingerprint, groupKeyOf, matcherMatches,
  notificationLabels, parseMatcher, planNotifications, requestKeyOf, retryDelayMs, silencedBy, slackPayload, validateMatchers
} from './index.ts'

const alarm = (over: Partial<Alarm> = {}): Alarm => testAlarm(over)

const item = (outboxId: number, over: Partial<NotificationItem> = {}, a: Partial<Alarm> = {}): NotificationItem => {
  const al = alarm(a)
  return { outboxId, idempotencyKey: `${al.id}|firing`, status: 'firing', atMs: al.startMs, createdAt: T0, attempts: 0, alarm: al, ...over }
}

const policy: NotifyPolicy = { ...defaultNotifyPolicy }

test('fingerprint - the FNV-1a of prometheus/common labelSetToFingerprint', () => {
  assert.equal(fingerprint({}), (14695981039346656037n).toString(16))
  assert.equal(fingerprint({ name: 'garland, briggs', fear: 'love is not enough' }), (5799056148416392346n).toString(16).padStart(16, '0'))
  // Label order does not matter.
  assert.equal(fingerprint({ b: '2', a: '1' }), fingerprint({ a: '1', b: '2' }))
})

test('labels and the Alertmanager payload of a firing and a resolved alert', () => {
  const a = alarm()
  assert.deepEqual(notificationLabels(a), { alertname: 'threshold:co2_high', sensor_id: 'co2-lab-01', location: 'lab', sensor_type: 'co2', severity: 'major' })
  const n = { groupKey: groupKeyOf({ alertname: 'threshold:co2_high', location: 'lab' }), groupLabels: { alertname: 'threshold:co2_high', location: 'lab' }, items: [item(1)] }
  const body = alertmanagerPayload(n, { receiver: 'iot-monitor', externalUrl: 'http://127.0.0.1:8080' })
  const labels = { alertname: 'threshold:co2_high', sensor_id: 'co2-lab-01', location: 'lab', sensor_type: 'co2', severity: 'major' }
  const annotations = {
    summary: 'threshold:co2_high on sensor co2-lab-01 (lab)',
    description: 'value: 1450, threshold: 1200',
    alarm_id: a.id,
    alarm_status: 'active_unack',
    idempotency_key: `${a.id}|firing`
  }
  assert.deepEqual(body, {
    version: '4',
    groupKey: '{}:{alertname="threshold:co2_high", location="lab"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'iot-monitor',
    groupLabels: { alertname: 'threshold:co2_high', location: 'lab' },
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: 'http://127.0.0.1:8080',
    alerts: [{
      status: 'firing',
      labels,
      annotations,
      startsAt: '2026-01-15T12:00:00.000Z',
      endsAt: '0001-01-01T00:00:00Z',
      fingerprint: fingerprint(labels),
      generatorURL: `http://127.0.0.1:8080/?tab=alarms&alarm=${encodeURIComponent(a.id)}`
    }],
    idempotencyKey: `${a.id}|firing`,
    idempotencyKeys: [`${a.id}|firing`]
  })
  const cleared = item(2, { status: 'resolved', idempotencyKey: `${a.id}|resolved`, atMs: T0 + 600_000 }, { active: false, clearMs: T0 + 600_000 })
  const two = { ...n, items: [cleared, item(3, {}, { startMs: T0 + 1000, originator: { kind: 'sensor', id: 'co2-lab-02' } })] }
  const both = alertmanagerPayload(two, { receiver: 'r', externalUrl: 'http://x/' })
  assert.equal(both.status, 'firing')
  assert.equal(both.alerts[0]!.endsAt, '2026-01-15T12:10:00.000Z')
  assert.deepEqual(both.commonLabels, { alertname: 'threshold:co2_high', location: 'lab', sensor_type: 'co2', severity: 'major' })
  assert.deepEqual(both.commonAnnotations, { description: 'value: 1450, threshold: 1200' })
  assert.match(both.idempotencyKey, /^batch:[0-9a-f]{32}$/)
  assert.equal(requestKeyOf({ ...two, items: [...two.items].reverse() }), both.idempotencyKey, 'the same transitions give the same key in any order')
  const slack = slackPayload(two, { receiver: 'r', externalUrl: 'http://x' })
  assert.equal(slack.text, '[FIRING:1 firing, 1 resolved] threshold:co2_high lab')
  assert.equal(slack.blocks.length, 4)
  assert.deepEqual(slack.blocks[3], { type: 'context', elements: [{ type: 'mrkdwn', text: `idempotency key: ${both.idempotencyKey}` }] })
})

test('matchers - equality, negation, anchored regexes; validation', () => {
  const labels = { alertname: 'offline', location: 'lab-2', severity: 'major' }
  assert.equal(matcherMatches(parseMatcher('location="lab-2"'), labels), true)
  assert.equal(matcherMatches(parseMatcher('location=~"lab-.*"'), labels), true)
  assert.equal(matcherMatches(parseMatcher('location=~"lab"'), labels), false, 'anchored: lab does not match lab-2')
  assert.equal(matcherMatches(parseMatcher('severity!=major'), labels), false)
  assert.equal(matcherMatches(parseMatcher('sensor_id!~".+"'), labels), true, 'a missing label reads as empty')
  assert.deepEqual(parseMatcher('a=~"x\\"y"'), { name: 'a', value: 'x"y', isRegex: true, isEqual: true })
  const code = (f: () => void): string | undefined => { try { f(); return undefined } catch (err) { return (err as { code?: string }).code } }
  assert.equal(code(() => validateMatchers([])), 'IOT_ERR_VALIDATION')
  assert.equal(code(() => validateMatchers([parseMatcher('a=~"("')])), 'IOT_ERR_VALIDATION')
  assert.equal(code(() => validateMatchers([parseMatcher('a=~".*"')])), 'IOT_ERR_VALIDATION', 'silences everything')
  assert.equal(code(() => validateMatchers([parseMatcher('1a="x"')])), 'IOT_ERR_VALIDATION')
  assert.equal(code(() => validateMatchers([parseMatcher('location="lab"')])), undefined)
  const s: StoredSilence = { id: 7, matchers: [parseMatcher('location="lab-2"')], startsAt: T0, endsAt: T0 + 3_600_000, createdBy: 'ops', comment: '', createdAt: T0 }
  assert.deepEqual(silencedBy(labels, [s], T0), [7])
  assert.deepEqual(silencedBy(labels, [s], T0 - 1), [], 'not started')
  assert.deepEqual(silencedBy(labels, [s], T0 + 3_600_000), [], 'ended')
})

test('back-off - doubles from the base up to the cap, jittered down by up to half', () => {
  const p = { baseMs: 1000, maxMs: 8000 }
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(n => retryDelayMs(n, p, () => 1)), [1000, 2000, 4000, 8000, 8000, 8000])
  assert.deepEqual([1, 2, 3].map(n => retryDelayMs(n, p, () => 0)), [500, 1000, 2000])
})

test('plan - group_wait for a new group, group_interval after a flush, retries at once, one row per alarm per request', () => {
  const a1 = item(1, { createdAt: T0 })
  const a2 = item(2, { createdAt: T0 + 10_000 }, { originator: { kind: 'sensor', id: 'co2-lab-02' }, startMs: T0 + 10_000 })
  const other = item(3, { createdAt: T0 }, { location: 'office', originator: { kind: 'sensor', id: 'co2-office-01' } })
  const g = '{}:{alertname="threshold:co2_high", location="lab"}'
  // 29 s after the first: the lab group waits until T0 + 30 s.
  let p = planNotifications({ nowMs: T0 + 29_000, due: [a1, a2, other], silences: [], lastFlush: new Map(), policy })
  assert.deepEqual(p.send, [])
  assert.deepEqual(p.held.map(h => [h.item.outboxId, h.untilMs]), [[1, T0 + 30_000], [2, T0 + 30_000], [3, T0 + 30_000]])
  // At 30 s both lab rows go in one request, the office row in its own.
  p = planNotifications({ nowMs: T0 + 30_000, due: [a2, a1, other], silences: [], lastFlush: new Map(), policy })
  assert.deepEqual(p.send.map(n => [n.groupKey, n.items.map(i => i.outboxId)]), [[g, [1, 2]], ['{}:{alertname="threshold:co2_high", location="office"}', [3]]])
  assert.deepEqual(p.flushed, [g, '{}:{alertname="threshold:co2_high", location="office"}'])
  // A new lab row 1 min after that flush waits for the group interval (5 min after the flush).
  const a4 = item(4, { createdAt: T0 + 90_000, status: 'resolved', idempotencyKey: 'x|resolved' }, { active: false, clearMs: T0 + 90_000 })
  p = planNotifications({ nowMs: T0 + 90_000, due: [a4], silences: [], lastFlush: new Map([[g, T0 + 30_000]]), policy })
  assert.deepEqual(p.held.map(h => [h.item.outboxId, h.untilMs]), [[4, T0 + 330_000]])
  // A retry goes when due whatever the group's timers; a fresh row of the same alarm goes in the next request.
  const retry = item(5, { attempts: 2, createdAt: T0 })
  const sameAlarm = item(6, { status: 'resolved', idempotencyKey: 'y|resolved', createdAt: T0 }, { active: false, clearMs: T0 + 5 })
  p = planNotifications({ nowMs: T0 + 40_000, due: [retry, sameAlarm], silences: [], lastFlush: new Map([[g, T0 + 30_000]]), policy })
  assert.deepEqual(p.send.map(n => n.items.map(i => i.outboxId)), [[5]])
  assert.deepEqual(p.held.map(h => h.item.outboxId), [6])
  p = planNotifications({ nowMs: T0 + 400_000, due: [retry, sameAlarm], silences: [], lastFlush: new Map([[g, T0 + 30_000]]), policy })
  assert.deepEqual(p.send.map(n => n.items.map(i => i.outboxId)), [[5], [6]])
})

test('plan - silenced, obsolete repeats and expired rows are done without a request', () => {
  const s: StoredSilence = { id: 3, matchers: [parseMatcher('location="lab"')], startsAt: T0, endsAt: T0 + 3_600_000, createdBy: 'ops', comment: 'maintenance', createdAt: T0 }
  const silenced = item(1)
  const repeatAcked = item(2, { idempotencyKey: 'k|firing|repeat-1' }, { acknowledged: true, location: 'office' })
  const expired = item(3, { createdAt: T0 - 25 * 3_600_000 }, { location: 'office' })
  const p = planNotifications({ nowMs: T0 + 60_000, due: [silenced, repeatAcked, expired], silences: [s], lastFlush: new Map(), policy })
  assert.deepEqual(p.send, [])
  assert.deepEqual(p.silenced.map(x => [x.item.outboxId, x.silenceIds]), [[1, [3]]])
  assert.deepEqual(p.obsolete.map(x => [x.item.outboxId, x.reason]), [
    [2, 'obsolete: the alarm was acknowledged before the repeat went out'],
    [3, 'expired: not tried within 1440 min of the transition (no receiver was configured)']
  ])
})

test('repeats - after repeat_interval since the last notification, numbered, not while pending, acknowledged or silenced', () => {
  const p = { ...policy, repeatIntervalMs: 3_600_000 }
  const a = alarm()
  const c = { alarm: a, firingRows: 1, lastNotifiedMs: T0, pending: false }
  assert.deepEqual(dueRepeats([c], [], T0 + 3_599_999, p), [])
  assert.deepEqual(dueRepeats([c], [], T0 + 3_600_000, p), [{ alarmId: a.id, idempotencyKey: `${a.id}|firing|repeat-1` }])
  assert.deepEqual(dueRepeats([{ ...c, firingRows: 3 }], [], T0 + 3_600_000, p), [{ alarmId: a.id, idempotencyKey: `${a.id}|firing|repeat-3` }])
  assert.deepEqual(dueRepeats([{ ...c, pending: true }], [], T0 + 3_600_000, p), [])
  assert.deepEqual(dueRepeats([{ ...c, alarm: { ...a, acknowledged: true } }], [], T0 + 3_600_000, p), [])
  assert.deepEqual(dueRepeats([{ ...c, firingRows: 0 }], [], T0 + 3_600_000, p), [], 'never fired: nothing to repeat')
  const s: StoredSilence = { id: 1, matchers: [parseMatcher('sensor_id="co2-lab-01"')], startsAt: T0, endsAt: T0 + 7_200_000, createdBy: 'x', comment: '', createdAt: T0 }
  assert.deepEqual(dueRepeats([c], [s], T0 + 3_600_000, p), [])
  // Only ever silenced, the silence over: notified at once.
  assert.deepEqual(dueRepeats([{ ...c, lastNotifiedMs: null }], [], T0 + 1, p), [{ alarmId: a.id, idempotencyKey: `${a.id}|firing|repeat-1` }])
})
