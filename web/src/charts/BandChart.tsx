// A sensor type's trend: the average as a line inside its min–max band (a stacked area from min
// to max: an invisible base series at the minimum, then the range stacked on top).
import { useMemo, type JSX } from 'react'
import type { SeriesPoint } from '../../../src/api/contract.ts'
import { EChart } from './EChart.tsx'
import { COLORS, type ChartOption } from './echarts.ts'
import { bottomLegend, escapeHtml, grid, sensorValueAxis, timeAxis, tooltipTime } from './common.ts'
import { fmtInt, fmtValue, typeLabel } from '../format.ts'

export function BandChart ({ sensorType, unit, points, testId }: {
  sensorType: string
  unit: string
  points: SeriesPoint[]
  testId: string
}): JSX.Element {
  const option = useMemo((): ChartOption => {
    const byTime = new Map(points.map(p => [p[0], p]))
    return {
      useUTC: true,
      animationDuration: 300,
      grid: grid({ top: 36, bottom: 48 }),
      tooltip: {
        trigger: 'axis',
        confine: true,
        formatter: (params) => {
          const first = Array.isArray(params) ? params[0] : params
          const v = first?.value
          const t = Array.isArray(v) ? Number(v[0]) : NaN
          const p = byTime.get(t)
          if (p === undefined) return ''
          const u = escapeHtml(unit)
          return `<b>${escapeHtml(tooltipTime(t))}</b><br/>` +
            `avg ${fmtValue(p[1])} ${u}<br/>min ${fmtValue(p[2])} ${u}<br/>max ${fmtValue(p[3])} ${u}<br/>${fmtInt(p[4])} readings`
        }
      },
      legend: { ...bottomLegend(), data: [{ name: 'average' }, { name: 'min–max', icon: 'rect' }] },
      xAxis: timeAxis(),
      yAxis: sensorValueAxis(sensorType, unit),
      series: [
        {
          type: 'line',
          name: 'min',
          stack: 'band',
          stackStrategy: 'all',
          showSymbol: false,
          lineStyle: { opacity: 0 },
          silent: true,
          data: points.map(p => [p[0], p[2]])
        },
        {
          type: 'line',
          name: 'min–max',
          stack: 'band',
          stackStrategy: 'all',
          showSymbol: false,
          lineStyle: { opacity: 0 },
          itemStyle: { color: COLORS.band },
          areaStyle: { color: COLORS.band },
          silent: true,
          data: points.map(p => [p[0], p[3] - p[2]])
        },
        {
          type: 'line',
          name: 'average',
          showSymbol: points.length <= 24,
          symbolSize: 5,
          itemStyle: { color: COLORS.normal },
          lineStyle: { width: 2, color: COLORS.normal },
          data: points.map(p => [p[0], p[1]])
        }
      ]
    }
  }, [sensorType, unit, points])
  return (
    <EChart
      option={option}
      testId={testId}
      points={points.length * 3}
      seriesNames={points.length > 0 ? ['min', 'min–max', 'average'] : []}
      ariaLabel={`${typeLabel(sensorType)} average with min–max band`}
    />
  )
}
