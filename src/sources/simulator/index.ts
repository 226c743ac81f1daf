export {
  baseline,
  createFleet,
  dailyCycle,
  type Location,
  locationOffsets,
  locations,
  type SensorModel,
  sensorModels,
  type SensorSpec,
  type SensorType,
  sensorTypes
} from './fleet.ts'
export {
  BACKGROUND_DRIFT_MAX,
  BACKGROUND_DRIFT_PER_SQRT_MINUTE,
  defaultFaultRates,
  DRIFT_LABEL_SIGMAS,
  DRIFT_PEAK_SIGMAS,
  type EpisodeDuration,
  episodeDurations,
  type FaultRates,
  Simulator,
  simulatorDefaults,
  type SimulatorOptions,
  SPIKE_FACTOR_MAX,
  SPIKE_FACTOR_MIN
} from './simulator.ts'
export { SimulatorSource, type SimulatorSourceOptions } from './source.ts'
