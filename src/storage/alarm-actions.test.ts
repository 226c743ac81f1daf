// Operator actions on alarms on every test database: the list's order, one alarm's history and
// notifications, acknowledgement and clearing (with their history entries and the resolved outbox
// row), refusals with stable codes, silences, counts and the live stream's change mark.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { T0, insertAlarm, testAlarm } from '../../test/helpers/alarms.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import {
  type Db, acknowledgeAlarm, alarmCounts, alarmHistory, alarmNotifications, alarmsChangedSince, alarmsVersion, clearAlarmByOperator, createSilence,
  deleteSilence, emptyAlarmCounts, findAlarm, listAlarms, listSilences
} from './index.ts'

const plain = (x: unknown): unknown => JSON.parse(JSON.stringify(x))
const codeOf = async (p: Promise<unknown>): Promise<string | undefined> => {
  try {
    await p
    return undefined
  } catch (err) {
    return (err as { code?: string }).code
  }
}

for (const tdb of testDatabases) {
  describe(`alarm actions on ${tdb.name}`, { skip: tdb.skip }, () => {
    let ctx: Awaited<ReturnType<TestDatabase['create']>>
    let db: Db
    before(async () => {
      ctx = await tdb.create()
      db = ctx.db
    })
    after(async () => { await ctx.drop() })

    test('list: active first, then the most severe, then the newest; filters', async () => {
      const minorNew = await insertAlarm(db, testAlarm({ sensor: 's1', severity: 'minor', startMs: T0 + 3000 }))
      const criticalOld = await insertAlarm(db, testAlarm({ sensor: 's2', severity: 'critical', startMs: T0 }))
      const majorA = await insertAlarm(db, testAlarm({ sensor: 's3', severity: 'major', startMs: T0 + 1000 }))
      const majorB = await insertAlarm(db, testAlarm({ sensor: 's4', severity: 'major', startMs: T0 + 2000, location: 'office' }))
      const clearedCritical = await insertAlarm(db, testAlarm({ sensor: 's5', severity: 'critical', startMs: T0 + 5000, active: false, clearMs: T0 + 6000 }))
      assert.deepEqual((await listAlarms(db)).map(a => a.id), [criticalOld.id, majorB.id, majorA.id, minorNew.id, clearedCritical.id])
      assert.deepEqual((await listAlarms(db, { active: false })).map(a => a.id), [clearedCritical.id])
      assert.deepEqual((await listAlarms(db, { severity: 'major', location: 'office' })).map(a => a.id), [majorB.id])
      assert.deepEqual((await listAlarms(db, { limit: 2 })).map(a => a.id), [criticalOld.id, majorB.id])
      assert.deepEqual(plain(await findAlarm(db, majorA.id)), plain(majorA))
      assert.equal(await findAlarm(db, 'nope'), null)
      const counts = emptyAlarmCounts()
      counts.active_unack.critical = 1
      counts.active_unack.major = 2
      counts.active_unack.minor = 1
      counts.cleared_unack.critical = 1
      assert.deepEqual(await alarmCounts(db), counts)
      await db.query('DELETE FROM alarms')
    })

    test('acknowledge with a comment, then clear by an operator: status, history, resolved outbox row; repeated actions are refused', async () => {
      const a = await insertAlarm(db, testAlarm({ sensor: 'ack-1' }))
      const before = await alarmsVersion(db)
      const acked = await acknowledgeAlarm(db, a.id, { by: 'alice', comment: 'fan replaced, watching', atMs: T0 + 60_000 })
      assert.deepEqual(plain(acked), plain({ ...a, acknowledged: true, ackMs: T0 + 60_000, ackBy: 'alice', ackComment: 'fan replaced, watching' }))
      const afterAck = await alarmsVersion(db)
      assert.equal(afterAck.lastEventId > before.lastEventId, true)
      assert.deepEqual(await alarmsChangedSince(db, before.lastEventId), [a.id])
      assert.equal(await codeOf(acknowledgeAlarm(db, a.id, { by: 'bob', comment: null, atMs: T0 + 61_000 })), 'IOT_ERR_ALARM_STATE')
      assert.equal(await codeOf(acknowledgeAlarm(db, 'missing', { by: 'bob', comment: null, atMs: T0 })), 'IOT_ERR_ALARM_NOT_FOUND')

      const cleared = await clearAlarmByOperator(db, a.id, { by: 'bob', comment: 'sensor moved', atMs: T0 + 120_000 })
      assert.deepEqual(plain(cleared), plain({ ...acked, active: false, clearMs: T0 + 120_000 }))
      assert.equal(await codeOf(clearAlarmByOperator(db, a.id, { by: 'bob', comment: null, atMs: T0 + 121_000 })), 'IOT_ERR_ALARM_STATE')
      assert.equal(await codeOf(clearAlarmByOperator(db, 'missing', { by: 'bob', comment: null, atMs: T0 })), 'IOT_ERR_ALARM_NOT_FOUND')
      assert.deepEqual((await alarmHistory(db, a.id)).map(e => [e.kind, e.atMs, e.by, e.comment]), [
        ['raised', T0, 'system', null],
        ['acknowledged', T0 + 60_000, 'alice', 'fan replaced, watching'],
        ['cleared_by_operator', T0 + 120_000, 'bob', 'sensor moved']
      ])
      const notes = await alarmNotifications(db, a.id)
      assert.deepEqual(notes.map(n => [n.idempotencyKey, n.status, n.atMs, n.attempts, n.deliveredAt, n.lastError]), [
        [`${a.id}|firing`, 'firing', T0, 0, null, null],
        [`${a.id}|resolved`, 'resolved', T0 + 120_000, 0, null, null]
      ])
      assert.equal((await alarmsVersion(db)).active, afterAck.active - 1)
    })

    test('clear by an operator when the core wrote the resolved row already: no second row', async () => {
      const a = await insertAlarm(db, testAlarm({ sensor: 'clr-2' }))
      await db.query("INSERT INTO alarm_outbox (idempotency_key, alarm_id, status, at_ms) VALUES ($1, $2, 'resolved', $3)", [`${a.id}|resolved`, a.id, T0 + 5])
      await clearAlarmByOperator(db, a.id, { by: 'operator', comment: null, atMs: T0 + 10 })
      assert.deepEqual((await alarmNotifications(db, a.id)).map(n => [n.idempotencyKey, n.atMs]), [[`${a.id}|firing`, T0], [`${a.id}|resolved`, T0 + 5]])
    })

    test('silences: create, list current and future (or all), delete; refusals', async () => {
      const now = Date.now()
      const m = [{ name: 'location', value: 'lab', isRegex: false, isEqual: true }]
      const current = await createSilence(db, { matchers: m, startsAt: now - 1000, endsAt: now + 3_600_000, createdBy: 'ops', comment: 'maintenance' })
      const future = await createSilence(db, { matchers: [{ name: 'alertname', value: 'offline|stuck', isRegex: true, isEqual: true }], startsAt: now + 3_600_000, endsAt: now + 7_200_000, createdBy: 'ops', comment: '' })
      const over = await createSilence(db, { matchers: m, startsAt: now - 7_200_000, endsAt: now - 3_600_000, createdBy: 'ops', comment: 'old' })
      assert.deepEqual(current.matchers, m)
      assert.equal(current.startsAt, now - 1000)
      assert.equal(current.endsAt, now + 3_600_000)
      assert.deepEqual((await listSilences(db, now)).map(s => s.id), [current.id, future.id])
      assert.deepEqual((await listSilences(db, now, true)).map(s => s.id), [over.id, current.id, future.id])
      // The migration's shorthand, written by hand: equality matchers.
      await db.query('INSERT INTO alarm_silences (matchers, starts_at, ends_at, created_by) VALUES (\'{"sensor_id": "t-1"}\', now(), now() + interval \'1 hour\', \'sql\')')
      const byHand = (await listSilences(db, now + 1000)).find(s => s.createdBy === 'sql')
      assert.deepEqual(byHand?.matchers, [{ name: 'sensor_id', value: 't-1', isRegex: false, isEqual: true }])
      assert.equal((await deleteSilence(db, future.id)).id, future.id)
      assert.equal(await codeOf(deleteSilence(db, future.id)), 'IOT_ERR_SILENCE_NOT_FOUND')
      assert.equal(await codeOf(createSilence(db, { matchers: m, startsAt: now, endsAt: now, createdBy: 'x', comment: '' })), 'IOT_ERR_VALIDATION')
    })
  })
}
