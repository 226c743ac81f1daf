import { AnomalyConfigError } from './errors.ts'
import { restoreFrom, snapshotOf, type SnapshotReader, type SnapshotWriter, type StateInstaller } from './snapshot.ts'

const DAY_MS = 86_400_000

export interface DailyProfileOptions {
  /** Bins of the (UTC) day. Default 24 (hours). */
  bins?: number | undefined
  /** A day counts only with readings in at least this share of its bins. Default 0.8. */
  minCoverage?: number | undefined
  /** The profile is used once it explained at least this share of a following day's hourly variation. Default 0.5. */
  minSkill?: number | undefined
  /** Days the profile averages over (an exponential average across days, after the first few). Default 7. */
  memoryDays?: number | undefined
}

/** Whether a sensor has a daily cycle, as far as its past days tell. */
export type DailyPattern = 'learning' | 'cycle' | 'none'
const patterns: readonly DailyPattern[] = ['learning', 'cycle', 'none']

class Profile {
  /** UTC day number of the day being accumulated. */
  day = NaN
  readonly sum: Float64Array
  readonly count: Float64Array
  /** Learnt offset of each bin from its day's mean. */
  readonly offset: Float64Array
  readonly seen: Uint8Array
  /** Days learnt from. */
  days = 0
  /** Share of a day's hourly variation the profile explained, averaged over the days it was tried on. */
  skill = NaN
  pattern: DailyPattern = 'learning'

  constructor (bins: number) {
    this.sum = new Float64Array(bins)
    this.count = new Float64Array(bins)
    this.offset = new Float64Array(bins)
    this.seen = new Uint8Array(bins)
  }
}

function numberOption (name: string, v: number | undefined, dflt: number, ok: (x: number) => boolean, want: string): number {
  if (v === undefined) return dflt
  if (!Number.isFinite(v) || !ok(v)) throw new AnomalyConfigError(name, `must be ${want}, got ${String(v)}`)
  return v
}

/**
 * A per-sensor daily profile (the seasonal part of a baseline): the mean offset of each hour of the
 * UTC day from its day's mean, averaged over past days and interpolated linearly between hour
 * centres, so that a normal afternoon peak is expected rather than a surprise.
 *
 * It is used only when the data has a daily cycle: each complete day (readings in `minCoverage`
 * of its hours) is first predicted by the profile of the days before it; the profile is used
 * (`pattern` `cycle`) once it explained at least `minSkill` of the day's hourly variation
 * (1 − Σ(residual)² / Σ(hourly deviation)², averaged over the days tried), and not (`none`) when
 * it did not: noise or a random walk has no repeatable day. So it needs two complete days.
 * Days are event-time UTC days; learning takes the readings the detectors accepted. Pure; about
 * 100 numbers per sensor.
 */
export class DailyProfile {
  readonly bins: number
  readonly minCoverage: number
  readonly minSkill: number
  readonly memoryDays: number
  readonly #binMs: number
  readonly #sensors = new Map<string, Profile>()

  constructor (options: DailyProfileOptions = {}) {
    const bins = options.bins ?? 24
    if (!Number.isInteger(bins) || bins < 2 || DAY_MS % bins !== 0) throw new AnomalyConfigError('bins', `must be an integer >= 2 dividing a day in whole ms, got ${String(bins)}`)
    this.bins = bins
    this.#binMs = DAY_MS / bins
    this.minCoverage = numberOption('minCoverage', options.minCoverage, 0.8, x => x > 0 && x <= 1, 'in (0, 1]')
    this.minSkill = numberOption('minSkill', options.minSkill, 0.5, x => x > 0 && x < 1, 'in (0, 1)')
    this.memoryDays = numberOption('memoryDays', options.memoryDays, 7, x => x >= 1, '>= 1')
  }

  get size (): number {
    return this.#sensors.size
  }

  /** What the profile expects at `ts` relative to the day's mean (0 unless the sensor has a daily cycle). */
  offset (sensorId: string, ts: number): number {
    const p = this.#sensors.get(sensorId)
    if (p === undefined || p.pattern !== 'cycle') return 0
    const bins = this.bins
    const pos = (ts - Math.floor(ts / DAY_MS) * DAY_MS) / this.#binMs - 0.5
    const f = Math.floor(pos)
    const frac = pos - f
    const b0 = (f + bins) % bins
    const b1 = (f + 1) % bins
    return (p.offset[b0] as number) * (1 - frac) + (p.offset[b1] as number) * frac
  }

  /**
   * How far `offset` may be from the true cycle at `ts` (0 unless the sensor has a daily cycle):
   * the error of interpolating linearly between hour centres, |second difference| / 8 of the
   * profile around `ts`. A floor for the scale of what remains once the profile is subtracted:
   * on a cycle without noise the remainder is this error, which must not read as anomalies.
   */
  uncertainty (sensorId: string, ts: number): number {
    const p = this.#sensors.get(sensorId)
    if (p === undefined || p.pattern !== 'cycle') return 0
    const bins = this.bins
    const b = Math.floor((ts - Math.floor(ts / DAY_MS) * DAY_MS) / this.#binMs)
    const o = p.offset
    const at = (i: number): number => o[(i + bins) % bins] as number
    const c0 = Math.abs(at(b - 1) - 2 * at(b) + at(b + 1))
    const c1 = Math.abs(at(b) - 2 * at(b + 1) + at(b + 2))
    const c2 = Math.abs(at(b - 2) - 2 * at(b - 1) + at(b))
    return Math.max(c0, c1, c2) / 8
  }

  /** The sensor's daily pattern: `learning` until two complete days were seen. */
  pattern (sensorId: string): DailyPattern {
    return this.#sensors.get(sensorId)?.pattern ?? 'learning'
  }

  /** Skill of the profile on the days it was tried on (NaN before). */
  skill (sensorId: string): number {
    return this.#sensors.get(sensorId)?.skill ?? NaN
  }

  /**
   * Adds an accepted reading to its day; a reading of a later day closes the days before. Older
   * days' readings are ignored. Returns whether the sensor's pattern changed (to or from `cycle`):
   * values with the profile subtracted are then on another footing than before.
   */
  learn (sensorId: string, value: number, ts: number): boolean {
    if (!Number.isFinite(value) || !Number.isFinite(ts)) return false
    let p = this.#sensors.get(sensorId)
    if (p === undefined) {
      p = new Profile(this.bins)
      this.#sensors.set(sensorId, p)
    }
    const day = Math.floor(ts / DAY_MS)
    let changed = false
    if (day !== p.day) {
      if (day < p.day) return false
      if (Number.isFinite(p.day)) {
        const before = p.pattern === 'cycle'
        this.#closeDay(p)
        changed = before !== (p.pattern === 'cycle')
      }
      p.day = day
    }
    const b = Math.floor((ts - day * DAY_MS) / this.#binMs)
    p.sum[b] = (p.sum[b] as number) + value
    p.count[b] = (p.count[b] as number) + 1
    return changed
  }

  #closeDay (p: Profile): void {
    const bins = this.bins
    let covered = 0
    let total = 0
    for (let b = 0; b < bins; b++) {
      const c = p.count[b] as number
      if (c > 0) {
        covered++
        total += (p.sum[b] as number) / c
      }
    }
    if (covered >= this.minCoverage * bins) {
      const mean = total / covered
      let withProfile = 0
      let without = 0
      for (let b = 0; b < bins; b++) {
        const c = p.count[b] as number
        if (c === 0 || p.seen[b] === 0) continue
        const dev = (p.sum[b] as number) / c - mean
        const r = dev - (p.offset[b] as number)
        withProfile += r * r
        without += dev * dev
      }
      if (p.days > 0) {
        // A day that does not vary at all is explained by any flat profile; a flat profile explains nothing else.
        const s = without > 0 ? 1 - withProfile / without : withProfile === 0 ? 0 : -1
        p.skill = Number.isNaN(p.skill) ? s : (p.skill + s) / 2
        p.pattern = p.skill >= this.minSkill ? 'cycle' : 'none'
      }
      p.days++
      const w = 1 / Math.min(p.days, this.memoryDays)
      for (let b = 0; b < bins; b++) {
        const c = p.count[b] as number
        if (c === 0) continue
        const dev = (p.sum[b] as number) / c - mean
        p.offset[b] = p.seen[b] === 0 ? dev : (p.offset[b] as number) + w * (dev - (p.offset[b] as number))
        p.seen[b] = 1
      }
    }
    p.sum.fill(0)
    p.count.fill(0)
  }

  /** The sensor's profile as a standalone snapshot (`snapshot.ts`), or null when it has none. */
  snapshot (sensorId: string): Uint8Array | null {
    return snapshotOf('seasonal', this, sensorId)
  }

  /** Replaces the sensor's profile with a snapshot's; damaged bytes throw `AnomalyStateError` and leave it with none. */
  restore (sensorId: string, bytes: Uint8Array): void {
    restoreFrom('seasonal', this, sensorId, bytes)
  }

  /**
   * Appends the sensor's profile: the day being accumulated (its bins with readings: count and
   * Float64 sum), the learnt offsets (bins learnt), days, skill and pattern. About 250 bytes with
   * 24 bins at the end of a day, half of that at its start. False, writing nothing, when the sensor has none.
   */
  writeSnapshot (sensorId: string, out: SnapshotWriter): boolean {
    const p = this.#sensors.get(sensorId)
    if (p === undefined) return false
    const bins = this.bins
    out.uint(bins)
    out.f64(p.day)
    out.uint(p.days)
    out.f64(p.skill)
    out.u8(patterns.indexOf(p.pattern))
    // A bin without readings has a sum of +0 (it is reset with its count).
    const used = (b: number): boolean => p.count[b] !== 0 || !Object.is(p.sum[b], 0)
    out.bits(bins, used)
    for (let b = 0; b < bins; b++) {
      if (!used(b)) continue
      out.uint(p.count[b] as number)
      out.f64(p.sum[b] as number)
    }
    out.bits(bins, b => p.seen[b] !== 0)
    out.sparseF64(p.offset)
    return true
  }

  /** Decodes what `writeSnapshot` wrote (for a profile of the same `bins`); the installer replaces a sensor's profile with it. */
  readSnapshot (input: SnapshotReader): StateInstaller {
    const bins = input.uint('bins')
    if (bins !== this.bins) input.fail('bins', `a profile of ${bins} bins, this one has ${this.bins}`)
    const p = new Profile(bins)
    p.day = input.f64('day')
    if (!Number.isNaN(p.day) && !Number.isSafeInteger(p.day)) input.fail('day', `a UTC day number or NaN, got ${p.day}`)
    p.days = input.uint('days')
    p.skill = input.f64('skill')
    const pattern = patterns[input.u8('pattern')]
    if (pattern === undefined) input.fail('pattern', 'unknown pattern')
    p.pattern = pattern
    const used: number[] = []
    input.bits('bins', bins, (b, on) => { if (on) used.push(b) })
    for (const b of used) {
      p.count[b] = input.uint('count')
      p.sum[b] = input.f64('sum')
    }
    input.bits('seen', bins, (b, on) => { p.seen[b] = on ? 1 : 0 })
    input.sparseF64('offset', p.offset)
    return (sensorId) => { this.#sensors.set(sensorId, p) }
  }

  forget (sensorId: string): boolean {
    return this.#sensors.delete(sensorId)
  }

  clear (): void {
    this.#sensors.clear()
  }
}
