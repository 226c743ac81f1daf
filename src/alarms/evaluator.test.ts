import { test } from 'node:test'
import assert from 'node:assert/strict'
import { type Reading, type ScoredReading, type Verdict } from '../domain/index.ts'
import { type AlarmBatch, AlarmEvaluator, type AlarmRules, defaultAlarmRules, parseAlarmRules, recomputeAlarms, rulesFor } from './index.ts'

const T0 = Date.UTC(2026, 0, 1)
const S = 1000
const MIN = 60_000

const normal: Verdict = {
  ruleAnomaly: false, zScore: 0, zAnomaly: false, mlScore: null, mlAnomaly: null, modelVersion: null, stuck: false, drift: false, anomalyScore: 0, anomaly: false, severity: null, explanation: null
}

function scored (sensorId: string, sensorType: string, ts: number, value: number, v: Partial<Verdict> = {}, location = 'Office Floor 3'): ScoredReading {
  const reading: Reading = { sensorId, sensorType, location, value, ts, unit: '', anomaly: null, anomalyKind: null, seq: null }
  return { reading, verdict: { ...normal, ...v } }
}

/** CO2 readings every 30 s: value(t) for t = 0, 30 s, ... */
function co2 (from: number, to: number, value: (ts: number) => number, every = 30 * S): ScoredReading[] {
  const out: ScoredReading[] = []
  for (let t = from; t <= to; t += every) out.push(scored('co2-1', 'co2', T0 + t, value(t)))
  return out
}

const firing = (b: AlarmBatch | null): string[] => (b?.transitions ?? []).map(t => `${t.status} ${t.idempotencyKey}`)

test('alarms - a threshold fires after its pending period and not before, at the reading that completes it', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  // 1300 ppm from 60 s on: pending from 60 s, 5 min complete at 360 s.
  const before = ev.evaluate(co2(0, 330 * S, t => t < 60 * S ? 800 : 1300), 0)
  assert.deepEqual(firing(before), [], 'nothing within the pending period')
  assert.deepEqual(before?.conditions, [{ originator: { kind: 'sensor', id: 'co2-1' }, type: 'threshold:co2_high', state: { since: [T0 + 60 * S, null], clearSince: null, latched: false }, partition: 0 }])
  const at = ev.evaluate(co2(360 * S, 360 * S, () => 1300), 0)!
  const id = `sensor:co2-1|threshold:co2_high|${T0 + 360 * S}`
  assert.deepEqual(firing(at), [`firing ${id}|firing`])
  assert.equal(at.alarms.length, 1)
  const a = at.alarms[0]!
  assert.equal(a.severity, 'warning')
  assert.equal(a.startMs, T0 + 360 * S)
  assert.deepEqual(a.details, { value: 1300, threshold: 1200, direction: 'above', pendingSinceMs: T0 + 60 * S, clearThreshold: 1000, lastValue: 1300, peak: 1300 })
  assert.deepEqual(a.labels, { alertname: 'threshold:co2_high', severity: 'warning', originator_kind: 'sensor', originator: 'co2-1', sensor_id: 'co2-1', sensor_type: 'co2', location: 'Office Floor 3' })
  assert.deepEqual(at.events.map(e => e.kind), ['raised'])
})

test('alarms - a dip below the raise threshold restarts the pending period', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  // Above from 0 to 240 s, one reading at 1100 at 270 s, above again from 300 s: fires at 300 + 300 = 600 s.
  const b = ev.evaluate(co2(0, 630 * S, t => t === 270 * S ? 1100 : 1300), 0)
  assert.deepEqual(b?.alarms.map(a => a.startMs), [T0 + 600 * S])
})

test('alarms - hysteresis: between the clear and the raise threshold the alarm stays, below the clear threshold it clears', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  ev.evaluate(co2(0, 300 * S, () => 1300), 0)
  const id = `sensor:co2-1|threshold:co2_high|${T0 + 300 * S}`
  // 1100 (under 1200, over 1000) for 10 minutes: still active, no transition, last seen holding stays at 300 s.
  const middle = ev.evaluate(co2(330 * S, 930 * S, () => 1100), 0)
  assert.deepEqual(firing(middle), [])
  assert.deepEqual(ev.activeAlarmIds(), [id])
  const cleared = ev.evaluate(co2(960 * S, 990 * S, () => 950), 0)!
  assert.deepEqual(firing(cleared), [`resolved ${id}|resolved`])
  const a = cleared.alarms[0]!
  assert.equal(a.active, false)
  assert.equal(a.clearMs, T0 + 960 * S)
  assert.equal(a.lastMs, T0 + 300 * S)
  assert.deepEqual(ev.activeAlarmIds(), [])
  // The next raise is a new alarm with a new id.
  const again = ev.evaluate(co2(1020 * S, 1320 * S, () => 1250), 0)!
  assert.deepEqual(firing(again), [`firing sensor:co2-1|threshold:co2_high|${T0 + 1320 * S}|firing`])
})

test('alarms - one active alarm per (originator, type): repeats update it, a higher level escalates it once', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  const b = ev.evaluate(co2(0, 1200 * S, t => t < 600 * S ? 1300 : 2500), 0)!
  const id = `sensor:co2-1|threshold:co2_high|${T0 + 300 * S}`
  // 2500 from 600 s: the major level holds 5 minutes at 900 s.
  assert.deepEqual(firing(b), [`firing ${id}|firing`, `firing ${id}|firing@major`])
  assert.equal(b.alarms.length, 1)
  assert.equal(b.alarms[0]!.severity, 'major')
  assert.equal(b.alarms[0]!.lastMs, T0 + 1200 * S)
  assert.equal(b.alarms[0]!.details.peak, 2500)
  assert.deepEqual(b.events.map(e => e.kind), ['raised', 'severity_changed'])
})

test('alarms - anomaly burst: 5 combined anomalies within 10 minutes raise one alarm; a quiet period clears it', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  const r = (t: number, anomaly: boolean): ScoredReading => scored('t-1', 'temperature', T0 + t, 22, { anomaly })
  // Anomalies 3 minutes apart: at 12 min the window (2 min, 12 min] holds 4 (0 min is out).
  let out = ev.evaluate([0, 3, 6, 9, 12].map(m => r(m * MIN, true)), 0)
  assert.deepEqual(firing(out), [])
  // At 12.5 min, (2.5 min, 12.5 min] holds 5.
  out = ev.evaluate([r(12.5 * MIN, true)], 0)!
  const id = `sensor:t-1|anomaly_burst|${T0 + 12.5 * MIN}`
  assert.deepEqual(firing(out), [`firing ${id}|firing`])
  assert.deepEqual(out.alarms[0]!.details, { count: 5, withinMs: 10 * MIN, firstMs: T0 + 3 * MIN, anomalies: 5 })
  // Normal readings for 9:59 min: still active; at 10 min after the last anomaly it clears.
  assert.deepEqual(firing(ev.evaluate([r(22.5 * MIN - 1, false)], 0)), [])
  assert.deepEqual(firing(ev.evaluate([r(22.5 * MIN, false)], 0)), [`resolved ${id}|resolved`])
})

test('alarms - a storm of 10,000 anomalous readings from one sensor makes exactly one alarm', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  const storm: ScoredReading[] = []
  for (let i = 0; i < 10_000; i++) storm.push(scored('t-1', 'temperature', T0 + i * 100, 22, { anomaly: true, ruleAnomaly: true, severity: 'critical' }))
  const batches: AlarmBatch[] = []
  for (let i = 0; i < storm.length; i += 1000) {
    const b = ev.evaluate(storm.slice(i, i + 1000), 0)
    if (b !== null) batches.push(b)
  }
  const transitions = batches.flatMap(b => b.transitions)
  assert.deepEqual(transitions.map(t => t.idempotencyKey), [`sensor:t-1|anomaly_burst|${T0 + 400}|firing`])
  assert.equal(batches.flatMap(b => b.events).length, 1)
  const last = batches.at(-1)!.alarms[0]!
  assert.equal(last.details.anomalies, 10_000)
  assert.equal(last.lastMs, T0 + 9999 * 100)
  assert.deepEqual(ev.activeAlarmIds(), [`sensor:t-1|anomaly_burst|${T0 + 400}`])
})

test('alarms - stuck and drift verdicts raise at once and clear when the verdict stayed off for their clear time', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  const r = (m: number, v: Partial<Verdict>): ScoredReading => scored('h-1', 'humidity', T0 + m * MIN, 40, v)
  const out = ev.evaluate([r(0, {}), r(1, { stuck: true }), r(2, { stuck: true, drift: true }), r(3, {}), r(6.9, {})], 0)!
  assert.deepEqual(firing(out), [`firing sensor:h-1|stuck|${T0 + MIN}|firing`, `firing sensor:h-1|drift|${T0 + 2 * MIN}|firing`])
  // Stuck clears 5 min after its last flagged reading (2 min): at 7 min or later; drift after 10 min (at 12).
  const later = ev.evaluate([r(7, {}), r(11.9, {}), r(12, {})], 0)!
  assert.deepEqual(firing(later), [`resolved sensor:h-1|stuck|${T0 + MIN}|resolved`, `resolved sensor:h-1|drift|${T0 + 2 * MIN}|resolved`])
  assert.deepEqual(later.alarms.map(a => a.clearMs), [T0 + 7 * MIN, T0 + 12 * MIN])
})

test('alarms - offline: after max(3 × the usual interval, 2 min) of wall time, not before; the next reading clears it', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  const wall = 1_000_000
  // Every 60 s: deadline max(180 s, 120 s) = 180 s after the last reading's arrival.
  ev.evaluate([0, 1, 2, 3].map(m => scored('p-1', 'pressure', T0 + m * MIN, 1013)), wall)
  // Every 10 s: deadline max(30 s, 120 s) = 120 s.
  ev.evaluate([0, 1, 2, 3].map(i => scored('p-2', 'pressure', T0 + i * 10 * S, 1013)), wall)
  assert.equal(ev.checkOffline(wall + 120_000, null), null, 'at the deadline: not yet')
  const p2 = ev.checkOffline(wall + 120_001, null)!
  assert.deepEqual(firing(p2), [`firing sensor:p-2|offline|${wall + 120_001}|firing`])
  assert.deepEqual(p2.alarms[0]!.details, { reason: 'silent', lastSeenMs: wall, deadlineMs: 120_000, intervalMs: 10_000 })
  assert.equal(ev.checkOffline(wall + 180_000, null), null)
  assert.deepEqual(firing(ev.checkOffline(wall + 180_001, null)), [`firing sensor:p-1|offline|${wall + 180_001}|firing`])
  assert.equal(ev.checkOffline(wall + 900_000, null), null, 'raised once')
  const back = ev.evaluate([scored('p-2', 'pressure', T0 + 40 * S, 1013)], wall + 950_000)!
  assert.deepEqual(firing(back), [`resolved sensor:p-2|offline|${wall + 120_001}|resolved`])
  assert.equal(back.alarms[0]!.clearMs, wall + 950_000)
})

test('alarms - a device Last Will marks it offline at the next check; its sensors raise none of their own; a reading clears it', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  const wall = 5_000_000
  ev.evaluate([scored('dev.1.temperature', 'temperature', T0, 21)], wall)
  const dev = { id: 'dev.1', location: 'Lab', lastSeenAt: wall - 500, connection: 'offline' as const, connectionAt: wall + 1000 }
  const out = ev.checkOffline(wall + 2000, [dev])!
  assert.deepEqual(firing(out), [`firing device:dev.1|offline|${wall + 2000}|firing`])
  assert.equal(out.alarms[0]!.details.reason, 'last_will')
  assert.equal(ev.checkOffline(wall + 600_000, [dev]), null, 'the sensor is covered by its device')
  const back = ev.evaluate([scored('dev.1.temperature', 'temperature', T0 + 1000, 21)], wall + 700_000)!
  assert.deepEqual(firing(back), [`resolved device:dev.1|offline|${wall + 2000}|resolved`])
  // The registry still shows the Last Will (its last seen is written later): no new alarm, the reading is newer.
  assert.equal(ev.checkOffline(wall + 710_000, [dev]), null)
})

test('alarms - a restore from the stored state continues exactly as if nothing had stopped', () => {
  const readings = co2(0, 1500 * S, t => t < 200 * S ? 800 : t < 1000 * S ? 1300 : 900)
  const whole = new AlarmEvaluator(defaultAlarmRules)
  const all = [whole.evaluate(readings.slice(0, 9), 0), whole.evaluate(readings.slice(9), 0)]
  // The same, with a restart after the first batch: what storage would hold then.
  const first = new AlarmEvaluator(defaultAlarmRules)
  const b1 = first.evaluate(readings.slice(0, 9), 0)!
  const restarted = new AlarmEvaluator(defaultAlarmRules)
  restarted.restore({
    alarms: b1.alarms.filter(a => a.active),
    conditions: b1.conditions.filter(c => c.state !== null).map(c => ({ originator: c.originator, type: c.type, state: JSON.parse(JSON.stringify(c.state)) as Record<string, unknown> })),
    sensors: [{ sensorId: 'co2-1', sensorType: 'co2', location: 'Office Floor 3', watch: true }],
    wallNow: 0
  })
  restarted.observe(readings.slice(0, 9).map(s => s.reading))
  const b2 = restarted.evaluate(readings.slice(9), 0)
  assert.deepEqual(firing(b2), firing(all[1]!))
  assert.deepEqual(b2?.alarms, all[1]?.alarms)
})

test('alarms - an alarm cleared by an operator ends; no new one until its condition has ended', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  ev.evaluate(co2(0, 300 * S, () => 1300), 0)
  const id = `sensor:co2-1|threshold:co2_high|${T0 + 300 * S}`
  ev.applyOperatorState([{ alarmId: id, active: false, acknowledged: true }])
  assert.deepEqual(ev.activeAlarmIds(), [])
  assert.deepEqual(firing(ev.evaluate(co2(330 * S, 1200 * S, () => 1300), 0)), [], 'still high: latched')
  ev.evaluate(co2(1230 * S, 1230 * S, () => 900), 0)
  assert.deepEqual(firing(ev.evaluate(co2(1260 * S, 1560 * S, () => 1300), 0)), [`firing sensor:co2-1|threshold:co2_high|${T0 + 1560 * S}|firing`])
})

test('alarms - an acknowledged alarm keeps its acknowledgement on repeats and loses it when its severity rises', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  ev.evaluate(co2(0, 300 * S, () => 1300), 0)
  const id = `sensor:co2-1|threshold:co2_high|${T0 + 300 * S}`
  ev.applyOperatorState([{ alarmId: id, active: true, acknowledged: true }])
  assert.equal(ev.evaluate(co2(330 * S, 330 * S, () => 1300), 0)!.alarms[0]!.acknowledged, true)
  const up = ev.evaluate(co2(360 * S, 660 * S, () => 2100), 0)!
  assert.equal(up.alarms[0]!.acknowledged, false)
  assert.equal(up.alarms[0]!.severity, 'major')
})

test('alarms - an out-of-order reading of a sensor moves no condition', () => {
  const ev = new AlarmEvaluator(defaultAlarmRules)
  const b = ev.evaluate([...co2(0, 240 * S, () => 1300), scored('co2-1', 'co2', T0 + 100 * S, 500), ...co2(270 * S, 300 * S, () => 1300)], 0)
  assert.deepEqual(b?.alarms.map(a => a.startMs), [T0 + 300 * S])
})

test('alarms - recomputation over the same readings gives the same alarms as batches of any size', () => {
  const readings: ScoredReading[] = []
  for (let i = 0; i < 3000; i++) {
    readings.push(scored(`t-${i % 3}`, 'temperature', T0 + i * 10 * S, 22 + (i % 500 > 300 ? 20 : 0), { anomaly: i % 37 === 0 || (i % 500 > 480), stuck: i % 1000 > 900 }, 'Server Room'))
  }
  const ev = new AlarmEvaluator(defaultAlarmRules)
  const stored = new Map<string, unknown>()
  for (let i = 0; i < readings.length; i += 777) for (const a of ev.evaluate(readings.slice(i, i + 777), 0)?.alarms ?? []) stored.set(a.id, a)
  const recomputed = recomputeAlarms(readings, defaultAlarmRules)
  assert.ok(recomputed.length > 10, `several alarms (${recomputed.length})`)
  assert.deepEqual(recomputed, [...stored.values()].sort((a, b) => ((a as { id: string }).id < (b as { id: string }).id ? -1 : 1)))
})

test('alarm rules - a file merges over the defaults; locations replace the general rule; overrides switch rules off', () => {
  const rules: AlarmRules = parseAlarmRules({
    thresholds: [
      { name: 'co2_high', sensorType: 'co2', above: 1500, clearBelow: 1100, for: '2m', severity: 'minor' },
      { name: 'co2_high', sensorType: 'co2', location: 'Laboratory', enabled: false, above: 1 },
      { name: 'pressure_low', sensorType: 'pressure', below: 990, clearAbove: 995, for: '15m', severity: 'warning', escalate: [{ below: 970, severity: 'major' }] }
    ],
    anomalyBurst: { count: 3 },
    overrides: [{ location: 'Warehouse', stuck: null }, { sensorType: 'humidity', location: 'Warehouse', offline: { min: '10m' } }]
  })
  const office = rulesFor(rules, 'co2', 'Office Floor 3')
  assert.deepEqual(office.thresholds.map(t => [t.name, t.levels, t.clear]), [['co2_high', [{ severity: 'minor', value: 1500, forMs: 120_000 }], 1100]])
  assert.deepEqual(rulesFor(rules, 'co2', 'Laboratory').thresholds, [])
  assert.deepEqual(rulesFor(rules, 'pressure', 'Laboratory').thresholds[0]!.levels.map(l => [l.value, l.severity, l.forMs]), [[990, 'warning', 900_000], [970, 'major', 900_000]])
  assert.deepEqual(office.anomalyBurst, { count: 3, withinMs: 10 * MIN, quietMs: 10 * MIN, severity: 'minor' })
  const wh = rulesFor(rules, 'humidity', 'Warehouse')
  assert.equal(wh.stuck, null)
  assert.deepEqual(wh.offline, { multiplier: 3, minMs: 600_000, severity: 'major' })
  assert.deepEqual(rulesFor(rules, 'temperature', 'Server Room').thresholds.map(t => t.levels[0]!.value), [27, 12])
  for (const bad of [{ thresholds: [{ name: 'x', sensorType: 'co2', above: 10, clearBelow: 20 }] }, { stuck: { clearAfter: 'soon' } }, { nope: 1 },
    { thresholds: [{ name: 'x', sensorType: 'co2', above: 10, escalate: [{ above: 5, severity: 'critical' }] }] }]) {
    assert.throws(() => parseAlarmRules(bad), { code: 'IOT_ERR_CONFIG' })
  }
})
