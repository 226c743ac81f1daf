// Real-time monitoring: KPIs over the range, the newest readings (live), each sensor type over time,
// readings per location and where the anomalies are.
import type { JSX } from 'react'
import { api, type SharedQuery } from '../api.ts'
import { useFetch } from '../hooks.ts'
import type { LiveData } from '../store.ts'
import { Kpi, KpiRow } from '../components/Kpi.tsx'
import { Empty, Panel } from '../components/Panel.tsx'
import { ReadingsTable } from '../components/ReadingsTable.tsx'
import { TimeSeriesChart } from '../charts/TimeSeriesChart.tsx'
import { CategoryBarChart } from '../charts/CategoryBarChart.tsx'
import { COLORS } from '../charts/echarts.ts'
import { groupByType } from './seriesGroups.ts'
import type { ChartAnomalies } from '../url-state.ts'
import { chartAnomaliesCaption, fmtInt, fmtPct, resolutionCaption, typeLabel, withUnit } from '../format.ts'

export function RealtimeTab ({ query, live, anomalies }: { query: SharedQuery | null, live: LiveData, anomalies: ChartAnomalies }): JSX.Element {
  const overview = useFetch(`overview:${query?.key}`, async s => await api.overview(query ?? {}, s), query !== null, `overview:${query?.scope}`)
  const series = useFetch(
    `series:${anomalies}:${query?.key}`,
    async s => await api.series(query ?? {}, { group_by: 'location', max_points: 300, anomalies }, s),
    query !== null,
    `series:${anomalies}:${query?.scope}`)
  const o = overview.data
  const groups = groupByType(series.data)
  const byLocation = [...(o?.by_location ?? [])].sort((a, b) => a.key.localeCompare(b.key))
  const byType = [...(o?.by_sensor_type ?? [])].sort((a, b) => a.key.localeCompare(b.key))
  const caption = series.data !== null ? resolutionCaption(series.data.resolution, series.data.bucket_ms) : undefined

  return (
    <div className='tab'>
      <KpiRow>
        <Kpi label='Readings in range' value={fmtInt(o?.readings)} testId='kpi-readings' />
        <Kpi
          label='Anomalies (combined verdict)'
          value={fmtInt(o?.anomalies)}
          sub={o !== null && o.readings > 0 ? `${fmtPct(o.anomalies / o.readings)} of readings` : undefined}
          testId='kpi-anomalies'
          {...(o !== null && o.anomalies > 0 ? { tone: 'alert' as const } : {})}
        />
        <Kpi label='Active sensors' value={o === null ? '—' : `${fmtInt(o.active_sensors)} / ${fmtInt(o.sensors)}`} sub='reporting in the last 5 min' testId='kpi-active-sensors' />
        <Kpi label='Locations' value={fmtInt(o?.locations)} testId='kpi-locations' />
      </KpiRow>
      {overview.error !== null && <div className='notice' role='status'>KPIs unavailable: {overview.error}</div>}

      <Panel title='Most recent readings' caption={`newest ${live.readings.rows.length} of the filter, live`} error={live.readings.error}>
        <ReadingsTable rows={live.readings.rows} testId='table-recent-readings' empty={live.readings.loaded ? 'No readings yet' : 'Loading…'} />
      </Panel>

      <h2 className='section'>
        Sensor values over time
        {series.data !== null && (
          <span className='caption'>
            <span data-testid='series-resolution'>{caption}</span>
            {' · '}
            <span data-testid='series-anomalies' data-anomalies={series.data.anomalies}>{chartAnomaliesCaption(series.data)}</span>
          </span>
        )}
      </h2>
      {series.error !== null && <div className='notice' role='status'>Time series unavailable: {series.error}</div>}
      {groups.length === 0 && series.error === null && <Empty>{series.loading ? 'Loading…' : 'No readings in this range'}</Empty>}
      <div className={`grid ${groups.length === 1 ? 'one' : 'two'}`}>
        {groups.map(g => (
          <Panel key={g.sensorType} title={withUnit(typeLabel(g.sensorType), g.unit)} caption={`${g.series.length} ${g.series.length === 1 ? 'series' : 'locations'} · ${caption ?? ''}`}>
            <TimeSeriesChart sensorType={g.sensorType} unit={g.unit} series={g.series} testId={`chart-series-${g.sensorType}`} />
          </Panel>
        ))}
      </div>

      <div className='grid three'>
        <Panel title='Readings by location' caption='in range'>
          <CategoryBarChart
            categories={byLocation.map(b => b.key)}
            series={[{ name: 'readings', values: byLocation.map(b => b.readings), color: COLORS.normal }]}
            valueName='readings'
            categoryName='location'
            horizontal
            testId='chart-readings-by-location'
            ariaLabel='Readings by location'
          />
        </Panel>
        <Panel title='Anomalies by sensor type' caption='combined verdict, in range'>
          <CategoryBarChart
            categories={byType.map(b => typeLabel(b.key))}
            series={[{ name: 'anomalies', values: byType.map(b => b.anomalies), color: COLORS.anomaly }]}
            valueName='anomalies'
            categoryName='sensor type'
            horizontal
            testId='chart-anomalies-by-type'
            ariaLabel='Anomalies by sensor type'
            emptyText='No anomalies in this range'
          />
        </Panel>
        <Panel title='Anomalies by location' caption='combined verdict, in range'>
          <CategoryBarChart
            categories={byLocation.map(b => b.key)}
            series={[{ name: 'anomalies', values: byLocation.map(b => b.anomalies), color: COLORS.anomaly }]}
            valueName='anomalies'
            categoryName='location'
            horizontal
            testId='chart-anomalies-by-location'
            ariaLabel='Anomalies by location'
            emptyText='No anomalies in this range'
          />
        </Panel>
      </div>

      <Panel title='Recent anomalies' caption='flagged by any detector, live' error={live.anomalies.error}>
        <ReadingsTable rows={live.anomalies.rows} testId='table-recent-anomalies' extra={['z_score', 'ml_score', 'explanation']} empty={live.anomalies.loaded ? 'No anomalies yet' : 'Loading…'} />
      </Panel>
    </div>
  )
}
