import { IotError } from '../domain/index.ts'

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses "500ms", "30s", "5m", "24h", "7d", "1h30m" or a plain number of seconds into ms. */
export function parseDuration (text: string, what = 'duration'): number {
  const t = text.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000)
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy
  let total = 0
  let matched = 0
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    total += Number(m[1]) * UNITS[m[2]!]!
    matched = re.lastIndex
  }
  if (matched === 0 || matched !== t.length) {
    throw new IotError('IOT_ERR_CONFIG', `${what}: cannot read "${text}" (use e.g. 500ms, 30s, 5m, 24h, 7d)`)
  }
  return Math.round(total)
}

/** Writes ms the way parseDuration reads it: the largest units first ("7d", "1h30m", "30s", "250ms"). */
export function formatDuration (ms: number): string {
  if (ms === 0) return '0s'
  let rest = Math.round(ms)
  let out = ''
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size)
    if (n > 0) out += `${n}${unit}`
    rest -= n * size
  }
  return out
}
