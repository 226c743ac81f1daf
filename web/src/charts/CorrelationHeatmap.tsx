// Pearson correlation between sensor types: a -1..1 diverging heatmap with the value in each cell.
// Cells without enough aligned pairs (null) stay blank.
import { useMemo, type JSX } from 'react'
import { EChart } from './EChart.tsx'
import type { ChartOption } from './echarts.ts'
import { escapeHtml, grid, NARROW_CHART_PX } from './common.ts'
import { fmtInt, typeLabel } from '../format.ts'

/** No "-0.00": values that round to zero show as 0. */
const fmtR = (r: number, digits = 2): string => (Math.abs(r) < 0.5 * 10 ** -digits ? 0 : r).toFixed(digits)

export function CorrelationHeatmap ({ sensorTypes, matrix, pairs, testId }: {
  sensorTypes: string[]
  matrix: (number | null)[][]
  pairs: number[][]
  testId: string
}): JSX.Element {
  const cells = useMemo(() => {
    const out: { value: [number, number, number], label: { color: string } }[] = []
    matrix.forEach((row, y) => row.forEach((v, x) => {
      if (v !== null && Number.isFinite(v)) out.push({ value: [x, y, v], label: { color: Math.abs(v) > 0.55 ? '#f8fafc' : '#0f172a' } })
    }))
    return out
  }, [matrix])
  const option = useMemo((): ChartOption => {
    const labels = sensorTypes.map(typeLabel)
    return {
      // Narrow (a phone): the sensor-type names under the columns would overlap, so they slant.
      media: [{ query: { maxWidth: NARROW_CHART_PX }, option: { xAxis: { axisLabel: { rotate: 40 }, nameGap: 64 }, grid: { bottom: 72 } } }],
      baseOption: {
        animation: false,
        grid: grid({ top: 12, bottom: 64, left: 12, right: 12 }),
        tooltip: {
          trigger: 'item',
          confine: true,
          formatter: (p) => {
            const item = Array.isArray(p) ? p[0] : p
            const v = item?.value
            if (!Array.isArray(v)) return ''
            const x = Number(v[0]); const y = Number(v[1]); const r = Number(v[2])
            const n = pairs[y]?.[x]
            return `<b>${escapeHtml(labels[y] ?? '')} × ${escapeHtml(labels[x] ?? '')}</b><br/>r = ${fmtR(r, 3)}<br/>${fmtInt(n ?? 0)} aligned windows`
          }
        },
        xAxis: { type: 'category', data: labels, name: 'sensor type', nameLocation: 'middle', nameGap: 34, splitArea: { show: false }, axisLabel: { fontSize: 12, interval: 0 } },
        yAxis: { type: 'category', data: labels, name: 'sensor type', nameLocation: 'middle', nameGap: 80, inverse: true, axisLabel: { fontSize: 12, interval: 0 } },
        visualMap: {
          type: 'continuous',
          min: -1,
          max: 1,
          calculable: false,
          orient: 'horizontal',
          left: 'center',
          bottom: 0,
          itemWidth: 12,
          itemHeight: 220,
          text: ['+1', '−1'],
          textGap: 8,
          inRange: { color: ['#2563eb', '#93c5fd', '#f1f5f9', '#fca5a5', '#dc2626'] }
        },
        series: [{
          type: 'heatmap',
          name: 'Pearson r',
          data: cells,
          label: { show: true, fontSize: 13, fontWeight: 'bold', formatter: (p: { value: unknown }) => Array.isArray(p.value) ? fmtR(Number(p.value[2])) : '' },
          itemStyle: { borderColor: '#0f172a', borderWidth: 2 },
          emphasis: { itemStyle: { borderColor: '#f8fafc', borderWidth: 2 } }
        }]
      }
    }
  }, [sensorTypes, cells, pairs])
  return (
    <EChart
      option={option}
      testId={testId}
      points={cells.length}
      seriesNames={cells.length > 0 ? ['Pearson r'] : []}
      height={Math.max(360, 70 * sensorTypes.length + 110)}
      ariaLabel='Correlation between sensor types'
      emptyText='Not enough aligned windows to correlate'
    />
  )
}
