// SQL conditions of the API's filters: each helper pushes its value onto the statement's
// parameters and returns the placeholder or condition that uses it.
import { msToTimestamp } from './arrays.ts'

export function param (params: unknown[], v: unknown): string {
  params.push(v)
  return `$${params.length}`
}

/** A parameter of epoch ms as timestamptz. */
export const tsParam = (params: unknown[], ms: number): string => msToTimestamp(`${param(params, ms)}::float8`)

/** Conditions for a location and sensor type filter (those given). */
export function keyConds (f: { location?: string | undefined, sensorType?: string | undefined }, params: unknown[]): string[] {
  const conds: string[] = []
  if (f.location !== undefined) conds.push(`location = ${param(params, f.location)}`)
  if (f.sensorType !== undefined) conds.push(`sensor_type = ${param(params, f.sensorType)}`)
  return conds
}

export interface QueryFilter {
  location?: string | undefined
  sensorType?: string | undefined
  /** Inclusive lower bound on event time (epoch ms). */
  from?: number | undefined
  /** Exclusive upper bound on event time (epoch ms). */
  to?: number | undefined
  limit: number
}

/** WHERE (filter conditions, `extra` first) and its parameters; the limit is pushed last. */
export function whereFilter (f: QueryFilter, timeColumn: string, extra: string[] = []): { sql: string, params: unknown[] } {
  const params: unknown[] = []
  const conds = [...extra, ...keyConds(f, params)]
  if (f.from !== undefined) conds.push(`${timeColumn} >= ${tsParam(params, f.from)}`)
  if (f.to !== undefined) conds.push(`${timeColumn} < ${tsParam(params, f.to)}`)
  params.push(f.limit)
  return { sql: conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : '', params }
}
