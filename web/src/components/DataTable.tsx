import { useCallback, useLayoutEffect, useRef, useState, type JSX, type ReactNode } from 'react'

export interface Column<T> {
  key: string
  header: ReactNode
  /** Names the cell when a row is shown as a card (default: `header` when it is text). */
  label?: string
  render: (row: T) => ReactNode
  align?: 'right' | 'center'
  title?: string
  /** Prose (an explanation): wraps, in a column of readable width. */
  wrap?: boolean
  /** May break onto a second line (at spaces and hyphens) when the table is short of width. */
  soft?: boolean
}

/** Tables narrower than this show their rows as cards (a phone). */
export const CARDS_BELOW_PX = 600

/**
 * A plain table that shows every row it holds in the page flow (the page scrolls, never a box
 * inside it). Narrower than CARDS_BELOW_PX, each row is a card of labelled cells (styles.css,
 * `.table-wrap.cards`); wider, a table that does not fit scrolls sideways, except one with a prose
 * column (`wrap`): that one turns into cards while it does not fit, so the prose is never cut
 * off at the panel's edge.
 */
export function DataTable<T> ({ rows, columns, rowKey, testId, empty, rowClass }: {
  rows: T[]
  columns: Column<T>[]
  rowKey: (row: T) => string
  testId: string
  empty: ReactNode
  rowClass?: (row: T) => string
}): JSX.Element {
  const prose = columns.some(c => c.wrap === true)
  const wrap = useRef<HTMLDivElement>(null)
  const table = useRef<HTMLTableElement>(null)
  const [cards, setCards] = useState(false)
  const cardsNow = useRef(false)
  /** The width (with the border) the table took the last time it did not fit. */
  const needed = useRef(0)
  const measure = useCallback(() => {
    const w = wrap.current
    const t = table.current
    if (w === null || t === null) return
    // Border box: the same whether the rows are a table (in a border) or cards (none).
    const width = w.offsetWidth
    let next: boolean
    if (width < CARDS_BELOW_PX) next = true
    else if (!prose) next = false
    else if (!cardsNow.current) {
      const border = w.offsetWidth - w.clientWidth
      next = t.offsetWidth > w.clientWidth + 1
      if (next) needed.current = t.offsetWidth + border
    } else next = width < needed.current
    cardsNow.current = next
    setCards(next)
  }, [prose])
  // Before paint (no table-then-cards flash): after each render that can change the table's
  // width, and on every resize.
  useLayoutEffect(measure, [measure, rows, cards])
  useLayoutEffect(() => {
    const el = wrap.current
    if (el === null) return
    const ro = new ResizeObserver(measure)
    ro.observe(el)
    return () => ro.disconnect()
  }, [measure])
  const cellClass = (c: Column<T>): string => [c.align ?? '', c.wrap === true ? 'wrap' : '', c.soft === true ? 'soft' : ''].filter(x => x !== '').join(' ')
  const label = (c: Column<T>): string | undefined => c.label ?? (typeof c.header === 'string' ? c.header : undefined)
  return (
    <div ref={wrap} className={`table-wrap ${cards ? 'cards' : ''}`} data-layout={cards ? 'cards' : 'table'}>
      <table ref={table} data-testid={testId} data-rows={rows.length}>
        <thead>
          <tr>{columns.map(c => <th key={c.key} className={cellClass(c)} title={c.title}>{c.header}</th>)}</tr>
        </thead>
        <tbody>
          {rows.length === 0
            ? <tr className='empty-row'><td colSpan={columns.length}>{empty}</td></tr>
            : rows.map(r => (
              <tr key={rowKey(r)} data-key={rowKey(r)} className={rowClass?.(r) ?? ''}>
                {columns.map(c => <td key={c.key} className={cellClass(c)} data-label={label(c)}>{c.render(r)}</td>)}
              </tr>
            ))}
        </tbody>
      </table>
    </div>
  )
}
