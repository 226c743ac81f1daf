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
  MAJOR_Z,
  anomalyScore,
  severityOf,
  type DetectorOptions,
  type DetectorSnapshot,
  type PreviousReadingState
} from './detector.ts'
export { FEATURES, FeatureExtractor, featureNames, standardize, type FeatureName } from './features.ts'
export {
  ForestScorer,
  mlScoreOf,
  defaultForestOptions,
  type ForestOptions,
  type FittedForest,
  type ForestTrainer,
  type MlScore,
  type MlScorer,
  type TrainedModel,
  type TrainingJob
} from './ml.ts'
export {
  IsolationForest,
  averagePathLength,
  decodeModel,
  encodeModel,
  type IsolationForestModel,
  type IsolationForestOptions,
  type ParsedModel
} from './isolation-forest/index.ts'
export {
  detectionQuality,
  detectorNames,
  formatQuality,
  scores,
  type DetectionQuality,
  type DetectorName,
  type DetectorQuality,
  type RuleVsMl,
  type Scores
} from './evaluation.ts'
