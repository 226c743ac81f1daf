// Readings with their verdicts: the recent-readings and recent-anomalies tables.
import type { JSX } from 'react'
import type { ReadingJson } from '../../../src/api/contract.ts'
import { DataTable, type Column } from './DataTable.tsx'
import { SeverityBadge, VerdictFlags } from './Badges.tsx'
import { fmtTime, fmtValue, typeLabel } from '../format.ts'

const zText = (z: ReadingJson['z_score']): string =>
  z === null ? '—' : typeof z === 'string' ? (z.startsWith('-') ? '−∞' : '∞') : z.toFixed(2)

export function ReadingsTable ({ rows, testId, empty, extra = [] }: {
  rows: ReadingJson[]
  testId: string
  empty: string
  /** Extra columns: ML score, z-score, explanation. */
  extra?: ('ml_score' | 'z_score' | 'explanation')[]
}): JSX.Element {
  const columns: Column<ReadingJson>[] = [
    { key: 'time', header: 'time (UTC)', render: r => <span className='mono'>{fmtTime(r.timestamp)}</span> },
    { key: 'sensor', header: 'sensor', soft: true, render: r => <span className='mono small'>{r.sensor_id}</span> },
    { key: 'type', header: 'type', soft: true, render: r => typeLabel(r.sensor_type) },
    { key: 'location', header: 'location', soft: true, render: r => r.location },
    { key: 'value', header: 'value', align: 'right', render: r => <span className='mono'>{fmtValue(r.value)} <span className='unit'>{r.unit}</span></span> },
    { key: 'severity', header: 'severity', align: 'center', render: r => <SeverityBadge severity={r.severity} /> },
    { key: 'flags', header: 'verdicts', soft: true, title: 'Detectors that flag the reading (lit), and the simulator\'s ground-truth label', render: r => <VerdictFlags r={r} /> }
  ]
  if (extra.includes('z_score')) columns.push({ key: 'z', header: 'z-score', align: 'right', render: r => <span className='mono'>{zText(r.z_score)}</span> })
  if (extra.includes('ml_score')) {
    columns.push({ key: 'ml', header: 'ML score', align: 'right', title: 'Isolation Forest score, 0..1 (higher is more anomalous)', render: r => <span className='mono'>{r.ml_score === null ? '—' : r.ml_score.toFixed(3)}</span> })
  }
  if (extra.includes('explanation')) columns.push({ key: 'why', header: 'explanation', wrap: true, render: r => <span className='why'>{r.explanation ?? '—'}</span> })
  return (
    <DataTable
      rows={rows}
      columns={columns}
      rowKey={r => `${r.sensor_id}|${r.timestamp}`}
      testId={testId}
      empty={empty}
      rowClass={r => r.severity !== null ? `row-${r.severity}` : ''}
    />
  )
}
