/** Flink's AggregateFunction: incremental, mergeable aggregation. */
export interface AggregateFunction<IN, ACC, OUT> {
  createAccumulator(): ACC
  add(value: IN, acc: ACC): ACC
  merge(a: ACC, b: ACC): ACC
  getResult(acc: ACC): OUT
}

/**
 * Mergeable window statistics: count, mean and M2 (Welford), min, max, and anomaly counts.
 * Merging two accumulators (Chan et al.) gives the same result as adding every value to one,
 * so per-batch deltas can be merged in the database and revisions stay exact.
 */
export interface StatsAccumulator {
  count: number
  mean: number
  m2: number
  min: number
  max: number
  /** Readings flagged by rule thresholds (the original `anomaly_count`). */
  ruleAnomalies: number
  /** Readings labelled anomalous by their source (ground truth, simulator only). */
  labelAnomalies: number
  /** Readings with |z| above the threshold. */
  zAnomalies: number
  /** Readings flagged by the Isolation Forest. */
  mlAnomalies: number
  /** Readings the combined verdict calls anomalous. */
  combinedAnomalies: number
  /** The readings it did not: count, mean, min and max (charts that leave anomalies out). */
  normalCount: number
  normalMean: number
  normalMin: number
  normalMax: number
}

export interface StatsInput {
  value: number
  ruleAnomaly: boolean
  labelAnomaly: boolean
  zAnomaly: boolean
  mlAnomaly: boolean
  combinedAnomaly: boolean
}

export interface WindowStats {
  count: number
  avg: number
  min: number
  max: number
  /** Population standard deviation. */
  stddev: number
  ruleAnomalies: number
  labelAnomalies: number
  zAnomalies: number
  mlAnomalies: number
  combinedAnomalies: number
}

export function createStatsAccumulator (): StatsAccumulator {
  return {
    count: 0,
    mean: 0,
    m2: 0,
    min: Infinity,
    max: -Infinity,
    ruleAnomalies: 0,
    labelAnomalies: 0,
    zAnomalies: 0,
    mlAnomalies: 0,
    combinedAnomalies: 0,
    normalCount: 0,
    normalMean: 0,
    normalMin: Infinity,
    normalMax: -Infinity
  }
}

/** Adds one value in place (Welford). */
export function addToStats (acc: StatsAccumulator, x: StatsInput): StatsAccumulator {
  const n = acc.count + 1
  const d = x.value - acc.mean
  acc.mean += d / n
  acc.m2 += d * (x.value - acc.mean)
  acc.count = n
  if (x.value < acc.min) acc.min = x.value
  if (x.value > acc.max) acc.max = x.value
  if (x.ruleAnomaly) acc.ruleAnomalies++
  if (x.labelAnomaly) acc.labelAnomalies++
  if (x.zAnomaly) acc.zAnomalies++
  if (x.mlAnomaly) acc.mlAnomalies++
  if (x.combinedAnomaly) {
    acc.combinedAnomalies++
  } else {
    acc.normalCount++
    acc.normalMean += (x.value - acc.normalMean) / acc.normalCount
    if (x.value < acc.normalMin) acc.normalMin = x.value
    if (x.value > acc.normalMax) acc.normalMax = x.value
  }
  return acc
}

/** Merges two accumulators into a new one (Chan's parallel formula). */
export function mergeStats (a: StatsAccumulator, b: StatsAccumulator): StatsAccumulator {
  if (a.count === 0) return { ...b }
  if (b.count === 0) return { ...a }
  const n = a.count + b.count
  const d = b.mean - a.mean
  const normalCount = a.normalCount + b.normalCount
  return {
    count: n,
    mean: a.mean + d * (b.count / n),
    m2: a.m2 + b.m2 + d * d * (a.count * b.count / n),
    min: Math.min(a.min, b.min),
    max: Math.max(a.max, b.max),
    ruleAnomalies: a.ruleAnomalies + b.ruleAnomalies,
    labelAnomalies: a.labelAnomalies + b.labelAnomalies,
    zAnomalies: a.zAnomalies + b.zAnomalies,
    mlAnomalies: a.mlAnomalies + b.mlAnomalies,
    combinedAnomalies: a.combinedAnomalies + b.combinedAnomalies,
    normalCount,
    normalMean: normalCount === 0 ? 0 : a.normalMean + (b.normalMean - a.normalMean) * (b.normalCount / normalCount),
    normalMin: Math.min(a.normalMin, b.normalMin),
    normalMax: Math.max(a.normalMax, b.normalMax)
  }
}

export function statsResult (acc: StatsAccumulator): WindowStats {
  return {
    count: acc.count,
    avg: acc.mean,
    min: acc.min,
    max: acc.max,
    stddev: acc.count > 0 ? Math.sqrt(Math.max(0, acc.m2) / acc.count) : 0,
    ruleAnomalies: acc.ruleAnomalies,
    labelAnomalies: acc.labelAnomalies,
    zAnomalies: acc.zAnomalies,
    mlAnomalies: acc.mlAnomalies,
    combinedAnomalies: acc.combinedAnomalies
  }
}

export const windowStatsFunction: AggregateFunction<StatsInput, StatsAccumulator, WindowStats> = {
  createAccumulator: createStatsAccumulator,
  add: (x, acc) => addToStats(acc, x),
  merge: mergeStats,
  getResult: statsResult
}
