// dead_letters: rejected messages with their raw text and a machine-readable reason.
import { type DeadLetter } from '../domain/index.ts'
import { msToTimestamp, numberArray, textArray, timestampToMs } from './arrays.ts'
import { type Queryable } from './db.ts'

export async function insertDeadLetters (tx: Queryable, letters: readonly DeadLetter[]): Promise<void> {
  if (letters.length === 0) return
  // NUL cannot be stored in PostgreSQL text: keep it visible as \u0000.
  const clean = (s: string): string => s.includes('\u0000') ? s.replaceAll('\u0000', '\\u0000') : s
  await tx.query(`
    INSERT INTO dead_letters (received_at, source, reason, detail, raw)
    SELECT ${msToTimestamp('at')}, src, reason, detail, raw
    FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::text[]) AS x(at, src, reason, detail, raw)`,
  [numberArray(letters.map(d => d.receivedAt)), textArray(letters.map(d => d.source)), textArray(letters.map(d => d.reason)),
    textArray(letters.map(d => clean(d.detail))), textArray(letters.map(d => clean(d.raw)))])
}

export interface DeadLetterRow {
  id: number
  receivedAt: number
  source: string
  reason: string
  detail: string
  raw: string
}

export async function recentDeadLetters (db: Queryable, limit: number): Promise<DeadLetterRow[]> {
  return await db.query<DeadLetterRow>(`SELECT id, ${timestampToMs('received_at')} AS "receivedAt", source, reason, detail,
    left(raw, 2000) AS raw FROM dead_letters ORDER BY id DESC LIMIT $1`, [limit])
}
