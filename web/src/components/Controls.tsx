// Filters, time range, records to load, anomalies in charts, live/pause and refresh. Options come
// from /api/meta.
import type { JSX } from 'react'
import type { MetaJson } from '../../../src/api/contract.ts'
import type { LiveStatus } from '../live.ts'
import { CHART_ANOMALIES, RANGES, RECORDS, type ChartAnomalies, type RangeId, type ViewState } from '../url-state.ts'
import { fmtTime, typeLabel } from '../format.ts'

const STATUS_TEXT: Record<LiveStatus, string> = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  paused: 'paused',
  unavailable: 'live stream unavailable'
}

export function Controls ({ view, meta, status, newest, onChange, onRefresh }: {
  view: ViewState
  meta: MetaJson | null
  status: LiveStatus
  newest: string | null
  onChange: (patch: Partial<ViewState>) => void
  onRefresh: () => void
}): JSX.Element {
  const locations = meta?.locations ?? []
  const types = meta?.sensor_types ?? []
  // Keep a value from the URL selectable even before (or without) /api/meta.
  const locationOptions = view.location !== '' && !locations.includes(view.location) ? [...locations, view.location] : locations
  const typeOptions = view.sensorType !== '' && !types.some(t => t.sensor_type === view.sensorType)
    ? [...types, { sensor_type: view.sensorType, unit: '' }]
    : types
  return (
    <div className='controls' role='toolbar' aria-label='Dashboard controls'>
      <label>
        <span>Location</span>
        <select data-testid='filter-location' value={view.location} onChange={e => onChange({ location: e.target.value })}>
          <option value=''>All locations</option>
          {locationOptions.map(l => <option key={l} value={l}>{l}</option>)}
        </select>
      </label>
      <label>
        <span>Sensor type</span>
        <select data-testid='filter-sensor-type' value={view.sensorType} onChange={e => onChange({ sensorType: e.target.value })}>
          <option value=''>All sensor types</option>
          {typeOptions.map(t => <option key={t.sensor_type} value={t.sensor_type}>{typeLabel(t.sensor_type)}{t.unit !== '' ? ` (${t.unit})` : ''}</option>)}
        </select>
      </label>
      <label>
        <span>Time range</span>
        <select data-testid='filter-range' value={view.range} onChange={e => onChange({ range: e.target.value as RangeId })}>
          {RANGES.map(r => <option key={r.id} value={r.id}>{r.label}</option>)}
        </select>
      </label>
      <label title='Rows loaded into the windows and ML anomaly tables, and scored readings in the score histogram'>
        <span>Records to load</span>
        <select data-testid='filter-records' value={view.records} onChange={e => onChange({ records: Number(e.target.value) })}>
          {RECORDS.map(n => <option key={n} value={n}>{n}</option>)}
        </select>
      </label>
      <label title='Left out: the time-series charts (lines, min–max bands) draw only the readings the combined verdict does not flag, so a spike does not flatten the normal range. KPIs, anomaly lists and tables always count every reading.'>
        <span>Anomalies in charts</span>
        <select data-testid='filter-anomalies' value={view.anomalies} onChange={e => onChange({ anomalies: e.target.value as ChartAnomalies })}>
          {CHART_ANOMALIES.map(a => <option key={a.id} value={a.id}>{a.label}</option>)}
        </select>
      </label>
      <div className='control-buttons'>
        <button
          type='button'
          data-testid='toggle-live'
          className={view.live ? 'primary' : ''}
          aria-pressed={view.live}
          onClick={() => onChange({ live: !view.live })}
        >
          {view.live ? 'Pause' : 'Go live'}
        </button>
        <button type='button' data-testid='refresh' onClick={onRefresh}>Refresh</button>
        <span className={`live-status ${status}`} data-testid='live-status' data-status={status}>
          <span className='dot' />{STATUS_TEXT[status]}
        </span>
      </div>
      <div className='newest' title='Time ranges end at the newest stored reading (event time, UTC)'>
        newest reading <b data-testid='newest-reading'>{newest === null ? '—' : fmtTime(newest)}</b> UTC
      </div>
    </div>
  )
}
