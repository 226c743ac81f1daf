// COPY … FROM STDIN (FORMAT binary): rows written straight into one Buffer. Neither side formats or
// parses numbers and times as text: for readings that is most of the work a COPY does, in Node and
// in PostgreSQL. Each value must be sent as exactly its column's type (no casts in binary COPY).

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
/** 2000-01-01T00:00:00Z, PostgreSQL's epoch, in Unix ms. */
const PG_EPOCH_MS = 946_684_800_000
const TWO_32 = 4_294_967_296
/** Strings kept encoded (sensor ids, types, locations, units, model versions repeat row after row). */
const CACHE_LIMIT = 50_000
const CACHE_MAX_LENGTH = 64

export class BinaryCopy {
  #buf: Buffer
  #pos = 0
  readonly #encoded = new Map<string, Buffer>()

  constructor (bytes = 1 << 16) {
    this.#buf = Buffer.allocUnsafe(Math.max(bytes, 64))
  }

  /** Starts the stream (signature, flags, header extension) with nothing written yet. */
  begin (): this {
    this.#pos = 0
    this.#room(SIGNATURE.length + 8)
    SIGNATURE.copy(this.#buf, 0)
    this.#buf.writeInt32BE(0, SIGNATURE.length)
    this.#buf.writeInt32BE(0, SIGNATURE.length + 4)
    this.#pos = SIGNATURE.length + 8
    return this
  }

  /** Starts a row of `fields` columns. */
  row (fields: number): void {
    this.#room(2)
    this.#buf.writeInt16BE(fields, this.#pos)
    this.#pos += 2
  }

  text (v: string | null): void {
    if (v === null) return this.#null()
    let bytes = v.length <= CACHE_MAX_LENGTH ? this.#encoded.get(v) : undefined
    if (bytes === undefined && v.length <= CACHE_MAX_LENGTH) {
      if (this.#encoded.size >= CACHE_LIMIT) this.#encoded.clear()
      bytes = Buffer.from(v, 'utf8')
      this.#encoded.set(v, bytes)
    }
    if (bytes !== undefined) {
      this.#room(4 + bytes.length)
      this.#buf.writeInt32BE(bytes.length, this.#pos)
      bytes.copy(this.#buf, this.#pos + 4)
      this.#pos += 4 + bytes.length
      return
    }
    this.#room(4 + 3 * v.length)
    const n = this.#buf.write(v, this.#pos + 4, 'utf8')
    this.#buf.writeInt32BE(n, this.#pos)
    this.#pos += 4 + n
  }

  float8 (v: number | null): void {
    if (v === null) return this.#null()
    this.#room(12)
    this.#buf.writeInt32BE(8, this.#pos)
    this.#buf.writeDoubleBE(v, this.#pos + 4)
    this.#pos += 12
  }

  /** A real (float4) column: the nearest float32. */
  float4 (v: number | null): void {
    if (v === null) return this.#null()
    this.#room(8)
    this.#buf.writeInt32BE(4, this.#pos)
    this.#buf.writeFloatBE(v, this.#pos + 4)
    this.#pos += 8
  }

  /** An integer (int4) column. */
  int4 (v: number | null): void {
    if (v === null) return this.#null()
    this.#room(8)
    this.#buf.writeInt32BE(4, this.#pos)
    this.#buf.writeInt32BE(v, this.#pos + 4)
    this.#pos += 8
  }

  /** A bigint column from an integer number (exact up to 2^53). */
  int8 (v: number | null): void {
    if (v === null) return this.#null()
    this.#int64(v)
  }

  /** A timestamptz column from Unix ms (microseconds since 2000, as PostgreSQL stores it). */
  timestamptz (ms: number): void {
    this.#int64(Math.round((ms - PG_EPOCH_MS) * 1000))
  }

  /** A bytea column. */
  bytea (v: Uint8Array | null): void {
    if (v === null) return this.#null()
    this.#room(4 + v.length)
    this.#buf.writeInt32BE(v.length, this.#pos)
    this.#buf.set(v, this.#pos + 4)
    this.#pos += 4 + v.length
  }

  bool (v: boolean | null): void {
    if (v === null) return this.#null()
    this.#room(5)
    this.#buf.writeInt32BE(1, this.#pos)
    this.#buf[this.#pos + 4] = v ? 1 : 0
    this.#pos += 5
  }

  /** The bytes written since `begin` or the last `take` (a copy): a long stream is sent in parts, `end` gives the last. */
  take (): Buffer {
    const out = Buffer.from(this.#buf.subarray(0, this.#pos))
    this.#pos = 0
    return out
  }

  /** Ends the stream (trailer) and returns its bytes (since `begin` or the last `take`), valid until the next `begin`. */
  end (): Buffer {
    this.#room(2)
    this.#buf.writeInt16BE(-1, this.#pos)
    this.#pos += 2
    return this.#buf.subarray(0, this.#pos)
  }

  #int64 (v: number): void {
    if (!Number.isSafeInteger(v)) throw new RangeError(`not an exact 64-bit integer: ${v}`)
    this.#room(12)
    const hi = Math.floor(v / TWO_32)
    this.#buf.writeInt32BE(8, this.#pos)
    this.#buf.writeInt32BE(hi, this.#pos + 4)
    this.#buf.writeUInt32BE(v - hi * TWO_32, this.#pos + 8)
    this.#pos += 12
  }

  #null (): void {
    this.#room(4)
    this.#buf.writeInt32BE(-1, this.#pos)
    this.#pos += 4
  }

  #room (n: number): void {
    if (this.#pos + n <= this.#buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n))
    this.#buf.copy(next, 0, 0, this.#pos)
    this.#buf = next
  }
}
