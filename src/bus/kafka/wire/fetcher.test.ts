// The fetched-records buffer of the Fetch loop, fed with the bytes a broker returns (batches
// written by the client library's encoder): records come out in fetch order and offset order, a
// batch that cannot be decoded comes out as one undecodable record in its place, and a batch cut
// at the end of a response waits for the next fetch. The loop against a real broker is in
// kafka-bus.test.ts.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type BusRecord } from '../../port.ts'
import { FetchBuffer } from './fetcher.ts'
import { type StoredBatchOptions, storedBatch } from './stored-batch.fixture.ts'

const T0 = 1_767_225_600_000
const TOPIC = 'iot_sensors'
const HEADER = 'iot-ingest-ms'
/** Far beyond every offset written here. */
const HIGH_WATERMARK = 1_000_000

/** A stored batch of `count` readings from `baseOffset`, as the broker returns it. */
function batch (baseOffset: number, count: number, opts: StoredBatchOptions = {}): Buffer {
  const messages = Array.from({ length: count }, (_, i) => ({
    key: Buffer.from(`sensor-${(baseOffset + i) % 3}`),
    value: Buffer.from(`{"n":${baseOffset + i}}`),
    timestamp: BigInt(T0 + baseOffset + i)
  }))
  return storedBatch(messages, baseOffset, { compression: 'lz4', ...opts })
}

/** A gzip batch whose compressed bytes are broken: its header is sound, its records cannot be read. */
function corruptBatch (baseOffset: number, count: number): Buffer {
  const b = batch(baseOffset, count, { compression: 'gzip' })
  b.writeUInt8(0, 61) // gzip's magic number
  return b
}

/** What `take` hands out for the readings `batch` wrote at these offsets. */
function readings (partition: number, from: number, to: number): BusRecord[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    partition,
    offset: from + i,
    key: `sensor-${(from + i) % 3}`,
    value: `{"n":${from + i}}`,
    timestamp: T0 + from + i,
    producedAt: T0 + from + i
  }))
}

function takeAll (buffer: FetchBuffer, step = 1000): BusRecord[] {
  const out: BusRecord[] = []
  for (;;) {
    const before = out.length
    buffer.take(out.length + step, out)
    if (out.length === before) return out
  }
}

describe('FetchBuffer', () => {
  test('a corrupt batch in the middle comes out as one undecodable record, in offset order, and the batches after it follow', () => {
    for (const step of [1000, 1, 3, 7]) {
      const buffer = new FetchBuffer(TOPIC, new Map([[1, 40], [3, 110]]), HEADER)
      // One response: partition 3, then partition 1.
      const next3 = buffer.add(3, 110, Buffer.concat([batch(110, 10), corruptBatch(120, 10), batch(130, 5)]), null, HIGH_WATERMARK)
      const next1 = buffer.add(1, 40, batch(40, 4), null, HIGH_WATERMARK)
      assert.deepEqual([next3, next1], [135, 44], 'the next fetch starts after the last batch, the corrupt one included')
      assert.equal(buffer.buffered, 10 + 10 + 5 + 4, 'the corrupt batch counts its records until take finds it cannot be read')
      const undecodable: BusRecord = {
        partition: 3,
        offset: 129,
        key: '',
        value: '',
        undecodable: 'record batch at offsets 120-129 of iot_sensors/3: gzip decompression failed: incorrect header check'
      }
      assert.deepEqual(takeAll(buffer, step), [...readings(3, 110, 119), undecodable, ...readings(3, 130, 134), ...readings(1, 40, 43)], `taken ${step} at a time`)
      assert.equal(buffer.buffered, 0)
    }
  })

  test('a batch whose header cannot be read, and bytes that cannot be split into batches, come out the same way', () => {
    const buffer = new FetchBuffer(TOPIC, new Map([[0, 0]]), HEADER)
    const oldFormat = batch(3, 1, { compression: 'none' })
    oldFormat.writeInt8(1, 16)
    const garbage = Buffer.alloc(30)
    garbage.writeInt32BE(2, 8) // a length no broker writes
    assert.equal(buffer.add(0, 0, Buffer.concat([batch(0, 3), oldFormat, garbage, batch(5, 2)]), null, HIGH_WATERMARK), 5,
      'nothing after the garbage is trusted: the next fetch asks again from the offset after it')
    assert.deepEqual(takeAll(buffer), [
      ...readings(0, 0, 2),
      { partition: 0, offset: 3, key: '', value: '', undecodable: 'record batch at offset 3 of iot_sensors/0: message format v1; only v2 (Kafka 0.11 and later) is read' },
      { partition: 0, offset: 4, key: '', value: '', undecodable: 'record batch at offset 4 of iot_sensors/0: invalid batch length 2' }
    ])
  })

  test('a batch cut at the end of a response is not undecodable: the next fetch starts at it', () => {
    const buffer = new FetchBuffer(TOPIC, new Map([[2, 110]]), HEADER)
    const second = batch(120, 10)
    for (const cut of [1, 12, 61, second.length - 1]) {
      assert.equal(buffer.add(2, 110, Buffer.concat([batch(110, 10), second.subarray(0, cut)]), null, HIGH_WATERMARK), 120, `cut ${cut} bytes in`)
      assert.deepEqual(takeAll(buffer), readings(2, 110, 119))
    }
    assert.equal(buffer.add(2, 120, second.subarray(0, 30), null, HIGH_WATERMARK), 120, 'nothing complete: fetch the same offset again')
    assert.equal(buffer.buffered, 0)
    assert.equal(buffer.add(2, 120, Buffer.concat([second, batch(130, 2)]), null, HIGH_WATERMARK), 132)
    assert.deepEqual(takeAll(buffer), readings(2, 120, 131))
  })

  test('records before the start offset are skipped, even in an undecodable batch: it comes out once with its last offset', () => {
    const buffer = new FetchBuffer(TOPIC, new Map([[0, 115]]), HEADER)
    // The broker returns the batch holding the offset asked for, from its start.
    assert.equal(buffer.add(0, 115, Buffer.concat([batch(110, 10), corruptBatch(120, 10), batch(130, 1)]), null, HIGH_WATERMARK), 131)
    assert.deepEqual(takeAll(buffer), [
      ...readings(0, 115, 119),
      { partition: 0, offset: 129, key: '', value: '', undecodable: 'record batch at offsets 120-129 of iot_sensors/0: gzip decompression failed: incorrect header check' },
      ...readings(0, 130, 130)
    ])
    const later = new FetchBuffer(TOPIC, new Map([[0, 125]]), HEADER)
    later.add(0, 125, Buffer.concat([corruptBatch(120, 10), batch(130, 1)]), null, HIGH_WATERMARK)
    assert.deepEqual(takeAll(later).map(r => [r.offset, r.undecodable]), [[129, 'record batch at offsets 120-129 of iot_sensors/0: gzip decompression failed: incorrect header check'], [130, undefined]])
  })

  test('transaction markers and aborted transactions are skipped silently, readable or not', () => {
    const buffer = new FetchBuffer(TOPIC, new Map([[0, 0]]), HEADER)
    const abortMarker = storedBatch([{ key: Buffer.from([0, 0, 0, 0]), value: Buffer.alloc(6) }], 4, { producerId: 8n, control: true })
    const abortedCorrupt = corruptBatch(2, 2)
    abortedCorrupt.writeBigInt64BE(8n, 43) // producer id
    abortedCorrupt.writeInt16BE(abortedCorrupt.readInt16BE(21) | (1 << 4), 21) // transactional
    const data = Buffer.concat([batch(0, 2), abortedCorrupt, abortMarker, batch(5, 2, { producerId: 8n, transactional: true })])
    assert.equal(buffer.add(0, 0, data, [{ producerId: 8, firstOffset: 2 }], HIGH_WATERMARK), 7)
    assert.deepEqual(takeAll(buffer), [...readings(0, 0, 1), ...readings(0, 5, 6)])
  })

  test('clear forgets everything fetched', () => {
    const buffer = new FetchBuffer(TOPIC, new Map([[0, 0]]), HEADER)
    buffer.add(0, 0, Buffer.concat([batch(0, 3), corruptBatch(3, 2)]), null, HIGH_WATERMARK)
    const out: BusRecord[] = []
    buffer.take(1, out)
    buffer.clear()
    assert.equal(buffer.buffered, 0)
    assert.deepEqual(takeAll(buffer), [])
    assert.deepEqual(out, readings(0, 0, 0))
  })
})
