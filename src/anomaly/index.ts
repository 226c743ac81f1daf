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
  MAD_TO_SIGMA,
  scaleFloor,
  type BaselineStats,
  type ZScoreOptions,
  type ZScoreResult
} from './zscore.ts'
export { ResolutionEstimator } from './resolution.ts'
export { DailyProfile, type DailyPattern, type DailyProfileOptions } from './seasonal.ts'
export { StuckDetector, defaultStuckDurations, type StuckOptions } from './stuck.ts'
export { DriftDetector, type DriftOptions } from './drift.ts'
export {
  CORROBORATED_Z,
  MAJOR_Z,
  THRESHOLD,
  anomalyScore,
  ratioScore,
  scoreOf,
  severityOf,
  storedScore,
  type ScoreInputs
} from './score.ts'
export { Detector, type DetectorOptions } from './detector.ts'
export { FEATURES, FeatureExtractor, featureNames, standardize, type FeatureName } from './features.ts'
export {
  ForestScorer,
  RetrainPolicy,
  mlScoreOf,
  defaultForestOptions,
  type ForestOptions,
  type ForestScorerOptions,
  type FittedForest,
  type PendingFit,
  fitJob,
  inlineTrainer,
  type ForestTrainer,
  type MlScore,
  type MlScorer,
  type RetrainState,
  type TrainedModel,
  type TrainingJob
} from './ml.ts'
export { CadenceTracker, defaultCadenceOptions, formatCadence, type CadenceOptions } from './cadence.ts'
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
export {
  addCounts,
  binaryCounts,
  emptyCounts,
  parseSkabCsv,
  skabScores,
  SKAB_TIME_COLUMN,
  type BinaryCounts,
  type SkabFile,
  type SkabScores
} from './skab-metrics.ts'
export { RowAligner, defaultRowAlignerOptions, deviceOf, type AlignedRow, type DeviceMeasurement, type RowAlignerOptions } from './device-align.ts'
export {
  DeviceForest,
  defaultDeviceForestOptions,
  type DeviceContribution,
  type DeviceForestOptions,
  type DeviceScore,
  type StoredDeviceRow
} from './device-forest.ts'
export {
  deviceModelFromParts,
  deviceModelToParts,
  fitDeviceModel,
  inlineDeviceTrainer,
  type DeviceModel,
  type DeviceModelParts,
  type DeviceTrainer,
  type DeviceTrainingJob,
  type PendingDeviceFit
} from './device-model.ts'
export { decodeDeviceModel, encodeDeviceModel } from './device-model-codec.ts'
export {
  DeviceDetector, formatContributions, type DeviceDetectorOptions, type DeviceDetectorTraining, type DeviceSummary, type DeviceVerdict
} from './device-detector.ts'
