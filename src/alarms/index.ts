// Alarms: the pure core (rules, evaluation, lifecycle) that the worker runs on scored readings and
// on the wall clock (offline), and the model shared with storage and the notifier (src/notify).
export {
  type Alarm, type AlarmEvent, type AlarmEventKind, type AlarmLabels, type AlarmSeverity, type AlarmStatus, type AlarmTransition, type AlarmType,
  type Originator, type OriginatorKind, alarmSeverities, alarmStatuses
} from './model.ts'
export {
  type AlarmRules, type BurstRule, type OfflineRule, type RuleOverride, type SensorRules, type ThresholdLevel, type ThresholdRule, type VerdictRule,
  defaultAlarmRules, parseAlarmRules, rulesFor, severityRank
} from './rules.ts'
export {
  ANOMALY_BURST, type AlarmBatch, AlarmEvaluator, type ConditionChange, DRIFT, type DeviceLiveness, type KnownSensor, OFFLINE, type OperatorState, STUCK,
  type StoredCondition, alarmIdOf, isReadingAlarm, thresholdType
} from './evaluator.ts'
export { recomputeAlarmHistory, recomputeAlarms } from './recompute.ts'
