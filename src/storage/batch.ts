// Commit this batch: everything one batch of the stream changed, and the offsets it consumed, in
// one transaction. The order of the statements is part of the protocol between workers: the
// finality lock (shared) first, then the fence on the batch's partitions, then the writes, in a
// fixed key order inside each statement so concurrent workers cannot deadlock.
import { type AlarmBatch } from '../alarms/index.ts'
import { type DeadLetter, type ScoredReading, type WindowAggregate } from '../domain/index.ts'
import { type DetectorSnapshot, saveDetectorState } from './detector-state.ts'
import { type DeviceScoreRow, insertDeviceScores } from './device-scores.ts'
import { type WindowDeltas } from '../windowing/index.ts'
import { writeAlarmBatch } from './alarms.ts'
import { type Db } from './db.ts'
import { insertDeadLetters } from './dead-letters.ts'
import { countDetections, mergeDetectionCounts } from './detection-counts.ts'
import { type LateReading, insertLateReadings } from './late-readings.ts'
import { type StoredModel, saveModels } from './models.ts'
import { ensureDayPartitions } from './partitions.ts'
import { type PartitionProgress, type PartitionState, fencePartitions, lockFinality, saveProgress } from './progress.ts'
import { findStoredKeys, insertReadings } from './readings.ts'
import { mergeHourlyRollups, mergeWindowDeltas } from './windows.ts'

/** The stream a batch belongs to (its consumer group and topic), and how its models are kept. */
export interface CommitOptions {
  group: string
  topic: string
  /** A model's trees are stored at most this often per key, in event time (see saveModels). */
  modelTreesEveryMs: number
}

/** What a batch stores. `settle` may still change `scored`, `late` and `deltas` (see commitBatch). */
export interface BatchWrite {
  scored: ScoredReading[]
  late: LateReading[]
  deadLetters: DeadLetter[]
  deltas: WindowDeltas
  models: readonly StoredModel[]
  progress: readonly PartitionProgress[]
  /** The learnt cadence (ms) of the batch's sensors, by sensor id, where known (stored with the sensor). */
  cadence?: ReadonlyMap<string, number>
  /** What the alarm core changed while the batch was prepared (alarms, history, outbox, condition states); absent or null: nothing. */
  alarms?: AlarmBatch | null
  /** The device-level detector's scored rows of the batch. */
  deviceScores?: readonly DeviceScoreRow[]
  /** Detector state snapshots taken after the batch's readings (replacing the stored ones of their keys). */
  snapshots?: readonly DetectorSnapshot[]
}

export interface CommittedBatch {
  /** The stored watermark read under the finality lock. */
  storedWatermark: number
  /** The windows the batch merged into, as stored now. */
  revised: WindowAggregate[]
  /** Late readings to keep (a repeat of a stored reading is left out)... */
  late: LateReading[]
  /** ... of which this many were new to late_readings (a repeat of a kept one is skipped). */
  lateKept: number
  /** Every partition of the stream as stored now (the other workers' progress). */
  partitions: PartitionState[]
}

export interface CommitHooks {
  /**
   * Called under the finality lock with the stored watermark, before anything is written: the
   * batch may move readings of windows finalized meanwhile (by another worker) to `late`.
   */
  settle?: (storedWatermark: number) => void
  /** Called inside the transaction after every write (events for other systems); a failure rolls back. */
  publish?: (committed: CommittedBatch) => Promise<void>
}

/**
 * Stores one batch in one transaction: sensors and readings with their verdicts, late readings,
 * dead letters, window and hourly roll-up deltas, detection counts, models, device scores, detector
 * state snapshots, and the consumed offsets
 * (fenced: IOT_ERR_FENCED when another worker stored one of these partitions meanwhile, and
 * nothing is written).
 */
export async function commitBatch (db: Db, o: CommitOptions, b: BatchWrite, hooks: CommitHooks = {}): Promise<CommittedBatch> {
  const { group, topic } = o
  await ensureDayPartitions(db, b.scored.map(s => s.reading.ts))
  return await db.transaction(async tx => {
    // No window becomes final while this transaction merges into it.
    const storedWatermark = await lockFinality(tx, group, topic, 'shared')
    await fencePartitions(tx, group, topic, b.progress)
    hooks.settle?.(storedWatermark)
    // A late reading may repeat one stored earlier, in a window final by now: look those up.
    const stored = await findStoredKeys(tx, b.late.map(l => l.reading))
    const late = stored.size === 0 ? b.late : b.late.filter(l => !stored.has(`${l.reading.sensorId}|${l.reading.ts}`))
    // With their sensors (the dimension: the rows need its keys) and the names they refer to.
    await insertReadings(tx, b.scored, b.cadence)
    const lateKept = await insertLateReadings(tx, late)
    await insertDeadLetters(tx, b.deadLetters)
    const deltas = b.deltas.drain()
    const revised = await mergeWindowDeltas(tx, deltas)
    await mergeHourlyRollups(tx, deltas, revised)
    await mergeDetectionCounts(tx, countDetections(b.scored))
    await saveModels(tx, b.models, o.modelTreesEveryMs)
    await insertDeviceScores(tx, b.deviceScores ?? [])
    await saveDetectorState(tx, b.snapshots ?? [])
    if (b.alarms != null) await writeAlarmBatch(tx, b.alarms)
    const partitions = await saveProgress(tx, group, topic, b.progress)
    const committed: CommittedBatch = { storedWatermark, revised, late, lateKept, partitions }
    await hooks.publish?.(committed)
    return committed
  })
}
