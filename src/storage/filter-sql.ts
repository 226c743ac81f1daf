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
