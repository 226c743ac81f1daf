// PostgreSQL array literals, sent as one text parameter and cast in SQL (`$1::float8[]`).
// Identical on postgres.js and PGlite, and far cheaper than one parameter per value.
export function textArray (values: readonly (string | null)[]): string {
  let s = '{'
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (i > 0) s += ','
    s += v === null || v === undefined ? 'NULL' : '"' + v.replace(/[\\"]/g, '\\$&') + '"'
  }
  return s + '}'
}

/** Numbers keep full precision: String(x) is the shortest text that parses back to x. */
export function numberArray (values: readonly (number | null)[]): string {
  let s = '{'
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (i > 0) s += ','
    s += v === null || v === undefined ? 'NULL' : String(v)
  }
  return s + '}'
}

export function boolArray (values: readonly (boolean | null)[]): string {
  let s = '{'
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (i > 0) s += ','
    s += v === null || v === undefined ? 'NULL' : v ? 't' : 'f'
  }
  return s + '}'
}

/** SQL expression turning a float8 epoch-ms value into timestamptz, exact to the microsecond (domain/wire.ts fromMicroseconds). */
export const msToTimestamp = (expr: string): string => `to_timestamp(${expr} / 1000.0)`
/** SQL expression turning a timestamptz into epoch ms (float8) with its microseconds: extract gives the exact numeric, the cast rounds it as JS divides µs by 1000. */
export const timestampToMs = (expr: string): string => `(extract(epoch from ${expr}) * 1000)::float8`
