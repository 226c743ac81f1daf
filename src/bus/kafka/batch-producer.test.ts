// Batches as our producer encodes them, read back by the client library's own reader (an
// independent implementation of the format) and by ours, with the CRC checked. The real broker
// taking them (and de-duplicating a resent batch) is in kafka-bus.test.ts.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Reader, crc32c, readRecordsBatch } from '@platformatic/kafka'
import { OpenBatch, encodeBatch } from './batch-producer.ts'
import { RecordCursor, readBatches } from './record-batch.ts'

const T0 = 1_767_225_600_000
const HEADER = Buffer.from('iot-ingest-ms')

function fill (b: OpenBatch, n: number, start = 0): void {
  for (let i = start; i < start + n; i++) {
    const ok = b.append(T0 + i * 3, `sensor-${i % 5}`, JSON.stringify({ i, unit: i % 2 === 0 ? '°C' : 'µg/m³', pad: 'x'.repeat(i % 300) }), i % 4 === 0 ? String(T0 - i) : undefined)
    assert.ok(ok, `record ${i} fits`)
  }
}

describe('batches we produce', () => {
  for (const compression of ['lz4', 'none'] as const) {
    test(`the library's reader and ours read them the same (${compression}), CRC included`, () => {
      const b = new OpenBatch(1 << 20, T0, HEADER)
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
    const b = new OpenBatch(2000, T0, HEADER)
    let n = 0
    while (b.append(T0, 'k', 'v'.repeat(100))) n++
    // 2-byte length, attributes, timestamp and offset deltas, key length, key, 2-byte value length, value, header count.
    assert.equal(n, 18, '18 records of 110 bytes fit in 2000')
    assert.equal(b.count, 18)
    assert.equal(b.needed, 110)
    const big = new OpenBatch(10, T0, HEADER)
    assert.equal(big.append(T0, 'k', 'v'.repeat(300)), false)
    assert.equal(big.needed, 310)
    assert.ok(new OpenBatch(big.needed, T0, HEADER).append(T0, 'k', 'v'.repeat(300)), 'fits exactly in what it said it needs')
  })
})
