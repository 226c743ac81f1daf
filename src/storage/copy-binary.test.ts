// The binary COPY stream byte for byte (PostgreSQL's "Binary Format" of COPY); storage.test.ts
// round-trips every column through PostgreSQL and PGlite.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BinaryCopy } from './copy-binary.ts'

const hex = (b: Buffer): string => b.toString('hex')
const header = '5047434f50590aff0d0a00' + '00000000' + '00000000'
const trailer = 'ffff'

test('signature, header and trailer around rows of every type', () => {
  const c = new BinaryCopy(8).begin()
  c.row(6)
  c.text('é')
  c.text(null)
  c.float8(-0)
  c.int8(-1)
  c.bool(true)
  c.timestamptz(Date.UTC(2000, 0, 1) - 1)
  const got = hex(c.end())
  assert.equal(got, header + '0006' + '00000002c3a9' + 'ffffffff' + '00000008' + '8000000000000000' + '00000008' + 'ffffffffffffffff' +
    '0000000101' + '00000008' + 'fffffffffffffc18' + trailer, 'a buffer of 8 bytes grew to hold it all')
})

test('timestamps are microseconds since 2000-01-01 UTC; integers are exact to 2^53', () => {
  const c = new BinaryCopy().begin()
  c.timestamptz(Date.UTC(2026, 0, 1, 0, 0, 0, 260))
  c.int8(9_007_199_254_740_991)
  c.int8(-9_007_199_254_740_991)
  const body = c.end().subarray(19, -2)
  assert.equal(body.readBigInt64BE(4), 820_540_800_260_000n, '9,497 days and 260 ms')
  assert.equal(body.readBigInt64BE(16), 9_007_199_254_740_991n)
  assert.equal(body.readBigInt64BE(28), -9_007_199_254_740_991n)
  assert.throws(() => c.int8(2 ** 53), RangeError)
  assert.throws(() => c.int8(1.5), RangeError)
})

test('begin starts a new stream; long and repeated strings are encoded the same way', () => {
  const c = new BinaryCopy()
  const long = 'x'.repeat(100) + '🌡️'
  for (let i = 0; i < 2; i++) {
    c.begin()
    c.row(3)
    c.text('Lab')
    c.text('Lab')
    c.text(long)
    const bytes = Buffer.from(long)
    assert.equal(hex(c.end()), header + '0003' + '00000003' + hex(Buffer.from('Lab')) + '00000003' + hex(Buffer.from('Lab')) +
      bytes.length.toString(16).padStart(8, '0') + hex(bytes) + trailer, `stream ${i + 1}`)
  }
})

test('a stream taken in parts is the same bytes as one built whole', () => {
  const write = (c: BinaryCopy, i: number): void => { c.row(2); c.text(`sensor-${i}`); c.float8(i / 3) }
  const whole = new BinaryCopy().begin()
  for (let i = 0; i < 50; i++) write(whole, i)
  const expected = hex(whole.end())
  const parts: Buffer[] = []
  const c = new BinaryCopy(16).begin()
  for (let i = 0; i < 50; i++) {
    write(c, i)
    if (i % 7 === 0) parts.push(c.take())
  }
  parts.push(c.end())
  assert.equal(hex(Buffer.concat(parts)), expected)
})
