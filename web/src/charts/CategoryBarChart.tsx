// Bars over categories (locations, sensor types); horizontal when the labels are long.
import { useMemo, type JSX } from 'react'
import { EChart } from './EChart.tsx'
import type { ChartOption } from './echarts.ts'
import { bottomLegend, grid, itemTooltip } from './common.ts'
import { fmtInt } from '../format.ts'

export interface BarSeries { name: string, values: number[], color?: string, stack?: string }

export function CategoryBarChart ({ categories, series, valueName, categoryName, horizontal = false, testId, height, ariaLabel, emptyText }: {
  categories: string[]
  series: BarSeries[]
  valueName: string
  categoryName: string
  horizontal?: boolean
  testId: string
  height?: number
  ariaLabel: string
  emptyText?: string
}): JSX.Element {
  const option = useMemo((): ChartOption => {
    const categoryAxis = {
      type: 'category' as const,
      data: categories,
      name: categoryName,
      // Horizontal bars run top to bottom (inverse), so the axis name goes above the first bar.
      nameLocation: horizontal ? 'start' as const : 'middle' as const,
      nameGap: horizontal ? 10 : 28,
      nameTextStyle: horizontal ? { align: 'right' as const, fontSize: 12 } : { fontSize: 12 },
      axisLabel: { fontSize: 12, hideOverlap: false, interval: 0, ...(horizontal ? {} : { rotate: categories.length > 5 ? 30 : 0 }) },
      axisTick: { alignWithLabel: true },
      ...(horizontal ? { inverse: true } : {})
    }
    const valueAxis = {
      type: 'value' as const,
      name: valueName,
      nameLocation: horizontal ? 'middle' as const : 'end' as const,
      nameGap: horizontal ? 26 : 10,
      minInterval: 1,
      axisLabel: { fontSize: 11 },
      splitNumber: 4
    }
    const multi = series.length > 1
    return {
      animationDuration: 300,
      grid: grid({ top: horizontal ? 34 : 36, bottom: multi ? 48 : 12, right: horizontal ? 56 : 24 }),
      tooltip: itemTooltip({ valueFormatter: v => fmtInt(typeof v === 'number' ? v : Number(v)) }),
      ...(multi ? { legend: bottomLegend() } : {}),
      xAxis: horizontal ? valueAxis : categoryAxis,
      yAxis: horizontal ? categoryAxis : valueAxis,
      series: series.map(s => ({
        type: 'bar',
        name: s.name,
        barMaxWidth: 36,
        ...(s.stack !== undefined ? { stack: s.stack } : {}),
        ...(s.color !== undefined ? { itemStyle: { color: s.color } } : {}),
        label: { show: !multi, position: horizontal ? 'right' : 'top', fontSize: 11, color: '#cbd5e1', formatter: (p: { value: unknown }) => fmtInt(Number(p.value)) },
        data: s.values
      }))
    }
  }, [categories, series, valueName, categoryName, horizontal])
  const points = series.reduce((n, s) => n + s.values.filter(v => v > 0).length, 0)
  return (
    <EChart
      option={option}
      testId={testId}
      points={points}
      seriesNames={series.map(s => s.name)}
      ariaLabel={ariaLabel}
      {...(height !== undefined ? { height } : {})}
      {...(emptyText !== undefined ? { emptyText } : {})}
    />
  )
}
