// Windowed aggregates: the event-time windows (KPIs, the newest windows, live-revised) and each
// sensor type's trend with its min–max band.
import type { JSX } from 'react'
import type { WindowJson } from '../../../src/api/contract.ts'
import { api, type SharedQuery } from '../api.ts'
import { useFetch } from '../hooks.ts'
import { windowKey, type LiveData } from '../store.ts'
import { Kpi, KpiRow } from '../components/Kpi.tsx'
import { Empty, Panel } from '../components/Panel.tsx'
import { DataTable, type Column } from '../components/DataTable.tsx'
import { FinalBadge } from '../components/Badges.tsx'
import { BandChart } from '../charts/BandChart.tsx'
import type { ChartAnomalies } from '../url-state.ts'
import { chartAnomaliesCaption, fmtClock, fmtInt, fmtTime, fmtValue, resolutionCaption, typeLabel, withUnit } from '../format.ts'

export function WindowsTab ({ query, live, records, units, anomalies }: {
  query: SharedQuery | null
  live: LiveData
  records: number
  units: Record<string, string>
  anomalies: ChartAnomalies
}): JSX.Element {
  const overview = useFetch(`overview:${query?.key}`, async s => await api.overview(query ?? {}, s), query !== null, `overview:${query?.scope}`)
  const series = useFetch(
    `series-type:${anomalies}:${query?.key}`,
    async s => await api.series(query ?? {}, { group_by: 'sensor_type', max_points: 200, min_resolution: 'window', anomalies }, s),
    query !== null,
    `series-type:${anomalies}:${query?.scope}`)
  const o = overview.data
  const trends = [...(series.data?.series ?? [])].sort((a, b) => a.sensor_type.localeCompare(b.sensor_type))
  const caption = series.data !== null ? resolutionCaption(series.data.resolution, series.data.bucket_ms) : undefined
  const unit = (w: WindowJson): string => units[w.sensor_type] ?? ''

  const columns: Column<WindowJson>[] = [
    { key: 'start', header: 'start (UTC)', render: w => <span className='mono'>{fmtTime(w.window_start)}</span> },
    { key: 'end', header: 'end', render: w => <span className='mono'>{fmtClock(w.window_end)}</span> },
    { key: 'location', header: 'location', render: w => w.location },
    { key: 'type', header: 'type', render: w => typeLabel(w.sensor_type) },
    { key: 'count', header: 'readings', align: 'right', render: w => <span className='mono'>{fmtInt(w.count_readings)}</span> },
    { key: 'avg', header: 'avg', align: 'right', render: w => <span className='mono'>{fmtValue(w.avg_value)} <span className='unit'>{unit(w)}</span></span> },
    { key: 'min', header: 'min', align: 'right', render: w => <span className='mono'>{fmtValue(w.min_value)}</span> },
    { key: 'max', header: 'max', align: 'right', render: w => <span className='mono'>{fmtValue(w.max_value)}</span> },
    { key: 'sd', header: 'std dev', align: 'right', render: w => <span className='mono'>{fmtValue(w.stddev_value)}</span> },
    {
      key: 'anomalies',
      header: 'anomalies',
      align: 'right',
      title: 'Readings the combined verdict flags (hover a cell for each detector)',
      render: w => {
        const combined = w.combined_anomaly_count ?? w.anomaly_count
        return (
          <span
            className={`mono ${combined > 0 ? 'alert-text' : ''}`}
            title={`combined ${combined} · rule ${w.anomaly_count} · z-score ${w.z_score_anomalies} · ML ${w.ml_anomaly_count} · labelled ${w.label_anomaly_count}`}
          >
            {fmtInt(combined)}
          </span>
        )
      }
    },
    { key: 'rev', header: 'revision', align: 'right', title: 'Times the window was revised (late readings revise closed windows)', render: w => <span className='mono'>{w.revision}</span> },
    { key: 'state', header: 'state', align: 'center', render: w => <FinalBadge final={w.is_final} /> }
  ]

  return (
    <div className='tab'>
      <KpiRow>
        <Kpi label='Windows processed' value={fmtInt(o?.windows)} sub={o === null ? undefined : `${fmtInt(o.final_windows)} final`} testId='kpi-windows' />
        <Kpi
          label='Anomalies in windows'
          value={fmtInt(o?.anomalies)}
          sub={o === null ? undefined : `rule ${fmtInt(o.rule_anomalies)} · z ${fmtInt(o.z_anomalies)} · ML ${fmtInt(o.ml_anomalies)}`}
          testId='kpi-window-anomalies'
          {...(o !== null && o.anomalies > 0 ? { tone: 'alert' as const } : {})}
        />
        <Kpi label='Average readings per window' value={o === null ? '—' : fmtValue(o.avg_readings_per_window, 1)} testId='kpi-avg-per-window' />
        <Kpi label='Readings in range' value={fmtInt(o?.readings)} testId='kpi-window-readings' />
      </KpiRow>
      {overview.error !== null && <div className='notice' role='status'>KPIs unavailable: {overview.error}</div>}

      <h2 className='section'>
        Trends: average within the min–max band
        {series.data !== null && (
          <span className='caption'>
            {caption}, all locations merged{' · '}
            <span data-testid='trend-anomalies' data-anomalies={series.data.anomalies}>{chartAnomaliesCaption(series.data)}</span>
          </span>
        )}
      </h2>
      {series.error !== null && <div className='notice' role='status'>Trends unavailable: {series.error}</div>}
      {trends.length === 0 && series.error === null && <Empty>{series.loading ? 'Loading…' : 'No windows in this range'}</Empty>}
      <div className={`grid ${trends.length === 1 ? 'one' : 'two'}`}>
        {trends.map(t => (
          <Panel key={t.sensor_type} title={withUnit(typeLabel(t.sensor_type), t.unit)} caption={caption}>
            <BandChart sensorType={t.sensor_type} unit={t.unit} points={t.points} testId={`chart-trend-${t.sensor_type}`} />
          </Panel>
        ))}
      </div>

      <Panel title='Recent windows' caption={`newest ${fmtInt(live.windows.rows.length)} (up to ${fmtInt(records)}), revised live`} error={live.windows.error}>
        <DataTable
          rows={live.windows.rows}
          columns={columns}
          rowKey={windowKey}
          testId='table-windows'
          empty={live.windows.loaded ? 'No windows yet' : 'Loading…'}
          rowClass={w => w.is_final ? '' : 'row-open'}
        />
      </Panel>
    </div>
  )
}
