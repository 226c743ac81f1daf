// Severity badge and the per-detector verdict flags of a reading.
import type { JSX } from 'react'
import type { ReadingJson } from '../../../src/api/contract.ts'

export function SeverityBadge ({ severity }: { severity: ReadingJson['severity'] }): JSX.Element {
  if (severity === null) return <span className='badge ok'>normal</span>
  return <span className={`badge sev-${severity}`}>{severity}</span>
}

const FLAGS: { key: string, label: string, title: string, on: (r: ReadingJson) => boolean | null }[] = [
  { key: 'rule', label: 'rule', title: 'Rule: value outside the sensor type\'s normal range', on: r => r.rule_anomaly },
  { key: 'z', label: 'z', title: 'Z-score: far from the sensor\'s recent baseline', on: r => r.z_anomaly },
  { key: 'ml', label: 'ML', title: 'Isolation Forest model (empty before the first model)', on: r => r.ml_anomaly }
]

/** Lit chips for the detectors that flag the reading, plus the simulator's label when known. */
export function VerdictFlags ({ r }: { r: ReadingJson }): JSX.Element {
  return (
    <span className='flags'>
      {FLAGS.map(f => {
        const on = f.on(r)
        return <span key={f.key} className={`flag ${on === true ? 'on' : on === null ? 'na' : ''}`} title={`${f.title}: ${on === null ? 'not scored' : on ? 'anomalous' : 'normal'}`}>{f.label}</span>
      })}
      {r.anomaly !== null && (
        <span className={`flag label ${r.anomaly ? 'on' : ''}`} title={`Simulator label: ${r.anomaly ? (r.anomaly_type ?? 'anomaly') : 'normal'}`}>
          {r.anomaly ? (r.anomaly_type ?? 'label') : 'label'}
        </span>
      )}
    </span>
  )
}

export function FinalBadge ({ final }: { final: boolean }): JSX.Element {
  return final ? <span className='badge final'>final</span> : <span className='badge open'>open</span>
}
