// anomaly_models: the Isolation Forest models as trained: a bounded history of versions per key,
// the newest with their trees.
import { msToTimestamp, textArray, timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'

/**
 * A stored Isolation Forest model; `model` is its stored form (the anomaly module's `encodeModel`,
 * or `encodeDeviceModel` for a device's), or, to save, a function making it: called only when the
 * trees are kept (see saveModels), so the models whose trees are not kept are never encoded.
 */
export interface StoredModel {
  version: string
  key: string
  sequence: number
  trainedAt: number
  samples: number
  nEstimators: number
  maxSamples: number
  offset: number
  model: Uint8Array | (() => Uint8Array)
  /** As loaded: the highest sequence stored for the key (a newer version may be listed without its trees). */
  lastSequence?: number
}

/** Versions listed per key (the history the API shows). */
export const MODEL_VERSIONS_KEPT = 20
/** Versions per key kept with their trees: the newest restores a worker, the one before is a spare. */
export const MODEL_TREES_KEPT = 2

/**
 * Stores models: every version is listed (newest MODEL_VERSIONS_KEPT per key), its trees (~150 KB
 * gzipped for 100 trees) only when the key's last stored trees are at least `treesEveryMs` of
 * event time older, and only the newest MODEL_TREES_KEPT per key keep them. A worker retrains every
 * few minutes: storing each model would write more than the readings themselves, and a restart
 * needs only a recent one (it retrains within minutes). A version already stored is kept as it is.
 */
export async function saveModels (tx: Queryable, models: readonly StoredModel[], treesEveryMs = 0): Promise<void> {
  if (models.length === 0) return
  const keys = textArray([...new Set(models.map(m => m.key))])
  const stored = await tx.query<{ key: string, t: number }>(`SELECT model_key AS key, ${timestampToMs('max(trained_at)')} AS t
    FROM anomaly_models WHERE model IS NOT NULL AND model_key = ANY($1::text[]) GROUP BY 1`, [keys])
  const lastTrees = new Map(stored.map(s => [s.key, s.t]))
  let trees = false
  for (const m of [...models].sort((a, b) => a.trainedAt - b.trainedAt)) {
    const last = lastTrees.get(m.key)
    const keep = last === undefined || m.trainedAt - last >= treesEveryMs
    if (keep) lastTrees.set(m.key, m.trainedAt)
    trees ||= keep
    await tx.query(`
      INSERT INTO anomaly_models (version, model_key, sequence, trained_at, samples, n_estimators, max_samples, score_offset, model)
      VALUES ($1, $2, $3, ${msToTimestamp('$4::float8')}, $5, $6, $7, $8, $9) ON CONFLICT (version) DO NOTHING`,
    [m.version, m.key, m.sequence, m.trainedAt, m.samples, m.nEstimators, m.maxSamples, m.offset, keep ? (typeof m.model === 'function' ? m.model() : m.model) : null])
  }
  const ranked = `SELECT version, model IS NOT NULL AS trees,
      row_number() OVER (PARTITION BY model_key ORDER BY trained_at DESC, sequence DESC) AS n,
      row_number() OVER (PARTITION BY model_key, model IS NOT NULL ORDER BY trained_at DESC, sequence DESC) AS nt
    FROM anomaly_models WHERE model_key = ANY($1::text[])`
  await tx.query(`DELETE FROM anomaly_models a USING (${ranked}) r
    WHERE a.version = r.version AND r.n > ${MODEL_VERSIONS_KEPT} AND NOT (r.trees AND r.nt <= ${MODEL_TREES_KEPT})`, [keys])
  if (trees) {
    await tx.query(`UPDATE anomaly_models a SET model = NULL FROM (${ranked}) r
      WHERE a.version = r.version AND r.trees AND r.nt > ${MODEL_TREES_KEPT}`, [keys])
  }
}

/** The newest stored model with its trees of every key, with the key's highest stored sequence. */
export async function loadLatestModels (db: Queryable): Promise<Array<StoredModel & { model: Uint8Array }>> {
  return await db.query<StoredModel & { model: Uint8Array }>(`
    SELECT DISTINCT ON (model_key) version, model_key AS key, sequence, ${timestampToMs('trained_at')} AS "trainedAt", samples,
      n_estimators AS "nEstimators", max_samples AS "maxSamples", score_offset AS offset, model,
      (SELECT max(sequence) FROM anomaly_models b WHERE b.model_key = a.model_key) AS "lastSequence"
    FROM anomaly_models a WHERE model IS NOT NULL ORDER BY model_key, trained_at DESC, sequence DESC`)
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
