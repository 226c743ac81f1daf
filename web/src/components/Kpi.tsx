import type { JSX, ReactNode } from 'react'

export function Kpi ({ label, value, sub, testId, tone }: {
  label: string
  value: ReactNode
  sub?: ReactNode
  testId: string
  tone?: 'alert' | 'ok'
}): JSX.Element {
  return (
    <div className={`kpi ${tone ?? ''}`}>
      <div className='kpi-label'>{label}</div>
      <div className='kpi-value' data-testid={testId}>{value}</div>
      {sub !== undefined && <div className='kpi-sub'>{sub}</div>}
    </div>
  )
}

export function KpiRow ({ children }: { children: ReactNode }): JSX.Element {
  return <div className='kpi-row'>{children}</div>
}
