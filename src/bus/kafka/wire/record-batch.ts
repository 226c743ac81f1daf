// Kafka record batches (message format v2): written record by record for our producer, and read
// straight from a Fetch response's bytes. A fetched batch stays one Buffer until its records are
// handed out, so a consumer's buffer of thousands of records is a handful of objects the garbage
// collector does not walk. (The client library's own
// reader builds an object, three Buffers and a BigInt per record; held in a buffer, most of them
// survived the young generation and the GC threads worked more than the worker itself.)
import { compressionsAlgorithms, compressionsAlgorithmsByBitmask, crc32c } from '@platformatic/kafka'
import { IotError } from '../../../domain/index.ts'

/** Bytes from a batch's base offset to its first record. */
const HEADER = 61
/** Base offset and length: what frames every entry of a log, whatever its format. */
const LOG_OVERHEAD = 12
/** The smallest entry a broker frames (a v0 message: CRC, magic, attributes, key and value lengths). */
const MIN_ENTRY = 14
const COMPRESSION = 0b111
const LZ4 = 3
const LOG_APPEND_TIME = 1 << 3
const TRANSACTIONAL = 1 << 4
const CONTROL = 1 << 5

export interface RecordBatch {
  baseOffset: number
  /** Offset of the last record: the next fetch starts after it, records or not (control batches, compaction). */
  lastOffset: number
  baseTimestamp: number
  maxTimestamp: number
  producerId: number
  attributes: number
  /** Records in the batch. */
  count: number
  /** The records as stored: compressed when the attributes say so. */
  body: Buffer
  /**
   * Why the batch cannot be read, as its header already shows (an old message format, an invalid
   * header), or null; its records are checked when a `RecordCursor` opens it.
   */
  unreadable: string | null
}

export interface AbortedTransaction {
  producerId: number
  firstOffset: number
}

/** Bytes that do not form a record: the batch holding them cannot be read. */
class CorruptRecord extends IotError {
  readonly detail: string

  constructor (detail: string) {
    super('IOT_ERR_BUS', `Kafka fetch: corrupt record batch (${detail})`)
    this.detail = detail
  }
}

/** A batch known only by its offsets, handed out as undecodable. */
function unreadableBatch (baseOffset: number, lastOffset: number, reason: string): RecordBatch {
  return { baseOffset, lastOffset, baseTimestamp: -1, maxTimestamp: -1, producerId: -1, attributes: 0, count: 0, body: Buffer.alloc(0), unreadable: reason }
}

/**
 * The complete batches in a partition's fetched bytes, which start with the batch holding
 * `fetchOffset`. A fetch may end inside a batch (the broker cuts at the byte limit): that part is
 * left for the next fetch, which starts at its offset. A batch that cannot be read is returned too,
 * with `unreadable` set, so the consumer can move past it. When the bytes cannot even be split into
 * batches (a length no broker writes, offsets that go back or reach the `highWatermark`), nothing
 * after that point is trusted: one unreadable entry stands for the next offset expected (if below
 * the high watermark), so each fetch moves on by one offset and no offset that exists is skipped.
 * CRCs are not checked (TCP and the broker's own checks guard them; the client library skips them too).
 */
export function readBatches (data: Buffer, fetchOffset: number, highWatermark: number): RecordBatch[] {
  const out: RecordBatch[] = []
  /** The first offset the next batch may hold. */
  let expected = fetchOffset
  let p = 0
  while (p + LOG_OVERHEAD <= data.length) {
    const length = data.readInt32BE(p + 8)
    if (length < MIN_ENTRY) {
      if (expected < highWatermark) out.push(unreadableBatch(expected, expected, `invalid batch length ${length}`))
      break
    }
    const end = p + LOG_OVERHEAD + length
    if (end > data.length) break
    const batch = readHeader(data, p, end, expected)
    if (batch.lastOffset < expected || batch.lastOffset >= highWatermark || batch.baseOffset > batch.lastOffset) {
      if (expected < highWatermark) out.push(unreadableBatch(expected, expected, `invalid batch header: offsets ${batch.baseOffset}-${batch.lastOffset} outside ${expected}-${highWatermark - 1}`))
      break
    }
    out.push(batch)
    expected = batch.lastOffset + 1
    p = end
  }
  return out
}

/** The batch framed by `p` and `end` (at least `MIN_ENTRY` bytes after the offset and length). */
function readHeader (data: Buffer, p: number, end: number, expected: number): RecordBatch {
  const offset = Number(data.readBigInt64BE(p))
  const magic = data.readInt8(p + 16)
  // Message formats v0 and v1: the entry's offset is its last (a compressed set's inner records come before it).
  if (magic !== 2) return unreadableBatch(Math.min(expected, offset), offset, `message format v${magic}; only v2 (Kafka 0.11 and later) is read`)
  if (end - p < HEADER) return unreadableBatch(offset, offset, `batch length ${end - p - LOG_OVERHEAD} is shorter than a v2 batch header`)
  const lastOffsetDelta = data.readInt32BE(p + 23)
  const count = data.readInt32BE(p + 57)
  const problem = lastOffsetDelta < 0
    ? `last offset delta ${lastOffsetDelta}`
    : count < 0 || count > lastOffsetDelta + 1 ? `${count} records in ${lastOffsetDelta + 1} offsets` : null
  return {
    baseOffset: offset,
    lastOffset: offset + Math.max(0, lastOffsetDelta),
    baseTimestamp: Number(data.readBigInt64BE(p + 27)),
    maxTimestamp: Number(data.readBigInt64BE(p + 35)),
    producerId: Number(data.readBigInt64BE(p + 43)),
    attributes: data.readInt16BE(p + 21),
    count: problem === null ? count : 0,
    body: data.subarray(p + HEADER, end),
    unreadable: problem === null ? null : `invalid batch header: ${problem}`
  }
}

/**
 * Control batches' first record key: version (int16), type (int16, 0 = abort, 1 = commit). A
 * control batch that cannot be read counts as an abort marker: any marker of a producer whose
 * transaction is aborted is its abort marker, and for any other producer removing it changes nothing.
 */
function isAbortMarker (b: RecordBatch): boolean {
  if ((b.attributes & CONTROL) === 0) return false
  const c = new RecordCursor()
  if (c.open(b) !== null) return true
  return c.next() && c.keyEnd - c.keyStart >= 4 && c.buf.readInt16BE(c.keyStart + 2) === 0
}

/**
 * The batches a read-committed consumer sees: control batches (transaction markers) and batches of
 * aborted transactions are left out, as the Java consumer does. `aborted` is the Fetch response's
 * list for this partition; without it (read uncommitted) only control batches are dropped.
 */
export function committedBatches (batches: readonly RecordBatch[], aborted: readonly AbortedTransaction[] | null): RecordBatch[] {
  const pending = [...(aborted ?? [])].sort((a, b) => a.firstOffset - b.firstOffset)
  const abortedProducers = new Set<number>()
  const out: RecordBatch[] = []
  for (const b of batches) {
    if (aborted !== null && b.producerId >= 0) {
      while (pending.length > 0 && pending[0]!.firstOffset <= b.lastOffset) abortedProducers.add(pending.shift()!.producerId)
      if (isAbortMarker(b)) abortedProducers.delete(b.producerId)
      else if ((b.attributes & TRANSACTIONAL) !== 0 && abortedProducers.has(b.producerId)) continue
    }
    if ((b.attributes & CONTROL) === 0) out.push(b)
  }
  return out
}

const codecNames = ['none', 'gzip', 'snappy', 'lz4', 'zstd']

/** A codec of the client library (`compressionsAlgorithmsByBitmask`). */
interface Codec {
  compressSync (data: Buffer): Buffer
  decompressSync (data: Buffer): Buffer
  available?: boolean
}

/**
 * Whether a codec still works in this process. The WebAssembly lz4 and snappy decoders of the
 * client library leak part of their stack on every input they trap on, and after about 2,000 such
 * inputs fail on every call: then a batch that fails is not known to be corrupt.
 */
function codecWorks (algorithm: Codec): boolean {
  const sample = Buffer.from('iot-monitor codec check: iot-monitor codec check')
  try {
    return algorithm.decompressSync(algorithm.compressSync(sample)).equals(sample)
  } catch {
    return false
  }
}

/**
 * Walks the records of one batch without allocating: after `next()` the fields describe the
 * current record, its key and value as byte ranges of `buf` (start -1: null).
 */
export class RecordCursor {
  buf: Buffer = Buffer.alloc(0)
  offset = 0
  timestamp = 0
  keyStart = -1
  keyEnd = -1
  valueStart = -1
  valueEnd = -1
  /** The value of the header named by the constructor's `header` (start -1: absent). */
  headerStart = -1
  headerEnd = -1
  readonly #header: Buffer | null
  #pos = 0
  #end = 0
  #left = 0
  #bytesEnd = -1
  #batch: RecordBatch | null = null

  constructor (header?: string) {
    this.#header = header === undefined ? null : Buffer.from(header)
  }

  /**
   * Starts on a batch, decompressing its records if needed, and checks every record before the
   * first is read: a batch is read whole or not at all. Returns why it cannot be read (then
   * `next()` is false), or null. Throws only when a codec of this process stopped working.
   */
  open (batch: RecordBatch): string | null {
    this.#batch = null
    this.#left = 0
    if (batch.unreadable !== null) return batch.unreadable
    const compression = batch.attributes & COMPRESSION
    if (compression === 0) {
      this.buf = batch.body
    } else {
      const name = codecNames[compression]
      const algorithm: Codec | undefined = compressionsAlgorithmsByBitmask[compression]
      if (name === undefined || algorithm === undefined) return `unknown compression codec ${compression}`
      if (algorithm.available !== true) return `unsupported compression codec ${compression} (${name})`
      try {
        this.buf = algorithm.decompressSync(batch.body)
      } catch (err) {
        if (!codecWorks(algorithm)) throw new IotError('IOT_ERR_BUS', `the ${name} decoder of this process fails on any input after corrupt input (a fault of the client library's WebAssembly codecs): restart the process`, { cause: err })
        return `${name} decompression failed: ${(err as Error).message}`
      }
    }
    this.#start(batch)
    const problem = this.#check()
    this.#start(batch)
    if (problem !== null) this.#batch = null
    return problem
  }

  /** Moves to the next record; false at the end of the batch. */
  next (): boolean {
    const batch = this.#batch
    if (batch === null || this.#left === 0) return false
    this.#left--
    const length = this.#varint()
    const end = this.#pos + length
    if (length < 0 || end > this.#end) throw new CorruptRecord(length < 0 ? `record length ${length}` : `record length ${length} exceeds the batch`)
    this.#pos++ // attributes (unused in v2)
    const tsDelta = this.#varint()
    this.timestamp = (batch.attributes & LOG_APPEND_TIME) !== 0 ? batch.maxTimestamp : batch.baseTimestamp + tsDelta
    this.offset = batch.baseOffset + this.#varint()
    this.keyStart = this.#bytes()
    this.keyEnd = this.#bytesEnd
    this.valueStart = this.#bytes()
    this.valueEnd = this.#bytesEnd
    this.headerStart = this.headerEnd = -1
    const want = this.#header
    for (let h = this.#varint(); h > 0; h--) {
      const ks = this.#bytes()
      const ke = this.#bytesEnd
      const vs = this.#bytes()
      if (want !== null && ke - ks === want.length && this.buf.compare(want, 0, want.length, ks, ke) === 0) {
        this.headerStart = vs
        this.headerEnd = this.#bytesEnd
      }
    }
    if (this.#pos !== end) throw new CorruptRecord('record fields do not match its length')
    return true
  }

  /** The current record's value as UTF-8 text ('' when null). */
  value (): string {
    return this.valueStart < 0 ? '' : this.buf.toString('utf8', this.valueStart, this.valueEnd)
  }

  /** The current record's key as UTF-8 text ('' when null). */
  key (): string {
    return this.keyStart < 0 ? '' : this.buf.toString('utf8', this.keyStart, this.keyEnd)
  }

  /** The wanted header's value read as a decimal integer (NaN when absent or not one). */
  headerNumber (): number {
    const s = this.headerStart
    const e = this.headerEnd
    if (s < 0 || e === s || e - s > 15) return Number.NaN
    let n = 0
    for (let i = s; i < e; i++) {
      const d = (this.buf[i] as number) - 48
      if (d < 0 || d > 9) return Number.NaN
      n = n * 10 + d
    }
    return n
  }

  #start (batch: RecordBatch): void {
    this.#batch = batch
    this.#pos = 0
    this.#end = this.buf.length
    this.#left = batch.count
  }

  /** Reads every record once: why they do not form the batch, or null. */
  #check (): string | null {
    const batch = this.#batch!
    const count = batch.count
    let previous = batch.baseOffset - 1
    for (let i = 1; i <= count; i++) {
      try {
        this.next()
      } catch (err) {
        if (err instanceof CorruptRecord) return `record ${i} of ${count}: ${err.detail}`
        throw err
      }
      // Offsets rise within the batch (compaction leaves gaps, never disorder).
      if (this.offset <= previous || this.offset > batch.lastOffset) return `record ${i} of ${count}: offset ${this.offset} out of order in ${batch.baseOffset}-${batch.lastOffset}`
      previous = this.offset
    }
    if (this.#pos !== this.#end) return `${this.#end - this.#pos} bytes after the last of ${count} records`
    return null
  }

  /** A zigzag varint (up to 64 bits; exact below 2^53). */
  #varint (): number {
    const b = this.buf
    let pos = this.#pos
    let n = 0
    let mul = 1
    let byte: number
    do {
      if (pos >= this.#end) throw new CorruptRecord('truncated varint')
      byte = b[pos++] as number
      n += (byte & 0x7f) * mul
      mul *= 128
    } while ((byte & 0x80) !== 0)
    this.#pos = pos
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2
  }

  /** A varint-length byte string: returns its start in `buf` and sets `#bytesEnd` (both -1 when null). */
  #bytes (): number {
    const length = this.#varint()
    if (length < 0) {
      this.#bytesEnd = -1
      return -1
    }
    const start = this.#pos
    this.#pos += length
    if (this.#pos > this.#end) throw new CorruptRecord('truncated bytes')
    this.#bytesEnd = this.#pos
    return start
  }
}

const zigzagLength = (v: number): number => varintLength(v >= 0 ? 2 * v : -2 * v - 1)

function varintLength (u: number): number {
  let n = 1
  while (u >= 128) {
    u = Math.floor(u / 128)
    n++
  }
  return n
}

function writeVarint (buf: Buffer, pos: number, v: number): number {
  let u = v >= 0 ? 2 * v : -2 * v - 1
  while (u >= 128) {
    buf[pos++] = (u & 0x7f) | 0x80
    u = Math.floor(u / 128)
  }
  buf[pos++] = u
  return pos
}

/**
 * A batch being filled: records encoded back to back into one Buffer, as Kafka stores them.
 * `seal` compresses them; `encodeBatch` adds the header once the producer id and sequence are known.
 */
export class OpenBatch {
  readonly #buf: Buffer
  readonly #header: Buffer | null
  readonly baseTimestamp: number
  maxTimestamp: number
  #pos = 0
  count = 0
  /** Bytes the last record that did not fit needed. */
  needed = 0

  /** `header`: the name of the one header records may carry. */
  constructor (bytes: number, now: number, header: Buffer | null) {
    this.#buf = Buffer.allocUnsafe(bytes)
    this.#header = header
    this.baseTimestamp = now
    this.maxTimestamp = now
  }

  /** Appends a record (with the header when `headerValue` is given); false when it does not fit. */
  append (now: number, key: string, value: string, headerValue?: string): boolean {
    const keyBytes = Buffer.byteLength(key)
    const valueBytes = Buffer.byteLength(value)
    const header = headerValue === undefined ? null : this.#header
    const headerBytes = header === null ? 0 : Buffer.byteLength(headerValue!)
    const tsDelta = now - this.baseTimestamp
    const body = 1 + zigzagLength(tsDelta) + zigzagLength(this.count) + zigzagLength(keyBytes) + keyBytes + zigzagLength(valueBytes) + valueBytes +
      (header === null ? 1 : 1 + zigzagLength(header.length) + header.length + zigzagLength(headerBytes) + headerBytes)
    const buf = this.#buf
    if (this.#pos + zigzagLength(body) + body > buf.length) {
      this.needed = zigzagLength(body) + body
      return false
    }
    let p = writeVarint(buf, this.#pos, body)
    buf[p++] = 0 // record attributes
    p = writeVarint(buf, p, tsDelta)
    p = writeVarint(buf, p, this.count)
    p = writeVarint(buf, p, keyBytes)
    p += buf.write(key, p, keyBytes, 'utf8')
    p = writeVarint(buf, p, valueBytes)
    p += buf.write(value, p, valueBytes, 'utf8')
    if (header === null) {
      p = writeVarint(buf, p, 0)
    } else {
      p = writeVarint(buf, p, 1)
      p = writeVarint(buf, p, header.length)
      p += header.copy(buf, p)
      p = writeVarint(buf, p, headerBytes)
      p += buf.write(headerValue!, p, headerBytes, 'utf8')
    }
    this.#pos = p
    this.count++
    if (now > this.maxTimestamp) this.maxTimestamp = now
    return true
  }

  /** The records, compressed or not, ready for a producer id and sequence number. */
  seal (partition: number, compression: 'lz4' | 'none'): Sealed {
    const records = this.#buf.subarray(0, this.#pos)
    const lz4 = compression === 'lz4'
    return {
      partition,
      count: this.count,
      attributes: lz4 ? LZ4 : 0,
      baseTimestamp: this.baseTimestamp,
      maxTimestamp: this.maxTimestamp,
      body: lz4 ? compressionsAlgorithms.lz4.compressSync(records) : Buffer.from(records)
    }
  }
}

/** A closed batch: records compressed, waiting for its producer id and sequence number. */
export interface Sealed {
  partition: number
  count: number
  attributes: number
  baseTimestamp: number
  maxTimestamp: number
  body: Buffer
}

/** The batch's bytes with this producer id, epoch and first sequence number (the CRC covers them). */
export function encodeBatch (s: Sealed, producerId: bigint, epoch: number, sequence: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER + s.body.length)
  out.writeBigInt64BE(0n, 0) // base offset: the broker assigns it
  out.writeInt32BE(HEADER - 12 + s.body.length, 8)
  out.writeInt32BE(-1, 12) // partition leader epoch: none
  out.writeInt8(2, 16) // magic
  out.writeInt16BE(s.attributes, 21)
  out.writeInt32BE(s.count - 1, 23)
  out.writeBigInt64BE(BigInt(s.baseTimestamp), 27)
  out.writeBigInt64BE(BigInt(s.maxTimestamp), 35)
  out.writeBigInt64BE(producerId, 43)
  out.writeInt16BE(epoch, 51)
  out.writeInt32BE(sequence, 53)
  out.writeInt32BE(s.count, 57)
  s.body.copy(out, HEADER)
  out.writeUInt32BE(crc32c(out.subarray(21)) >>> 0, 17)
  return out
}
