// Devices: the registered devices (revoked ones are not listed), each with its location, the
// sensors it has stored readings of, when it was last heard and whether it is online. The status
// is the server's (GET /api/devices): online when heard within `online_within_s` (2 min) or when
// MQTT reported it connected after its last reading; offline when not heard for longer or when its
// Last Will said so; never seen when nothing came from it yet. Re-read every 5 s while live.
import { useEffect, useState, type JSX } from 'react'
import type { DeviceListItemJson } from '../../../src/api/contract.ts'
import { api } from '../api.ts'
import { useFetch } from '../hooks.ts'
import { Kpi, KpiRow } from '../components/Kpi.tsx'
import { Panel } from '../components/Panel.tsx'
import { DataTable, type Column } from '../components/DataTable.tsx'
import { fmtClock, fmtDuration, fmtInt, fmtTime, typeLabel } from '../format.ts'
import './devices.css'

/** The list is re-read this often while live (the ingest writes last seen every 5 s). */
export const DEVICES_REFRESH_MS = 5000

type Device = DeviceListItemJson

/** How long ago, from a span in ms: "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function fmtAge (ms: number): string {
  if (!Number.isFinite(ms)) return '—'
  // Below a second, and a last seen after `as_of` (written by another process with a clock ahead).
  if (ms < 1000) return 'just now'
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s} s ago`
  const min = Math.floor(s / 60)
  if (min < 60) return `${min} min ago`
  const h = Math.floor(min / 60)
  if (h < 48) return `${h} h ago`
  return `${Math.floor(h / 24)} d ago`
}

const STATUS: Record<Device['status'], { label: string, className: string }> = {
  online: { label: 'online', className: 'dev-online' },
  offline: { label: 'offline', className: 'dev-offline' },
  unknown: { label: 'never seen', className: 'dev-never' }
}

function statusTitle (status: Device['status'], within: string): string {
  switch (status) {
    case 'online': return `Heard within the last ${within}, or connected over MQTT since its last reading`
    case 'offline': return `Nothing heard for more than ${within}, or its MQTT Last Will said offline`
    case 'unknown': return 'Registered, nothing received from it yet'
  }
}

export function DevicesTab ({ refresh, live }: { refresh: number, live: boolean }): JSX.Element {
  // A refresh of the dashboard (manual, or after live data) re-reads the list, and so does a
  // timer while live: a device going silent turns offline with no event to tell.
  const [poll, setPoll] = useState(0)
  useEffect(() => {
    if (!live) return
    const timer = setInterval(() => { if (!document.hidden) setPoll(p => p + 1) }, DEVICES_REFRESH_MS)
    return () => clearInterval(timer)
  }, [live])
  const list = useFetch(`devices:${refresh}:${poll}`, async s => await api.devices(s), true, 'devices')
  const d = list.data
  const devices = d?.devices ?? []
  const asOf = d === null ? NaN : Date.parse(d.as_of)
  const within = d === null ? '2 min' : fmtDuration(d.online_within_s * 1000)
  const count = (status: Device['status']): number => devices.filter(x => x.status === status).length
  const online = count('online')
  const offline = count('offline')

  const columns: Column<Device>[] = [
    { key: 'id', header: 'device', render: x => <span className='mono'>{x.id}</span> },
    { key: 'name', header: 'name', soft: true, render: x => x.name },
    { key: 'location', header: 'location', soft: true, render: x => x.location },
    {
      key: 'sensors',
      header: 'sensors',
      soft: true,
      title: 'The measurements it has stored readings of (its sensors <device>.<type>)',
      render: x => x.sensors.length === 0
        ? <span className='muted' title='No reading of it stored yet'>—</span>
        : (
          <span className='sensor-chips'>
            {x.sensors.map(s => (
              <span
                key={`${s.sensor_type}|${s.unit}`} className='sensor-chip'
                title={`sensor ${x.id}.${s.sensor_type}${s.cadence_ms === null ? '' : `, reports every ${fmtDuration(s.cadence_ms)} (the median interval the detectors learnt)`}`}
              >
                {typeLabel(s.sensor_type)}{s.unit === '' ? '' : ` ${s.unit}`}
                {s.cadence_ms === null ? null : <span className='muted' data-testid='sensor-cadence'> · {fmtDuration(s.cadence_ms)}</span>}
              </span>
            ))}
          </span>
          )
    },
    {
      key: 'seen',
      header: 'last seen',
      align: 'right',
      title: 'When the newest message from it arrived (server time); hover a cell for the time',
      render: x => x.last_seen === null
        ? <span className='muted' title='Nothing received from it yet'>never</span>
        : <span className='mono' data-testid='device-last-seen' title={`${fmtTime(x.last_seen)} UTC`}>{fmtAge(asOf - Date.parse(x.last_seen))}</span>
    },
    {
      key: 'status',
      header: 'status',
      align: 'center',
      title: `Offline: nothing heard for more than ${within}, or the MQTT Last Will said so`,
      render: x => <span className={`badge ${STATUS[x.status].className}`} title={statusTitle(x.status, within)}>{STATUS[x.status].label}</span>
    }
  ]

  return (
    <div className='tab'>
      <KpiRow>
        <Kpi label='Devices online' value={d === null ? '—' : `${fmtInt(online)} of ${fmtInt(devices.length)}`} testId='kpi-devices-online' {...(online > 0 ? { tone: 'ok' as const } : {})} />
        <Kpi label='Offline' value={d === null ? '—' : fmtInt(offline)} sub={`not heard for more than ${within}`} testId='kpi-devices-offline' {...(offline > 0 ? { tone: 'alert' as const } : {})} />
        <Kpi label='Never seen' value={d === null ? '—' : fmtInt(count('unknown'))} sub='registered, nothing received yet' testId='kpi-devices-never' />
      </KpiRow>
      <Panel
        title='Devices'
        caption={d === null
          ? undefined
          : `${fmtInt(devices.length)} registered (revoked ones not listed) · offline after ${within} without a message or on an MQTT Last Will · as of ${fmtClock(d.as_of)} UTC`}
        error={list.error}
      >
        <DataTable
          rows={devices}
          columns={columns}
          rowKey={x => x.id}
          testId='table-devices'
          empty={list.loading && d === null
            ? 'Loading…'
            : <>No devices registered yet: <code>npx iot-monitor devices add &lt;id&gt; --name … --location …</code> or the admin API (see “Connect your sensors” in the README)</>}
          rowClass={x => x.status === 'offline' ? 'row-offline' : x.status === 'unknown' ? 'row-never' : ''}
        />
      </Panel>
    </div>
  )
}
