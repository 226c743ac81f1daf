import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** What the health gauges read when scraped (set by the process that runs the roles). */
export interface HealthSource {
  /** The database answers (null: this process has no database). */
  databaseUp: () => boolean | null
  /** Failed attempts in a row of the worker (null: no worker here). */
  consecutiveFailures: () => number | null
  /** Seconds since the worker last stored a batch (null: none stored yet, or no worker here). */
  lastStoredAgeSeconds: () => number | null
  /** Times the stream waited for the training thread (a model's first row came before its fit was done); null: no thread here. */
  trainingWaits: () => number | null
  /** Model fits that failed since the start (each key or device kept its model); null: no worker here. */
  trainingFailures: () => number | null
}

/** Prometheus metrics of the pipeline; also read by the CLI status line. */
export class PipelineMetrics {
  readonly registry: Registry
  readonly received: Counter
  readonly stored: Counter
  readonly duplicates: Counter
  readonly late: Counter
  readonly deadLetters: Counter<'reason'>
  readonly anomalies: Counter<'detector'>
  readonly deviceRows: Counter
  readonly deviceAnomalies: Counter
  readonly snapshots: Counter
  readonly windowsUpdated: Counter
  readonly windowsFinalized: Counter
  readonly batchSeconds: Histogram
  readonly batchFailures: Counter
  readonly watermark: Gauge
  readonly lag: Gauge
  readonly databaseReconnects: Counter
  readonly ingestRefused: Counter<'reason'>
  readonly deviceLookupsStale: Counter
  #health: HealthSource | null = null

  constructor (registry = new Registry(), defaults = true) {
    this.registry = registry
    if (defaults) collectDefaultMetrics({ register: registry, prefix: 'iot_' })
    const r = [registry]
    this.received = new Counter({ name: 'iot_records_received_total', help: 'Records consumed from the bus.', registers: r })
    this.stored = new Counter({ name: 'iot_readings_stored_total', help: 'Readings stored and counted in windows.', registers: r })
    this.duplicates = new Counter({ name: 'iot_readings_duplicate_total', help: 'Readings delivered again and counted once.', registers: r })
    this.late = new Counter({ name: 'iot_readings_late_total', help: 'Readings for final windows, kept in late_readings.', registers: r })
    this.deadLetters = new Counter({ name: 'iot_dead_letters_total', help: 'Rejected messages by reason.', labelNames: ['reason'], registers: r })
    this.anomalies = new Counter({
      name: 'iot_anomalies_total', help: 'Readings flagged, by detector (rule, zscore, ml; combined: the combined verdict).', labelNames: ['detector'], registers: r
    })
    this.deviceRows = new Counter({ name: 'iot_device_rows_scored_total', help: 'Device rows (a device\'s measurements aligned by event time) scored by the device-level detector.', registers: r })
    this.deviceAnomalies = new Counter({ name: 'iot_device_anomalies_total', help: 'Device rows the device-level detector flagged.', registers: r })
    this.snapshots = new Counter({ name: 'iot_detector_snapshots_total', help: 'Detector state snapshots stored (per sensor and per model key), restored when a worker takes over.', registers: r })
    this.windowsUpdated = new Counter({ name: 'iot_window_revisions_total', help: 'Window merges (revisions).', registers: r })
    this.windowsFinalized = new Counter({ name: 'iot_windows_final_total', help: 'Windows that became final.', registers: r })
    this.batchSeconds = new Histogram({
      name: 'iot_batch_seconds',
      help: 'Time to process and store one batch.',
      registers: r,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    })
    this.batchFailures = new Counter({ name: 'iot_batch_failures_total', help: 'Failed attempts to store a batch, finalize while idle, or recover after a failure (each one then goes back to the stored offsets).', registers: r })
    this.watermark = new Gauge({ name: 'iot_watermark_ms', help: 'Combined event-time watermark (epoch ms).', registers: r })
    this.lag = new Gauge({ name: 'iot_consumer_lag', help: 'Records produced and not yet consumed.', registers: r })
    this.ingestRefused = new Counter({
      name: 'iot_ingest_refused_total', help: 'Device writes and connections refused for their token or device id (malformed, unknown, revoked).', labelNames: ['reason'], registers: r
    })
    this.deviceLookupsStale = new Counter({
      name: 'iot_device_lookups_stale_total', help: 'Device lookups answered from an expired cache entry because the database gave no answer (stale-if-error).', registers: r
    })
    this.databaseReconnects = new Counter({ name: 'iot_database_reconnects_total', help: 'Times the database answered again after an outage.', registers: r })
    // Read when scraped; a value this process does not have is left out.
    const health = (name: string, help: string, read: (h: HealthSource) => number | boolean | null): void => {
      const metrics = this
      new Gauge({ // eslint-disable-line no-new -- registered in the registry, which keeps it
        name,
        help,
        registers: r,
        collect () {
          const v = metrics.#health === null ? null : read(metrics.#health)
          if (v === null) this.reset()
          else this.set(Number(v))
        }
      })
    }
    health('iot_database_up', 'The database answers (1) or is unreachable (0).', h => h.databaseUp())
    health('iot_batch_consecutive_failures', 'Failed attempts of the worker in a row (0 once a batch is stored).', h => h.consecutiveFailures())
    health('iot_last_stored_batch_age_seconds', 'Seconds since the worker last stored a batch.', h => h.lastStoredAgeSeconds())
    health('iot_training_waits', 'Times the stream waited for the training thread: a model\'s first row came before its fit was done (the thread is behind).', h => h.trainingWaits())
    health('iot_training_failures', 'Model fits that failed since the start (each key or device kept its model).', h => h.trainingFailures())
  }

  /** Where the health gauges read their values. */
  watchHealth (source: HealthSource): void {
    this.#health = source
  }

  /** Current value of a counter (summed over labels, or of the series with these labels). */
  static async total (c: Counter<string>, labels?: Record<string, string>): Promise<number> {
    const values = (await c.get()).values
    const of = labels === undefined ? values : values.filter(v => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    return of.reduce((s, v) => s + v.value, 0)
  }
}
