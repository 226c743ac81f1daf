// Keeping the database bounded: retention of raw data, and the vacuuming the embedded database
// needs (PGlite runs a single backend: no autovacuum).
import { type Db } from './db.ts'
import { deleteDetectorStateBefore } from './detector-state.ts'
import { deleteDeviceScoresBefore } from './device-scores.ts'
import { dropPartitionsBefore } from './partitions.ts'

export interface RetentionResult {
  /** Daily partitions of readings dropped. */
  partitions: string[]
  lateReadings: number
  deadLetters: number
  /** Device-level scores older than the event-time cutoff. */
  deviceScores: number
  /** Detector snapshots not written since the wall-time cutoff (sensors gone that long). */
  detectorStates: number
}

/**
 * Drops the raw readings (whole UTC days) that end at or before `eventCutoffMs`, the late readings
 * and device scores older than it, the dead letters received before `receivedCutoffMs` (wall time,
 * as they are stamped) and the detector snapshots last written before it. Windows and hourly
 * roll-ups are kept.
 */
export async function applyRetention (db: Db, eventCutoffMs: number, receivedCutoffMs: number): Promise<RetentionResult> {
  const partitions = await dropPartitionsBefore(db, eventCutoffMs)
  const [late] = await db.query<{ n: number }>(`WITH d AS (DELETE FROM late_readings WHERE timestamp < to_timestamp($1::float8 / 1000.0) RETURNING 1)
    SELECT count(*)::int AS n FROM d`, [eventCutoffMs])
  const [dead] = await db.query<{ n: number }>(`WITH d AS (DELETE FROM dead_letters WHERE received_at < to_timestamp($1::float8 / 1000.0) RETURNING 1)
    SELECT count(*)::int AS n FROM d`, [receivedCutoffMs])
  const deviceScores = await deleteDeviceScoresBefore(db, eventCutoffMs)
  const detectorStates = await deleteDetectorStateBefore(db, receivedCutoffMs)
  return { partitions, lateReadings: late?.n ?? 0, deadLetters: dead?.n ?? 0, deviceScores, detectorStates }
}

/**
 * The tables every batch rewrites rows of (windows, roll-ups, sensors, counts, progress) or deletes
 * from (models, retention). PostgreSQL's autovacuum keeps them small; the embedded database has
 * none, so the embedded system runs this now and then: the space of old row versions is reused
 * instead of the files growing.
 */
export async function vacuumRewrittenTables (db: Db): Promise<void> {
  await db.exec(`VACUUM sensor_aggregates, sensor_aggregates_hourly, sensors, detection_counts, stream_offsets, stream_watermarks,
    anomaly_models, late_readings, dead_letters, device_series, device_scores, detector_state`)
}
