/** The bounds of what one payload or body may hold. */
export interface IngestLimits {
  /** Largest JSON telemetry payload in UTF-8 bytes (MQTT message or HTTP body). */
  maxPayloadBytes: number
  /** Most values in one JSON payload, over all its entries. */
  maxValuesPerPayload: number
  /** Most lines in one line-protocol body (blank and comment lines count: line numbers are physical). */
  maxLinesPerBody: number
  /** Longest line-protocol line (entry) in UTF-8 bytes. */
  maxLineBytes: number
  /** Reject readings older than this many ms behind the receive time; null disables (backfills). */
  maxPastMs: number | null
  /** Reject readings more than this many ms ahead of the receive time; null disables. */
  maxFutureMs: number | null
}

/**
 * 64 KiB holds a telemetry message of hundreds of values; the InfluxDB JavaScript client and
 * Telegraf send 1,000 lines a write by default, so 50,000 lines leave room for larger batches.
 * The far-off window is the wire validator's (7 days back, 5 minutes ahead).
 */
export const defaultIngestLimits: Readonly<IngestLimits> = {
  maxPayloadBytes: 64 * 1024,
  maxValuesPerPayload: 1000,
  maxLinesPerBody: 50_000,
  maxLineBytes: 64 * 1024,
  maxPastMs: 7 * 24 * 3600_000,
  maxFutureMs: 5 * 60_000
}

/** The UTF-8 length of `text` is above `max`: counted exactly only when the UTF-16 length cannot tell. */
export function exceedsBytes (text: string, max: number): boolean {
  // n UTF-16 units take between n and 3n UTF-8 bytes (a surrogate pair: 2 units, 4 bytes).
  return text.length > max || (text.length * 3 > max && Buffer.byteLength(text) > max)
}

/** A far-off check of an event time against the receive time: null when it is within the limits. */
export function farOff (tsMs: number, receivedAtMs: number, limits: Pick<IngestLimits, 'maxPastMs' | 'maxFutureMs'>):
{ reason: 'timestamp_too_old' | 'timestamp_in_future', detail: string } | null {
  if (limits.maxPastMs !== null && tsMs < receivedAtMs - limits.maxPastMs) {
    return { reason: 'timestamp_too_old', detail: `${Math.round((receivedAtMs - tsMs) / 1000)} s behind the receive time` }
  }
  if (limits.maxFutureMs !== null && tsMs > receivedAtMs + limits.maxFutureMs) {
    return { reason: 'timestamp_in_future', detail: `${Math.round((tsMs - receivedAtMs) / 1000)} s ahead of the receive time` }
  }
  return null
}
