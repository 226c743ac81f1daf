// ECharts, tree-shaken: only the charts and components the dashboard draws, canvas renderer.
import * as echarts from 'echarts/core'
import { BarChart, HeatmapChart, LineChart, type BarSeriesOption, type HeatmapSeriesOption, type LineSeriesOption } from 'echarts/charts'
import {
  GridComponent, LegendComponent, TooltipComponent, VisualMapContinuousComponent,
  type GridComponentOption, type LegendComponentOption, type TooltipComponentOption, type VisualMapComponentOption
} from 'echarts/components'
import { CanvasRenderer } from 'echarts/renderers'

echarts.use([LineChart, BarChart, HeatmapChart, GridComponent, LegendComponent, TooltipComponent, VisualMapContinuousComponent, CanvasRenderer])

export type ChartOption = echarts.ComposeOption<
  LineSeriesOption | BarSeriesOption | HeatmapSeriesOption |
  GridComponentOption | LegendComponentOption | TooltipComponentOption | VisualMapComponentOption
>

export const THEME = 'iot-dark'

/** Colours of the dashboard (match styles.css). */
export const COLORS = {
  text: '#e2e8f0',
  muted: '#94a3b8',
  axis: '#475569',
  grid: '#1e293b',
  panel: '#0f172a',
  anomaly: '#f87171',
  normal: '#38bdf8',
  band: 'rgba(56, 189, 248, 0.32)'
}

/** Distinct, colour-blind-friendlier series colours that read on a dark background. */
export const PALETTE = ['#38bdf8', '#fbbf24', '#a78bfa', '#34d399', '#fb7185', '#f97316', '#22d3ee', '#e879f9', '#a3e635', '#94a3b8']

const axis = {
  axisLine: { lineStyle: { color: COLORS.axis } },
  axisTick: { lineStyle: { color: COLORS.axis } },
  axisLabel: { color: COLORS.muted, fontSize: 12 },
  nameTextStyle: { color: COLORS.muted, fontSize: 12 },
  splitLine: { lineStyle: { color: COLORS.grid } }
}

echarts.registerTheme(THEME, {
  color: PALETTE,
  backgroundColor: 'transparent',
  textStyle: { color: COLORS.text, fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif' },
  legend: { textStyle: { color: COLORS.text, fontSize: 12 }, pageTextStyle: { color: COLORS.muted }, pageIconColor: COLORS.text, pageIconInactiveColor: COLORS.axis },
  tooltip: { backgroundColor: '#0b1220', borderColor: COLORS.axis, textStyle: { color: COLORS.text, fontSize: 12 } },
  categoryAxis: axis,
  valueAxis: axis,
  timeAxis: axis,
  visualMap: { textStyle: { color: COLORS.text } }
})

export { echarts }
