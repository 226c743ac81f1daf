// The API's own counters, registered once per registry (a process's PipelineMetrics may have made
// the same one already: it is taken as it is).
import { Counter, type Registry } from 'prom-client'

/** API requests refused for their token: scope read (the read API, the live stream, /metrics) or admin; reason missing, invalid, expired, forbidden. */
export const API_REFUSED = 'iot_api_refused_total'
/** Device writes refused (also counted by the device registry for their token): here rate_limited and too_large. */
export const INGEST_REFUSED = 'iot_ingest_refused_total'

const help: Record<string, string> = {
  [API_REFUSED]: 'API requests refused for their token, by scope (read: the read API, live stream and /metrics; admin) and reason (missing, invalid, expired, forbidden).',
  [INGEST_REFUSED]: 'Device writes and connections refused: for their token (malformed, unknown, revoked), over the per-device rate (rate_limited), too large (too_large).'
}

/** The counter `name` of the registry, made when it has none. */
export function counterIn<L extends string> (registry: Registry, name: typeof API_REFUSED | typeof INGEST_REFUSED, labelNames: readonly L[]): Counter<L> {
  const found = registry.getSingleMetric(name)
  if (found instanceof Counter) return found as Counter<L>
  return new Counter({ name, help: help[name] ?? name, labelNames, registers: [registry] })
}
