import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { MqttFrameScanner } from './frame-limit.ts'

/** An MQTT packet: type byte, Remaining Length (variable-length integer), body. */
function packet (bodyBytes: number): Buffer {
  const length: number[] = []
  let n = bodyBytes
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    length.push(byte)
  } while (n > 0)
  return Buffer.concat([Buffer.from([0x30]), Buffer.from(length), Buffer.alloc(bodyBytes, 0x61)])
}

describe('MqttFrameScanner', () => {
  test('packets up to the limit pass, however the stream is cut', () => {
    const stream = Buffer.concat([packet(0), packet(127), packet(128), packet(16_383), packet(16_384), packet(20_000)])
    for (const cut of [1, 2, 3, 7, 1000, stream.length]) {
      const scanner = new MqttFrameScanner(20_000)
      for (let i = 0; i < stream.length; i += cut) assert.equal(scanner.scan(stream.subarray(i, i + cut)), null, `cut every ${cut} bytes`)
    }
  })

  test('a packet over the limit is reported from its header alone, even with the length split across reads', () => {
    const header = packet(20_001).subarray(0, 4) // type + a 3-byte length, no body yet
    const scanner = new MqttFrameScanner(20_000)
    assert.equal(scanner.scan(packet(10)), null)
    assert.equal(scanner.scan(header.subarray(0, 2)), null)
    assert.equal(scanner.scan(header.subarray(2)), 20_001)
  })

  test('a Remaining Length of more than four bytes is malformed: Infinity', () => {
    const scanner = new MqttFrameScanner(1 << 30)
    assert.equal(scanner.scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), Infinity)
  })
})
