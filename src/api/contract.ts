// The JSON the dashboard reads: response shapes of the /api endpoints and the live stream.
// Types only, shared by the server (src/api) and the web app (web/src). Times are ISO 8601 strings
// in UTC; numbers are in the sensor's unit unless the name says otherwise.

/** Query parameters most endpoints take (all optional). `from`/`to`: ISO 8601 or epoch ms; `to` is exclusive. */
export interface RangeQuery {
  location?: string
  sensor_type?: string
  from?: string
  to?: string
}

/** One stored reading with its verdicts (GET /api/readings, /api/anomalies, live `readings`/`anomalies`). */
export interface ReadingJson {
  sensor_id: string
  sensor_type: string
  location: string
  value: number
  unit: string
  timestamp: string
  /** Ground-truth label from the simulator, null for real sensors. */
  anomaly: boolean | null
  anomaly_type: string | null
  rule_anomaly: boolean
  /** A string ("Infinity") where the z-score is infinite (readings stored before the robust z-score). */
  z_score: number | string | null
  z_anomaly: boolean
  ml_score: number | null
  /** Null before the sensor type's first model. */
  ml_anomaly: boolean | null
  model_version: string | null
  /** The sensor was stuck (flat far longer than it usually is). */
  stuck_anomaly: boolean
  /** The sensor was drifting (a CUSUM against a slow reference passed its threshold). */
  drift_anomaly: boolean
  combined_anomaly: boolean
  severity: 'minor' | 'major' | 'critical' | null
  explanation: string | null
}

/** One window of sensor_aggregates (GET /api/aggregates, live `windows`). */
export interface WindowJson {
  window_start: string
  window_end: string
  location: string
  sensor_type: string
  avg_value: number
  min_value: number
  max_value: number
  stddev_value: number
  count_readings: number
  /** Rule-based anomalies (the original column). */
  anomaly_count: number
  label_anomaly_count: number
  z_score_anomalies: number
  ml_anomaly_count: number
  combined_anomaly_count: number
  revision: number
  is_final: boolean
}

/** GET /api/meta: what the filters offer. */
export interface MetaJson {
  locations: string[]
  sensor_types: { sensor_type: string, unit: string }[]
  sensors: number
  /** Event time of the oldest and newest stored reading (null when empty). */
  oldest: string | null
  newest: string | null
  window_ms: number
}

export interface CountByKey {
  key: string
  readings: number
  anomalies: number
}

/**
 * GET /api/overview?location&sensor_type&from&to: KPIs over a time range, from the windows
 * (hourly roll-ups for whole hours inside the range, windows for the rest: never raw rows).
 * Without `from`, the range is the last hour before the newest reading.
 */
export interface OverviewJson {
  from: string
  to: string
  readings: number
  /** Readings the combined verdict calls anomalous. */
  anomalies: number
  rule_anomalies: number
  z_anomalies: number
  ml_anomalies: number
  label_anomalies: number
  windows: number
  final_windows: number
  /** readings / windows (0 without windows). */
  avg_readings_per_window: number
  /** Sensors with a reading in the 5 minutes (event time) before the newest one. */
  active_sensors: number
  sensors: number
  locations: number
  by_location: CountByKey[]
  by_sensor_type: CountByKey[]
}

export type Resolution = 'raw' | 'window' | 'hour'

/** [time (epoch ms, bucket start), avg, min, max, readings]. */
export type SeriesPoint = [number, number, number, number, number]

/**
 * GET /api/series?location&sensor_type&from&to&max_points&group_by=location|sensor_type&min_resolution=raw|window|hour:
 * per sensor type, one series per location (group_by=location, the default) or one merged over
 * locations (group_by=sensor_type), each at most `max_points` (default 300, 10-2000) buckets.
 * The server reads raw readings, windows or hourly roll-ups, whichever fits (never finer than
 * `min_resolution`), and says which.
 */
export interface SeriesJson {
  from: string
  to: string
  resolution: Resolution
  bucket_ms: number
  /** Rows the query read (bounded whatever the range). */
  rows_read: number
  series: { sensor_type: string, unit: string, name: string, points: SeriesPoint[] }[]
}

/** GET /api/detection/quality?sensor_type: see src/anomaly/evaluation.ts DetectionQuality. */
export interface ScoresJson {
  tp: number
  fp: number
  fn: number
  precision: number | null
  recall: number | null
  f1: number | null
}
export interface QualityJson {
  labelled: number
  anomalies: number
  labels: Record<string, number>
  detectors: Record<'rule' | 'zscore' | 'ml' | 'stuck' | 'drift' | 'combined', { overall: ScoresJson, byKind: Record<string, ScoresJson> }>
  ruleVsMl: { scored: number, both: number, ruleOnly: number, mlOnly: number, neither: number, agreement: number | null }
}

/**
 * GET /api/detection/scores?location&sensor_type&limit: histogram of the Isolation Forest score
 * (0..1, 20 bins of 0.05) over the newest `limit` (100-5000, default 1000) scored readings, split
 * by the combined verdict.
 */
export interface ScoreHistogramJson {
  readings: number
  bins: { from: number, to: number, normal: number, anomalous: number }[]
}

/**
 * GET /api/detection/devices: the devices the device-level detector scores (a multivariate forest
 * per device over its measurements), each with its newest score (0.5 = the decision threshold)
 * and its anomalous rows in the 24 hours of event time before its newest.
 */
export interface DeviceScoresListJson {
  devices: DeviceScoreSummaryJson[]
}

export interface DeviceScoreSummaryJson {
  device: string
  measurements: string[]
  first_seen: string
  last_seen: string
  last_score: number | null
  last_anomaly: boolean
  anomalies_24h: number
}

/**
 * GET /api/detection/devices/:device/scores?from&to&limit: the device's scores in [from, to)
 * (default: up to its newest), oldest first, at most `limit` (1-5000, default 600: the newest when
 * there are more). Model version and explanation on anomalies only.
 */
export interface DeviceScoresJson {
  device: string
  scores: DeviceScorePointJson[]
}

export interface DeviceScorePointJson {
  ts: string
  measurements: string[]
  score: number
  row_score: number
  anomaly: boolean
  model_version: string | null
  explanation: string | null
}

/** GET /api/detection/models?limit: stored models, newest first. */
export interface ModelJson {
  version: string
  key: string
  sequence: number
  trained_at: string
  samples: number
  created_at: string
}

/**
 * GET /api/analytics/correlation?location&from&to: Pearson correlation between sensor types of
 * their window means, aligned on (location, window start) and centred per location and type (so
 * differences between rooms do not pose as correlation). Null where fewer than 3 pairs exist.
 */
export interface CorrelationJson {
  from: string
  to: string
  resolution: Resolution
  sensor_types: string[]
  matrix: (number | null)[][]
  /** Aligned pairs behind each cell. */
  pairs: number[][]
}

/** GET /api/analytics/stats?location&sensor_type&from&to: statistics per location and sensor type. */
export interface LocationStatsJson {
  from: string
  to: string
  rows: {
    location: string
    sensor_type: string
    unit: string
    readings: number
    avg: number
    min: number
    max: number
    stddev: number
    anomalies: number
    anomaly_rate: number
  }[]
}

/** GET /api/pipeline: health of the pipeline (the header strip). */
export interface PipelineJson {
  database: string
  /** Stored readings per second over the last 10 s of wall time. */
  readings_per_s: number
  readings_total: number
  /** Wall time from a record entering the bus to its batch being stored (oldest record per batch), last 60 s; null when unknown here. */
  latency_ms: { p50: number, p99: number } | null
  watermark: string | null
  newest_event: string | null
  late_readings: number
  dead_letters: number
  /** Records not yet consumed (null when unknown, e.g. an api-only process). */
  consumer_lag: number | null
  /** Newest model per key. */
  models: ModelJson[]
}

/**
 * GET /api/live?location&sensor_type: Server-Sent Events. Event names and their data:
 * - `readings`: ReadingJson[] (newest last; at most 200 per message)
 * - `anomalies`: ReadingJson[] flagged by any detector (at most 200 per message)
 * - `windows`: WindowJson[] revised or finalized
 * - `pipeline`: LivePipelineJson, every second
 * Messages are coalesced (at most 4 per second of each kind). The stream sends `retry: 2000`.
 */
export interface LivePipelineJson {
  readings_per_s: number
  readings_total: number
  watermark: string | null
  consumer_lag: number | null
}

/**
 * GET /api/devices: the devices that send readings themselves (revoked ones left out), by id, with
 * the sensors each has stored readings of. Never a token or its digest.
 */
export interface DeviceListJson {
  /** The server's wall time the statuses were decided at (ages of `last_seen` are relative to it). */
  as_of: string
  /** A device not heard for longer than this is offline, unless MQTT reported it connected since. */
  online_within_s: number
  devices: DeviceListItemJson[]
}

export interface DeviceListItemJson extends DeviceJson {
  /**
   * Its sensors (`<id>.<sensor_type>`) as the stored readings know them, by type: empty until a
   * reading of it is stored (a reading for a window already final is kept aside, not stored).
   */
  sensors: DeviceSensorJson[]
}

export interface DeviceSensorJson {
  sensor_type: string
  /** '' when the type has no known unit. */
  unit: string
  /** How often it reports: the median interval between its recent readings (event time, ms) as the worker learnt it; null until known. */
  cadence_ms: number | null
}

export interface DeviceJson {
  id: string
  name: string
  location: string
  /** Wall time of the newest reading received from it; null: never heard. */
  last_seen: string | null
  /**
   * From the newest evidence: the MQTT connection state when reported after the last reading,
   * else online when heard within the last 2 minutes; unknown: never heard.
   */
  status: 'online' | 'offline' | 'unknown'
}

/** A device as the admin API shows it (GET /api/admin/devices: { devices: AdminDeviceJson[] }, revoked ones too). */
export interface AdminDeviceJson extends DeviceJson {
  created_at: string
  /** When the current token was issued (at add, then at each rotation). */
  token_issued_at: string
  revoked_at: string | null
  /** MQTT session state as last reported (null: never). */
  connection: 'online' | 'offline' | null
  connection_at: string | null
}

/**
 * POST /api/admin/devices {id, name, location} (201) and POST /api/admin/devices/:id/rotate: the
 * device and its new token. The token is in this answer only: it is stored as a digest.
 */
export interface IssuedTokenJson {
  device: AdminDeviceJson
  token: string
}

/** POST /api/admin/devices/:id/revoke: `changed` is false when the device was revoked already. */
export interface RevokedDeviceJson {
  device: AdminDeviceJson
  changed: boolean
}

/**
 * POST /api/session (with `Authorization: Bearer <viewer or admin token>`): the role of the token and
 * when the session cookie it set expires; both null where reading needs no token (no cookie set).
 */
export interface SessionJson {
  role: 'viewer' | 'admin' | null
  expires_at: string | null
}

// Alarms (issue 17): GET /api/alarms, GET /api/alarms/:id, POST /api/alarms/:id/ack|clear,
// GET/POST/DELETE /api/silences, and the live stream's `alarms` event.

export type AlarmSeverityJson = 'critical' | 'major' | 'minor' | 'warning' | 'indeterminate'
export type AlarmStatusJson = 'active_unack' | 'active_ack' | 'cleared_unack' | 'cleared_ack'

export interface AlarmJson {
  id: string
  originator: { kind: 'sensor' | 'device' | 'location', id: string }
  type: string
  severity: AlarmSeverityJson
  status: AlarmStatusJson
  sensor_type: string | null
  location: string | null
  /** When it fired (event time for conditions on readings, wall time for offline). */
  start: string
  /** The last time the condition was seen holding. */
  last: string
  cleared_at: string | null
  acknowledged_at: string | null
  acknowledged_by: string | null
  ack_comment: string | null
  details: Record<string, unknown>
  labels: Record<string, string>
}

/** Alarms by status and severity, every pair present. */
export type AlarmCountsJson = Record<AlarmStatusJson, Record<AlarmSeverityJson, number>>

export interface AlarmListJson {
  /** The server's clock (ages are measured from it). */
  as_of: string
  count: number
  counts: AlarmCountsJson
  alarms: AlarmJson[]
}

export interface AlarmEventJson {
  id: number
  kind: string
  at: string
  by: string
  comment: string | null
  details: Record<string, unknown>
}

export interface AlarmNotificationJson {
  idempotency_key: string
  status: 'firing' | 'resolved'
  created_at: string
  attempts: number
  next_attempt_at: string
  /** When it was done with; `note` says how (null: delivered). */
  done_at: string | null
  note: string | null
}

export interface AlarmDetailJson {
  as_of: string
  alarm: AlarmJson
  history: AlarmEventJson[]
  notifications: AlarmNotificationJson[]
}

export interface SilenceMatcherJson {
  name: string
  value: string
  isRegex: boolean
  isEqual: boolean
}

export interface SilenceJson {
  id: number
  matchers: SilenceMatcherJson[]
  starts_at: string
  ends_at: string
  created_by: string
  comment: string
  created_at: string
  /** active (in force now), pending (starts later) or expired. */
  state: 'active' | 'pending' | 'expired'
}

/** The live stream's `alarms` event: the counts, and the alarms that changed since the last one. */
export interface LiveAlarmsJson {
  as_of: string
  counts: AlarmCountsJson
  changed: AlarmJson[]
}
