// Silences and maintenance windows: Alertmanager's matchers (`name=value`, `!=`, `=~` and `!~` with
// anchored regular expressions; a label the alarm lacks reads as empty) over a time range. A silence
// holds back notifications only: the alarm still shows and can be acted on.
import { IotError } from '../domain/index.ts'
import { type SilenceMatcher, type StoredSilence } from '../storage/index.ts'
import { type Labels } from './labels.ts'

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const MAX_MATCHERS = 20
const MAX_VALUE = 1000

const regexCache = new Map<string, RegExp>()

/** The anchored expression of a regex matcher (as Alertmanager anchors them). */
function regexOf (value: string): RegExp {
  let re = regexCache.get(value)
  if (re === undefined) {
    re = new RegExp(`^(?:${value})$`, 'u')
    if (regexCache.size > 1000) regexCache.clear()
    regexCache.set(value, re)
  }
  return re
}

/**
 * Checks matchers as given to the API: 1-20 of them, label names as Prometheus spells them, values
 * up to 1000 characters, regexes that compile, and at least one matcher that an empty label does not
 * satisfy (a silence of everything is refused, as Alertmanager refuses it). IOT_ERR_VALIDATION.
 */
export function validateMatchers (matchers: readonly SilenceMatcher[]): void {
  if (matchers.length === 0 || matchers.length > MAX_MATCHERS) {
    throw new IotError('IOT_ERR_VALIDATION', `a silence needs 1 to ${MAX_MATCHERS} matchers, got ${matchers.length}`)
  }
  for (const m of matchers) {
    if (!LABEL_NAME.test(m.name)) throw new IotError('IOT_ERR_VALIDATION', `matcher label name "${m.name}": expected [A-Za-z_][A-Za-z0-9_]*`)
    if (m.value.length > MAX_VALUE) throw new IotError('IOT_ERR_VALIDATION', `matcher ${m.name}: the value is longer than ${MAX_VALUE} characters`)
    if (m.isRegex) {
      try {
        regexOf(m.value)
      } catch (err) {
        throw new IotError('IOT_ERR_VALIDATION', `matcher ${m.name}=~"${m.value}": not a regular expression (${(err as Error).message})`)
      }
    }
  }
  if (matchers.every(m => matcherMatches(m, {}))) {
    throw new IotError('IOT_ERR_VALIDATION', 'a silence must have at least one matcher that an empty label does not match (it would silence every alarm)')
  }
}

export function matcherMatches (m: SilenceMatcher, labels: Labels): boolean {
  const v = labels[m.name] ?? ''
  let hit: boolean
  try {
    hit = m.isRegex ? regexOf(m.value).test(v) : v === m.value
  } catch {
    // A stored regex that no longer compiles (written by hand in SQL) silences nothing.
    return false
  }
  return m.isEqual ? hit : !hit
}

/** Ids of the silences in force at `nowMs` whose matchers all match `labels`. */
export function silencedBy (labels: Labels, silences: readonly StoredSilence[], nowMs: number): number[] {
  const ids: number[] = []
  for (const s of silences) {
    if (s.startsAt > nowMs || s.endsAt <= nowMs || s.matchers.length === 0) continue
    if (s.matchers.every(m => matcherMatches(m, labels))) ids.push(s.id)
  }
  return ids
}

/** Matchers from Alertmanager's text form: `alertname="x"`, `location=~"lab|office"`, `severity!=minor` (quotes optional). */
export function parseMatcher (text: string): SilenceMatcher {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(.*?))\s*$/.exec(text)
  if (m === null) throw new IotError('IOT_ERR_VALIDATION', `cannot read the matcher "${text}" (expected name="value", name!="value", name=~"regex" or name!~"regex")`)
  const op = m[2]!
  const value = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[4] ?? ''
  return { name: m[1]!, value, isRegex: op === '=~' || op === '!~', isEqual: op === '=' || op === '=~' }
}
