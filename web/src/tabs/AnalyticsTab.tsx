// Analytics: correlation between sensor types (window means aligned in time) and statistics per
// location and sensor type.
import type { JSX } from 'react'
import type { LocationStatsJson } from '../../../src/api/contract.ts'
import { api, type SharedQuery } from '../api.ts'
import { useFetch } from '../hooks.ts'
import { Panel } from '../components/Panel.tsx'
import { DataTable, type Column } from '../components/DataTable.tsx'
import { CorrelationHeatmap } from '../charts/CorrelationHeatmap.tsx'
import { fmtInt, fmtPct, fmtValue, typeLabel } from '../format.ts'

type StatRow = LocationStatsJson['rows'][number]

const RESOLUTION_TEXT = { raw: 'raw readings', window: 'window means', hour: 'hourly means' } as const

export function AnalyticsTab ({ query }: { query: SharedQuery | null }): JSX.Element {
  const corr = useFetch(`corr:${query?.key}`, async s => await api.correlation(query ?? {}, s), query !== null, `corr:${query?.scope}`)
  const stats = useFetch(`stats:${query?.key}`, async s => await api.stats(query ?? {}, s), query !== null, `stats:${query?.scope}`)
  const c = corr.data
  const rows = [...(stats.data?.rows ?? [])].sort((a, b) => a.location.localeCompare(b.location) || a.sensor_type.localeCompare(b.sensor_type))
  const u = (r: StatRow): JSX.Element => <span className='unit'>{r.unit}</span>
  const columns: Column<StatRow>[] = [
    { key: 'l', header: 'location', render: r => r.location },
    { key: 't', header: 'sensor type', render: r => typeLabel(r.sensor_type) },
    { key: 'n', header: 'readings', align: 'right', render: r => <span className='mono'>{fmtInt(r.readings)}</span> },
    { key: 'avg', header: 'average', align: 'right', render: r => <span className='mono'>{fmtValue(r.avg)} {u(r)}</span> },
    { key: 'min', header: 'min', align: 'right', render: r => <span className='mono'>{fmtValue(r.min)} {u(r)}</span> },
    { key: 'max', header: 'max', align: 'right', render: r => <span className='mono'>{fmtValue(r.max)} {u(r)}</span> },
    { key: 'sd', header: 'std dev', align: 'right', render: r => <span className='mono'>{fmtValue(r.stddev)} {u(r)}</span> },
    { key: 'a', header: 'anomalies', align: 'right', render: r => <span className={`mono ${r.anomalies > 0 ? 'alert-text' : ''}`}>{fmtInt(r.anomalies)}</span> },
    { key: 'rate', header: 'anomaly rate', align: 'right', render: r => <span className='mono'>{fmtPct(r.anomaly_rate, 2)}</span> }
  ]
  return (
    <div className='tab'>
      <div className='grid corr'>
        <Panel
          title='Correlation between sensor types'
          caption={c === null ? undefined : `Pearson r of ${RESOLUTION_TEXT[c.resolution]}, aligned per location and time, centred per location`}
          error={corr.error}
        >
          <CorrelationHeatmap
            sensorTypes={c?.sensor_types ?? []}
            matrix={c?.matrix ?? []}
            pairs={c?.pairs ?? []}
            testId='chart-correlation'
          />
        </Panel>
        <Panel title='How to read it' className='explain'>
          <p>Each cell is the Pearson correlation of two sensor types over the same windows in the same room, from −1 (opposite) through 0 (unrelated) to +1 (move together).</p>
          <p>Means are centred per location first, so a warm server room next to a cool warehouse does not pose as a correlation.</p>
          <p>Blank cells have fewer than 3 aligned windows. Hover a cell for the number of windows behind it.</p>
        </Panel>
      </div>
      <Panel title='Statistics by location' caption={stats.data === null ? undefined : `${rows.length} location × sensor type pairs in range`} error={stats.error}>
        <DataTable rows={rows} columns={columns} rowKey={r => `${r.location}|${r.sensor_type}`} testId='table-stats' empty={stats.loading ? 'Loading…' : 'No readings in this range'} />
      </Panel>
    </div>
  )
}
