import type { JSX, ReactNode } from 'react'

export interface Column<T> {
  key: string
  header: ReactNode
  render: (row: T) => ReactNode
  align?: 'right' | 'center'
  title?: string
}

/** A plain table with a sticky header; scrolls inside `maxHeight`. */
export function DataTable<T> ({ rows, columns, rowKey, testId, empty, maxHeight, rowClass }: {
  rows: T[]
  columns: Column<T>[]
  rowKey: (row: T) => string
  testId: string
  empty: ReactNode
  maxHeight?: number
  rowClass?: (row: T) => string
}): JSX.Element {
  return (
    <div className='table-wrap' style={maxHeight !== undefined ? { maxHeight } : undefined}>
      <table data-testid={testId} data-rows={rows.length}>
        <thead>
          <tr>{columns.map(c => <th key={c.key} className={c.align ?? ''} title={c.title}>{c.header}</th>)}</tr>
        </thead>
        <tbody>
          {rows.length === 0
            ? <tr className='empty-row'><td colSpan={columns.length}>{empty}</td></tr>
            : rows.map(r => (
              <tr key={rowKey(r)} data-key={rowKey(r)} className={rowClass?.(r) ?? ''}>
                {columns.map(c => <td key={c.key} className={c.align ?? ''}>{c.render(r)}</td>)}
              </tr>
            ))}
        </tbody>
      </table>
    </div>
  )
}
