// The lists the live stream keeps current: the newest readings, recent anomalies, recent windows.
// Loaded over REST when the filter changes, then merged with the live events.
import type { LivePipelineJson, ReadingJson, WindowJson } from '../../src/api/contract.ts'

export const RECENT_READINGS = 15
export const RECENT_ANOMALIES = 15

export interface ListState<T> {
  rows: T[]
  error: string | null
  loaded: boolean
}

export interface LiveData {
  readings: ListState<ReadingJson>
  /** Flagged by any detector. */
  anomalies: ListState<ReadingJson>
  mlAnomalies: ListState<ReadingJson>
  windows: ListState<WindowJson>
  pipeline: LivePipelineJson | null
  /** Newest event time seen in any reading (REST or live). */
  newestSeen: string | null
  /** Max rows kept in the ML anomaly and window lists ("records to load"). */
  limit: number
}

export type ListKey = 'readings' | 'anomalies' | 'mlAnomalies' | 'windows'

export type LiveAction =
  | { type: 'loaded', key: 'readings' | 'anomalies' | 'mlAnomalies', rows: ReadingJson[] }
  | { type: 'loaded', key: 'windows', rows: WindowJson[] }
  | { type: 'failed', key: ListKey, error: string }
  | { type: 'limit', limit: number }
  | { type: 'live-readings', rows: ReadingJson[] }
  | { type: 'live-anomalies', rows: ReadingJson[] }
  | { type: 'live-windows', rows: WindowJson[] }
  | { type: 'live-pipeline', pipeline: LivePipelineJson }

const emptyList = <T>(): ListState<T> => ({ rows: [], error: null, loaded: false })

export function initialLiveData (limit: number): LiveData {
  return { readings: emptyList(), anomalies: emptyList(), mlAnomalies: emptyList(), windows: emptyList(), pipeline: null, newestSeen: null, limit }
}

const readingKey = (r: ReadingJson): string => `${r.sensor_id}|${r.timestamp}`
export const windowKey = (w: WindowJson): string => `${w.window_start}|${w.location}|${w.sensor_type}`

/** Newest first, without duplicates, at most `max`. */
export function mergeReadings (current: ReadingJson[], incoming: ReadingJson[], max: number): ReadingJson[] {
  const seen = new Set<string>()
  const out: ReadingJson[] = []
  for (const r of [...incoming, ...current]) {
    const k = readingKey(r)
    if (seen.has(k)) continue
    seen.add(k)
    out.push(r)
  }
  out.sort((a, b) => b.timestamp.localeCompare(a.timestamp) || a.sensor_id.localeCompare(b.sensor_id))
  return out.slice(0, max)
}

/** Upserts windows by (start, location, type), keeping the highest revision; newest windows first. */
export function upsertWindows (current: WindowJson[], incoming: WindowJson[], max: number): WindowJson[] {
  const byKey = new Map(current.map(w => [windowKey(w), w]))
  for (const w of incoming) {
    const k = windowKey(w)
    const old = byKey.get(k)
    if (old === undefined || w.revision >= old.revision) byKey.set(k, w)
  }
  return [...byKey.values()]
    .sort((a, b) => b.window_start.localeCompare(a.window_start) || a.location.localeCompare(b.location) || a.sensor_type.localeCompare(b.sensor_type))
    .slice(0, max)
}

function newest (current: string | null, rows: ReadingJson[]): string | null {
  let n = current
  for (const r of rows) if (n === null || r.timestamp > n) n = r.timestamp
  return n
}

export function liveReducer (s: LiveData, a: LiveAction): LiveData {
  switch (a.type) {
    case 'loaded':
      if (a.key === 'windows') return { ...s, windows: { rows: upsertWindows([], a.rows, s.limit), error: null, loaded: true } }
      return {
        ...s,
        [a.key]: { rows: mergeReadings([], a.rows, a.key === 'mlAnomalies' ? s.limit : a.key === 'readings' ? RECENT_READINGS : RECENT_ANOMALIES), error: null, loaded: true },
        newestSeen: a.key === 'readings' ? newest(s.newestSeen, a.rows) : s.newestSeen
      }
    case 'failed':
      return { ...s, [a.key]: { ...s[a.key], error: a.error, loaded: true } }
    case 'limit':
      return { ...s, limit: a.limit }
    case 'live-readings':
      return {
        ...s,
        readings: { ...s.readings, rows: mergeReadings(s.readings.rows, a.rows, RECENT_READINGS) },
        newestSeen: newest(s.newestSeen, a.rows)
      }
    case 'live-anomalies': {
      const ml = a.rows.filter(r => r.ml_anomaly === true)
      return {
        ...s,
        anomalies: { ...s.anomalies, rows: mergeReadings(s.anomalies.rows, a.rows, RECENT_ANOMALIES) },
        mlAnomalies: ml.length === 0 ? s.mlAnomalies : { ...s.mlAnomalies, rows: mergeReadings(s.mlAnomalies.rows, ml, s.limit) }
      }
    }
    case 'live-windows':
      return { ...s, windows: { ...s.windows, rows: upsertWindows(s.windows.rows, a.rows, s.limit) } }
    case 'live-pipeline':
      return { ...s, pipeline: a.pipeline }
  }
}
