import { AnomalyStateError } from './errors.ts'

/**
 * Binary snapshots of detector state, to persist a sensor's (or a forest key's) state and restore
 * it exactly after a restart. One snapshot is:
 *
 *   magic "IOTS" (4 bytes) | format version (1 byte) | kind (1 byte) | body | CRC-32 of all before it (4 bytes)
 *
 * Numbers are little-endian: Float64 and Float32 as they are held (exact, -0 and NaN included),
 * counts and other non-negative integers as unsigned LEB128 varints (one byte below 128). A body
 * may hold sections (a tag byte, a 4-byte length, the section's bytes), so a reader can skip the
 * part of a detector it does not run. Every read is bounds-checked: damaged, truncated or foreign
 * bytes, another kind or an unknown version throw `AnomalyStateError` (`IOT_ERR_ANOMALY_STATE`).
 *
 * Each class writes and reads its own state next to it (`writeSnapshot` / `readSnapshot`): the
 * reader decodes and checks everything first and returns a `StateInstaller`, so a restore either
 * installs the whole state or none of it.
 */
export const SNAPSHOT_VERSION = 1

/** The kind byte of each snapshot: bytes of one kind never restore as another. */
export const snapshotKinds = Object.freeze({
  detector: 1,
  resolution: 2,
  seasonal: 3,
  zscore: 4,
  stuck: 5,
  drift: 6,
  features: 7,
  cadence: 8,
  forestKey: 9,
  deviceModel: 10
})
export type SnapshotKind = keyof typeof snapshotKinds

/** Installs decoded state under a sensor id (or a forest key); call it once (the state is not copied). */
export type StateInstaller = (id: string) => void

const MAGIC = [0x49, 0x4f, 0x54, 0x53] // "IOTS"
const HEADER_BYTES = 6
const CHECKSUM_BYTES = 4
const SECTION_HEADER_BYTES = 5
/** Longest varint: 8 bytes of 7 bits hold every safe integer (2^53 − 1). */
const MAX_VARINT_BYTES = 8

const CRC_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** CRC-32 (IEEE 802.3, as zlib's) of bytes[0 .. end). */
export function crc32 (bytes: Uint8Array, end = bytes.length): number {
  let c = 0xffffffff
  for (let i = 0; i < end; i++) c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true })

/** Appends the fields of one snapshot; `finish` seals it with the checksum. */
export class SnapshotWriter {
  #bytes: Uint8Array
  #view: DataView
  #length = 0

  constructor (kind: SnapshotKind, capacity = 256) {
    this.#bytes = new Uint8Array(Math.max(capacity, 16))
    this.#view = new DataView(this.#bytes.buffer)
    for (const b of MAGIC) this.u8(b)
    this.u8(SNAPSHOT_VERSION)
    this.u8(snapshotKinds[kind])
  }

  /** Bytes written so far. */
  get length (): number {
    return this.#length
  }

  #reserve (n: number): number {
    const at = this.#length
    const need = at + n
    if (need > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this.#bytes.length))
      grown.set(this.#bytes.subarray(0, at))
      this.#bytes = grown
      this.#view = new DataView(grown.buffer)
    }
    this.#length = need
    return at
  }

  u8 (x: number): void {
    const at = this.#reserve(1)
    this.#bytes[at] = x
  }

  /** A non-negative safe integer, as a varint. */
  uint (x: number): void {
    if (!Number.isSafeInteger(x) || x < 0) throw new RangeError(`snapshot: not a non-negative safe integer: ${x}`)
    let rest = x
    while (rest >= 0x80) {
      this.u8((rest % 0x80) | 0x80)
      rest = Math.floor(rest / 0x80)
    }
    this.u8(rest)
  }

  bool (x: boolean): void {
    this.u8(x ? 1 : 0)
  }

  f64 (x: number): void {
    const at = this.#reserve(8) // first: it may replace the view
    this.#view.setFloat64(at, x, true)
  }

  f32 (x: number): void {
    const at = this.#reserve(4)
    this.#view.setFloat32(at, x, true)
  }

  /** `count` Float64 values from `values[from]`. */
  f64s (values: ArrayLike<number>, from = 0, count = values.length - from): void {
    let at = this.#reserve(8 * count)
    const view = this.#view
    for (let i = from; i < from + count; i++, at += 8) view.setFloat64(at, values[i] as number, true)
  }

  /** `count` Float32 values from `values[from]` (exact for values a Float32Array holds). */
  f32s (values: ArrayLike<number>, from = 0, count = values.length - from): void {
    let at = this.#reserve(4 * count)
    const view = this.#view
    for (let i = from; i < from + count; i++, at += 4) view.setFloat32(at, values[i] as number, true)
  }

  /** Bits, least significant first, 8 to a byte. */
  bits (count: number, bit: (i: number) => boolean): void {
    const at = this.#reserve((count + 7) >> 3)
    this.#bytes.fill(0, at, this.#length)
    for (let i = 0; i < count; i++) {
      if (bit(i)) this.#bytes[at + (i >> 3)] = (this.#bytes[at + (i >> 3)] as number) | (1 << (i & 7))
    }
  }

  /** An array of mostly zeros: a bit per entry (set unless it is +0), then the set entries as Float64. */
  sparseF64 (values: ArrayLike<number>): void {
    const n = values.length
    this.bits(n, i => !Object.is(values[i], 0))
    for (let i = 0; i < n; i++) {
      const v = values[i] as number
      if (!Object.is(v, 0)) this.f64(v)
    }
  }

  /**
   * Float64 values that are often whole numbers (intervals in ms): as varints when all of them are
   * non-negative safe integers, else as Float64 (a flag byte tells which).
   */
  wholeOrF64s (values: ArrayLike<number>, from = 0, count = values.length - from): void {
    let whole = true
    for (let i = from; i < from + count && whole; i++) {
      const v = values[i] as number
      whole = Number.isSafeInteger(v) && !Object.is(v, -0) && v >= 0
    }
    this.bool(whole)
    if (!whole) return this.f64s(values, from, count)
    for (let i = from; i < from + count; i++) this.uint(values[i] as number)
  }

  string (text: string): void {
    this.bytes(utf8Encoder.encode(text))
  }

  /** Bytes of another format (e.g. a gzipped forest): their length as a varint, then the bytes. */
  bytes (data: Uint8Array): void {
    this.uint(data.length)
    const at = this.#reserve(data.length)
    this.#bytes.set(data, at)
  }

  /**
   * A section: the tag, its length, then what `body` writes. When `body` returns false (nothing to
   * say) the section is taken back, as if never begun. Returns what `body` returned.
   */
  section (tag: number, body: () => boolean): boolean {
    const start = this.#length
    this.u8(tag)
    const lengthAt = this.#reserve(4)
    if (!body()) {
      this.#length = start
      return false
    }
    this.#view.setUint32(lengthAt, this.#length - lengthAt - 4, true)
    return true
  }

  /** The snapshot, sealed with its checksum (a copy of exactly its bytes). */
  finish (): Uint8Array {
    const sum = crc32(this.#bytes, this.#length)
    const at = this.#reserve(CHECKSUM_BYTES)
    this.#view.setUint32(at, sum, true)
    return this.#bytes.slice(0, this.#length)
  }
}

/**
 * Reads one snapshot: the constructor checks the magic, version, kind and checksum; every read
 * after it checks its bounds. Anything wrong throws `AnomalyStateError` with the field's path.
 */
export class SnapshotReader {
  readonly kind: SnapshotKind
  readonly #bytes: Uint8Array
  readonly #view: DataView
  #offset = HEADER_BYTES
  /** End of the body (the checksum follows). */
  readonly #end: number
  /** Prefix of the paths in errors (the part of a detector being read), after the kind. */
  #scope = ''

  constructor (bytes: Uint8Array, kind: SnapshotKind) {
    this.kind = kind
    if (!(bytes instanceof Uint8Array)) throw new AnomalyStateError(kind, 'a snapshot must be a Uint8Array')
    if (bytes.length < HEADER_BYTES + CHECKSUM_BYTES) throw new AnomalyStateError(kind, `${bytes.length} bytes: too short for a snapshot`)
    for (let i = 0; i < MAGIC.length; i++) {
      if (bytes[i] !== MAGIC[i]) throw new AnomalyStateError(kind, 'not a detector snapshot (no IOTS magic)')
    }
    const version = bytes[4] as number
    if (version !== SNAPSHOT_VERSION) throw new AnomalyStateError(kind, `snapshot format version ${version}, this build reads ${SNAPSHOT_VERSION}`)
    const found = bytes[5] as number
    if (found !== snapshotKinds[kind]) {
      const name = Object.entries(snapshotKinds).find(([, v]) => v === found)?.[0] ?? `unknown (${found})`
      throw new AnomalyStateError(kind, `a snapshot of kind ${name}, not ${kind}`)
    }
    this.#bytes = bytes
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.#end = bytes.length - CHECKSUM_BYTES
    if (this.#view.getUint32(this.#end, true) !== crc32(bytes, this.#end)) throw new AnomalyStateError(kind, 'checksum mismatch: the snapshot is damaged')
  }

  /** Throws the state error of a field (`path` below the kind and scope, e.g. `detector.zscore.count`). */
  fail (path: string, message: string): never {
    const at = [this.kind, this.#scope, path].filter(x => x !== '').join('.')
    throw new AnomalyStateError(at, message)
  }

  /** Names the part being read in the paths of errors ('' for none). */
  scope (name: string): void {
    this.#scope = name
  }

  #take (n: number, path: string): number {
    const at = this.#offset
    if (n > this.#end - at) this.fail(path, `truncated: ${n} bytes wanted at byte ${at} of ${this.#end}`)
    this.#offset = at + n
    return at
  }

  get atEnd (): boolean {
    return this.#offset === this.#end
  }

  u8 (path: string): number {
    return this.#bytes[this.#take(1, path)] as number
  }

  /** A varint at most `max`. */
  uint (path: string, max = Number.MAX_SAFE_INTEGER): number {
    let x = 0
    let scale = 1
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = this.u8(path)
      x += (b & 0x7f) * scale
      if ((b & 0x80) === 0) {
        if (x > max) this.fail(path, `${x} is beyond ${max}`)
        return x
      }
      scale *= 0x80
    }
    return this.fail(path, 'varint longer than 8 bytes')
  }

  bool (path: string): boolean {
    const b = this.u8(path)
    if (b > 1) this.fail(path, `a flag byte is 0 or 1, got ${b}`)
    return b === 1
  }

  f64 (path: string): number {
    return this.#view.getFloat64(this.#take(8, path), true)
  }

  f32 (path: string): number {
    return this.#view.getFloat32(this.#take(4, path), true)
  }

  f64s (path: string, into: Float64Array, from = 0, count = into.length - from): void {
    let at = this.#take(8 * count, path)
    const view = this.#view
    for (let i = from; i < from + count; i++, at += 8) into[i] = view.getFloat64(at, true)
  }

  /** `count` Float64 values in a new array, allocated only once the bytes are known to be there. */
  f64Array (path: string, count: number): Float64Array {
    const at = this.#take(8 * count, path)
    const values = new Float64Array(count)
    for (let i = 0; i < count; i++) values[i] = this.#view.getFloat64(at + 8 * i, true)
    return values
  }

  f32s (path: string, into: Float32Array, from = 0, count = into.length - from): void {
    let at = this.#take(4 * count, path)
    const view = this.#view
    for (let i = from; i < from + count; i++, at += 4) into[i] = view.getFloat32(at, true)
  }

  bits (path: string, count: number, bit: (i: number, set: boolean) => void): void {
    const at = this.#take((count + 7) >> 3, path)
    for (let i = 0; i < count; i++) bit(i, ((this.#bytes[at + (i >> 3)] as number) & (1 << (i & 7))) !== 0)
    // Unused bits of the last byte are zero in every snapshot written.
    if ((count & 7) !== 0 && ((this.#bytes[at + (count >> 3)] as number) >> (count & 7)) !== 0) this.fail(path, 'stray bits past the last entry')
  }

  /** See `SnapshotWriter.sparseF64`: `into` is filled whole (unset entries +0). */
  sparseF64 (path: string, into: Float64Array): void {
    const set: number[] = []
    this.bits(path, into.length, (i, on) => { if (on) set.push(i) })
    into.fill(0)
    for (const i of set) {
      const v = this.f64(path)
      if (Object.is(v, 0)) this.fail(path, 'a stored entry of a sparse array is +0')
      into[i] = v
    }
  }

  /** See `SnapshotWriter.wholeOrF64s`. */
  wholeOrF64s (path: string, into: Float64Array, from = 0, count = into.length - from): void {
    if (!this.bool(path)) return this.f64s(path, into, from, count)
    for (let i = from; i < from + count; i++) into[i] = this.uint(path)
  }

  string (path: string, maxBytes = 1 << 16): string {
    const encoded = this.bytes(path, maxBytes)
    try {
      return utf8Decoder.decode(encoded)
    } catch {
      return this.fail(path, 'not UTF-8')
    }
  }

  /** See `SnapshotWriter.bytes`: a view of the snapshot's bytes (not a copy), at most `maxBytes` long. */
  bytes (path: string, maxBytes = Number.MAX_SAFE_INTEGER): Uint8Array {
    const n = this.uint(path, maxBytes)
    const at = this.#take(n, path)
    return this.#bytes.subarray(at, at + n)
  }

  /** The next section's tag and where it ends (`endSection` checks it was read to there). */
  section (path: string): { tag: number, end: number } {
    const at = this.#take(SECTION_HEADER_BYTES, path)
    const length = this.#view.getUint32(at + 1, true)
    if (length > this.#end - this.#offset) this.fail(path, `section of ${length} bytes past the end`)
    return { tag: this.#bytes[at] as number, end: this.#offset + length }
  }

  endSection (path: string, end: number): void {
    if (this.#offset !== end) this.fail(path, `section read to byte ${this.#offset}, it ends at ${end}`)
  }

  skipTo (end: number): void {
    this.#offset = end
  }

  /** Checks the body was read to its end (no trailing bytes). */
  end (): void {
    if (this.#offset !== this.#end) this.fail('', `${this.#end - this.#offset} bytes left unread`)
  }
}

/** A class that writes and reads one id's state (see the classes' `writeSnapshot` / `readSnapshot`). */
interface SnapshotCodec {
  writeSnapshot(id: string, out: SnapshotWriter): boolean
  readSnapshot(input: SnapshotReader): StateInstaller
  forget(id: string): boolean
}

/** A standalone snapshot of one id's state in `codec`, or null when it has none. */
export function snapshotOf (kind: SnapshotKind, codec: SnapshotCodec, id: string): Uint8Array | null {
  const out = new SnapshotWriter(kind)
  return codec.writeSnapshot(id, out) ? out.finish() : null
}

/**
 * Replaces one id's state in `codec` with a standalone snapshot's. On damaged bytes it throws
 * `AnomalyStateError` and the id is left with no state.
 */
export function restoreFrom (kind: SnapshotKind, codec: SnapshotCodec, id: string, bytes: Uint8Array): void {
  codec.forget(id)
  const input = new SnapshotReader(bytes, kind)
  const install = codec.readSnapshot(input)
  input.end()
  install(id)
}
