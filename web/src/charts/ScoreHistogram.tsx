// Isolation Forest scores of the newest scored readings, stacked by the combined verdict.
import { useMemo, type JSX } from 'react'
import type { ScoreHistogramJson } from '../../../src/api/contract.ts'
import { EChart } from './EChart.tsx'
import { COLORS, type ChartOption } from './echarts.ts'
import { axisTooltip, bottomLegend, grid } from './common.ts'
import { fmtInt } from '../format.ts'

export function ScoreHistogram ({ data, testId }: { data: ScoreHistogramJson | null, testId: string }): JSX.Element {
  const bins = useMemo(() => data?.bins ?? [], [data])
  const option = useMemo((): ChartOption => ({
    animationDuration: 300,
    grid: grid({ top: 36, bottom: 48 }),
    tooltip: axisTooltip({ axisPointer: { type: 'shadow' }, valueFormatter: v => fmtInt(Number(v)) }),
    legend: bottomLegend(),
    xAxis: {
      type: 'category',
      data: bins.map(b => `${b.from.toFixed(2)}–${b.to.toFixed(2)}`),
      name: 'anomaly score (Isolation Forest, 0–1)',
      nameLocation: 'middle',
      nameGap: 26,
      axisLabel: { fontSize: 11, hideOverlap: true, formatter: (v: string) => v.split('–')[0] ?? v }
    },
    yAxis: { type: 'value', name: 'readings', nameLocation: 'end', nameTextStyle: { align: 'left' }, minInterval: 1 },
    series: [
      { type: 'bar', name: 'normal', stack: 'verdict', itemStyle: { color: COLORS.normal }, barCategoryGap: '8%', data: bins.map(b => b.normal) },
      { type: 'bar', name: 'anomalous (combined verdict)', stack: 'verdict', itemStyle: { color: COLORS.anomaly }, data: bins.map(b => b.anomalous) }
    ]
  }), [bins])
  const points = bins.filter(b => b.normal + b.anomalous > 0).length
  return (
    <EChart
      option={option}
      testId={testId}
      points={points}
      seriesNames={bins.length > 0 ? ['normal', 'anomalous'] : []}
      ariaLabel='Distribution of anomaly scores'
      emptyText='No scored readings yet (the first model trains after enough readings)'
    />
  )
}
