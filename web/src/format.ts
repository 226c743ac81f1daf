// Formatting shared by tables, KPIs and charts. All times are shown in UTC, like the API.
import type { Resolution } from '../../src/api/contract.ts'

const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

/** 2026-11-24 21:16:21 (UTC). */
export function fmtTime (iso: string | number | null | undefined, withSeconds = true): string {
  if (iso === null || iso === undefined) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  const s = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
  return withSeconds ? `${s}:${pad(d.getUTCSeconds())}` : s
}

/** 21:16:21 (UTC). */
export function fmtClock (iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return '—'
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
}

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
export function fmtInt (n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '—' : intFmt.format(n)
}

/** A sensor value: 4 significant digits at most, never exponent notation for these ranges. */
export function fmtValue (n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—'
  const abs = Math.abs(n)
  const d = abs >= 1000 ? 1 : abs >= 100 ? Math.min(digits, 2) : digits
  return n.toLocaleString('en-US', { minimumFractionDigits: 0, maximumFractionDigits: d })
}

export function fmtPct (ratio: number | null | undefined, digits = 1): string {
  return ratio === null || ratio === undefined || !Number.isFinite(ratio) ? '—' : `${(ratio * 100).toFixed(digits)} %`
}

export function fmtRatio (x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(3)
}

/** 60000 → "1 min", 3600000 → "1 h", 1500 → "1.5 s". */
export function fmtDuration (ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '—'
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)} s`
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(1)} min`
  if (ms < 86_400_000) return `${+(ms / 3_600_000).toFixed(1)} h`
  return `${+(ms / 86_400_000).toFixed(1)} d`
}

export function fmtLatency (ms: number): string {
  if (!Number.isFinite(ms)) return '—'
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`
}

/** "hourly roll-ups, 1 h buckets" */
export function resolutionCaption (resolution: Resolution, bucketMs: number): string {
  const source = resolution === 'raw' ? 'raw readings' : resolution === 'window' ? 'window aggregates' : 'hourly roll-ups'
  return `${source}, ${fmtDuration(bucketMs)} buckets`
}

/** How the charts treat anomalies, for their captions: "anomalies left out". */
export function chartAnomaliesCaption (s: { anomalies: 'include' | 'exclude' }): string {
  return s.anomalies === 'exclude' ? 'anomalies left out' : 'anomalies shown'
}

/** "temperature (°C)" */
export function withUnit (name: string, unit: string | null | undefined): string {
  return unit === null || unit === undefined || unit === '' ? name : `${name} (${unit})`
}

/** air_quality → "air quality" */
export function typeLabel (sensorType: string): string {
  return sensorType.replace(/_/g, ' ')
}
