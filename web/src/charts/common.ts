// Option pieces every chart shares: legible fonts, labels kept inside the canvas, confined tooltips.
import type { GridComponentOption, TooltipComponentOption, LegendComponentOption } from 'echarts/components'
import { fmtTime, typeLabel, withUnit } from '../format.ts'

/**
 * Keeps axis labels and names inside the chart: the ECharts 6 form of `containLabel: true`
 * (deprecated there), which also contains the axis names.
 */
export function grid (o: { top?: number, bottom?: number, left?: number, right?: number } = {}): GridComponentOption {
  return { top: o.top ?? 40, bottom: o.bottom ?? 44, left: o.left ?? 12, right: o.right ?? 24, outerBoundsMode: 'same', outerBoundsContain: 'all' }
}

export function axisTooltip (extra: TooltipComponentOption = {}): TooltipComponentOption {
  return { trigger: 'axis', confine: true, axisPointer: { type: 'line' }, ...extra }
}

export function itemTooltip (extra: TooltipComponentOption = {}): TooltipComponentOption {
  return { trigger: 'item', confine: true, ...extra }
}

/** A scrolling legend along the bottom edge, below the x axis name. */
export function bottomLegend (): LegendComponentOption {
  return { type: 'scroll', bottom: 0, left: 'center', itemWidth: 14, itemHeight: 8, textStyle: { fontSize: 12 } }
}

/** A time x axis in UTC with labels that never overlap. */
export function timeAxis () {
  return {
    type: 'time' as const,
    name: 'time (UTC)',
    nameLocation: 'middle' as const,
    nameGap: 26,
    axisLabel: { hideOverlap: true, fontSize: 11 },
    splitLine: { show: false }
  }
}

/** The value axis of a sensor type's chart, named with its unit: "temperature (°C)". */
export function sensorValueAxis (sensorType: string, unit: string) {
  return {
    type: 'value' as const,
    scale: true,
    name: withUnit(typeLabel(sensorType), unit),
    nameLocation: 'end' as const,
    nameTextStyle: { align: 'left' as const, fontSize: 12 },
    axisLabel: { fontSize: 11 }
  }
}

export function tooltipTime (ms: number): string {
  return fmtTime(ms)
}

export function escapeHtml (s: string): string {
  return s.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c)
}
