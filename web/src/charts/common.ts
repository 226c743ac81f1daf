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

/**
 * Time-axis labels (UTC, the option's `useUTC`) a reader can tell apart: a time of day within a
 * day, the date where a day starts and on day-level ticks ("Dec 6", never ECharts' lone "6"), the
 * year where one starts. The second template of each is for ticks at a coarser boundary than
 * their neighbours (level 1, bold like ECharts' default).
 */
export const TIME_AXIS_LABELS = {
  year: ['{MMM} {d} {yyyy}', '{primary|{MMM} {d} {yyyy}}'],
  month: ['{MMM} {d}', '{primary|{MMM} {d}}'],
  day: ['{MMM} {d}', '{primary|{MMM} {d}}'],
  hour: ['{HH}:{mm}', '{primary|{HH}:{mm}}'],
  minute: ['{HH}:{mm}', '{primary|{HH}:{mm}}'],
  second: ['{HH}:{mm}:{ss}', '{primary|{HH}:{mm}:{ss}}'],
  millisecond: ['{HH}:{mm}:{ss}.{SSS}', '{primary|{HH}:{mm}:{ss}.{SSS}}']
}

/** Charts this wide or narrower (a phone) take their narrow media options. */
export const NARROW_CHART_PX = 560

/**
 * On a narrow chart the legend wraps onto lines under the plot instead of paging (a paged legend
 * hides most series names behind arrows); the grid leaves room for them. Many series (more than
 * four lines of names) keep the paged legend. A media option of an ECharts `baseOption`.
 */
export function narrowLegend (names: string[], gridBottom: number) {
  // Legend item: 14 px icon, 5 px gap, ~7 px per character at 12 px, 10 px between items; a
  // phone's chart is about 320 px wide.
  const width = names.reduce((w, n) => w + 29 + 7 * n.length, 0)
  const lines = Math.max(1, Math.ceil(width / 320))
  if (lines > 4) return []
  return [{ query: { maxWidth: NARROW_CHART_PX }, option: { legend: { type: 'plain' as const }, grid: { bottom: gridBottom + 22 * (lines - 1) } } }]
}

/** A time x axis in UTC with labels that never overlap. */
export function timeAxis () {
  return {
    type: 'time' as const,
    name: 'time (UTC)',
    nameLocation: 'middle' as const,
    nameGap: 26,
    axisLabel: { hideOverlap: true, fontSize: 11, formatter: TIME_AXIS_LABELS },
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
