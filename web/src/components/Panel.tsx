import type { JSX, ReactNode } from 'react'

/** A titled card. `error` (an endpoint failed or is missing) is shown as a quiet note, not a crash. */
export function Panel ({ title, caption, error, children, className, testId }: {
  title: string
  caption?: ReactNode
  error?: string | null
  children?: ReactNode
  className?: string
  testId?: string
}): JSX.Element {
  return (
    <section className={`panel ${className ?? ''}`} data-testid={testId}>
      <header className='panel-head'>
        <h3>{title}</h3>
        {caption !== undefined && caption !== null && caption !== '' && <span className='caption'>{caption}</span>}
      </header>
      {error !== undefined && error !== null && <div className='panel-error' role='status'>No data: {error}</div>}
      {children}
    </section>
  )
}

export function Empty ({ children }: { children: ReactNode }): JSX.Element {
  return <div className='empty'>{children}</div>
}

