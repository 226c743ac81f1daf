// The worker's side of the alarm tables: a batch's alarm changes written in a transaction, read back
// on a claim, operators' actions kept, outbox rows written once per idempotency key. PGlite and PostgreSQL.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { AlarmEvaluator, defaultAlarmRules, recomputeAlarms } from '../alarms/index.ts'
import { type Reading, type ScoredReading, type Verdict } from '../domain/index.ts'
import { testDatabases, type TestDatabase } from '../../test/helpers/databases.ts'
import {
  type Db, acknowledgeAlarm, clearAlarmByOperator, commitBatch, ensureDayPartitions, foldAlarmConditions, listAllAlarms, loadAlarmState, loadKnownSensors,
  loadOperatorState, loadReadingsForAlarms, writeAlarmBatch
} from './index.ts'
import { WindowDeltas } from '../windowing/index.ts'

const T0 = Date.UTC(2026, 0, 1)
const S = 1000

const normal: Verdict = {
  ruleAnomaly: false, zScore: 0, zAnomaly: false, mlScore: null, mlAnomaly: null, modelVersion: null, stuck: false, drift: false, anomalyScore: 0, anomaly: false, severity: null, explanation: null
}

function co2 (from: number, to: number, value: (t: number) => number): ScoredReading[] {
  const out: ScoredReading[] = []
  for (let t = from; t <= to; t += 30 * S) {
    const reading: Reading = { sensorId: 'co2-1', sensorType: 'co2', location: 'Lab', value: value(t), ts: T0 + t, unit: 'ppm', anomaly: null, anomalyKind: null, seq: null }
    out.push({ reading, verdict: normal })
  }
  return out
}

const count = async (db: Db, sql: string): Promise<number> => (await db.query<{ n: number }>(sql))[0]!.n

for (const tdb of testDatabases) {
  describe(`alarm storage on ${tdb.name}`, { skip: tdb.skip }, () => {
    let ctx: Awaited<ReturnType<TestDatabase['create']>>
    let db: Db
    before(async () => {
      ctx = await tdb.create()
      db = ctx.db
      await ensureDayPartitions(db, [T0])
    })
    after(async () => { await ctx.drop() })

    test(`${tdb.name}: a batch's alarms, history, outbox and conditions are written with it and restored on a claim`, async () => {
      const ev = new AlarmEvaluator(defaultAlarmRules)
      const readings = co2(0, 600 * S, () => 1300)
      const b = ev.evaluate(readings, 0)!
      await commitBatch(db, { group: 'g', topic: 't', modelTreesEveryMs: 3_600_000 },
        { scored: readings, late: [], deadLetters: [], deltas: new WindowDeltas(60_000), models: [], progress: [], alarms: b })
      const id = `sensor:co2-1|threshold:co2_high|${T0 + 300 * S}`
      const stored = await listAllAlarms(db)
      assert.deepEqual(stored.map(a => [a.id, a.severity, a.active, a.acknowledged, a.startMs, a.lastMs, a.clearMs]), [[id, 'warning', true, false, T0 + 300 * S, T0 + 600 * S, null]])
      assert.deepEqual(stored[0]!.details, { value: 1300, threshold: 1200, direction: 'above', pendingSinceMs: T0, clearThreshold: 1000, lastValue: 1300, peak: 1300 })
      assert.deepEqual([...await db.query('SELECT idempotency_key AS k, status, at_ms AS at FROM alarm_outbox')], [{ k: `${id}|firing`, status: 'firing', at: T0 + 300 * S }])
      assert.deepEqual([...await db.query('SELECT kind, at_ms AS at FROM alarm_events')], [{ kind: 'raised', at: T0 + 300 * S }])
      const state = await loadAlarmState(db)
      assert.deepEqual(state.alarms.map(a => a.id), [id])
      assert.deepEqual(state.conditions, [{ originator: { kind: 'sensor', id: 'co2-1' }, type: 'threshold:co2_high', state: { since: [T0, null], clearSince: null, latched: false } }])
      assert.deepEqual(await loadKnownSensors(db, 3_600_000), [{ sensorId: 'co2-1', sensorType: 'co2', location: 'Lab', watch: true, intervalMs: 0 }])
      // The log of condition states folds into one row per state, and reads back the same.
      assert.equal(await count(db, 'SELECT count(*)::int AS n FROM alarm_condition_log'), 1)
      await db.transaction(async tx => { await foldAlarmConditions(tx, [0], ev.snapshotConditions()) })
      assert.equal(await count(db, 'SELECT count(*)::int AS n FROM alarm_condition_log'), 0)
      assert.deepEqual([...await db.query('SELECT originator_id AS id, alarm_type AS t, partition AS p FROM alarm_conditions')], [{ id: 'co2-1', t: 'threshold:co2_high', p: 0 }])
      assert.deepEqual((await loadAlarmState(db)).conditions, state.conditions)
      assert.deepEqual(recomputeAlarms(await loadReadingsForAlarms(db), defaultAlarmRules), stored)

      // The same batch again (a recomputation, a redelivery): the outbox keeps each key once.
      await db.transaction(async tx => { await writeAlarmBatch(tx, b) })
      assert.equal(await count(db, 'SELECT count(*)::int AS n FROM alarm_outbox'), 1)

      // A restarted evaluator continues: the value falls under the clear threshold, the alarm clears.
      const restarted = new AlarmEvaluator(defaultAlarmRules)
      restarted.restore({ ...state, sensors: await loadKnownSensors(db, 3_600_000), wallNow: 0 })
      restarted.observe(readings.map(r => r.reading))
      // An operator acknowledged it meanwhile: the worker's writes keep that.
      await acknowledgeAlarm(db, id, { by: 'ops', comment: 'on it', atMs: 5 })
      const clear = restarted.evaluate(co2(630 * S, 660 * S, t => t === 630 * S ? 1250 : 900), 0)!
      await db.transaction(async tx => { await writeAlarmBatch(tx, clear) })
      const [after] = await listAllAlarms(db)
      assert.deepEqual([after!.active, after!.acknowledged, after!.ackComment, after!.clearMs, after!.lastMs], [false, true, 'on it', T0 + 660 * S, T0 + 630 * S])
      assert.deepEqual((await db.query<{ k: string }>('SELECT idempotency_key AS k FROM alarm_outbox ORDER BY outbox_id')).map(r => r.k), [`${id}|firing`, `${id}|resolved`])
      assert.deepEqual((await loadAlarmState(db)).conditions, [], 'nothing pending: the logged null removes the folded state')
      await db.transaction(async tx => { await foldAlarmConditions(tx, [0], restarted.snapshotConditions()) })
      assert.equal(await count(db, 'SELECT count(*)::int AS n FROM alarm_conditions'), 0, 'folded: the row is gone')
    })

    test(`${tdb.name}: an alarm an operator cleared stays cleared; the core hears of it and latches the condition`, async () => {
      const ev = new AlarmEvaluator(defaultAlarmRules)
      const r = (m: number): ScoredReading => ({ reading: { sensorId: 'h-9', sensorType: 'humidity', location: 'Lab', value: 40, ts: T0 + m * 60_000, unit: '%', anomaly: null, anomalyKind: null, seq: null }, verdict: { ...normal, stuck: true } })
      await db.transaction(async tx => { await writeAlarmBatch(tx, ev.evaluate([r(0), r(1)], 0)!) })
      const id = `sensor:h-9|stuck|${T0}`
      await clearAlarmByOperator(db, id, { by: 'ops', comment: null, atMs: 7 })
      // The worker still thinks it active and writes a repeat: the row stays cleared.
      await db.transaction(async tx => { await writeAlarmBatch(tx, ev.evaluate([r(2)], 0)!) })
      const row = (await listAllAlarms(db)).find(a => a.id === id)!
      assert.deepEqual([row.active, row.clearMs], [false, 7])
      ev.applyOperatorState(await loadOperatorState(db, ev.activeAlarmIds()))
      assert.deepEqual(ev.activeAlarmIds(), [])
      assert.equal(ev.evaluate([r(3)], 0)?.transitions.length ?? 0, 0, 'still stuck: no new alarm')
    })
  })
}
