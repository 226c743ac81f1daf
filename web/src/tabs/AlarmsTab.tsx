// Alarms: active first, then by severity and start (the server's order), with severity colours, age,
// status (ThingsBoard's four), and acknowledge / clear with a comment. A row opens to show its history
// and notifications. Changes arrive over the live stream (`alarms` events bump `rev`), so an alarm
// raised, cleared or acknowledged elsewhere shows without a reload. Acting needs the admin token
// when the server has one: asked for on the first refusal, kept for the page only.
import { Fragment, useEffect, useState, type JSX } from 'react'
import type { AlarmDetailJson, AlarmJson, AlarmStatusJson } from '../../../src/api/contract.ts'
import { ApiError, api, errorText } from '../api.ts'
import { useFetch } from '../hooks.ts'
import { Kpi, KpiRow } from '../components/Kpi.tsx'
import { Panel } from '../components/Panel.tsx'
import { fmtTime } from '../format.ts'
import { fmtAge } from './DevicesTab.tsx'
import './alarms.css'

const STATUS_LABEL: Record<AlarmStatusJson, string> = {
  active_unack: 'active, unacknowledged',
  active_ack: 'active, acknowledged',
  cleared_unack: 'cleared, unacknowledged',
  cleared_ack: 'cleared, acknowledged'
}

/** The admin token given in this page (not stored: acting is rarer than reading). */
let actionToken: string | undefined

type Action = 'ack' | 'clear'

function ActionForm ({ alarm, action, onDone, onCancel }: { alarm: AlarmJson, action: Action, onDone: () => void, onCancel: () => void }): JSX.Element {
  const [comment, setComment] = useState('')
  const [needToken, setNeedToken] = useState(false)
  const [token, setToken] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = (): void => {
    setBusy(true)
    setError(null)
    const t = needToken && token !== '' ? token : actionToken
    api.alarmAction(alarm.id, action, comment, t).then(() => {
      if (t !== undefined) actionToken = t
      onDone()
    }, (err: unknown) => {
      setBusy(false)
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) setNeedToken(true)
      setError(errorText(err))
    })
  }
  return (
    <div className='alarm-form' data-testid='alarm-form'>
      <textarea
        aria-label='Comment'
        data-testid='alarm-comment'
        placeholder={action === 'ack' ? 'Comment for your colleagues (e.g. "on it, ventilation checked")' : 'Why it is cleared'}
        value={comment}
        onChange={e => setComment(e.target.value)}
      />
      {needToken && <input type='password' aria-label='Admin token' placeholder='admin token' data-testid='alarm-admin-token' value={token} onChange={e => setToken(e.target.value)} />}
      <button type='button' className='primary' data-testid='alarm-confirm' disabled={busy} onClick={submit}>{action === 'ack' ? 'Acknowledge' : 'Clear'}</button>
      <button type='button' onClick={onCancel} disabled={busy}>Cancel</button>
      {error !== null && <div className='alarm-error' role='alert'>{error}</div>}
    </div>
  )
}

function History ({ id, rev }: { id: string, rev: number }): JSX.Element {
  const d = useFetch<AlarmDetailJson>(`alarm:${id}:${rev}`, async s => await api.alarm(id, s), true, `alarm:${id}`)
  if (d.data === null) return <div className='muted'>{d.error ?? 'Loading…'}</div>
  return (
    <ul className='alarm-history' data-testid='alarm-history'>
      {d.data.history.map(e => (
        <li key={e.id}><b>{e.kind.replace(/_/g, ' ')}</b> {fmtTime(e.at)} UTC by {e.by}{e.comment === null ? '' : `: “${e.comment}”`}</li>
      ))}
      {d.data.notifications.map(n => (
        <li key={n.idempotency_key}>
          notification <span className='mono'>{n.status}</span> ({n.idempotency_key.split('|').slice(3).join('|') || n.status}):{' '}
          {n.done_at === null ? `waiting, ${n.attempts} attempt${n.attempts === 1 ? '' : 's'}${n.note === null ? '' : ` (${n.note})`}` : n.note === null ? `delivered ${fmtTime(n.done_at)} UTC` : n.note}
        </li>
      ))}
    </ul>
  )
}

export function AlarmsTab ({ rev }: { rev: number }): JSX.Element {
  const [local, setLocal] = useState(0)
  const list = useFetch(`alarms:${rev}:${local}`, async s => await api.alarms({ limit: 500 }, s), true, 'alarms')
  const [open, setOpen] = useState<string | null>(null)
  const [acting, setActing] = useState<{ id: string, action: Action } | null>(null)
  // A row that left the list closes its form.
  const alarms = list.data?.alarms ?? []
  useEffect(() => {
    if (acting !== null && !alarms.some(a => a.id === acting.id)) setActing(null)
  }, [alarms, acting])
  const asOf = list.data === null ? NaN : Date.parse(list.data.as_of)
  const counts = list.data?.counts
  const sum = (s: AlarmStatusJson): number => counts === undefined ? 0 : Object.values(counts[s]).reduce((a, b) => a + b, 0)
  const activeUnack = sum('active_unack')
  const critical = counts === undefined ? 0 : counts.active_unack.critical + counts.active_ack.critical

  return (
    <div className='tab'>
      <KpiRow>
        <Kpi label='Active, unacknowledged' value={counts === undefined ? '—' : String(activeUnack)} testId='kpi-alarms-unack' {...(activeUnack > 0 ? { tone: 'alert' as const } : {})} />
        <Kpi label='Active, acknowledged' value={counts === undefined ? '—' : String(sum('active_ack'))} testId='kpi-alarms-ack' />
        <Kpi label='Critical now' value={counts === undefined ? '—' : String(critical)} testId='kpi-alarms-critical' {...(critical > 0 ? { tone: 'alert' as const } : {})} />
        <Kpi label='Cleared' value={counts === undefined ? '—' : String(sum('cleared_unack') + sum('cleared_ack'))} testId='kpi-alarms-cleared' />
      </KpiRow>
      <Panel title='Alarms' caption='active first, then by severity and start · times UTC · open a row for its history' error={list.error}>
        {alarms.length === 0
          ? <div className='empty'>{list.loading && list.data === null ? 'Loading…' : 'No alarms.'}</div>
          : (
            <table className='alarms' data-testid='table-alarms' data-rows={alarms.length}>
              <thead>
                <tr><th /><th>severity</th><th>alarm</th><th>originator</th><th>age</th><th>status</th><th /></tr>
              </thead>
              <tbody>
                {alarms.map(a => (
                  <Fragment key={a.id}>
                    <tr data-key={a.id} className={a.status.startsWith('cleared') ? 'cleared' : ''}>
                      <td>
                        <button type='button' aria-expanded={open === a.id} aria-label='History' data-testid='alarm-expand' onClick={() => setOpen(open === a.id ? null : a.id)}>
                          {open === a.id ? '▾' : '▸'}
                        </button>
                      </td>
                      <td><span className={`sev sev-${a.severity}`}>{a.severity}</span></td>
                      <td>{a.type}{a.ack_comment === null ? '' : <div className='muted'>“{a.ack_comment}” — {a.acknowledged_by}</div>}</td>
                      <td><span className='mono'>{a.originator.id}</span>{a.location === null || a.originator.kind === 'location' ? '' : <div className='muted'>{a.location}</div>}</td>
                      <td title={`since ${fmtTime(a.start)} UTC`}>{fmtAge(asOf - Date.parse(a.start)).replace(' ago', '')}</td>
                      <td><span className={`alarm-status ${a.status}`} data-testid='alarm-status' data-status={a.status}>{STATUS_LABEL[a.status]}</span></td>
                      <td className='actions'>
                        {!a.status.endsWith('_ack') && <button type='button' data-testid='alarm-ack' onClick={() => setActing({ id: a.id, action: 'ack' })}>Acknowledge</button>}
                        {a.status.startsWith('active') && <button type='button' data-testid='alarm-clear' onClick={() => setActing({ id: a.id, action: 'clear' })}>Clear</button>}
                      </td>
                    </tr>
                    {acting?.id === a.id && (
                      <tr><td /><td colSpan={6}>
                        <ActionForm alarm={a} action={acting.action} onCancel={() => setActing(null)} onDone={() => { setActing(null); setLocal(l => l + 1) }} />
                      </td></tr>
                    )}
                    {open === a.id && <tr><td /><td colSpan={6}><History id={a.id} rev={rev + local} /></td></tr>}
                  </Fragment>
                ))}
              </tbody>
            </table>
            )}
      </Panel>
    </div>
  )
}
