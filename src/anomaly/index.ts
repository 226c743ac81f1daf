export { AnomalyConfigError, AnomalyStateError } from './errors.ts'
export {
  RuleEngine,
  defaultRuleConfig,
  validateRuleConfig,
  type PreviousValue,
  type RuleConfig,
  type RuleInput,
  type RuleReason,
  type RuleResult,
  type Threshold
} from './rules.ts'
export {
  ZScoreDetector,
  type BaselineStats,
  type ZScoreOptions,
  type ZScoreResult,
  type ZScoreSensorState,
  type ZScoreSnapshot
} from './zscore.ts'
export {
  Detector,
  type DetectorOptions,
  type DetectorSnapshot,
  type MlScore,
  type MlScorer,
  type PreviousReadingState
} from './detector.ts'
