// Batches as our producer encodes them, read back by the client library's own reader (an
// independent implementation of the format) and by ours, with the CRC checked; the real broker
// taking them (and de-duplicating a resent batch) is in kafka-bus.test.ts. And record batches
// written by the client library's own encoder (what the broker stores and returns) read back by
// our reader: every codec, null keys and values, headers, several batches, a cut at
// the end, transaction markers and aborted transactions. (zstd needs Node 22; the library cannot write it here.)
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Reader, createRecordsBatch, crc32c, readRecordsBatch } from '@platformatic/kafka'
import { OpenBatch, RecordCursor, committedBatches, encodeBatch, readBatches, type RecordBatch } from './record-batch.ts'

const T0 = 1_767_225_600_000

interface Msg { key?: Buffer, value?: Buffer, headers?: Map<Buffer, Buffer>, timestamp?: bigint }

/** One stored batch at `baseOffset`, as the broker returns it. */
function batch (messages: Msg[], baseOffset: number, opts: { compression?: 'none' | 'gzip' | 'snappy' | 'lz4', producerId?: bigint, transactional?: boolean, control?: boolean } = {}): Buffer {
  const b = createRecordsBatch(messages.map(m => ({ topic: 't', partition: 0, ...m })) as Parameters<typeof createRecordsBatch>[0], {
    compression: opts.compression ?? 'none',
    ...(opts.producerId === undefined ? {} : { producerId: opts.producerId }),
    ...(opts.transactional === true ? { transactionalId: 'tx' } : {})
  }).buffer
  b.writeBigInt64BE(BigInt(baseOffset), 0)
  if (opts.control === true) b.writeInt16BE(b.readInt16BE(21) | (1 << 5), 21)
  return b
}

interface Decoded { offset: number, timestamp: number, key: string, value: string, ingest: number }

function decode (batches: RecordBatch[], header = 'iot-ingest-ms'): Decoded[] {
  const c = new RecordCursor(header)
  const out: Decoded[] = []
  for (const b of batches) {
    c.open(b)
    while (c.next()) out.push({ offset: c.offset, timestamp: c.timestamp, key: c.key(), value: c.value(), ingest: c.headerNumber() })
  }
  return out
}

const text = (s: string): Buffer => Buffer.from(s)

describe('Kafka record batches', () => {
  for (const compression of ['none', 'gzip', 'snappy', 'lz4'] as const) {
    test(`reads what the library writes (${compression})`, () => {
      const messages: Msg[] = Array.from({ length: 300 }, (_, i) => ({
        key: text(`sensor-${i % 7}`),
        value: text(JSON.stringify({ i, unit: '°C', pad: 'x'.repeat(i % 50) })),
        timestamp: BigInt(T0 + i * 1000 - 5000),
        ...(i % 3 === 0 ? { headers: new Map([[text('other'), text('1')], [text('iot-ingest-ms'), text(String(T0 + i))]]) } : {})
      }))
      const data = Buffer.concat([batch(messages.slice(0, 120), 1000, { compression }), batch(messages.slice(120), 1120, { compression })])
      const batches = readBatches(data)
      assert.deepEqual(batches.map(b => [b.baseOffset, b.lastOffset, b.count]), [[1000, 1119, 120], [1120, 1299, 180]])
      const got = decode(batches)
      assert.equal(got.length, 300)
      for (let i = 0; i < 300; i++) {
        assert.deepEqual(got[i], {
          offset: 1000 + i,
          timestamp: T0 + i * 1000 - 5000,
          key: `sensor-${i % 7}`,
          value: JSON.stringify({ i, unit: '°C', pad: 'x'.repeat(i % 50) }),
          ingest: i % 3 === 0 ? T0 + i : Number.NaN
        }, `record ${i}`)
      }
    })
  }

  test('null keys and values, empty values, and a header that is not a number', () => {
    const data = batch([
      { value: text('a') },
      { key: text('k') },
      { key: text('k'), value: Buffer.alloc(0), headers: new Map([[text('iot-ingest-ms'), text('12x')]]) }
    ], 5, { compression: 'lz4' })
    const c = new RecordCursor('iot-ingest-ms')
    c.open(readBatches(data)[0]!)
    assert.ok(c.next())
    assert.deepEqual([c.keyStart, c.key(), c.value()], [-1, '', 'a'])
    assert.ok(c.next())
    assert.deepEqual([c.valueStart, c.key(), c.value()], [-1, 'k', ''])
    assert.ok(c.next())
    assert.ok(c.valueStart >= 0, 'an empty value is not null')
    assert.deepEqual([c.value(), c.headerNumber()], ['', Number.NaN])
    assert.equal(c.next(), false)
    assert.equal(c.next(), false, 'stays at the end')
  })

  test('a fetch cut inside a batch yields the complete batches only', () => {
    const one = batch([{ value: text('a') }, { value: text('b') }], 0)
    const two = batch([{ value: text('c') }], 2)
    const data = Buffer.concat([one, two])
    for (let cut = 0; cut < data.length; cut++) {
      const want = cut >= data.length ? 2 : cut >= one.length ? 1 : 0
      assert.equal(readBatches(data.subarray(0, cut)).length, want, `cut at ${cut}`)
    }
    assert.equal(readBatches(data).length, 2)
  })

  test('corrupt bytes and old message formats fail with a typed error, never a wrong record', () => {
    const data = batch([{ value: text('hello') }, { value: text('world') }], 0)
    const old = Buffer.from(data)
    old.writeInt8(1, 16)
    assert.throws(() => readBatches(old), { code: 'IOT_ERR_BUS', message: /message format v1/ })
    const short = Buffer.from(data)
    short.writeInt32BE(short.readInt32BE(57) + 1, 57) // claims a third record
    const c = new RecordCursor()
    c.open(readBatches(short)[0]!)
    assert.ok(c.next() && c.next())
    assert.throws(() => c.next(), { code: 'IOT_ERR_BUS', message: /truncated/ })
    const garbled = Buffer.from(data)
    garbled.writeUInt8(0x7f, 61) // first record's length: far beyond the batch
    c.open(readBatches(garbled)[0]!)
    assert.throws(() => c.next(), { code: 'IOT_ERR_BUS', message: /record length/ })
  })

  test('transaction markers are skipped; aborted transactions are left out when read committed', () => {
    const marker = (type: number): Msg => {
      const key = Buffer.alloc(4)
      key.writeInt16BE(type, 2)
      return { key, value: Buffer.alloc(6) }
    }
    const data = Buffer.concat([
      batch([{ value: text('plain') }], 0),
      batch([{ value: text('committed-1') }, { value: text('committed-2') }], 1, { producerId: 7n, transactional: true }),
      batch([marker(1)], 3, { producerId: 7n, control: true }),
      batch([{ value: text('aborted') }], 4, { producerId: 8n, transactional: true }),
      batch([{ value: text('other producer') }], 5, { producerId: 9n, transactional: true }),
      batch([marker(0)], 6, { producerId: 8n, control: true }),
      batch([{ value: text('after abort, same producer') }], 7, { producerId: 8n, transactional: true })
    ])
    const batches = readBatches(data)
    assert.equal(batches.length, 7)
    const values = (bs: RecordBatch[]): string[] => decode(bs).map(r => r.value)
    assert.deepEqual(values(committedBatches(batches, [{ producerId: 8, firstOffset: 4 }])),
      ['plain', 'committed-1', 'committed-2', 'other producer', 'after abort, same producer'])
    assert.deepEqual(values(committedBatches(batches, null)),
      ['plain', 'committed-1', 'committed-2', 'aborted', 'other producer', 'after abort, same producer'], 'read uncommitted: markers only are dropped')
    assert.equal(batches.at(-1)!.lastOffset + 1, 8, 'the next fetch starts after every batch, markers included')
  })
})

const INGEST_HEADER = Buffer.from('iot-ingest-ms')

function fill (b: OpenBatch, n: number, start = 0): void {
  for (let i = start; i < start + n; i++) {
    const ok = b.append(T0 + i * 3, `sensor-${i % 5}`, JSON.stringify({ i, unit: i % 2 === 0 ? '°C' : 'µg/m³', pad: 'x'.repeat(i % 300) }), i % 4 === 0 ? String(T0 - i) : undefined)
    assert.ok(ok, `record ${i} fits`)
  }
}

describe('batches we produce', () => {
  for (const compression of ['lz4', 'none'] as const) {
    test(`the library's reader and ours read them the same (${compression}), CRC included`, () => {
      const b = new OpenBatch(1 << 20, T0, INGEST_HEADER)
      fill(b, 400)
      const bytes = encodeBatch(b.seal(2, compression), 4242n, 3, 2_147_483_000)
      assert.equal(bytes.readUInt32BE(17), crc32c(bytes.subarray(21)) >>> 0, 'CRC-32C over attributes..end')
      const lib = readRecordsBatch(Reader.from(bytes))
      assert.equal(lib.producerId, 4242n)
      assert.equal(lib.producerEpoch, 3)
      assert.equal(lib.firstSequence, 2_147_483_000)
      assert.equal(lib.lastOffsetDelta, 399)
      assert.equal(lib.firstTimestamp, BigInt(T0))
      assert.equal(lib.maxTimestamp, BigInt(T0 + 399 * 3))
      assert.equal(lib.records.length, 400)
      for (const [i, r] of lib.records.entries()) {
        assert.equal(r.offsetDelta, i)
        assert.equal(r.timestampDelta, BigInt(i * 3))
        assert.equal(r.key?.toString(), `sensor-${i % 5}`)
        assert.equal(r.value?.toString(), JSON.stringify({ i, unit: i % 2 === 0 ? '°C' : 'µg/m³', pad: 'x'.repeat(i % 300) }))
        assert.deepEqual(r.headers.map(([k, v]) => [k?.toString(), v?.toString()]), i % 4 === 0 ? [['iot-ingest-ms', String(T0 - i)]] : [])
      }
      const [ours] = readBatches(bytes)
      const c = new RecordCursor('iot-ingest-ms')
      c.open(ours!)
      for (let i = 0; i < 400; i++) {
        assert.ok(c.next())
        assert.deepEqual([c.offset, c.timestamp, c.key(), c.headerNumber()], [i, T0 + i * 3, `sensor-${i % 5}`, i % 4 === 0 ? T0 - i : Number.NaN])
      }
      assert.equal(c.next(), false)
    })
  }

  test('a batch takes records until its bytes are used, then says no and how much the record needed', () => {
    const b = new OpenBatch(2000, T0, INGEST_HEADER)
    let n = 0
    while (b.append(T0, 'k', 'v'.repeat(100))) n++
    // 2-byte length, attributes, timestamp and offset deltas, key length, key, 2-byte value length, value, header count.
    assert.equal(n, 18, '18 records of 110 bytes fit in 2000')
    assert.equal(b.count, 18)
    assert.equal(b.needed, 110)
    const big = new OpenBatch(10, T0, INGEST_HEADER)
    assert.equal(big.append(T0, 'k', 'v'.repeat(300)), false)
    assert.equal(big.needed, 310)
    assert.ok(new OpenBatch(big.needed, T0, INGEST_HEADER).append(T0, 'k', 'v'.repeat(300)), 'fits exactly in what it said it needs')
  })
})
