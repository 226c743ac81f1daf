// Batches as our producer encodes them, read back by the client library's own reader (an
// independent implementation of the format) and by ours, with the CRC checked; the real broker
// taking them (and de-duplicating a resent batch) is in kafka-bus.test.ts. And record batches
// written by the client library's own encoder (what the broker stores and returns) read back by
// our reader: every codec, null keys and values, headers, several batches, a cut at
// the end, transaction markers and aborted transactions. (zstd needs Node 22; the library cannot write it here.)
// And what cannot be read: old formats, invalid headers, codecs, records, said why, never a wrong record.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import zlib from 'node:zlib'
import { Reader, crc32c, readRecordsBatch } from '@platformatic/kafka'
import { OpenBatch, RecordCursor, committedBatches, encodeBatch, readBatches, type RecordBatch } from './record-batch.ts'
import { type FixtureMessage, storedBatch } from './stored-batch.fixture.ts'

const T0 = 1_767_225_600_000

type Msg = FixtureMessage
/** One stored batch at `baseOffset`, as the broker returns it. */
const batch = storedBatch

/** Every batch in `data`, as fetched from offset 0 of a partition that goes on forever. */
const readAll = (data: Buffer): RecordBatch[] => readBatches(data, 0, Number.MAX_SAFE_INTEGER)

interface Decoded { offset: number, timestamp: number, key: string, value: string, ingest: number }

function decode (batches: RecordBatch[], header = 'iot-ingest-ms'): Decoded[] {
  const c = new RecordCursor(header)
  const out: Decoded[] = []
  for (const b of batches) {
    assert.equal(c.open(b), null)
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
      const batches = readAll(data)
      assert.deepEqual(batches.map(b => [b.baseOffset, b.lastOffset, b.count, b.unreadable]), [[1000, 1119, 120, null], [1120, 1299, 180, null]])
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
    assert.equal(c.open(readAll(data)[0]!), null)
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
      const got = readAll(data.subarray(0, cut))
      assert.equal(got.length, want, `cut at ${cut}`)
      assert.ok(got.every(b => b.unreadable === null), `cut at ${cut}: a partial batch is not unreadable, it is fetched again`)
    }
    assert.equal(readAll(data).length, 2)
  })

  test('a batch that cannot be read says why, and no record of it is read', () => {
    const data = batch([{ value: text('hello'), timestamp: BigInt(T0) }, { value: text('world'), timestamp: BigInt(T0) }], 0)
    const reason = (bytes: Buffer): string | null => {
      const [b] = readAll(bytes)
      const c = new RecordCursor()
      const problem = c.open(b!)
      if (problem !== null) assert.equal(c.next(), false, 'no record of an unreadable batch')
      return problem
    }
    assert.equal(reason(data), null)
    // The header says so: an old message format (its offset is its last), an invalid header.
    const old = Buffer.from(data)
    old.writeInt8(1, 16)
    assert.deepEqual(readAll(old).map(b => [b.baseOffset, b.lastOffset, b.unreadable]), [[0, 0, 'message format v1; only v2 (Kafka 0.11 and later) is read']])
    assert.equal(reason(old), 'message format v1; only v2 (Kafka 0.11 and later) is read')
    const tooMany = Buffer.from(data)
    tooMany.writeInt32BE(3, 57)
    assert.equal(reason(tooMany), 'invalid batch header: 3 records in 2 offsets')
    const negative = Buffer.from(data)
    negative.writeInt32BE(-1, 23)
    assert.equal(reason(negative), 'invalid batch header: last offset delta -1')
    const shortHeader = Buffer.concat([data.subarray(0, 40), Buffer.alloc(4)])
    shortHeader.writeInt32BE(32, 8)
    assert.equal(reason(shortHeader), 'batch length 32 is shorter than a v2 batch header')
    // The records say so.
    const third = Buffer.from(data)
    third.writeInt32BE(3, 57) // claims a third record, in a third offset
    third.writeInt32BE(2, 23)
    assert.equal(reason(third), 'record 3 of 3: truncated varint')
    const garbled = Buffer.from(data)
    garbled.writeUInt8(0x7e, 61) // first record's length: 63, beyond the batch
    assert.equal(reason(garbled), 'record 1 of 2: record length 63 exceeds the batch')
    const negativeLength = Buffer.from(data)
    negativeLength.writeUInt8(0x01, 61)
    assert.equal(reason(negativeLength), 'record 1 of 2: record length -1')
    const disorder = Buffer.from(data)
    const second = 61 + 1 + disorder[61]! / 2 // length (1 byte), then the first record
    assert.equal(disorder[second + 3], 2, 'second record: length, attributes, timestamp delta 0, offset delta 1')
    disorder[second + 3] = 0
    assert.equal(reason(disorder), 'record 2 of 2: offset 0 out of order in 0-1')
    const trailing = Buffer.concat([data, Buffer.from([0, 0, 0])])
    trailing.writeInt32BE(trailing.length - 12, 8)
    assert.equal(reason(trailing), '3 bytes after the last of 2 records')
    // The codec says so.
    const codec6 = Buffer.from(data)
    codec6.writeInt16BE(6, 21)
    assert.equal(reason(codec6), 'unknown compression codec 6')
    const gzip = batch([{ value: text('hello') }, { value: text('world') }], 0, { compression: 'gzip' })
    assert.equal(reason(gzip), null)
    gzip.writeUInt8(0, 61) // gzip's magic number
    assert.equal(reason(gzip), 'gzip decompression failed: incorrect header check')
  })

  test('zstd batches are read where the runtime has zstd, said unsupported where it has not (Node 20)', () => {
    const plain = batch([{ key: text('s-1'), value: text('{"v":1}'), timestamp: BigInt(T0) }, { key: text('s-2'), value: text('{"v":2}'), timestamp: BigInt(T0 + 1) }], 40)
    const compress = (zlib as { zstdCompressSync?: (data: Buffer) => Buffer }).zstdCompressSync
    const body = compress === undefined ? Buffer.from('no zstd here') : compress(plain.subarray(61))
    const zstd = Buffer.concat([plain.subarray(0, 61), body])
    zstd.writeInt32BE(zstd.length - 12, 8)
    zstd.writeInt16BE(4, 21)
    const batches = readAll(zstd)
    if (compress === undefined) {
      assert.equal(new RecordCursor().open(batches[0]!), 'unsupported compression codec 4 (zstd)')
    } else {
      assert.deepEqual(decode(batches), [
        { offset: 40, timestamp: T0, key: 's-1', value: '{"v":1}', ingest: Number.NaN },
        { offset: 41, timestamp: T0 + 1, key: 's-2', value: '{"v":2}', ingest: Number.NaN }
      ])
    }
  })

  test('bytes that do not split into batches: one unreadable entry at the next offset expected, nothing after it', () => {
    const first = batch([{ value: text('a') }, { value: text('b') }], 10)
    const third = batch([{ value: text('c') }], 13)
    const badLength = Buffer.alloc(20)
    badLength.writeBigInt64BE(12n, 0)
    badLength.writeInt32BE(3, 8)
    const entries = (bytes: Buffer, from: number, highWatermark: number): unknown[] =>
      readBatches(bytes, from, highWatermark).map(b => [b.baseOffset, b.lastOffset, b.unreadable])
    assert.deepEqual(entries(Buffer.concat([first, badLength, third]), 10, 14), [[10, 11, null], [12, 12, 'invalid batch length 3']])
    // A header whose offsets go back, or beyond what the broker holds, is not believed.
    const behind = batch([{ value: text('c') }], 5)
    assert.deepEqual(entries(Buffer.concat([first, behind, third]), 10, 14), [[10, 11, null], [12, 12, 'invalid batch header: offsets 5-5 outside 12-13']])
    const beyond = Buffer.from(third)
    beyond.writeInt32BE(1_000_000, 23)
    assert.deepEqual(entries(Buffer.concat([first, beyond]), 10, 14), [[10, 11, null], [12, 12, 'invalid batch header: offsets 13-1000013 outside 12-13']])
    // Nothing is made up at or past the high watermark.
    assert.deepEqual(entries(Buffer.concat([first, badLength]), 10, 12), [[10, 11, null]])
    // The first batch may start before the fetch offset (the broker returns the batch holding it).
    assert.deepEqual(entries(first, 11, 12), [[10, 11, null]])
  })

  test('a codec that stopped working is an error, not a corrupt batch: the batch is not given up', () => {
    // The library's WebAssembly lz4 decoder leaks stack on each input it traps on and after about
    // 2,000 fails on everything. Run in a process of its own, whose copy of the library breaks alone.
    const good = batch([{ value: text('fine') }], 0, { compression: 'lz4' })
    const bad = Buffer.from(good)
    bad.writeUInt32BE(0, 61) // lz4's frame magic
    const code = `
      const { RecordCursor, readBatches } = await import(${JSON.stringify(new URL('./record-batch.ts', import.meta.url).href)})
      const open = (base64) => new RecordCursor().open(readBatches(Buffer.from(base64, 'base64'), 0, 1)[0])
      const outcomes = new Map()
      const count = (what) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1)
      let after = null
      for (let i = 0; i < 5000 && after === null; i++) {
        try {
          count(open('${bad.toString('base64')}'))
        } catch (err) {
          count(err.code + ': ' + err.message)
          try { after = String(open('${good.toString('base64')}')) } catch (err2) { after = err2.code }
        }
      }
      process.stdout.write(JSON.stringify({ outcomes: [...outcomes], after }))
    `
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 })
    assert.equal(run.status, 0, run.stderr)
    const result = JSON.parse(run.stdout) as { outcomes: [string, number][], after: string | null }
    const outcomes = result.outcomes.map(([what]) => what)
    assert.equal(outcomes[0], 'lz4 decompression failed: unreachable', 'a corrupt frame at first')
    if (outcomes.length > 1) {
      assert.deepEqual(outcomes.slice(1), ['IOT_ERR_BUS: the lz4 decoder of this process fails on any input after corrupt input (a fault of the client library\'s WebAssembly codecs): restart the process'])
      assert.equal(result.after, 'IOT_ERR_BUS', 'then a good batch is not given up either')
    }
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
    const batches = readAll(data)
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
      const [ours] = readAll(bytes)
      const c = new RecordCursor('iot-ingest-ms')
      assert.equal(c.open(ours!), null)
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
