// The query parameters the routes share: TypeBox schemas of the querystrings, from/to as ISO 8601
// or epoch ms, and the storage filters they become (with the dashboard's range defaults).
import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox'
import { IotError, parseTimestamp } from '../domain/index.ts'
import { type Queryable, type QueryFilter, type RangeFilter, newestReadingTime } from '../storage/index.ts'
import { iso } from './json.ts'

/** A querystring schema: with the app's ajv option removeAdditional: false, an unknown parameter is a 400, not ignored. */
export const querySchema = <T extends TProperties>(fields: T): TObject<T> => Type.Object(fields, { additionalProperties: false })

const TimeParam = Type.Union([Type.String({ minLength: 1, maxLength: 40 }), Type.Integer()])
export const rangeFields = {
  location: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  sensor_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  from: Type.Optional(TimeParam),
  to: Type.Optional(TimeParam)
}
export const limitField = (min: number, max: number, def: number): ReturnType<typeof Type.Integer> => Type.Integer({ minimum: min, maximum: max, default: def })
/** Rows a list answers when the query names no limit. */
export const DEFAULT_LIMIT = 100
/** The limit of a list endpoint: 1 to 5000 rows. */
export const listLimit = Type.Optional(limitField(1, 5000, DEFAULT_LIMIT))
export const FilterSchema = querySchema({ ...rangeFields, limit: listLimit })
export type Filter = Static<typeof FilterSchema>
export const LimitSchema = querySchema({ limit: listLimit })
export const RangeSchema = querySchema(rangeFields)
export type Range = Static<typeof RangeSchema>

export const MIN_TIME = -62_135_596_800_000 // 0001-01-01
export const MAX_TIME = 253_402_300_799_999 // 9999-12-31

/** from/to: ISO 8601 (no zone = UTC) or epoch milliseconds. */
export function toTime (v: string | number | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  const t = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : parseTimestamp(v)
  if (Number.isNaN(t) || t < MIN_TIME || t > MAX_TIME) {
    throw new IotError('IOT_ERR_VALIDATION', `${name}: not an ISO 8601 date-time or epoch ms in years 1-9999: ${v}`)
  }
  return t
}

export function filterOf (q: Filter): QueryFilter {
  return { location: q.location, sensorType: q.sensor_type, from: toTime(q.from, 'from'), to: toTime(q.to, 'to'), limit: q.limit ?? DEFAULT_LIMIT }
}

/**
 * The range of a dashboard view. Without from/to it is `defaultSpanMs` before the newest reading
 * (event time may run ahead of the wall clock), or before `now()` while nothing is stored.
 */
export async function rangeOf (db: Queryable, q: Range, defaultSpanMs: number, now: () => number): Promise<RangeFilter & { newest: number | null }> {
  const newest = await newestReadingTime(db)
  const to = toTime(q.to, 'to') ?? (newest === null ? now() : newest + 1)
  const from = toTime(q.from, 'from') ?? to - defaultSpanMs
  if (from >= to) throw new IotError('IOT_ERR_VALIDATION', `from (${iso(from)}) must be before to (${iso(to)})`)
  return { location: q.location, sensorType: q.sensor_type, from, to, newest }
}
