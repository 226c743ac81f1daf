// Preparing a batch: everything it needs that is not I/O (validation, watermark and lateness,
// de-duplication, detection, window deltas), in memory, so it can run while the previous batch's
// transaction is in flight.
import { type AlarmBatch, type AlarmEvaluator } from '../alarms/index.ts'
import { type BusRecord } from '../bus/index.ts'
import { type DeadLetter, type Reading, type ScoredReading, type ValidationOptions, type Verdict, validateMessage } from '../domain/index.ts'
import { type DetectorSnapshot, type DeviceScoreRow, type LateReading, type PartitionProgress, type StoredModel } from '../storage/index.ts'
import { ON_TIME, WindowDeltas } from '../windowing/index.ts'
import { type PartitionClaims } from './claims.ts'
import { type ReadingDetector } from '../detection/index.ts'

/** A batch prepared in memory, waiting for its transaction. */
export interface PreparedBatch {
  received: number
  scored: ScoredReading[]
  late: LateReading[]
  deadLetters: DeadLetter[]
  deltas: WindowDeltas
  /** Models the detectors trained while preparing the batch. */
  models: StoredModel[]
  /** The device-level detector's scored rows. */
  deviceScores: DeviceScoreRow[]
  /** Detector state snapshots due after the batch's readings. */
  snapshots: DetectorSnapshot[]
  /** The learnt cadence (ms) of the batch's sensors, by id, where the detectors know it. */
  cadence: Map<string, number>
  next: Map<number, number>
  progress: PartitionProgress[]
  duplicates: number
  watermark: number
  /** Windows ending at or before this were final when the batch was prepared. */
  finalBoundary: number
  /** performance.now() when preparing began (batch seconds). */
  started: number
  /** Wall time the oldest record of the batch was produced, when the bus knows it (end-to-end latency). */
  oldestProducedAt: number | null
  /** What the alarm core changed on the batch's readings (null: nothing, or alarms off). */
  alarms: AlarmBatch | null
}

export interface PrepareContext {
  claims: PartitionClaims
  detector: ReadingDetector
  topic: string
  validation: ValidationOptions
  /** Ingest clock for the far-off timestamp check when a record carries no time of its own. */
  ingestClock: () => number
  wallClock: () => number
  hasBacklog: ((partition: number) => boolean) | undefined
  /** The alarm core, evaluated on the scored readings in arrival order (null: alarms off). */
  alarms: AlarmEvaluator | null
}

/**
 * In arrival order: validate raw text (in-process readings are trusted), then watermark and
 * lateness, de-duplication, detection and the window delta. Records of partitions not owned (any
 * more), or already stored, are skipped.
 */
export function prepareBatch (records: readonly BusRecord[], c: PrepareContext): PreparedBatch {
  const started = performance.now()
  const wall = c.wallClock()
  const { claims } = c
  const op = claims.op
  op.watermarks.tick(wall, c.hasBacklog)
  const fallbackIngest = c.ingestClock()
  const accepted: Reading[] = []
  const late: LateReading[] = []
  const deadLetters: DeadLetter[] = []
  const expected = claims.expected
  const first = new Map<number, number>()
  let received = 0
  let duplicates = 0
  let oldestProducedAt = Infinity
  for (const rec of records) {
    const stored = expected.get(rec.partition)
    // Not ours (any more), or already stored (a fetch that started behind the stored offset).
    if (stored === undefined || rec.offset < stored) continue
    if (!first.has(rec.partition)) first.set(rec.partition, stored)
    expected.set(rec.partition, rec.offset + 1)
    received++
    if (rec.producedAt !== undefined && rec.producedAt < oldestProducedAt) oldestProducedAt = rec.producedAt
    let r: Reading
    if (rec.undecodable !== undefined) {
      deadLetters.push({ raw: '', reason: 'undecodable', detail: rec.undecodable, source: `${c.topic}/${rec.partition}@${rec.offset}`, receivedAt: wall })
      continue
    }
    if (typeof rec.value === 'string') {
      const v = validateMessage(rec.value, rec.timestamp ?? fallbackIngest, c.validation)
      if (!v.ok) {
        deadLetters.push({ raw: v.raw ?? rec.value, reason: v.reason, detail: v.detail, source: `${c.topic}/${rec.partition}@${rec.offset}`, receivedAt: wall })
        continue
      }
      r = v.reading
    } else {
      r = rec.value
    }
    const lateness = op.assign(rec.partition, r.ts)
    if (lateness !== ON_TIME) {
      // A late repeat of a reading stored while its window was open (still remembered) is a duplicate.
      if (claims.recent.has(r.sensorId, r.ts)) duplicates++
      else late.push({ reading: r, windowStart: op.windows.startOf(r.ts), watermark: op.watermark, latenessMs: lateness })
      continue
    }
    if (!claims.recent.add(r.sensorId, r.ts)) {
      duplicates++
      continue
    }
    accepted.push(r)
  }
  // Detection in one call (the Isolation Forest scores the batch's rows per model together).
  const verdicts = c.detector.detectMany(accepted)
  const scored: ScoredReading[] = []
  const deltas = new WindowDeltas(op.options.sizeMs)
  const cadence = new Map<string, number>()
  for (let i = 0; i < accepted.length; i++) {
    const r = accepted[i] as Reading
    const verdict = verdicts[i] as Verdict
    scored.push({ reading: r, verdict })
    addDelta(deltas, op.windows.startOf(r.ts), r, verdict)
    if (c.detector.cadenceOf !== undefined && !cadence.has(r.sensorId)) {
      const ms = c.detector.cadenceOf(r.sensorId)
      if (ms !== null) cadence.set(r.sensorId, ms)
    }
  }
  const next = new Map<number, number>()
  const progress: PartitionProgress[] = []
  for (const [partition, expectedOffset] of first) {
    const nextOffset = expected.get(partition)!
    next.set(partition, nextOffset)
    const max = op.watermarks.channelMaxTs(partition)
    progress.push({ partition, expectedOffset, nextOffset, maxEventMs: Number.isFinite(max) ? max : null })
  }
  const finalBoundary = op.finalEndBoundary
  claims.recent.pruneBefore(finalBoundary - op.options.sizeMs)
  const models = c.detector.drainModels?.() ?? []
  const deviceScores = c.detector.drainDeviceScores?.() ?? []
  const snapshots = c.detector.drainSnapshots?.() ?? []
  const oldest = Number.isFinite(oldestProducedAt) ? oldestProducedAt : null
  // Alarms on event time, after detection, in the same order; written in the batch's transaction.
  // Late readings move no condition, but show their sensors report (they end offline alarms).
  const alarms = c.alarms === null || (scored.length === 0 && late.length === 0) ? null : c.alarms.evaluate(scored, wall, late.length === 0 ? undefined : late.map(l => l.reading))
  return { received, scored, late, deadLetters, deltas, models, deviceScores, snapshots, cadence, next, progress, duplicates, watermark: op.watermark, finalBoundary, started, oldestProducedAt: oldest, alarms }
}

/**
 * Another worker finalized windows after this batch was prepared (its view of their partitions
 * was older): readings for those windows are late now, as if they had arrived after the
 * finalization, and the deltas are rebuilt without them.
 */
export function reclassify (b: PreparedBatch, storedWatermark: number, claims: PartitionClaims): void {
  const { windows } = claims.op
  const boundary = claims.finalEnd(storedWatermark)
  const keep: ScoredReading[] = []
  const deltas = new WindowDeltas(claims.op.options.sizeMs)
  for (const s of b.scored) {
    const start = windows.startOf(s.reading.ts)
    if (start + windows.sizeMs <= boundary) {
      b.late.push({ reading: s.reading, windowStart: start, watermark: storedWatermark, latenessMs: storedWatermark - s.reading.ts })
    } else {
      keep.push(s)
      addDelta(deltas, start, s.reading, s.verdict)
    }
  }
  b.scored = keep
  b.deltas = deltas
}

function addDelta (deltas: WindowDeltas, start: number, r: Reading, verdict: Verdict): void {
  deltas.add(r.location, r.sensorType, start, {
    value: r.value,
    ruleAnomaly: verdict.ruleAnomaly,
    labelAnomaly: r.anomaly === true,
    zAnomaly: verdict.zAnomaly,
    mlAnomaly: verdict.mlAnomaly === true,
    combinedAnomaly: verdict.anomaly
  })
}
