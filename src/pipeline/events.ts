// Events for other systems: what each stored batch changed, as JSON on Kafka topics.
import { type WindowAggregate, formatTimestamp } from '../domain/index.ts'
import { type BatchOutcome, type OutcomeSink } from './outcome.ts'

/** Where events go (the Kafka JSON publisher, or anything with the same shape). */
export interface EventPublisher {
  publish(topic: string, key: string, value: unknown): void
  /** Resolves once everything published is accepted. */
  flush(): Promise<void>
}

export interface EventTopics {
  /** Rejected messages with their reason (beside the dead_letters table). */
  deadLetters: string
  /** Every revision of every window, and its finalization; key `location|sensor_type|window_start`. */
  aggregates: string
  /** Readings flagged by any detector; key `sensor_id`. */
  anomalies: string
}

function windowEvent (w: WindowAggregate): Record<string, unknown> {
  return {
    window_start: formatTimestamp(w.windowStart),
    window_end: formatTimestamp(w.windowEnd),
    location: w.location,
    sensor_type: w.sensorType,
    count_readings: w.count,
    avg_value: w.avg,
    min_value: w.min,
    max_value: w.max,
    stddev_value: w.stddev,
    anomaly_count: w.anomalyCount,
    z_score_anomalies: w.zScoreAnomalies,
    ml_anomaly_count: w.mlAnomalyCount,
    revision: w.revision,
    is_final: w.isFinal
  }
}

/**
 * Publishes an outcome inside the worker's transaction and waits for the brokers to accept it:
 * a failure rolls the batch back, so every change is published at least once. A window repeated
 * after a retry carries the same `revision`: consumers keep the highest per key.
 */
export class EventSink implements OutcomeSink {
  readonly #publisher: EventPublisher
  readonly #topics: EventTopics

  constructor (publisher: EventPublisher, topics: EventTopics) {
    this.#publisher = publisher
    this.#topics = topics
  }

  async publish (o: BatchOutcome): Promise<void> {
    const p = this.#publisher
    const t = this.#topics
    for (const d of o.deadLetters) {
      p.publish(t.deadLetters, d.source, { reason: d.reason, detail: d.detail, source: d.source, received_at: formatTimestamp(d.receivedAt), raw: d.raw })
    }
    for (const w of [...o.revised, ...o.finalized]) {
      p.publish(t.aggregates, `${w.location}|${w.sensorType}|${formatTimestamp(w.windowStart)}`, windowEvent(w))
    }
    for (const { reading: r, verdict: v } of o.stored) {
      if (!v.ruleAnomaly && !v.zAnomaly && v.mlAnomaly !== true) continue
      p.publish(t.anomalies, r.sensorId, {
        sensor_id: r.sensorId,
        sensor_type: r.sensorType,
        location: r.location,
        value: r.value,
        unit: r.unit,
        timestamp: formatTimestamp(r.ts),
        rule_based_anomaly: v.ruleAnomaly,
        z_score: v.zScore,
        z_score_anomaly: v.zAnomaly,
        anomaly_score: v.mlScore,
        ml_anomaly: v.mlAnomaly,
        model_version: v.modelVersion,
        anomaly: v.anomaly,
        severity: v.severity,
        explanation: v.explanation
      })
    }
    await p.flush()
  }
}
