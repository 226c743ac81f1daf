// A small React wrapper around one ECharts instance: created on mount, resized with its container,
// disposed on unmount. The container exposes `data-points` (data points drawn) and `data-series`
// (series names) so tests and users' scripts can tell "has data" and "changed".
import { useEffect, useRef, type JSX } from 'react'
import { echarts, THEME, type ChartOption } from './echarts.ts'

export interface EChartProps {
  option: ChartOption
  testId: string
  /** Data points drawn (0 shows the empty message). */
  points: number
  seriesNames: string[]
  height?: number
  /** Shown over the plot when `points` is 0. */
  emptyText?: string
  ariaLabel: string
}

export function EChart ({ option, testId, points, seriesNames, height = 300, emptyText = 'No data in this range', ariaLabel }: EChartProps): JSX.Element {
  const el = useRef<HTMLDivElement>(null)
  const chart = useRef<echarts.ECharts | null>(null)

  useEffect(() => {
    const node = el.current
    if (node === null) return
    const c = echarts.init(node, THEME, { renderer: 'canvas' })
    chart.current = c
    let frame = 0
    const ro = new ResizeObserver(() => {
      cancelAnimationFrame(frame)
      frame = requestAnimationFrame(() => { if (!c.isDisposed()) c.resize() })
    })
    ro.observe(node)
    return () => {
      cancelAnimationFrame(frame)
      ro.disconnect()
      c.dispose()
      chart.current = null
    }
  }, [])

  useEffect(() => {
    // notMerge: a filter change can remove series, which a merge would keep.
    chart.current?.setOption(option, { notMerge: true, lazyUpdate: true })
  }, [option])

  return (
    <div className='chart-wrap' style={{ height }}>
      <div
        ref={el}
        className='chart'
        role='img'
        aria-label={ariaLabel}
        data-testid={testId}
        data-points={points}
        data-series={seriesNames.join(',')}
      />
      {points === 0 && <div className='chart-empty'>{emptyText}</div>}
    </div>
  )
}
