// The dashboard: header, pipeline strip, controls and five tabs. The view (tab, filters, range,
// records, anomalies in charts, live) is kept in the URL. Live events keep the recent lists
// current; aggregate views re-fetch at most every 5 s, and only after live events arrived.
import { useCallback, useEffect, useMemo, useReducer, useRef, useState, type JSX } from 'react'
import type { AlarmCountsJson, MetaJson, ReadingJson } from '../../src/api/contract.ts'
import { api, errorText, type SharedQuery } from './api.ts'
import { openLive, type LiveStatus } from './live.ts'
import { useFetch } from './hooks.ts'
import { initialLiveData, liveReducer, RECENT_ANOMALIES, RECENT_READINGS } from './store.ts'
import { parseView, rangeMs, TABS, writeView, type ViewState } from './url-state.ts'
import { Controls } from './components/Controls.tsx'
import { PipelineStrip } from './components/PipelineStrip.tsx'
import { RealtimeTab } from './tabs/RealtimeTab.tsx'
import { WindowsTab } from './tabs/WindowsTab.tsx'
import { MlTab } from './tabs/MlTab.tsx'
import { AnalyticsTab } from './tabs/AnalyticsTab.tsx'
import { DevicesTab } from './tabs/DevicesTab.tsx'
import { AlarmsTab } from './tabs/AlarmsTab.tsx'

/** Aggregate views re-fetch at most this often while live. */
const REFRESH_MS = 5000

export function App (): JSX.Element {
  const [view, setView] = useState<ViewState>(() => parseView(window.location.search))
  useEffect(() => writeView(view), [view])
  const update = useCallback((patch: Partial<ViewState>) => setView(v => ({ ...v, ...patch })), [])

  // A refresh: manual (also reloads the recent lists) or throttled after live events.
  const [tick, setTick] = useState(0)
  const [manual, setManual] = useState(0)
  const lastRefresh = useRef(Date.now())
  const refreshTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)
  const refreshNow = useCallback(() => {
    clearTimeout(refreshTimer.current)
    refreshTimer.current = undefined
    lastRefresh.current = Date.now()
    setTick(t => t + 1)
  }, [])
  // Live data arrived: refresh once the 5 s since the last refresh are over. A hidden page only
  // remembers that data arrived and refreshes when shown again.
  const missed = useRef(false)
  const noteLiveData = useCallback(() => {
    if (document.hidden) {
      missed.current = true
      return
    }
    if (refreshTimer.current !== undefined) return
    const wait = Math.max(250, lastRefresh.current + REFRESH_MS - Date.now())
    refreshTimer.current = setTimeout(refreshNow, wait)
  }, [refreshNow])
  useEffect(() => {
    const onVisible = (): void => {
      if (!document.hidden && missed.current) {
        missed.current = false
        noteLiveData()
      }
    }
    document.addEventListener('visibilitychange', onVisible)
    return () => {
      document.removeEventListener('visibilitychange', onVisible)
      clearTimeout(refreshTimer.current)
    }
  }, [noteLiveData])

  // Live lists.
  const [live, dispatch] = useReducer(liveReducer, view.records, initialLiveData)
  useEffect(() => dispatch({ type: 'limit', limit: view.records }), [view.records])
  const newestSeen = useRef<string | null>(null)
  newestSeen.current = live.newestSeen

  // Meta (filter options and the newest reading, the anchor of every time range), on every refresh.
  const [meta, setMeta] = useState<MetaJson | null>(null)
  const [metaError, setMetaError] = useState<string | null>(null)
  const [anchor, setAnchor] = useState<{ newest: string | null, rev: number } | null>(null)
  useEffect(() => {
    const ctl = new AbortController()
    api.meta(ctl.signal).then(
      m => {
        setMeta(m)
        setMetaError(null)
        setAnchor({ newest: m.newest ?? newestSeen.current, rev: tick })
      },
      (err: unknown) => {
        if (ctl.signal.aborted) return
        setMetaError(errorText(err))
        setAnchor({ newest: newestSeen.current, rev: tick })
      })
    return () => ctl.abort()
  }, [tick])

  const query = useMemo((): SharedQuery | null => {
    if (anchor === null) return null
    const filter = { location: view.location || undefined, sensor_type: view.sensorType || undefined }
    const newest = anchor.newest === null ? NaN : Date.parse(anchor.newest)
    const range = Number.isFinite(newest)
      ? { from: new Date(newest - rangeMs(view.range) + 1).toISOString(), to: new Date(newest + 1).toISOString() }
      : {}
    const q = { ...filter, ...range }
    return { ...q, key: `${JSON.stringify(q)}#${anchor.rev}`, scope: JSON.stringify({ ...filter, range: view.range }) }
  }, [anchor, view.location, view.sensorType, view.range])

  const pipeline = useFetch(`pipeline#${tick}`, async s => await api.pipeline(s), true, 'pipeline')

  // Alarms: the header's count, and the Alarms tab re-read on every live `alarms` event.
  const [alarmRev, setAlarmRev] = useState(0)
  const [alarmCounts, setAlarmCounts] = useState<AlarmCountsJson | null>(null)
  useEffect(() => {
    const ctl = new AbortController()
    api.alarms({ state: 'active', limit: 1 }, ctl.signal).then(a => setAlarmCounts(a.counts), () => {})
    return () => ctl.abort()
  }, [manual])
  const activeAlarms = alarmCounts === null ? null : Object.values(alarmCounts.active_unack).reduce((a, b) => a + b, 0) + Object.values(alarmCounts.active_ack).reduce((a, b) => a + b, 0)
  const unackedAlarms = alarmCounts === null ? 0 : Object.values(alarmCounts.active_unack).reduce((a, b) => a + b, 0)

  // Recent lists: reloaded when the filter, the records count, live mode or a manual refresh changes.
  const listKey = `${view.location}|${view.sensorType}|${view.records}|${view.live}|${manual}`
  useEffect(() => {
    const ctl = new AbortController()
    const f = { location: view.location || undefined, sensor_type: view.sensorType || undefined }
    const load = <K extends 'readings' | 'anomalies' | 'mlAnomalies'>(key: K, p: Promise<ReadingJson[]>): void => {
      p.then(
        rows => { if (!ctl.signal.aborted) dispatch({ type: 'loaded', key, rows }) },
        (err: unknown) => { if (!ctl.signal.aborted) dispatch({ type: 'failed', key, error: errorText(err) }) })
    }
    load('readings', api.readings(f, RECENT_READINGS, ctl.signal))
    load('anomalies', api.anomalies(f, undefined, RECENT_ANOMALIES, ctl.signal))
    load('mlAnomalies', api.anomalies(f, 'ml', view.records, ctl.signal))
    api.aggregates(f, view.records, ctl.signal).then(
      rows => { if (!ctl.signal.aborted) dispatch({ type: 'loaded', key: 'windows', rows }) },
      (err: unknown) => { if (!ctl.signal.aborted) dispatch({ type: 'failed', key: 'windows', error: errorText(err) }) })
    return () => ctl.abort()
    // listKey holds every input of this effect.
  }, [listKey])

  // The live stream, re-opened when the filter changes, closed while paused.
  const [status, setStatus] = useState<LiveStatus>(view.live ? 'connecting' : 'paused')
  useEffect(() => {
    if (!view.live) {
      setStatus('paused')
      return
    }
    const close = openLive({ location: view.location, sensorType: view.sensorType }, {
      readings: rows => { dispatch({ type: 'live-readings', rows }); noteLiveData() },
      anomalies: rows => { dispatch({ type: 'live-anomalies', rows }); noteLiveData() },
      windows: rows => { dispatch({ type: 'live-windows', rows }); noteLiveData() },
      pipeline: p => dispatch({ type: 'live-pipeline', pipeline: p }),
      alarms: a => {
        setAlarmCounts(a.counts)
        setAlarmRev(r => r + 1)
      },
      status: setStatus
    })
    return () => {
      close()
      clearTimeout(refreshTimer.current)
      refreshTimer.current = undefined
    }
  }, [view.live, view.location, view.sensorType, noteLiveData])

  const onRefresh = useCallback(() => {
    setManual(m => m + 1)
    refreshNow()
  }, [refreshNow])

  const units = useMemo(() => {
    const u: Record<string, string> = {}
    for (const r of live.readings.rows) u[r.sensor_type] = r.unit
    for (const t of meta?.sensor_types ?? []) u[t.sensor_type] = t.unit
    return u
  }, [meta, live.readings.rows])

  const newest = [meta?.newest ?? null, live.newestSeen].reduce<string | null>((a, b) => b !== null && (a === null || b > a) ? b : a, null)

  return (
    <div className='app'>
      <header className='top'>
        <div className='title'>
          <h1>iot-monitor</h1>
          <span className='subtitle'>Real-time environmental monitoring</span>
        </div>
        <PipelineStrip pipeline={pipeline.data} live={view.live ? live.pipeline : null} error={pipeline.error} />
        {activeAlarms !== null && (
          <button
            type='button'
            className={`alarm-count ${unackedAlarms > 0 ? 'firing' : ''}`}
            data-testid='header-alarms'
            data-active={activeAlarms}
            data-unack={unackedAlarms}
            title='Active alarms (unacknowledged); open the Alarms tab'
            onClick={() => update({ tab: 'alarms' })}
          >
            {activeAlarms} active alarm{activeAlarms === 1 ? '' : 's'}{unackedAlarms > 0 ? ` (${unackedAlarms} unacknowledged)` : ''}
          </button>
        )}
      </header>
      <Controls view={view} meta={meta} status={status} newest={newest} onChange={update} onRefresh={onRefresh} />
      {metaError !== null && meta === null && <div className='notice' role='status'>Filter options unavailable: {metaError}</div>}
      <nav className='tabs' role='tablist'>
        {TABS.map(t => (
          <button
            key={t.id}
            type='button'
            role='tab'
            aria-selected={view.tab === t.id}
            className={view.tab === t.id ? 'active' : ''}
            data-testid={`tab-${t.id}`}
            onClick={() => update({ tab: t.id })}
          >
            {t.label}
          </button>
        ))}
      </nav>
      <main className='tab-panel' role='tabpanel' data-testid={`panel-${view.tab}`}>
        {view.tab === 'realtime' && <RealtimeTab query={query} live={live} anomalies={view.anomalies} />}
        {view.tab === 'windows' && <WindowsTab query={query} live={live} records={view.records} units={units} anomalies={view.anomalies} />}
        {view.tab === 'ml' && <MlTab query={query} live={live} records={view.records} />}
        {view.tab === 'analytics' && <AnalyticsTab query={query} />}
        {view.tab === 'devices' && <DevicesTab refresh={manual} live={view.live} />}
        {view.tab === 'alarms' && <AlarmsTab rev={alarmRev + manual} />}
      </main>
      <footer className='foot'>
        Times in UTC. Ranges end at the newest stored reading. Data: <code>/api</code> of this server.
      </footer>
    </div>
  )
}
