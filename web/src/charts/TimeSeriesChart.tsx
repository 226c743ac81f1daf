// One sensor type over time: one line per series (a location, or all locations merged).
import { useMemo, type JSX } from 'react'
import type { SeriesPoint } from '../../../src/api/contract.ts'
import { EChart } from './EChart.tsx'
import type { ChartOption } from './echarts.ts'
import { axisTooltip, bottomLegend, grid, narrowLegend, sensorValueAxis, timeAxis } from './common.ts'
import { fmtValue, typeLabel } from '../format.ts'

export interface LineSeries { name: string, points: SeriesPoint[] }

export function TimeSeriesChart ({ sensorType, unit, series, testId, height }: {
  sensorType: string
  unit: string
  series: LineSeries[]
  testId: string
  height?: number
}): JSX.Element {
  const option = useMemo((): ChartOption => {
    // Few buckets (a long range over young data): draw the points, or a lone bucket would not show.
    const sparse = series.every(s => s.points.length <= 24)
    return {
      baseOption: {
        useUTC: true,
        animationDuration: 300,
        grid: grid({ top: 36, bottom: 48 }),
        tooltip: axisTooltip({ valueFormatter: v => `${fmtValue(typeof v === 'number' ? v : Number(v))} ${unit}` }),
        legend: bottomLegend(),
        xAxis: timeAxis(),
        yAxis: sensorValueAxis(sensorType, unit),
        series: series.map(s => ({
          type: 'line',
          name: s.name,
          showSymbol: sparse,
          symbolSize: 5,
          sampling: 'lttb',
          lineStyle: { width: 1.5 },
          emphasis: { focus: 'series' },
          data: s.points.map(p => [p[0], p[1]])
        }))
      },
      media: narrowLegend(series.map(s => s.name), 48)
    }
  }, [sensorType, unit, series])
  const points = series.reduce((n, s) => n + s.points.length, 0)
  return (
    <EChart
      option={option}
      testId={testId}
      points={points}
      seriesNames={series.map(s => s.name)}
      ariaLabel={`${typeLabel(sensorType)} over time`}
      {...(height !== undefined ? { height } : {})}
    />
  )
}
