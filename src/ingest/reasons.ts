import { type RejectReason, rejectReasons } from '../domain/index.ts'

/**
 * Why a value, an entry, a line or a whole payload was not taken in: the system's one vocabulary
 * of rejections (src/domain/wire.ts), the wire validator's and device ingest's.
 */
export const ingestRejectReasons = rejectReasons
export type IngestRejectReason = RejectReason

/** How much of a rejected text is kept: enough to recognise it, bounded whatever was sent. */
export const MAX_RAW_CHARS = 1024

/** `text` cut to MAX_RAW_CHARS UTF-16 units, never between the two halves of a surrogate pair. */
export function truncateRaw (text: string): string {
  if (text.length <= MAX_RAW_CHARS) return text
  const code = text.charCodeAt(MAX_RAW_CHARS - 1)
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? MAX_RAW_CHARS - 1 : MAX_RAW_CHARS)
}
