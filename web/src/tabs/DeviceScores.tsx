// Device-level detection: every device the multivariate detector scores (its measurements aligned
// into rows by event time, scored together by the device's own Isolation Forest), anomalous first;
// the selected device's device score and row score over time against the 0.5 threshold, and its
// recent anomalous rows with their explanations. Re-read on every refresh of the dashboard.
import { useEffect, useMemo, useState, type JSX } from 'react'
import type { DeviceScorePointJson, DeviceScoreSummaryJson } from '../../../src/api/contract.ts'
import { api, type SharedQuery } from '../api.ts'
import { useFetch } from '../hooks.ts'
import { Panel } from '../components/Panel.tsx'
import { DataTable, type Column } from '../components/DataTable.tsx'
import { EChart } from '../charts/EChart.tsx'
import { COLORS, type ChartOption } from '../charts/echarts.ts'
import { axisTooltip, bottomLegend, escapeHtml, grid, narrowLegend, timeAxis, tooltipTime } from '../charts/common.ts'
import { fmtInt, fmtRatio, fmtTime, typeLabel } from '../format.ts'
import './devices.css'
import './device-scores.css'

/** A device score at or above this is an anomaly (the detector's decision threshold). */
export const DEVICE_SCORE_THRESHOLD = 0.5

/** Anomalous rows listed under the chart, newest first. */
const ANOMALIES_LISTED = 10

/** Anomalous now first, then the most anomalies in 24 h, the highest score, the name. */
export function byConcern (a: DeviceScoreSummaryJson, b: DeviceScoreSummaryJson): number {
  return Number(b.last_anomaly) - Number(a.last_anomaly) ||
    b.anomalies_24h - a.anomalies_24h ||
    (b.last_score ?? -1) - (a.last_score ?? -1) ||
    a.device.localeCompare(b.device)
}

function Verdict ({ anomaly }: { anomaly: boolean }): JSX.Element {
  return anomaly ? <span className='badge sev-critical'>anomaly</span> : <span className='badge ok'>normal</span>
}

function Measurements ({ names }: { names: string[] }): JSX.Element {
  return <span className='sensor-chips'>{names.map(m => <span key={m} className='sensor-chip'>{typeLabel(m)}</span>)}</span>
}

const SERIES = { score: 'device score', row: 'row score', threshold: `threshold ${DEVICE_SCORE_THRESHOLD}`, anomalous: 'anomalous' } as const

function DeviceScoreChart ({ device, points }: { device: string, points: DeviceScorePointJson[] }): JSX.Element {
  const option = useMemo((): ChartOption => {
    const times = points.map(p => Date.parse(p.ts))
    const first = times[0]
    const last = times[times.length - 1]
    const byTime = new Map(points.map(p => [Date.parse(p.ts), p]))
    return {
      baseOption: {
        useUTC: true,
        animationDuration: 300,
        grid: grid({ top: 36, bottom: 48 }),
        // By the row under the pointer (the threshold and the markers have points elsewhere).
        tooltip: axisTooltip({
          extraCssText: 'max-width: 420px; white-space: normal;',
          formatter: (params) => {
            const list = Array.isArray(params) ? params : [params]
            const v = (list.find(x => x.seriesName === SERIES.score) ?? list[0])?.value
            const t = Array.isArray(v) ? Number(v[0]) : NaN
            const p = byTime.get(t)
            if (p === undefined) return ''
            return `<b>${escapeHtml(tooltipTime(t))}</b><br/>${SERIES.score} ${fmtRatio(p.score)}<br/>${SERIES.row} ${fmtRatio(p.row_score)}` +
              (p.anomaly ? `<br/><b style="color:${COLORS.anomaly}">anomaly</b>${p.explanation === null ? '' : ` ${escapeHtml(p.explanation)}`}` : '')
          }
        }),
        legend: bottomLegend(),
        xAxis: timeAxis(),
        yAxis: { type: 'value', min: 0, max: 1, name: 'score (0–1)', nameLocation: 'end', nameTextStyle: { align: 'left', fontSize: 12 }, axisLabel: { fontSize: 11 } },
        series: [
          {
            type: 'line',
            name: SERIES.row,
            showSymbol: false,
            sampling: 'lttb',
            itemStyle: { color: COLORS.muted },
            lineStyle: { width: 1, opacity: 0.7 },
            data: points.map((p, i) => [times[i], p.row_score])
          },
          {
            type: 'line',
            name: SERIES.score,
            showSymbol: points.length <= 24,
            symbolSize: 5,
            sampling: 'lttb',
            itemStyle: { color: COLORS.normal },
            lineStyle: { width: 2 },
            data: points.map((p, i) => [times[i], p.score])
          },
          {
            type: 'line',
            name: SERIES.threshold,
            showSymbol: false,
            silent: true,
            itemStyle: { color: COLORS.anomaly },
            lineStyle: { width: 1, type: 'dashed' },
            data: first === undefined || last === undefined ? [] : [[first, DEVICE_SCORE_THRESHOLD], [last, DEVICE_SCORE_THRESHOLD]]
          },
          {
            // Markers only: a line series with an invisible line (the dashboard draws no scatter).
            type: 'line',
            name: SERIES.anomalous,
            showSymbol: true,
            showAllSymbol: true,
            symbol: 'circle',
            symbolSize: 7,
            itemStyle: { color: COLORS.anomaly },
            lineStyle: { opacity: 0 },
            data: points.flatMap((p, i) => p.anomaly ? [[times[i], p.score]] : [])
          }
        ]
      },
      media: narrowLegend(Object.values(SERIES), 48)
    }
  }, [points])
  return (
    <EChart
      option={option}
      testId='chart-device-scores'
      points={points.length}
      seriesNames={points.length > 0 ? Object.values(SERIES) : []}
      ariaLabel={`Device score of ${device} over time`}
      emptyText='No scores of this device in this range'
      height={260}
    />
  )
}

export function DeviceScores ({ query, records }: { query: SharedQuery | null, records: number }): JSX.Element {
  const list = useFetch(`device-summaries:${query?.key}`, async s => await api.deviceScoreSummaries(s), query !== null, 'device-summaries')
  const devices = useMemo(() => [...(list.data ?? [])].sort(byConcern), [list.data])
  const [selected, setSelected] = useState<string | null>(null)
  // The most concerning device is shown until the reader picks one.
  const top = devices[0]?.device ?? null
  useEffect(() => { if (selected === null && top !== null) setSelected(top) }, [selected, top])

  const limit = Math.max(100, records)
  const range = { from: query?.from, to: query?.to }
  const scores = useFetch(
    `device-scores:${selected}:${limit}:${query?.key}`,
    async s => await api.deviceScores(selected ?? '', range, limit, s),
    query !== null && selected !== null,
    `device-scores:${selected}:${limit}:${query?.scope}`
  )
  // Kept while the next device loads: another device's scores are not this one's.
  const points = scores.data !== null && scores.data.device === selected ? scores.data.scores : null
  const anomalous = useMemo(() => (points ?? []).filter(p => p.anomaly).reverse(), [points])
  const anomalies = anomalous.slice(0, ANOMALIES_LISTED)

  const deviceCols: Column<DeviceScoreSummaryJson>[] = [
    {
      key: 'device',
      header: 'device',
      render: d => (
        <button type='button' className='device-pick mono' aria-pressed={d.device === selected} data-testid='device-score-select' onClick={() => setSelected(d.device)}>
          {d.device}
        </button>
      )
    },
    { key: 'm', header: 'measurements', soft: true, title: 'The measurements aligned into its rows (its model\'s inputs)', render: d => <Measurements names={d.measurements} /> },
    {
      key: 'score',
      header: 'score',
      align: 'right',
      title: `Newest device score, 0..1 (${DEVICE_SCORE_THRESHOLD} = decision threshold)`,
      render: d => <span className={`mono ${d.last_anomaly ? 'alert-text' : ''}`} data-testid='device-score-value'>{fmtRatio(d.last_score)}</span>
    },
    { key: 'verdict', header: 'verdict', align: 'center', render: d => d.last_score === null ? <span className='muted'>—</span> : <Verdict anomaly={d.last_anomaly} /> },
    {
      key: 'a24',
      header: 'anomalies 24 h',
      align: 'right',
      title: 'Anomalous rows in the 24 hours of event time before its newest row',
      render: d => <span className={`mono ${d.anomalies_24h > 0 ? 'alert-text' : ''}`}>{fmtInt(d.anomalies_24h)}</span>
    },
    { key: 'seen', header: 'last seen (UTC)', align: 'right', title: 'Event time of its newest scored row', render: d => <span className='mono'>{fmtTime(d.last_seen)}</span> }
  ]

  const anomalyCols: Column<DeviceScorePointJson>[] = [
    { key: 'ts', header: 'time (UTC)', render: p => <span className='mono'>{fmtTime(p.ts)}</span> },
    { key: 'score', header: 'score', align: 'right', render: p => <span className='mono alert-text'>{fmtRatio(p.score)}</span> },
    { key: 'row', header: 'row score', align: 'right', render: p => <span className='mono'>{fmtRatio(p.row_score)}</span> },
    { key: 'model', header: 'model', soft: true, render: p => <span className='mono small'>{p.model_version ?? '—'}</span> },
    { key: 'why', header: 'explanation', wrap: true, render: p => <span className='why'>{p.explanation ?? '—'}</span> }
  ]

  return (
    <Panel
      title='Device-level detection'
      caption={devices.length === 0 ? undefined : `${fmtInt(devices.length)} device${devices.length === 1 ? '' : 's'}, anomalous first · one Isolation Forest per device over its aligned measurements · score ${DEVICE_SCORE_THRESHOLD} = threshold`}
      error={list.error}
      testId='panel-device-scores'
    >
      <DataTable
        rows={devices}
        columns={deviceCols}
        rowKey={d => d.device}
        testId='table-device-scores'
        empty={list.loading && list.data === null ? 'Loading…' : 'Devices reporting several measurements (MQTT, HTTP, line protocol) appear here once they have a model (about 400 rows); the simulator\'s with --device-detection all.'}
        rowClass={d => `${d.last_anomaly ? 'row-critical' : ''} ${d.device === selected ? 'row-selected' : ''}`.trim()}
      />
      {selected !== null && (
        <div className='device-detail' data-testid='device-score-detail' data-device={selected}>
          <h4>
            <span className='mono'>{selected}</span>
            <span className='caption'>{points === null ? (scores.error === null ? 'loading…' : '') : `newest ${fmtInt(points.length)} scored rows in the range`}</span>
          </h4>
          {scores.error !== null && <div className='panel-error' role='status'>No data: {scores.error}</div>}
          <DeviceScoreChart device={selected} points={points ?? []} />
          {anomalous.length > 0 && <span className='caption'>anomalous rows among these, newest first: {fmtInt(anomalies.length)} of {fmtInt(anomalous.length)}</span>}
          <DataTable
            rows={anomalies}
            columns={anomalyCols}
            rowKey={p => p.ts}
            testId='table-device-anomalies'
            empty={points === null ? 'Loading…' : 'No anomalous rows among these scores'}
            rowClass={() => 'row-critical'}
          />
        </div>
      )}
    </Panel>
  )
}
