// The live stream: one EventSource on /api/live. The browser reconnects by itself after a dropped
// connection (the server sends `retry: 2000`); when the server refuses the stream (an HTTP error,
// e.g. an older server without /api/live, or a session that ended) the browser gives up, so we
// retry with a backoff. EventSource cannot send an Authorization header: with a token kept, each
// of our (re)connects first renews the session cookie the stream is read with (POST /api/session).
import type { LiveAlarmsJson, LivePipelineJson, ReadingJson, WindowJson } from '../../src/api/contract.ts'
import { buildUrl, openSession, storedToken, tokenRefused } from './api.ts'

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'paused' | 'unavailable'

export interface LiveHandlers {
  readings: (rows: ReadingJson[]) => void
  anomalies: (rows: ReadingJson[]) => void
  windows: (rows: WindowJson[]) => void
  pipeline: (p: LivePipelineJson) => void
  /** Alarms changed (raised, cleared, acknowledged...): the counts and the changed alarms. */
  alarms?: (a: LiveAlarmsJson) => void
  status: (s: LiveStatus) => void
}

function parseArray<T> (data: string): T[] | null {
  try {
    const v: unknown = JSON.parse(data)
    return Array.isArray(v) ? v as T[] : null
  } catch {
    return null
  }
}

function parseObject<T> (data: string): T | null {
  try {
    const v: unknown = JSON.parse(data)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as T : null
  } catch {
    return null
  }
}

/** Opens the stream; returns the function that closes it. */
export function openLive (filter: { location: string, sensorType: string }, h: LiveHandlers): () => void {
  const url = buildUrl('/api/live', { location: filter.location, sensor_type: filter.sensorType })
  let es: EventSource | null = null
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let backoff = 2000
  let closed = false

  const connect = async (): Promise<void> => {
    if (closed) return
    h.status('connecting')
    if (storedToken() !== null && await openSession() === 'refused') tokenRefused()
    if (closed) return
    const source = new EventSource(url)
    es = source
    source.onopen = () => {
      backoff = 2000
      h.status('live')
    }
    source.onerror = () => {
      if (closed) return
      if (source.readyState === EventSource.CLOSED) {
        // The server answered with an error: the browser will not retry, we do.
        h.status('unavailable')
        source.close()
        retryTimer = setTimeout(() => { void connect() }, backoff)
        backoff = Math.min(backoff * 2, 30_000)
      } else {
        h.status('reconnecting')
      }
    }
    source.addEventListener('readings', (e: MessageEvent<string>) => {
      const rows = parseArray<ReadingJson>(e.data)
      if (rows !== null && rows.length > 0) h.readings(rows)
    })
    source.addEventListener('anomalies', (e: MessageEvent<string>) => {
      const rows = parseArray<ReadingJson>(e.data)
      if (rows !== null && rows.length > 0) h.anomalies(rows)
    })
    source.addEventListener('windows', (e: MessageEvent<string>) => {
      const rows = parseArray<WindowJson>(e.data)
      if (rows !== null && rows.length > 0) h.windows(rows)
    })
    source.addEventListener('pipeline', (e: MessageEvent<string>) => {
      const p = parseObject<LivePipelineJson>(e.data)
      if (p !== null) h.pipeline(p)
    })
    source.addEventListener('alarms', (e: MessageEvent<string>) => {
      const a = parseObject<LiveAlarmsJson>(e.data)
      if (a !== null) h.alarms?.(a)
    })
  }

  void connect()
  return () => {
    closed = true
    clearTimeout(retryTimer)
    es?.close()
    es = null
  }
}
