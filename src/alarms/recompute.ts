// Recomputation: the alarms that stored readings raise, from scratch. The worker evaluates the same
// readings in the same order per sensor (arrival order, which is event-time order for a sensor
// that reports in order), so for the conditions on readings the stored alarms equal this.
import { type ScoredReading } from '../domain/index.ts'
import { type Alarm, type AlarmTransition } from './model.ts'
import { AlarmEvaluator, isReadingAlarm } from './evaluator.ts'
import { type AlarmRules } from './rules.ts'

/**
 * Runs the alarm core over `readings` (in order per sensor; sensors may interleave) and returns
 * every alarm raised from readings (offline is wall time, not part of it), active or cleared, by id.
 */
export function recomputeAlarms (readings: Iterable<ScoredReading>, rules: AlarmRules, chunk = 10_000): Alarm[] {
  return recomputeAlarmHistory(readings, rules, chunk).alarms
}

/** recomputeAlarms, with every transition to notify in the order they happened (their idempotency keys). */
export function recomputeAlarmHistory (readings: Iterable<ScoredReading>, rules: AlarmRules, chunk = 10_000): { alarms: Alarm[], transitions: AlarmTransition[] } {
  const ev = new AlarmEvaluator({ ...rules, offline: null, overrides: rules.overrides.map(o => ({ ...o, offline: null })) })
  const alarms = new Map<string, Alarm>()
  const transitions: AlarmTransition[] = []
  let batch: ScoredReading[] = []
  const run = (): void => {
    const out = ev.evaluate(batch, 0)
    if (out !== null) {
      for (const a of out.alarms) if (isReadingAlarm(a.type)) alarms.set(a.id, a)
      transitions.push(...out.transitions)
    }
    batch = []
  }
  for (const r of readings) {
    batch.push(r)
    if (batch.length >= chunk) run()
  }
  run()
  return { alarms: [...alarms.values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0), transitions }
}
