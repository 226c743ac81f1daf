// Typed fetch helpers for the endpoints of src/api/contract.ts. Every helper throws ApiError on a
// non-2xx answer or a network failure; the views turn that into an empty state, never a crash.
import type {
  AlarmDetailJson, AlarmJson, AlarmListJson, CorrelationJson, DeviceListJson, DeviceScoresJson, DeviceScoresListJson, LocationStatsJson, MetaJson, ModelJson,
  OverviewJson, PipelineJson, QualityJson, ReadingJson, ScoreHistogramJson, SeriesJson, SeriesPoint, WindowJson
} from '../../src/api/contract.ts'
import type { ChartAnomalies } from './url-state.ts'

export class ApiError extends Error {
  /** HTTP status, 0 for a network failure. */
  readonly status: number
  constructor (status: number, message: string) {
    super(message)
    this.name = 'ApiError'
    this.status = status
  }

  /** The endpoint is not there (an older server, or not yet deployed). */
  get missing (): boolean { return this.status === 404 }
}

export type Params = Record<string, string | number | undefined>

/** The filter every view shares; `from`/`to` are ISO strings relative to the newest reading. */
export interface ViewQuery {
  location?: string | undefined
  sensor_type?: string | undefined
  from?: string | undefined
  to?: string | undefined
}

export function buildUrl (path: string, params: Params = {}): string {
  const qs = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') qs.set(k, String(v))
  }
  const s = qs.toString()
  return s === '' ? path : `${path}?${s}`
}

/** The query the aggregate views share; `key` changes on every refresh (and with the filter). */
export interface SharedQuery extends ViewQuery {
  key: string
  /** What is asked, without the refresh revision (filter and range id). */
  scope: string
}

// A server reached beyond loopback asks for a token to read (README "Running beyond localhost").
// The token is kept in sessionStorage (localStorage when the reader asks to be remembered) and sent
// as `Authorization: Bearer` on every fetch; the live stream, which cannot send headers, uses the
// HttpOnly session cookie that POST /api/session sets (openSession). A 401 asks for the token
// (onAuthRequired: the TokenPrompt component listens).
const TOKEN_KEY = 'iot-monitor.token'

function storages (): Storage[] {
  try {
    return [window.sessionStorage, window.localStorage]
  } catch {
    return [] // storage refused (a privacy mode): the token lasts as long as the page
  }
}

let pageToken: string | null = null

/** The token to send, if one was given. */
export function storedToken (): string | null {
  for (const s of storages()) {
    const t = s.getItem(TOKEN_KEY)
    if (t !== null && t !== '') return t
  }
  return pageToken
}

function keepToken (token: string | null, remember: boolean): void {
  pageToken = token
  for (const s of storages()) s.removeItem(TOKEN_KEY)
  if (token === null) return
  const where = storages()[remember ? 1 : 0]
  where?.setItem(TOKEN_KEY, token)
}

const authListeners = new Set<() => void>()

/** Calls `fn` whenever the server refused a read for its token; returns the unsubscribe. */
export function onAuthRequired (fn: () => void): () => void {
  authListeners.add(fn)
  return () => { authListeners.delete(fn) }
}

function authRequired (): void {
  for (const fn of authListeners) fn()
}

/**
 * Sends `token` to POST /api/session, which sets the live stream's session cookie. `refused`: the
 * server does not take the token; `failed`: no answer.
 */
export async function openSession (token: string | null = storedToken()): Promise<'ok' | 'refused' | 'failed'> {
  try {
    const res = await fetch('/api/session', { method: 'POST', credentials: 'same-origin', headers: token === null ? {} : { authorization: `Bearer ${token}` } })
    if (res.status === 401) return 'refused'
    return res.ok ? 'ok' : 'failed'
  } catch {
    return 'failed'
  }
}

/** Checks the token with the server and keeps it when taken (`remember`: across browser restarts). */
export async function signIn (token: string, remember: boolean): Promise<'ok' | 'refused' | 'failed'> {
  const r = await openSession(token)
  if (r === 'ok') keepToken(token, remember)
  return r
}

/** A kept token the server refused: forgotten, and the reader is asked again. */
export function tokenRefused (): void {
  keepToken(null, false)
  authRequired()
}

export async function getJson<T> (path: string, params: Params, signal?: AbortSignal): Promise<T> {
  let res: Response
  const token = storedToken()
  try {
    res = await fetch(buildUrl(path, params), {
      signal: signal ?? null,
      headers: token === null ? { accept: 'application/json' } : { accept: 'application/json', authorization: `Bearer ${token}` }
    })
  } catch (err) {
    if (signal?.aborted === true) throw err
    throw new ApiError(0, `network error: ${(err as Error).message}`)
  }
  if (res.status === 401) {
    if (token !== null) keepToken(null, false)
    authRequired()
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`
    try {
      const body: unknown = await res.json()
      if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') message = body.message
    } catch { /* not JSON */ }
    throw new ApiError(res.status, res.status === 404 ? `${path} is not available on this server` : message)
  }
  const body: unknown = await res.json()
  return body as T
}

const q = (v: ViewQuery): Params => ({ location: v.location, sensor_type: v.sensor_type, from: v.from, to: v.to })

// Envelopes of the list endpoints (src/api/app.ts).
interface ReadingsBody { count: number, readings: ReadingJson[] }
interface AnomaliesBody { count: number, anomalies: ReadingJson[] }
interface AggregatesBody { count: number, aggregates: WindowJson[] }
interface ModelsBody { count: number, models: ModelJson[] }

export type Detector = 'ml' | 'rule' | 'zscore' | 'combined'

export interface SeriesOptions {
  max_points?: number
  group_by?: 'location' | 'sensor_type'
  min_resolution?: 'raw' | 'window' | 'hour'
  /**
   * `exclude`: every point's avg/min/max/n over the readings the combined verdict did not flag.
   * Sent only when `exclude`; `include` is the server's default.
   */
  anomalies?: ChartAnomalies
}

/** A /api/series answer for the charts, saying whether anomalies were left out. */
export interface ChartSeriesJson extends SeriesJson {
  /** What the points hold: every reading (`include`) or the unflagged ones (`exclude`). */
  anomalies: ChartAnomalies
}

/** A point needs numbers to draw: a bucket whose readings were all left out has none. */
const drawable = (p: SeriesPoint): boolean => Number.isFinite(p[0]) && Number.isFinite(p[1]) && Number.isFinite(p[2]) && Number.isFinite(p[3])

/** The time series the charts draw, anomalies left out or not. */
async function chartSeries (v: ViewQuery, opts: SeriesOptions, signal?: AbortSignal): Promise<ChartSeriesJson> {
  const { anomalies = 'include', ...rest } = opts
  const params: Params = { ...q(v), ...rest, ...(anomalies === 'exclude' ? { anomalies } : {}) }
  const body = await getJson<SeriesJson>('/api/series', params, signal)
  return { ...body, series: body.series.map(s => ({ ...s, points: s.points.filter(drawable) })), anomalies }
}

export const api = {
  meta: async (signal?: AbortSignal) => await getJson<MetaJson>('/api/meta', {}, signal),
  pipeline: async (signal?: AbortSignal) => await getJson<PipelineJson>('/api/pipeline', {}, signal),
  overview: async (v: ViewQuery, signal?: AbortSignal) => await getJson<OverviewJson>('/api/overview', q(v), signal),
  series: chartSeries,
  /** Newest readings, whatever the time range (the live table). */
  readings: async (v: ViewQuery, limit: number, signal?: AbortSignal) =>
    (await getJson<ReadingsBody>('/api/readings', { location: v.location, sensor_type: v.sensor_type, limit }, signal)).readings,
  anomalies: async (v: ViewQuery, detector: Detector | undefined, limit: number, signal?: AbortSignal) =>
    (await getJson<AnomaliesBody>('/api/anomalies', { location: v.location, sensor_type: v.sensor_type, detector, limit }, signal)).anomalies,
  aggregates: async (v: ViewQuery, limit: number, signal?: AbortSignal) =>
    (await getJson<AggregatesBody>('/api/aggregates', { location: v.location, sensor_type: v.sensor_type, limit }, signal)).aggregates,
  quality: async (v: ViewQuery, signal?: AbortSignal) => await getJson<QualityJson>('/api/detection/quality', { sensor_type: v.sensor_type }, signal),
  scores: async (v: ViewQuery, limit: number, signal?: AbortSignal) =>
    await getJson<ScoreHistogramJson>('/api/detection/scores', { location: v.location, sensor_type: v.sensor_type, limit }, signal),
  models: async (limit: number, signal?: AbortSignal) => (await getJson<ModelsBody>('/api/detection/models', { limit }, signal)).models,
  /** The devices the device-level (multivariate) detector scores, each with its newest score. */
  deviceScoreSummaries: async (signal?: AbortSignal) => (await getJson<DeviceScoresListJson>('/api/detection/devices', {}, signal)).devices,
  /** A device's scores in [from, to), oldest first: the newest `limit` of them. */
  deviceScores: async (device: string, range: Pick<ViewQuery, 'from' | 'to'>, limit: number, signal?: AbortSignal) =>
    await getJson<DeviceScoresJson>(`/api/detection/devices/${encodeURIComponent(device)}/scores`, { from: range.from, to: range.to, limit }, signal),
  correlation: async (v: ViewQuery, signal?: AbortSignal) =>
    await getJson<CorrelationJson>('/api/analytics/correlation', { location: v.location, from: v.from, to: v.to }, signal),
  stats: async (v: ViewQuery, signal?: AbortSignal) => await getJson<LocationStatsJson>('/api/analytics/stats', q(v), signal),
  /** The registered devices (revoked ones left out) with status, last seen and sensors; no filter applies. */
  devices: async (signal?: AbortSignal) => await getJson<DeviceListJson>('/api/devices', {}, signal),
  /** Alarms, active first (with the counts by status and severity). */
  alarms: async (params: { state?: 'active' | 'cleared' | 'all', limit?: number }, signal?: AbortSignal) =>
    await getJson<AlarmListJson>('/api/alarms', params, signal),
  alarm: async (id: string, signal?: AbortSignal) => await getJson<AlarmDetailJson>(`/api/alarms/${encodeURIComponent(id)}`, {}, signal),
  /** Acknowledges or clears an alarm; `token` (the admin token) overrides the kept one. */
  alarmAction: async (id: string, action: 'ack' | 'clear', comment: string, token?: string) =>
    (await postJson<{ alarm: AlarmJson }>(`/api/alarms/${encodeURIComponent(id)}/${action}`, { comment }, token)).alarm
}

/**
 * POSTs JSON; throws ApiError on a non-2xx answer (401/403: the action needs the admin token). A
 * refusal here does not forget the kept token: it may read, only not act.
 */
export async function postJson<T> (path: string, body: unknown, token: string | undefined = storedToken() ?? undefined): Promise<T> {
  let res: Response
  try {
    res = await fetch(path, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json', ...(token === undefined || token === '' ? {} : { authorization: `Bearer ${token}` }) },
      body: JSON.stringify(body)
    })
  } catch (err) {
    throw new ApiError(0, `network error: ${(err as Error).message}`)
  }
  const answer: unknown = await res.json().catch(() => null)
  if (!res.ok) {
    const message = typeof answer === 'object' && answer !== null && 'message' in answer && typeof answer.message === 'string' ? answer.message : `${res.status} ${res.statusText}`
    throw new ApiError(res.status, message)
  }
  return answer as T
}

export function errorText (err: unknown): string {
  if (err instanceof ApiError) return err.message
  if (err instanceof Error) return err.message
  return String(err)
}
