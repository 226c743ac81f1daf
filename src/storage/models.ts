// anomaly_models: the Isolation Forest models as trained, a bounded history per key.
import { msToTimestamp, textArray, timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'

/** A stored Isolation Forest model; `model` is its stored form (the anomaly module's `encodeModel`). */
export interface StoredModel {
  version: string
  key: string
  sequence: number
  trainedAt: number
  samples: number
  nEstimators: number
  maxSamples: number
  offset: number
  model: Uint8Array
}

/** Models kept per key (older ones are deleted as new ones arrive). */
export const MODELS_KEPT = 10

/**
 * Stores models (gzip-compressed JSON, level 1: a third of the JSON's size at a fraction of the
 * default level's time, on the worker's thread) and keeps the newest `MODELS_KEPT` per key. A
 * version already stored is kept as it is.
 */
export async function saveModels (tx: Queryable, models: readonly StoredModel[]): Promise<void> {
  if (models.length === 0) return
  for (const m of models) {
    await tx.query(`
      INSERT INTO anomaly_models (version, model_key, sequence, trained_at, samples, n_estimators, max_samples, score_offset, model)
      VALUES ($1, $2, $3, ${msToTimestamp('$4::float8')}, $5, $6, $7, $8, $9) ON CONFLICT (version) DO NOTHING`,
    [m.version, m.key, m.sequence, m.trainedAt, m.samples, m.nEstimators, m.maxSamples, m.offset, m.model])
  }
  await tx.query(`
    DELETE FROM anomaly_models a USING (
      SELECT version, row_number() OVER (PARTITION BY model_key ORDER BY trained_at DESC, sequence DESC) AS n
      FROM anomaly_models WHERE model_key = ANY($1::text[])) old
    WHERE a.version = old.version AND old.n > ${MODELS_KEPT}`, [textArray([...new Set(models.map(m => m.key))])])
}

/** The newest stored model of every key. */
export async function loadLatestModels (db: Queryable): Promise<StoredModel[]> {
  return await db.query<StoredModel>(`
    SELECT DISTINCT ON (model_key) version, model_key AS key, sequence, ${timestampToMs('trained_at')} AS "trainedAt", samples,
      n_estimators AS "nEstimators", max_samples AS "maxSamples", score_offset AS offset, model
    FROM anomaly_models ORDER BY model_key, trained_at DESC, sequence DESC`)
}

export interface ModelInfo {
  version: string
  key: string
  sequence: number
  trainedAt: number
  samples: number
  createdAt: number
}

/** The stored models, newest first (without their trees). */
export async function recentModels (db: Queryable, limit: number): Promise<ModelInfo[]> {
  return await db.query<ModelInfo>(`SELECT version, model_key AS key, sequence, ${timestampToMs('trained_at')} AS "trainedAt", samples,
    ${timestampToMs('created_at')} AS "createdAt" FROM anomaly_models ORDER BY created_at DESC, trained_at DESC LIMIT $1`, [limit])
}

/** The newest model of each key (sensor type, or sensor with per-sensor models). */
export async function newestModels (db: Queryable): Promise<ModelInfo[]> {
  return await db.query<ModelInfo>(`SELECT DISTINCT ON (model_key) version, model_key AS key, sequence, ${timestampToMs('trained_at')} AS "trainedAt",
    samples, ${timestampToMs('created_at')} AS "createdAt" FROM anomaly_models ORDER BY model_key, trained_at DESC, sequence DESC`)
}
