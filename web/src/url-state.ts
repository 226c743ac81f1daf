// The view lives in the query string (?tab=&location=&sensor_type=&range=&records=&anomalies=&live=),
// so a copied URL reopens the same view. Unknown or malformed values fall back to the defaults.

export const TABS = [
  { id: 'realtime', label: 'Real-time monitoring' },
  { id: 'windows', label: 'Windowed aggregates' },
  { id: 'ml', label: 'ML anomaly detection' },
  { id: 'analytics', label: 'Analytics' },
  { id: 'devices', label: 'Devices' },
  { id: 'alarms', label: 'Alarms' }
] as const
export type TabId = typeof TABS[number]['id']

/** Time ranges, relative to the newest stored reading (event time). */
export const RANGES = [
  { id: '15m', label: 'Last 15 min', ms: 15 * 60_000 },
  { id: '1h', label: 'Last hour', ms: 3_600_000 },
  { id: '6h', label: 'Last 6 hours', ms: 6 * 3_600_000 },
  { id: '24h', label: 'Last 24 hours', ms: 24 * 3_600_000 },
  { id: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { id: '30d', label: 'Last 30 days', ms: 30 * 86_400_000 }
] as const
export type RangeId = typeof RANGES[number]['id']

export const RECORDS = [100, 200, 500, 1000, 2000] as const

/**
 * Anomalies in the time-series charts: left out (`exclude`, the default: a spike ten times the
 * normal range would flatten the band of normal readings) or shown (`include`). The value is the
 * `anomalies` parameter of /api/series; the lists, KPIs and tables always show every reading.
 */
export const CHART_ANOMALIES = [
  { id: 'exclude', label: 'left out' },
  { id: 'include', label: 'shown' }
] as const
export type ChartAnomalies = typeof CHART_ANOMALIES[number]['id']

export interface ViewState {
  tab: TabId
  /** '' = all locations. */
  location: string
  /** '' = all sensor types. */
  sensorType: string
  range: RangeId
  records: number
  /** Anomalies in the time-series charts. */
  anomalies: ChartAnomalies
  live: boolean
}

export const DEFAULT_VIEW: ViewState = { tab: 'realtime', location: '', sensorType: '', range: '1h', records: 500, anomalies: 'exclude', live: true }

const isTab = (s: string | null): s is TabId => TABS.some(t => t.id === s)
const isRange = (s: string | null): s is RangeId => RANGES.some(r => r.id === s)
const isChartAnomalies = (s: string | null): s is ChartAnomalies => CHART_ANOMALIES.some(a => a.id === s)

export function rangeMs (id: RangeId): number {
  return RANGES.find(r => r.id === id)?.ms ?? 3_600_000
}

export function parseView (search: string): ViewState {
  const p = new URLSearchParams(search)
  const tab = p.get('tab')
  const range = p.get('range')
  const records = Number(p.get('records'))
  const live = p.get('live')
  const anomalies = p.get('anomalies')
  return {
    tab: isTab(tab) ? tab : DEFAULT_VIEW.tab,
    location: p.get('location') ?? '',
    sensorType: p.get('sensor_type') ?? '',
    range: isRange(range) ? range : DEFAULT_VIEW.range,
    records: Number.isInteger(records) && records >= 100 && records <= 2000 ? records : DEFAULT_VIEW.records,
    anomalies: isChartAnomalies(anomalies) ? anomalies : DEFAULT_VIEW.anomalies,
    live: live === null ? DEFAULT_VIEW.live : live !== '0' && live !== 'false'
  }
}

export function serializeView (v: ViewState): string {
  const p = new URLSearchParams()
  p.set('tab', v.tab)
  if (v.location !== '') p.set('location', v.location)
  if (v.sensorType !== '') p.set('sensor_type', v.sensorType)
  p.set('range', v.range)
  p.set('records', String(v.records))
  p.set('anomalies', v.anomalies)
  p.set('live', v.live ? '1' : '0')
  return `?${p.toString()}`
}

/** Writes the view to the address bar without adding a history entry. */
export function writeView (v: ViewState): void {
  const search = serializeView(v)
  if (search !== window.location.search) {
    window.history.replaceState(null, '', `${window.location.pathname}${search}${window.location.hash}`)
  }
}
