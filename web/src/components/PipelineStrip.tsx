// The pipeline's health under the title: throughput, latency, watermark, late and dead-lettered
// input, consumer lag, and when each sensor type's model was last trained. GET /api/pipeline,
// refreshed by the live `pipeline` events (throughput, watermark, lag) in between.
import type { JSX, ReactNode } from 'react'
import type { LivePipelineJson, PipelineJson } from '../../../src/api/contract.ts'
import { fmtClock, fmtInt, fmtLatency, fmtTime, typeLabel } from '../format.ts'

function Stat ({ label, value, testId, title, tone }: { label: string, value: ReactNode, testId: string, title?: string, tone?: 'warn' }): JSX.Element {
  return (
    <div className={`stat ${tone ?? ''}`} title={title}>
      <span className='stat-label'>{label}</span>
      <span className='stat-value' data-testid={testId}>{value}</span>
    </div>
  )
}

export function PipelineStrip ({ pipeline, live, error }: {
  pipeline: PipelineJson | null
  live: LivePipelineJson | null
  error: string | null
}): JSX.Element {
  if (pipeline === null && live === null) {
    return (
      <div className='strip' data-testid='pipeline-strip'>
        <span className='muted'>Pipeline health: {error ?? 'loading…'}</span>
      </div>
    )
  }
  const rps = live?.readings_per_s ?? pipeline?.readings_per_s ?? null
  const total = live?.readings_total ?? pipeline?.readings_total ?? null
  const watermark = live?.watermark ?? pipeline?.watermark ?? null
  const lag = live !== null ? live.consumer_lag : pipeline?.consumer_lag ?? null
  const latency = pipeline?.latency_ms ?? null
  const models = [...(pipeline?.models ?? [])].sort((a, b) => a.key.localeCompare(b.key))
  return (
    <div className='strip' data-testid='pipeline-strip'>
      <Stat label='throughput' value={rps === null ? '—' : `${fmtInt(rps)} readings/s`} testId='pipeline-rps' title={`${fmtInt(total)} readings stored`} />
      <Stat
        label='latency p50 / p99'
        value={latency === null ? '—' : `${fmtLatency(latency.p50)} / ${fmtLatency(latency.p99)}`}
        testId='pipeline-latency'
        title='Bus to database, last 60 s of wall time'
      />
      <Stat label='watermark' value={watermark === null ? '—' : fmtClock(watermark)} testId='pipeline-watermark' title={`Event-time watermark (UTC): ${fmtTime(watermark)}`} />
      <Stat label='late readings' value={fmtInt(pipeline?.late_readings ?? null)} testId='pipeline-late' title='Readings behind the watermark beyond the allowed lateness' />
      <Stat
        label='dead letters'
        value={fmtInt(pipeline?.dead_letters ?? null)}
        testId='pipeline-dead-letters'
        title='Input that failed validation'
        {...((pipeline?.dead_letters ?? 0) > 0 ? { tone: 'warn' as const } : {})}
      />
      {lag !== null && <Stat label='consumer lag' value={`${fmtInt(lag)} records`} testId='pipeline-lag' />}
      <div className='stat models' data-testid='pipeline-models'>
        <span className='stat-label'>last model training</span>
        <span className='stat-value'>
          {models.length === 0
            ? <span className='muted'>no model yet</span>
            : models.map(m => (
              <span key={m.key} className='chip' title={`${m.version}: ${fmtInt(m.samples)} samples, trained ${fmtTime(m.trained_at)} UTC`}>
                {typeLabel(m.key)} <b>#{m.sequence}</b> {fmtClock(m.trained_at)}
              </span>
            ))}
        </span>
      </div>
    </div>
  )
}
