// The data set behind the dashboard API benchmark (DESIGN.md section 7: "dashboard queries p95 < 50 ms
// over 50 million stored readings"): N readings shaped like what the worker stores, generated inside
// PostgreSQL (INSERT … SELECT FROM generate_series, one statement per day), and every table the
// worker keeps beside them derived from those rows exactly as the worker keeps them.
//
// Layout: 100 sensors (the simulator's fleet: 5 locations × 5 types × 4), one reading per sensor
// every 6 s, sensors de-phased by 60 ms, ending at a fixed time (50 M readings ≈ 34.7 days). Values
// follow the simulator's physical model (level, daily cycle, slow background walk, Gaussian noise,
// clipped to the sensor's bounds); ~3% are labelled anomalies (spikes; drift, stuck and dropout
// episodes) with verdicts filled plausibly: rules from the real default thresholds, a z-score
// against the expected value, an Isolation Forest score that grows with |z|, severity, combined
// verdict and explanation as src/anomaly/detector.ts words them. Random numbers are hashes of the
// reading number and the seed (hashint8extended), so the data set does not depend on the plan.
//
// Each day is one transaction: the day's readings are generated with every column of sensor_readings
// into a temporary table, written compact (as the worker stores them: sensor key, verdict bits, model
// version and explanation on flagged readings) into a new table attached as the day's partition of
// readings (named as ensureDayPartitions names it; attaching builds its indexes in one sort instead
// of row by row, and with wal_level = minimal the new files skip the WAL), and the day's windows,
// hourly roll-ups and detection counts are derived from the temporary table. Done days are
// recorded, so an interrupted load resumes; `bench_dataset` says what is loaded, and a load of the
// same data set is skipped.
import postgres from 'postgres'
import { defaultRuleConfig, encodeModel, FEATURES, IsolationForest, RuleEngine } from '../src/anomaly/index.ts'
import { createRandom } from '../src/domain/index.ts'
import { createFleet, locationOffsets, sensorModels } from '../src/sources/index.ts'
import { type Db, migrate, openPostgres, saveModels, type StoredModel } from '../src/storage/index.ts'

export const DEFAULT_READINGS = 50_000_000
/** Bump when the generated data changes: a data set of another generator version is reloaded. */
const GENERATOR = 3
const SENSORS = 100
const TICK_MS = 6000
/** Sensor slot i reads at tick + i × 60 ms (all 100 within one tick). */
const SLOT_MS = 60
const DAY_MS = 86_400_000
/** Newest reading: one tick before this (fixed, so every load of a size is the same data). */
export const END_MS = Date.UTC(2026, 5, 1)
const WINDOW_MS = 60_000
const OUT_OF_ORDERNESS_MS = 10_000
const ALLOWED_LATENESS_MS = 60_000
/** Ticks per episode block (2 min): a block of a sensor is an episode with probability EPISODE_P. */
const EPISODE_TICKS = 20
const EPISODE_P = 0.02
const SPIKE_P = 0.015
/** ml_anomaly when ml_score exceeds this. */
const ML_THRESHOLD = 0.51
const LATE_READINGS = 3000
const DEAD_LETTERS = 2000
const GROUP = 'iot-monitor'
const TOPIC = 'iot_sensors'

/** A problem with the benchmark's settings (no DATABASE_URL, a bad option): printed without a stack. */
export class BenchSetupError extends Error {}

export interface LoadOptions {
  readings: number
  seed: number
  /** Load again even when the same data set is there. */
  reload: boolean
}

export interface Dataset {
  /** URL of the bench database. */
  url: string
  readings: number
  oldestMs: number
  newestMs: number
  /** Seconds the load took (this run or the one that loaded it). */
  loadSeconds: number
  /** This run loaded it (false: it was there). */
  loaded: boolean
}

const out = (s: string): void => { process.stdout.write(s + '\n') }
const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US')
const iso = (ms: number): string => new Date(ms).toISOString()
function clock (seconds: number): string {
  const s = Math.round(seconds)
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
}

/**
 * The bench database on the server of DATABASE_URL: `<db>_bench` (`iot` → `iot_bench`; a name that
 * already ends in `_bench` is kept) for the default size, `<that>_<size>` for other sizes (e.g.
 * `iot_bench_2m`), so quick runs never replace the 50 M data set.
 */
export function benchDatabaseUrl (readings: number, databaseUrl = process.env.DATABASE_URL): string {
  if (databaseUrl === undefined || databaseUrl === '') {
    throw new BenchSetupError('DATABASE_URL is not set. Start PostgreSQL with `bash scripts/services.sh up postgres` and ' +
      'export what `bash scripts/services.sh env postgres` prints (e.g. DATABASE_URL=postgres://postgres@127.0.0.1:55432/iot); ' +
      'the benchmark uses its own database beside it (iot_bench).')
  }
  const u = new URL(databaseUrl)
  const base = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres'
  let name = base.endsWith('_bench') ? base : `${base}_bench`
  if (readings !== DEFAULT_READINGS) name += `_${sizeLabel(readings)}`
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new BenchSetupError(`bench database name ${name} (from DATABASE_URL) must match [a-z_][a-z0-9_]*`)
  u.pathname = `/${name}`
  return u.toString()
}

function sizeLabel (n: number): string {
  if (n % 1_000_000 === 0) return `${n / 1_000_000}m`
  if (n % 1000 === 0) return `${n / 1000}k`
  return String(n)
}

function redact (url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@')
}

function dbName (url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1))
}

async function admin<T> (url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const u = new URL(url)
  u.pathname = '/postgres'
  const sql = postgres(u.toString(), { max: 1, onnotice: () => {} })
  try {
    return await fn(sql)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

async function createDatabase (url: string, dropFirst: boolean): Promise<void> {
  const name = dbName(url)
  await admin(url, async sql => {
    if (dropFirst) await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    const [exists] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_database WHERE datname = ${name}`
    if (exists?.n === 0) await sql.unsafe(`CREATE DATABASE ${name}`)
  })
}

interface Layout {
  readings: number
  ticks: number
  startMs: number
  oldestMs: number
  newestMs: number
  firstDay: number
  lastDay: number
}

function layout (readings: number): Layout {
  const ticks = Math.ceil(readings / SENSORS)
  const startMs = END_MS - ticks * TICK_MS
  const newestMs = startMs + (ticks - 1) * TICK_MS + ((readings - 1) % SENSORS) * SLOT_MS
  return { readings, ticks, startMs, oldestMs: startMs, newestMs, firstDay: Math.floor(startMs / DAY_MS), lastDay: Math.floor(newestMs / DAY_MS) }
}

function partitionName (day: number): string {
  return 'readings_' + new Date(day * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')
}

/** The day's readings with every column of the sensor_readings view, before they are written compact. */
const WIDE = `CREATE TEMP TABLE wide (sensor_id text, sensor_type text, location text, value float8, timestamp timestamptz, unit text,
  anomaly bool, anomaly_type text, seq bigint, rule_anomaly bool, z_score float8, z_anomaly bool, ml_score float8, ml_anomaly bool,
  model_version text, combined_anomaly bool, severity text, explanation text, ingested_at timestamptz) ON COMMIT DROP`

/** The wide rows of `wide` as compact rows of readings (reading_flags and the layout: migration 0006). */
const COMPACT_INSERT = (table: string): string => `
  INSERT INTO ${table} (ts, value, sensor_key, flags, z_score, ml_score, model_key, explanation)
  SELECT w.timestamp, w.value, s.sensor_key,
    reading_flags(w.rule_anomaly, w.z_anomaly, w.ml_anomaly, w.combined_anomaly, w.severity, w.anomaly, k.kind_key),
    w.z_score, w.ml_score, CASE WHEN w.severity IS NOT NULL THEN m.model_key END, CASE WHEN w.severity IS NOT NULL THEN w.explanation END
  FROM wide w
  JOIN sensors s ON s.sensor_id = w.sensor_id AND s.sensor_type = w.sensor_type AND s.location = w.location AND s.unit = w.unit
  LEFT JOIN anomaly_kinds k ON k.name = w.anomaly_type
  LEFT JOIN model_versions m ON m.version = w.model_version
  ORDER BY w.timestamp`

const BOOKKEEPING = `
  CREATE TABLE IF NOT EXISTS bench_dataset (
    id           int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    readings     bigint      NOT NULL,
    seed         int         NOT NULL,
    generator    int         NOT NULL,
    end_ms       bigint      NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    loaded_at    timestamptz,
    load_seconds float8
  );
  CREATE TABLE IF NOT EXISTS bench_dataset_days (
    day      date   PRIMARY KEY,
    readings bigint NOT NULL,
    seconds  float8 NOT NULL
  );
  CREATE TABLE IF NOT EXISTS bench_sensors (
    idx         int PRIMARY KEY,
    sensor_id   text   NOT NULL,
    sensor_type text   NOT NULL,
    location    text   NOT NULL,
    unit        text   NOT NULL,
    level       float8 NOT NULL,
    amp         float8 NOT NULL,
    noise       float8 NOT NULL,
    lo          float8 NOT NULL,
    hi          float8 NOT NULL,
    rmin        float8,
    rmax        float8,
    walk_period float8 NOT NULL,
    phase       float8 NOT NULL
  )`

interface DatasetRow { readings: number, seed: number, generator: number, end_ms: number, loaded_at: Date | null, load_seconds: number | null }

/** The simulator's fleet with its physical model and the default rule thresholds, as rows of bench_sensors. */
function sensorSpecs (seed: number): Record<string, string | number | null>[] {
  const rules = new RuleEngine(defaultRuleConfig)
  const rnd = createRandom(seed)
  return createFleet(SENSORS).map((s, idx) => {
    const m = sensorModels[s.sensorType]
    const t = rules.thresholdFor(s.sensorType, s.location)
    return {
      idx,
      sensor_id: s.id,
      sensor_type: s.sensorType,
      location: s.location,
      unit: s.unit,
      level: m.base + locationOffsets[s.location][s.sensorType],
      amp: m.amplitude,
      noise: m.noise,
      lo: m.min,
      hi: m.max,
      rmin: t?.min ?? null,
      rmax: t?.max ?? null,
      // The background walk (±2 units, as the simulator's) as a slow sine of 2-5 days per sensor.
      walk_period: (2 + 3 * rnd.next()) * DAY_MS,
      phase: 2 * Math.PI * rnd.next()
    }
  })
}

/** Uniform in [0, 1) from the row number `g` and the seed (the SQL expression `seed`): stream j. */
const U = (j: number, seed = '$4::bigint'): string => `((hashint8extended(g, ${seed} * 16 + ${j}) & 9007199254740991)::float8 / 9007199254740992.0)`
/** Random streams of the late readings and dead letters: other seeds than the readings'. */
const LATE_SEED = '($4::bigint + 1000)'
const DEAD_SEED = '($3::bigint + 2000)'
const cycle = (ts: string): string => `sin(2 * pi() * (((${ts} % ${DAY_MS}) - ${8 * 3_600_000}) / ${DAY_MS}.0))`
const walk = (ts: string): string => `2 * sin(2 * pi() * ${ts} / s.walk_period + s.phase)`
const signed = (x: string, digits: number): string => `(CASE WHEN ${x} >= 0 THEN '+' ELSE '' END || round((${x})::numeric, ${digits}))`

/**
 * Readings number $1..$2 (g = tick × 100 + sensor slot) into `table`; $3 = event time of tick 0
 * (epoch ms), $4 = seed. Each level is fenced (OFFSET 0) so its columns are computed once per row.
 */
function readingsInsert (table: string): string {
  const blockU = '((hb >> 12) & 1048575)'
  return `
  INSERT INTO ${table} (sensor_id, sensor_type, location, value, timestamp, unit, anomaly, anomaly_type, seq, rule_anomaly, z_score,
    z_anomaly, ml_score, ml_anomaly, model_version, combined_anomaly, severity, explanation, ingested_at)
  SELECT sensor_id, sensor_type, location, value, to_timestamp(ts / 1000.0), unit, kind IS NOT NULL, kind, k, rule, z,
    z_anom, ml_score, ml_anom, mv, coalesce(severity IN ('critical', 'major'), false), severity,
    CASE WHEN severity IS NOT NULL THEN concat_ws('; ',
      CASE WHEN rule THEN CASE WHEN value > rmax THEN format('rule: above max %s %s', rmax, unit) ELSE format('rule: below min %s %s', rmin, unit) END END,
      CASE WHEN z_anom THEN format('z %s (baseline %s ± %s %s)', ${signed('z', 1)}, round(expected::numeric, 1), round((noise * 1.05)::numeric, 2), unit) END,
      CASE WHEN ml_anom THEN format('ml %s (%s): value %sσ %s%%, rolling_range %sσ %s%%', round(ml_score::numeric, 2), mv, ${signed('z', 1)},
        50 + (u_ml * 30)::int, ${signed('abs(z) / 2', 1)}, 10 + (u_ingest * 20)::int) END) END,
    to_timestamp((ts + 150 + 850 * u_ingest) / 1000.0)
  FROM (
    SELECT v.*, abs(z) > 3 AS z_anom, ml_score > ${ML_THRESHOLD} AS ml_anom,
      CASE WHEN ml_score IS NOT NULL THEN sensor_type || '#' || ((ts - $3::bigint) / 300000 + 1) END AS mv,
      CASE WHEN rule THEN 'critical'
           WHEN abs(z) > 3 AND (coalesce(ml_score > ${ML_THRESHOLD}, false) OR abs(z) >= 6) THEN 'major'
           WHEN abs(z) > 3 OR coalesce(ml_score > ${ML_THRESHOLD}, false) THEN 'minor' END AS severity
    FROM (
      SELECT w.*, (value - expected) / (noise * 1.05) AS z,
        CASE WHEN k >= 3 THEN least(0.97, greatest(0.3, 0.40 + 0.03 * least(abs(value - expected) / (noise * 1.05), 15) + 0.16 * (u_ml - 0.5)
          + CASE WHEN ek = 2 AND pos >= 5 THEN 0.15 WHEN ek = 1 THEN 0.008 * pos ELSE 0 END)) END AS ml_score,
        coalesce(value < rmin, false) OR coalesce(value > rmax, false) AS rule
      FROM (
        SELECT e.*,
          CASE ek WHEN 1 THEN CASE WHEN 6 * (pos + 1) >= ${EPISODE_TICKS} THEN 'drift' END
                  WHEN 2 THEN 'stuck'
                  WHEN 3 THEN CASE WHEN pos < 4 THEN 'dropout' END
                  ELSE CASE WHEN u_spike < ${SPIKE_P} THEN 'spike' END END AS kind,
          CASE ek WHEN 1 THEN greatest(lo, least(hi, expected + nz + dir * 6 * noise * (pos + 1) / ${EPISODE_TICKS}.0))
                  WHEN 2 THEN greatest(lo, least(hi, expected_b + noise * stuck_u))
                  WHEN 3 THEN CASE WHEN pos < 4 THEN 0 ELSE greatest(lo, least(hi, expected + nz)) END
                  ELSE CASE WHEN u_spike >= ${SPIKE_P} THEN greatest(lo, least(hi, expected + nz))
                            WHEN expected * factor > hi THEN expected / factor ELSE expected * factor END END AS value
        FROM (
          SELECT l.*, 1.5 + 1.5 * u_factor AS factor,
            CASE WHEN blk > 0 AND ${blockU} < ${Math.round(EPISODE_P * 1_048_576)} THEN
              CASE WHEN (hb & 255) < 102 THEN 1 WHEN (hb & 255) < 205 THEN 2 ELSE 3 END ELSE 0 END AS ek,
            CASE WHEN (hb >> 8) & 1 = 0 THEN 1 ELSE -1 END AS dir,
            ((hb >> 32) & 65535) / 32768.0 - 1 AS stuck_u
          FROM (
            SELECT q.g, q.k, q.k / ${EPISODE_TICKS} AS blk, (q.k % ${EPISODE_TICKS})::int AS pos, t.ts,
              s.sensor_id, s.sensor_type, s.location, s.unit, s.noise, s.lo, s.hi, s.rmin, s.rmax,
              s.level + s.amp * ${cycle('t.ts')} + ${walk('t.ts')} AS expected,
              s.level + s.amp * ${cycle('t.tb')} + ${walk('t.tb')} AS expected_b,
              s.noise * sqrt(-2 * ln(1 - ${U(1)})) * cos(2 * pi() * ${U(2)}) AS nz,
              ${U(3)} AS u_spike, ${U(4)} AS u_factor, ${U(5)} AS u_ml, ${U(6)} AS u_ingest,
              hashint8extended(s.idx * 1000003 + q.k / ${EPISODE_TICKS}, $4::bigint * 16 + 15) AS hb
            FROM (SELECT g, g / ${SENSORS} AS k, (g % ${SENSORS})::int AS i FROM generate_series($1::bigint, $2::bigint) AS g) q
            JOIN bench_sensors s ON s.idx = q.i
            CROSS JOIN LATERAL (SELECT $3::bigint + q.k * ${TICK_MS} + s.idx * ${SLOT_MS} AS ts,
              $3::bigint + (q.k / ${EPISODE_TICKS}) * ${EPISODE_TICKS * TICK_MS} + s.idx * ${SLOT_MS} AS tb) t
            OFFSET 0) l
          OFFSET 0) e
        OFFSET 0) w
      OFFSET 0) v
    OFFSET 0) x`
}

/** The day's windows, as the worker merges them: $1 = newest event time (ms), for finality. */
function windowsInsert (table: string): string {
  const boundary = `to_timestamp(($1::float8 - ${OUT_OF_ORDERNESS_MS + ALLOWED_LATENESS_MS}) / 1000.0)`
  return `
  INSERT INTO sensor_aggregates (window_start, window_end, location, sensor_type, avg_value, min_value, max_value, stddev_value,
    count_readings, anomaly_count, label_anomaly_count, z_score_anomalies, ml_anomaly_count, combined_anomaly_count, m2,
    normal_count, normal_avg, normal_min, normal_max, revision, is_final, finalized_at, updated_at)
  SELECT ws, ws + interval '${WINDOW_MS} milliseconds', location, sensor_type, avg, mn, mx, sqrt(greatest(m2, 0) / n), n, ra, la, za, ma, ca,
    greatest(m2, 0), nn, nav, nmn, nmx, 1, ws + interval '${WINDOW_MS} milliseconds' <= ${boundary},
    CASE WHEN ws + interval '${WINDOW_MS} milliseconds' <= ${boundary} THEN ws + interval '${WINDOW_MS + OUT_OF_ORDERNESS_MS + ALLOWED_LATENESS_MS} milliseconds' END,
    least(ws + interval '${WINDOW_MS + OUT_OF_ORDERNESS_MS + ALLOWED_LATENESS_MS} milliseconds', to_timestamp($1::float8 / 1000.0))
  FROM (
    SELECT date_bin('${WINDOW_MS} milliseconds', timestamp, 'epoch') AS ws, location, sensor_type,
      count(*)::int AS n, avg(value) AS avg, min(value) AS mn, max(value) AS mx, var_pop(value) * count(*) AS m2,
      count(*) FILTER (WHERE rule_anomaly)::int AS ra, count(*) FILTER (WHERE anomaly)::int AS la,
      count(*) FILTER (WHERE z_anomaly)::int AS za, count(*) FILTER (WHERE ml_anomaly)::int AS ma,
      count(*) FILTER (WHERE combined_anomaly)::int AS ca,
      count(*) FILTER (WHERE NOT combined_anomaly)::int AS nn, avg(value) FILTER (WHERE NOT combined_anomaly) AS nav,
      min(value) FILTER (WHERE NOT combined_anomaly) AS nmn, max(value) FILTER (WHERE NOT combined_anomaly) AS nmx
    FROM ${table} GROUP BY 1, 2, 3) g
  -- In time order, as the worker's batches add them: a time-range scan reads neighbouring pages.
  ORDER BY ws, location, sensor_type`
}

/** Hourly roll-ups of the windows in [$1, $2) (ms), merged as the migration merges them. */
const HOURLY_INSERT = `
  INSERT INTO sensor_aggregates_hourly (hour_start, location, sensor_type, avg_value, min_value, max_value, stddev_value, count_readings,
    anomaly_count, label_anomaly_count, z_score_anomalies, ml_anomaly_count, combined_anomaly_count, m2, windows,
    normal_count, normal_avg, normal_min, normal_max)
  SELECT h, location, sensor_type, s / n, mn, mx, sqrt(greatest(m2, 0) / n), n, ra, la, za, ma, ca, greatest(m2, 0), w,
    nn, nsum / nullif(nn, 0), nmn, nmx
  FROM (SELECT date_bin('1 hour', window_start, 'epoch') AS h, location, sensor_type,
               sum(count_readings)::float8 AS n, sum(count_readings * avg_value) AS s, min(min_value) AS mn, max(max_value) AS mx,
               sum(m2) + sum(count_readings * avg_value * avg_value) - sum(count_readings * avg_value) ^ 2 / sum(count_readings) AS m2,
               sum(anomaly_count) AS ra, sum(label_anomaly_count) AS la, sum(z_score_anomalies) AS za, sum(ml_anomaly_count) AS ma,
               sum(combined_anomaly_count) AS ca, count(*)::int AS w,
               sum(normal_count) AS nn, sum(normal_count * normal_avg) AS nsum, min(normal_min) AS nmn, max(normal_max) AS nmx
        FROM sensor_aggregates
        WHERE window_start >= to_timestamp($1::float8 / 1000.0) AND window_start < to_timestamp($2::float8 / 1000.0)
        GROUP BY 1, 2, 3) g
  ORDER BY h, location, sensor_type`

function detectionInsert (table: string): string {
  return `
  INSERT INTO detection_counts AS d (sensor_type, label, rule_anomaly, z_anomaly, ml_state, combined_anomaly, readings)
  SELECT sensor_type,
         CASE WHEN anomaly THEN coalesce(anomaly_type, 'anomaly') WHEN NOT anomaly THEN 'normal' ELSE 'unlabelled' END,
         rule_anomaly, z_anomaly, (CASE WHEN ml_anomaly IS NULL THEN -1 WHEN ml_anomaly THEN 1 ELSE 0 END)::int2, combined_anomaly, count(*)
  FROM ${table} GROUP BY 1, 2, 3, 4, 5, 6
  ON CONFLICT (sensor_type, label, rule_anomaly, z_anomaly, ml_state, combined_anomaly)
  DO UPDATE SET readings = d.readings + excluded.readings`
}

async function loadDay (db: Db, l: Layout, seed: number, day: number): Promise<number> {
  const part = partitionName(day)
  const dayStart = day * DAY_MS
  const firstTick = Math.max(0, Math.ceil((dayStart - l.startMs) / TICK_MS))
  const lastTick = Math.min(l.ticks - 1, Math.floor((dayStart + DAY_MS - l.startMs) / TICK_MS) - 1)
  const g0 = firstTick * SENSORS
  const g1 = Math.min(lastTick * SENSORS + SENSORS - 1, l.readings - 1)
  if (g1 < g0) return 0
  const from = iso(dayStart)
  const to = iso(dayStart + DAY_MS)
  await db.transaction(async tx => {
    await tx.query(`DROP TABLE IF EXISTS ${part}`)
    await tx.query(WIDE)
    await tx.query(readingsInsert('wide'), [g0, g1, l.startMs, seed])
    // A temporary table has no statistics until analyzed: without them the joins below ran as nested loops.
    await tx.query('ANALYZE wide')
    await tx.query(`INSERT INTO model_versions (version) SELECT DISTINCT model_version FROM wide
      WHERE severity IS NOT NULL AND model_version IS NOT NULL ON CONFLICT DO NOTHING`)
    await tx.query(`CREATE TABLE ${part} (LIKE readings INCLUDING DEFAULTS)`)
    // The constraint (checked per row as they arrive) lets ATTACH skip its validation scan; dropped
    // after it, the partition looks as ensureDayPartitions makes it.
    await tx.query(`ALTER TABLE ${part} ADD CONSTRAINT ${part}_range CHECK (ts >= '${from}' AND ts < '${to}')`)
    await tx.query(COMPACT_INSERT(part))
    await tx.query(`ALTER TABLE readings ATTACH PARTITION ${part} FOR VALUES FROM ('${from}') TO ('${to}')`)
    await tx.query(`ALTER TABLE ${part} DROP CONSTRAINT ${part}_range`)
    await tx.query(windowsInsert('wide'), [l.newestMs])
    const [w] = await tx.query<{ n: number }>(`SELECT coalesce(sum(count_readings), 0)::float8 AS n FROM sensor_aggregates
      WHERE window_start >= '${from}' AND window_start < '${to}'`)
    if (w?.n !== g1 - g0 + 1) throw new Error(`${part}: ${w?.n ?? 0} readings generated, ${g1 - g0 + 1} expected`)
    await tx.query(HOURLY_INSERT, [dayStart, dayStart + DAY_MS])
    await tx.query(detectionInsert('wide'))
    await tx.query('INSERT INTO bench_dataset_days (day, readings, seconds) VALUES ($1::date, $2, 0)', [from.slice(0, 10), g1 - g0 + 1])
  })
  // What autovacuum would have done to a day of the past: hint bits, visibility map, statistics.
  await db.query(`VACUUM (ANALYZE) ${part}`)
  return g1 - g0 + 1
}

/** Sensors (first/last seen), stream progress, late readings, dead letters, models: what the worker keeps beside the readings. */
async function finish (db: Db, l: Layout, seed: number): Promise<void> {
  const models = trainModels(l, seed)
  await db.transaction(async tx => {
    await tx.query(`UPDATE sensors s SET first_seen = f.t, last_seen = m.t
      FROM (SELECT sensor_key, min(ts) AS t FROM readings GROUP BY 1) f, (SELECT sensor_key, max(ts) AS t FROM readings GROUP BY 1) m
      WHERE f.sensor_key = s.sensor_key AND m.sensor_key = s.sensor_key`)
    // Late readings: 30 ms off the sensor's schedule (never the key of a stored reading), arriving
    // 1-10 minutes after their window became final.
    await tx.query('DELETE FROM late_readings')
    await tx.query(`
      INSERT INTO late_readings (sensor_id, sensor_type, location, value, timestamp, unit, anomaly, anomaly_type, seq, window_start,
        watermark, lateness_ms, received_at)
      SELECT sensor_id, sensor_type, location, greatest(lo, least(hi, level + amp * ${cycle('ts')} + noise * (2 * u3 - 1))),
        to_timestamp(ts / 1000.0), unit, false, NULL, k, to_timestamp(ws / 1000.0), to_timestamp((ts + late) / 1000.0), late,
        to_timestamp((ts + late + 500) / 1000.0)
      FROM (
        SELECT s.*, k, ts, u3, floor(ts / ${WINDOW_MS}.0)::bigint * ${WINDOW_MS} AS ws,
          (floor(ts / ${WINDOW_MS}.0)::bigint * ${WINDOW_MS} + ${WINDOW_MS} - ts + ${ALLOWED_LATENESS_MS + OUT_OF_ORDERNESS_MS} + floor(u4 * 540000))::bigint AS late
        FROM (
          SELECT g, floor(u1 * $1::bigint)::bigint AS k, floor(u2 * ${SENSORS})::int AS i, u3, u4
          FROM (SELECT g, ${U(1, LATE_SEED)} AS u1, ${U(2, LATE_SEED)} AS u2, ${U(3, LATE_SEED)} AS u3, ${U(4, LATE_SEED)} AS u4
                FROM generate_series(1, ${LATE_READINGS}) AS g) r) q
        JOIN bench_sensors s ON s.idx = q.i
        CROSS JOIN LATERAL (SELECT $2::bigint + q.k * ${TICK_MS} + s.idx * ${SLOT_MS} + 30 AS ts) t
        WHERE ts + 600000 < $3::bigint) x
      ON CONFLICT DO NOTHING`, [l.ticks, l.startMs, l.newestMs, seed])
    await tx.query('DELETE FROM dead_letters')
    await tx.query(`
      INSERT INTO dead_letters (received_at, source, reason, detail, raw)
      SELECT to_timestamp(at / 1000.0), '${TOPIC}/0@' || (g * 24997)::text, reason,
        CASE reason
          WHEN 'invalid_json' THEN 'Unexpected end of JSON input'
          WHEN 'schema' THEN '/ must have required property ''value'''
          WHEN 'non_finite_value' THEN 'value is NaN or Infinity'
          WHEN 'bad_timestamp' THEN 'not an ISO 8601 date-time: yesterday'
          WHEN 'timestamp_too_old' THEN (700000 + g * 13) || ' s behind the ingest clock'
          ELSE (400 + g % 5000) || ' s ahead of the ingest clock' END,
        CASE reason
          WHEN 'invalid_json' THEN '{"sensor_id":"' || sid || '","sensor_type":"' || st || '","value":21.'
          WHEN 'schema' THEN '{"sensor_id":"' || sid || '","sensor_type":"' || st || '","location":"' || loc || '","timestamp":"' || to_char(to_timestamp(at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"}'
          WHEN 'non_finite_value' THEN '{"sensor_id":"' || sid || '","sensor_type":"' || st || '","location":"' || loc || '","value":NaN,"timestamp":"' || to_char(to_timestamp(at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"}'
          WHEN 'bad_timestamp' THEN '{"sensor_id":"' || sid || '","sensor_type":"' || st || '","location":"' || loc || '","value":12.5,"timestamp":"yesterday"}'
          ELSE '{"sensor_id":"' || sid || '","sensor_type":"' || st || '","location":"' || loc || '","value":12.5,"timestamp":"' || to_char(to_timestamp(at / 1000.0 + (CASE WHEN reason = 'timestamp_too_old' THEN -1 ELSE 1 END) * 700000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"}' END
      FROM (
        SELECT g, $1::bigint + floor(u1 * ($2::bigint - $1::bigint))::bigint AS at,
          (ARRAY['invalid_json', 'schema', 'non_finite_value', 'bad_timestamp', 'timestamp_too_old', 'timestamp_in_future'])[1 + floor(u2 * 6)::int] AS reason,
          s.sensor_id AS sid, s.sensor_type AS st, s.location AS loc
        FROM (SELECT g, ${U(1, DEAD_SEED)} AS u1, ${U(2, DEAD_SEED)} AS u2, ${U(3, DEAD_SEED)} AS u3 FROM generate_series(1, ${DEAD_LETTERS}) AS g) r
        JOIN bench_sensors s ON s.idx = floor(u3 * ${SENSORS})::int) x
      ORDER BY at`, [l.oldestMs, l.newestMs, seed])
    await tx.query('DELETE FROM stream_offsets')
    await tx.query(`INSERT INTO stream_offsets (consumer_group, topic, partition, next_offset, max_event_ms, idle, updated_at)
      VALUES ($1, $2, 0, $3, $4::bigint, false, to_timestamp($4::bigint / 1000.0))`, [GROUP, TOPIC, l.readings + LATE_READINGS + DEAD_LETTERS, l.newestMs])
    await tx.query('DELETE FROM stream_watermarks')
    await tx.query(`INSERT INTO stream_watermarks (consumer_group, topic, watermark_ms, updated_at)
      VALUES ($1, $2, $3::bigint, to_timestamp($4::bigint / 1000.0))`, [GROUP, TOPIC, l.newestMs - OUT_OF_ORDERNESS_MS, l.newestMs])
    await tx.query('DELETE FROM anomaly_models')
    await saveModels(tx, models, 0)
    // created_at: when the model was trained (event time ≈ wall time of a live system), not when the bench ran.
    await tx.query('UPDATE anomaly_models SET created_at = trained_at + interval \'2 seconds\'')
  })
}

/**
 * Two models per sensor type: the sequences the newest readings' model_version names (retrained
 * every 5 minutes of event time), real Isolation Forests (100 trees, 256 samples, contamination
 * 0.05) fitted on 1000 standardized feature rows.
 */
function trainModels (l: Layout, seed: number): StoredModel[] {
  const newestSeq = Math.floor((l.newestMs - l.startMs) / 300_000) + 1
  const models: StoredModel[] = []
  let t = 0
  for (const type of Object.keys(sensorModels)) {
    for (const sequence of [newestSeq - 1, newestSeq].filter(s => s >= 1)) {
      const rnd = createRandom(seed * 1000 + t++)
      const rows = new Float32Array(1000 * FEATURES)
      for (let i = 0; i < rows.length; i++) rows[i] = rnd.normal()
      const forest = IsolationForest.fit(rows, FEATURES, { nEstimators: 100, maxSamples: 256, contamination: 0.05, random: rnd })
      models.push({
        version: `${type}#${sequence}`,
        key: type,
        sequence,
        trainedAt: l.startMs + (sequence - 1) * 300_000,
        samples: 1000,
        nEstimators: forest.nEstimators,
        maxSamples: forest.maxSamples,
        offset: forest.offset,
        model: encodeModel(forest.toParts())
      })
    }
  }
  return models
}

/** Loads the data set into the bench database unless it is there already; returns what is loaded. */
export async function loadDataset (o: LoadOptions): Promise<Dataset> {
  if (!Number.isSafeInteger(o.readings) || o.readings < SENSORS) throw new BenchSetupError(`--readings must be an integer >= ${SENSORS}, got ${o.readings}`)
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw new BenchSetupError(`--seed must be a non-negative integer, got ${o.seed}`)
  const url = benchDatabaseUrl(o.readings)
  const l = layout(o.readings)
  const name = dbName(url)
  out(`Data set: ${fmtInt(o.readings)} readings from ${SENSORS} sensors every ${TICK_MS / 1000} s, ${iso(l.oldestMs)} .. ${iso(l.newestMs)} ` +
    `(${((l.newestMs - l.oldestMs) / DAY_MS).toFixed(1)} days), seed ${o.seed}, in database ${name} (${redact(url)}).`)
  await createDatabase(url, o.reload)
  let db = await openPostgres(url, 1)
  try {
    await migrate(db)
    await db.exec(BOOKKEEPING)
    const [have] = await db.query<DatasetRow>('SELECT readings, seed, generator, end_ms, loaded_at, load_seconds FROM bench_dataset')
    const same = have !== undefined && have.readings === o.readings && have.seed === o.seed && have.generator === GENERATOR && have.end_ms === END_MS
    if (same && have.loaded_at !== null) {
      out(`Already loaded on ${have.loaded_at.toISOString()} (took ${clock(have.load_seconds ?? 0)}); --reload loads it again.`)
      return { url, readings: o.readings, oldestMs: l.oldestMs, newestMs: l.newestMs, loadSeconds: have.load_seconds ?? 0, loaded: false }
    }
    if (have !== undefined && !same) {
      out(`The database holds another data set (${fmtInt(have.readings)} readings, seed ${have.seed}, generator ${have.generator}): recreating it.`)
      await db.close()
      await createDatabase(url, true)
      db = await openPostgres(url, 1)
      await migrate(db)
      await db.exec(BOOKKEEPING)
    }
    if (have === undefined || !same) {
      await db.query('INSERT INTO bench_dataset (readings, seed, generator, end_ms) VALUES ($1, $2, $3, $4)', [o.readings, o.seed, GENERATOR, END_MS])
    } else {
      out('Resuming an interrupted load.')
    }
    await db.transaction(async tx => {
      await tx.query('DELETE FROM bench_sensors')
      await tx.query('INSERT INTO bench_sensors SELECT * FROM json_populate_recordset(null::bench_sensors, $1::text::json)', [JSON.stringify(sensorSpecs(o.seed))])
      // The sensors dimension first (the compact rows refer to its keys); their time spans are set at the end.
      await tx.query(`INSERT INTO sensors (sensor_id, sensor_type, location, unit, first_seen, last_seen)
        SELECT sensor_id, sensor_type, location, unit, to_timestamp($1::float8 / 1000.0), to_timestamp($1::float8 / 1000.0) FROM bench_sensors
        ON CONFLICT (sensor_id, sensor_type, location, unit) DO NOTHING`, [l.oldestMs])
    })
    // Session settings only: nothing that needs a restart.
    await db.exec('SET synchronous_commit = off; SET maintenance_work_mem = \'1GB\'; SET work_mem = \'256MB\'; SET max_parallel_maintenance_workers = 1; SET jit = off')
    const done = new Set((await db.query<{ day: string }>("SELECT to_char(day, 'YYYY-MM-DD') AS day FROM bench_dataset_days")).map(r => r.day))
    const [prior] = await db.query<{ s: number | null }>('SELECT sum(seconds)::float8 AS s FROM bench_dataset_days')
    const t0 = performance.now()
    let loaded = 0
    let total = 0
    const days = l.lastDay - l.firstDay + 1
    for (let day = l.firstDay; day <= l.lastDay; day++) {
      const date = iso(day * DAY_MS).slice(0, 10)
      if (done.has(date)) {
        total += (await db.query<{ n: number }>('SELECT readings::float8 AS n FROM bench_dataset_days WHERE day = $1::date', [date]))[0]?.n ?? 0
        continue
      }
      const t = performance.now()
      const n = await loadDay(db, l, o.seed, day)
      const s = (performance.now() - t) / 1000
      await db.query('UPDATE bench_dataset_days SET seconds = $2 WHERE day = $1::date', [date, s])
      loaded += n
      total += n
      const elapsed = (performance.now() - t0) / 1000
      const eta = loaded > 0 ? elapsed * (o.readings - total) / loaded : 0
      out(`  day ${day - l.firstDay + 1}/${days} ${date}: ${fmtInt(n)} readings in ${s.toFixed(1)} s (${fmtInt(n / s)}/s); ` +
        `${fmtInt(total)}/${fmtInt(o.readings)} loaded, elapsed ${clock(elapsed)}, left ~${clock(eta)}`)
    }
    const tf = performance.now()
    await finish(db, l, o.seed)
    await db.query('VACUUM (ANALYZE) sensor_aggregates, sensor_aggregates_hourly, sensors, detection_counts, late_readings, dead_letters, anomaly_models, stream_offsets, stream_watermarks')
    // autovacuum never analyzes a partitioned table itself: its statistics come from here.
    await db.query('ANALYZE readings')
    const finishSeconds = (performance.now() - tf) / 1000
    const seconds = (prior?.s ?? 0) + (performance.now() - t0) / 1000
    await db.query('UPDATE bench_dataset SET loaded_at = now(), load_seconds = $1', [seconds])
    const [size] = await db.query<{ readings: string, total: string }>(`
      SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) AS readings, pg_size_pretty(pg_database_size(current_database())) AS total
      FROM pg_inherits WHERE inhparent = 'readings'::regclass`)
    out(`Loaded ${fmtInt(o.readings)} readings in ${clock(seconds)} (${fmtInt(o.readings / seconds)} readings/s including windows, roll-ups and counts; ` +
      `finishing: ${finishSeconds.toFixed(1)} s). readings: ${size?.readings ?? '?'}, database: ${size?.total ?? '?'}.`)
    return { url, readings: o.readings, oldestMs: l.oldestMs, newestMs: l.newestMs, loadSeconds: seconds, loaded: true }
  } finally {
    await db.close()
  }
}
