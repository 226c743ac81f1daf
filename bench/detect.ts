// Detection benchmarks: Isolation Forest fit time and scoring throughput (calls of 4096 rows and
// more on the SIMD kernel, smaller ones on the JS kernel, and one row at a time) with the
// pipeline's parameters: 100 trees, 256 samples per tree, 7 features, training on the last 1000 rows. Targets (DESIGN.md section 7 and the Isolation Forest task): fit < 20 ms,
// batch scoring >= 1,000,000 rows/s on one core.
import { createRandom, type Random } from '../src/domain/index.ts'
import { IsolationForest } from '../src/anomaly/index.ts'
import { pipeline } from './embedded.ts'

const FEATURES = 7

/**
 * n rows of the pipeline's 7 features (value, hour sin, hour cos, rate of change, rolling mean,
 * std and range of the last 10 readings) of a temperature-like sensor read every 5 minutes, with
 * a spike about every 33 readings.
 */
export function featureRows (n: number, random: Random): Float64Array {
  const rows = new Float64Array(n * FEATURES)
  const window: number[] = []
  let noise = 0
  let prev = 0
  for (let i = 0; i < n; i++) {
    const hour = (i * 5 / 60 + 6) % 24
    noise = 0.8 * noise + 0.25 * random.normal()
    let value = 21 + 4 * Math.sin(2 * Math.PI * (hour - 9) / 24) + noise
    if (random.next() < 0.03) value += (random.next() < 0.5 ? -1 : 1) * (6 + 9 * random.next())
    window.push(value)
    if (window.length > 10) window.shift()
    const mean = window.reduce((a, b) => a + b, 0) / window.length
    const std = Math.sqrt(window.reduce((a, b) => a + (b - mean) ** 2, 0) / window.length)
    const o = i * FEATURES
    rows[o] = value
    rows[o + 1] = Math.sin(2 * Math.PI * hour / 24)
    rows[o + 2] = Math.cos(2 * Math.PI * hour / 24)
    rows[o + 3] = i === 0 ? 0 : (value - prev) / 5
    rows[o + 4] = mean
    rows[o + 5] = std
    rows[o + 6] = Math.max(...window) - Math.min(...window)
    prev = value
  }
  return rows
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2
}

export interface FitResult { trainRows: number, runs: number, medianMs: number, minMs: number }

/** Fit time of 100 trees on `trainRows` x 7 (contamination 0.05, so one scoring pass of the training rows included), after warm-up. */
export function measureFit ({ trainRows = 1000, runs = 20 }: { trainRows?: number, runs?: number } = {}): FitResult {
  const data = featureRows(trainRows, createRandom(1))
  for (let i = 0; i < 5; i++) IsolationForest.fit(data, FEATURES, { contamination: 0.05, random: createRandom(100 + i) })
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    IsolationForest.fit(data, FEATURES, { contamination: 0.05, random: createRandom(i) })
    times.push(performance.now() - t0)
  }
  return { trainRows, runs, medianMs: median(times), minMs: Math.min(...times) }
}

export interface ScoringResult { rows: number, runs: number, bestRowsPerSecond: number, medianRowsPerSecond: number }

function trainedForest (): IsolationForest {
  return IsolationForest.fit(featureRows(1000, createRandom(1)), FEATURES, { contamination: 0.05, random: createRandom(42) })
}

/**
 * Batch scoring (scoreSamples into a reused buffer) of `rows` rows, best and median of `runs`; in
 * calls of `batch` rows (below 4096 rows a call takes the JS kernel, from 4096 the SIMD one).
 */
export function measureScoring ({ rows = 1_000_000, runs = 5, batch = rows }: { rows?: number, runs?: number, batch?: number } = {}): ScoringResult {
  const forest = trainedForest()
  const data = featureRows(rows, createRandom(2))
  const out = new Float64Array(rows)
  const pass = (n: number): void => {
    for (let b = 0; b < n; b += batch) forest.scoreSamples(data.subarray(b * FEATURES, Math.min(n, b + batch) * FEATURES), out.subarray(b))
  }
  pass(Math.min(rows, 100_000)) // warm-up
  const rates: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    pass(rows)
    rates.push(rows / ((performance.now() - t0) / 1000))
  }
  return { rows, runs, bestRowsPerSecond: Math.max(...rates), medianRowsPerSecond: median(rates) }
}

/** The first 4096-row batch of newly fitted forests (the SIMD layout built then included), in ms: median and best of `runs`. */
export function measureFirstBatch ({ runs = 10 }: { runs?: number } = {}): { medianMs: number, minMs: number } {
  const train = featureRows(1000, createRandom(1))
  const data = featureRows(4096, createRandom(4))
  const times: number[] = []
  for (let i = 0; i < runs + 3; i++) {
    const forest = IsolationForest.fit(train, FEATURES, { contamination: 0.05, random: createRandom(200 + i) })
    const t0 = performance.now()
    forest.scoreSamples(data)
    if (i >= 3) times.push(performance.now() - t0) // the first ones warm the code up
  }
  return { medianMs: median(times), minMs: Math.min(...times) }
}

/** scoreSample one row at a time over `rows` rows, best and median of `runs`. */
export function measureScoreSample ({ rows = 200_000, runs = 5 }: { rows?: number, runs?: number } = {}): ScoringResult {
  const forest = trainedForest()
  const data = featureRows(rows, createRandom(3))
  let sink = 0
  for (let r = 0; r < Math.min(rows, 20_000); r++) sink += forest.scoreSample(data, r * FEATURES) // warm-up
  const rates: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    for (let r = 0; r < rows; r++) sink += forest.scoreSample(data, r * FEATURES)
    rates.push(rows / ((performance.now() - t0) / 1000))
  }
  if (Number.isNaN(sink)) throw new Error('unreachable: scores are numbers')
  return { rows, runs, bestRowsPerSecond: Math.max(...rates), medianRowsPerSecond: median(rates) }
}

function fmt (n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

export async function runDetect ({ rows = 1_000_000, readings = 300_000 }: { rows?: number, readings?: number } = {}): Promise<void> {
  process.stdout.write('Isolation Forest benchmark: 100 trees, 256 samples per tree, 7 features, trained on 1000 rows (one core).\n\n')
  const fit = measureFit()
  const batch = measureScoring({ rows })
  const jsBatch = measureScoring({ rows, batch: 2000 })
  const first = measureFirstBatch()
  const single = measureScoreSample({ rows: Math.min(rows, 200_000) })
  const label = 40
  process.stdout.write(`${'benchmark'.padEnd(label)}  ${'median'.padStart(18)}  ${'best'.padStart(18)}  target\n`)
  process.stdout.write(`${`fit (1000 x 7, ${fit.runs} runs)`.padEnd(label)}  ${`${fit.medianMs.toFixed(1)} ms`.padStart(18)}  ${`${fit.minMs.toFixed(1)} ms`.padStart(18)}  < 20 ms\n`)
  process.stdout.write(`${`scoreSamples (${fmt(batch.rows)} rows, ${batch.runs} runs)`.padEnd(label)}  ${`${fmt(batch.medianRowsPerSecond)} rows/s`.padStart(18)}  ${`${fmt(batch.bestRowsPerSecond)} rows/s`.padStart(18)}  >= 1,000,000 rows/s\n`)
  process.stdout.write(`${'  in calls of 2,000 rows (JS kernel)'.padEnd(label)}  ${`${fmt(jsBatch.medianRowsPerSecond)} rows/s`.padStart(18)}  ${`${fmt(jsBatch.bestRowsPerSecond)} rows/s`.padStart(18)}  -\n`)
  process.stdout.write(`${'first 4,096-row call of a new forest'.padEnd(label)}  ${`${first.medianMs.toFixed(1)} ms`.padStart(18)}  ${`${first.minMs.toFixed(1)} ms`.padStart(18)}  -\n`)
  process.stdout.write(`${`scoreSample (${fmt(single.rows)} rows, ${single.runs} runs)`.padEnd(label)}  ${`${fmt(single.medianRowsPerSecond)} rows/s`.padStart(18)}  ${`${fmt(single.bestRowsPerSecond)} rows/s`.padStart(18)}  -\n`)
  // The whole worker (simulator → bus → validate → detect → window → database), detection with and
  // without the Isolation Forest, each in its own process.
  const url = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === '' ? null : process.env.DATABASE_URL
  const where = url === null ? 'PGlite' : 'PostgreSQL'
  process.stdout.write(`\nThe whole embedded worker on ${where}, ${fmt(readings)} readings from 100 sensors (rules + z-score always on):\n`)
  const withMl = await pipeline(`worker with the Isolation Forest (${where})`, readings, url)
  const withoutMl = await pipeline(`worker without it, --no-ml (${where})`, readings, url, { ml: false })
  for (const r of [withMl, withoutMl]) {
    process.stdout.write(`${r.label.padEnd(label + 12)}  ${`${fmt(r.readings / r.seconds)} readings/s`.padStart(22)}\n`)
  }
  process.stdout.write(`Isolation Forest cost in the worker: ${(100 * (1 - (withMl.readings / withMl.seconds) / (withoutMl.readings / withoutMl.seconds))).toFixed(0)}% of its throughput.\n`)
}
