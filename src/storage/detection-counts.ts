// detection_counts: stored readings by sensor type, ground-truth label and each detector's verdict,
// merged in the batch transaction (precision, recall and F1 come from here, not from the raw table).
import { type DetectionCount, type ScoredReading, DetectionCounter } from '../domain/index.ts'
import { boolArray, numberArray, textArray } from './arrays.ts'
import { type Queryable } from './db.ts'

/** Counts scored readings by sensor type, label and verdicts. */
export function countDetections (rows: readonly ScoredReading[]): DetectionCount[] {
  const counter = new DetectionCounter()
  for (const { reading, verdict } of rows) counter.add(reading, verdict)
  return counter.cells()
}

/** Adds counts to detection_counts (in the batch transaction, in a fixed order: no deadlocks between workers). */
export async function mergeDetectionCounts (tx: Queryable, counts: readonly DetectionCount[]): Promise<void> {
  if (counts.length === 0) return
  const c = [...counts].sort((a, b) => a.sensorType < b.sensorType ? -1 : a.sensorType > b.sensorType ? 1 : a.label < b.label ? -1 : a.label > b.label ? 1 : 0)
  await tx.query(`
    INSERT INTO detection_counts AS d (sensor_type, label, rule_anomaly, z_anomaly, ml_state, stuck_anomaly, drift_anomaly, combined_anomaly, readings)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::bool[], $5::int2[], $6::bool[], $7::bool[], $8::bool[], $9::int8[])
    ON CONFLICT (sensor_type, label, rule_anomaly, z_anomaly, ml_state, stuck_anomaly, drift_anomaly, combined_anomaly)
    DO UPDATE SET readings = d.readings + excluded.readings`,
  [textArray(c.map(x => x.sensorType)), textArray(c.map(x => x.label)), boolArray(c.map(x => x.ruleAnomaly)),
    boolArray(c.map(x => x.zAnomaly)), numberArray(c.map(x => x.mlState)), boolArray(c.map(x => x.stuckAnomaly)),
    boolArray(c.map(x => x.driftAnomaly)), boolArray(c.map(x => x.combinedAnomaly)), numberArray(c.map(x => x.readings))])
}

/** The detection counts (small: sensor types × labels × verdict combinations), optionally of one sensor type. */
export async function loadDetectionCounts (db: Queryable, sensorType?: string): Promise<DetectionCount[]> {
  const cols = `sensor_type AS "sensorType", label, rule_anomaly AS "ruleAnomaly", z_anomaly AS "zAnomaly", ml_state AS "mlState",
    stuck_anomaly AS "stuckAnomaly", drift_anomaly AS "driftAnomaly", combined_anomaly AS "combinedAnomaly", readings`
  return sensorType === undefined
    ? await db.query<DetectionCount>(`SELECT ${cols} FROM detection_counts`)
    : await db.query<DetectionCount>(`SELECT ${cols} FROM detection_counts WHERE sensor_type = $1`, [sensorType])
}
