// The partition claim/restore step: what a worker knows of the partitions it owns, rebuilt from
// the database whenever Kafka's group hands it a new set (or a failed batch rewinds it).
import { type Logger } from 'pino'
import { type AlarmEvaluator } from '../alarms/index.ts'
import { type StartOffsets } from '../bus/index.ts'
import { streamKeyOf } from '../domain/index.ts'
import {
  type Db, type PartitionState, claimPartitions, loadAlarmState, loadDetectorState, loadKnownSensors, loadLatestModels, loadReadingKeysSince, loadWarmupReadings, loadWatermark
} from '../storage/index.ts'
import { WindowOperator, type WindowingOptions } from '../windowing/index.ts'
import { type ReadingDetector } from '../detection/index.ts'
import { RecentKeys } from './recent-keys.ts'

export interface ClaimOptions {
  group: string
  topic: string
  windowing: WindowingOptions
  /** Readings per sensor replayed through the detectors when a worker takes over partitions (sensors without a stored snapshot). */
  warmupReadings: number
  /** At most this many readings per sensor replayed after its stored snapshot. */
  warmupAfterSnapshot: number
  /** Event time before the newest stored reading that the warm-up looks back over (sensors without a snapshot). */
  warmupSpanMs: number
  /** ... and for sensors with one (snapshots are at most an hour of event time apart: see SnapshotSchedule). */
  warmupSnapshotSpanMs: number
}

export interface ClaimDeps {
  db: Db
  detector: ReadingDetector
  /** Wall clock, only for idle timeouts. */
  wallClock: () => number
  log: Logger
  /** The partition of a bus key (`streamKeyOf` of a sensor id, or a device id), to rebuild state only for assigned partitions (all when absent). */
  partitionOf?: ((key: string) => number) | undefined
  /** The alarm core (null or absent: alarms off): its active alarms and condition states are restored with the partitions. */
  alarms?: AlarmEvaluator | null | undefined
}

/**
 * After a restart, sensors whose newest reading is at most this much event time older than the
 * newest of all are watched for going offline from the restart on (older ones are gone, not offline).
 */
const OFFLINE_WATCH_WITHIN_MS = 7 * 86_400_000

/**
 * The partitions a worker owns and the event-time state it keeps for them: the window operator
 * (one watermark channel per owned partition, the other workers' partitions as external
 * channels), the de-duplication keys of open windows, the offsets it expects to store next, and
 * the stored watermark as last read.
 */
export class PartitionClaims {
  op: WindowOperator
  /** Event times stored per sensor in open windows: tells duplicates from out-of-order readings. */
  readonly recent = new RecentKeys()
  #assigned: number[] = []
  /** Per owned partition, the next offset once every prepared batch is stored (the fence for the next one). */
  readonly expected = new Map<number, number>()
  /** The stored watermark as last read: windows ending at or before its final boundary are final. */
  storedWatermark = -Infinity
  /** Wall time of the last read of every partition's stored progress. */
  lastRefresh = -Infinity
  readonly #deps: ClaimDeps
  readonly #options: ClaimOptions

  constructor (deps: ClaimDeps, options: ClaimOptions) {
    this.#deps = deps
    this.#options = options
    this.op = new WindowOperator(options.windowing)
  }

  get assigned (): readonly number[] {
    return this.#assigned
  }

  /**
   * Takes partitions: claims them in the database, restores their event-time progress, the
   * de-duplication keys of open windows and the detectors' baselines, and returns the stored
   * offsets to resume from.
   */
  async assign (partitions: number[]): Promise<StartOffsets> {
    const o = this.#options
    const { db, partitionOf, detector } = this.#deps
    const all = await claimPartitions(db, o.group, o.topic, partitions)
    const storedWatermark = await loadWatermark(db, o.group, o.topic)
    const now = this.#deps.wallClock()
    const offsets: StartOffsets = new Map()
    const mine = new Set([...this.#assigned, ...partitions])
    this.#assigned = [...mine].sort((a, b) => a - b)
    // Own channels and the other workers' partitions in one step: the minimum is taken over all of them.
    this.op.watermarks.batch(() => {
      for (const s of all) {
        if (!partitions.includes(s.partition)) continue
        this.op.watermarks.addChannel(s.partition, now, s.maxEventMs ?? -Infinity)
        offsets.set(s.partition, s.nextOffset)
        this.expected.set(s.partition, s.nextOffset)
      }
      this.applyStored(all, storedWatermark)
    })
    const owns = (sensorId: string): boolean => partitionOf === undefined || mine.has(partitionOf(streamKeyOf(sensorId)))
    // Readings stored in windows that are still open: a repeat of one of them is a duplicate.
    const since = this.op.finalEndBoundary - this.op.options.sizeMs
    for (const k of await loadReadingKeysSince(db, since)) {
      if (owns(k.sensorId)) this.recent.add(k.sensorId, k.ts)
    }
    // The detectors' models and state: the stored models, the state snapshots, then the stored
    // readings after each sensor's snapshot (the newest of a sensor without one), replayed in order.
    const unreadable = detector.restoreModels?.(await loadLatestModels(db)) ?? []
    if (unreadable.length > 0) this.#deps.log.warn({ versions: unreadable }, 'Stored models could not be read; their keys train new ones.')
    let snapshots = 0
    // The oldest event time a restored sensor's catch-up needs (it replays readings after its snapshot).
    let oldestSnapshot = Infinity
    if (detector.restoreSnapshots !== undefined) {
      const stored = await loadDetectorState(db, key => !key.startsWith('sensor:') || owns(key.slice('sensor:'.length)))
      const damaged = detector.restoreSnapshots(stored)
      if (damaged.length > 0) this.#deps.log.warn({ keys: damaged.slice(0, 20), count: damaged.length }, 'Stored detector snapshots could not be read; those sensors start over from their recent readings.')
      snapshots = stored.length - damaged.length
      for (const s of stored) if (s.key.startsWith('sensor:') && s.lastTs < oldestSnapshot) oldestSnapshot = s.lastTs
    }
    // Alarms: the active ones and the pending conditions of the owned originators (a device belongs
    // to the partition its id hashes to), as the last stored batch left them.
    const alarms = this.#deps.alarms ?? null
    let activeAlarms = 0
    if (alarms !== null) {
      alarms.clear()
      const state = await loadAlarmState(db, (kind, id) => kind === 'device' ? partitionOf === undefined || mine.has(partitionOf(id)) : kind !== 'location' && owns(id), partitionOf === undefined ? undefined : this.#assigned)
      const sensors = (await loadKnownSensors(db, OFFLINE_WATCH_WITHIN_MS)).filter(s => owns(s.sensorId))
      alarms.restore({ ...state, sensors, wallNow: now })
      activeAlarms = state.alarms.length
    }
    const newest = all.reduce((m, s) => Math.max(m, s.maxEventMs ?? -Infinity), -Infinity)
    let warmed = 0
    if (Number.isFinite(newest) && detector.clear !== undefined) {
      const replay = (await loadWarmupReadings(db, {
        sinceMs: newest - o.warmupSpanMs,
        perSensor: o.warmupReadings,
        // No further back than the oldest snapshot (all are recent in a busy fleet), nor than the span.
        snapshotSinceMs: Math.max(newest - o.warmupSnapshotSpanMs, oldestSnapshot === Infinity ? newest : oldestSnapshot),
        afterSnapshot: o.warmupAfterSnapshot
      })).filter(r => owns(r.sensorId))
      if (detector.warmUp !== undefined) detector.warmUp(replay)
      else detector.detectMany(replay)
      // The alarm core evaluated these already: they give each sensor its newest event time and usual interval.
      alarms?.observe(replay)
      warmed = replay.length
    }
    this.#deps.log.info({ partitions, watermark: this.op.watermark, snapshots, warmed, activeAlarms }, 'Partitions assigned.')
    return offsets
  }

  revoke (partitions: readonly number[]): void {
    for (const p of partitions) {
      this.op.watermarks.removeChannel(p)
      this.expected.delete(p)
    }
    this.#assigned = this.#assigned.filter(p => !partitions.includes(p))
    // Per-sensor state is rebuilt from the database for whatever stays assigned.
    this.recent.clear()
    this.#deps.detector.clear?.()
    this.#deps.alarms?.clear()
    if (this.#assigned.length === 0) this.op = new WindowOperator(this.#options.windowing)
  }

  /**
   * Rebuilds everything as after a restart (a failed batch) and returns the stored offsets to
   * rewind to. The partitions stay assigned whatever happens: when the database fails this too,
   * the next attempt reclaims the same ones.
   */
  async reclaim (): Promise<StartOffsets> {
    const partitions = [...this.#assigned]
    this.op = new WindowOperator(this.#options.windowing)
    this.expected.clear()
    this.recent.clear()
    this.#deps.detector.clear?.()
    this.#deps.alarms?.clear()
    return await this.assign(partitions)
  }

  /**
   * Takes in the stored state of every partition: others' progress joins the watermark as
   * external channels, and the stored watermark is a floor (windows final there are final here).
   */
  applyStored (all: readonly PartitionState[], storedWatermark: number): void {
    const w = this.op.watermarks
    const ooo = this.op.options.maxOutOfOrdernessMs
    w.batch(() => {
      for (const s of all) {
        if (this.#assigned.includes(s.partition)) continue
        w.setExternal(s.partition, s.idle ? null : s.maxEventMs === null ? -Infinity : s.maxEventMs - ooo)
      }
    })
    if (storedWatermark > this.storedWatermark) this.storedWatermark = storedWatermark
    w.restoreFloor(this.storedWatermark)
    this.lastRefresh = this.#deps.wallClock()
  }

  /** Windows ending at or before this are final under `watermark`. */
  finalEnd (watermark: number): number {
    return watermark - this.op.options.allowedLatenessMs
  }
}
