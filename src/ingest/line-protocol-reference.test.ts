// parseLineProtocol against the official InfluxDB JavaScript client (@influxdata/influxdb-client,
// dev dependency): points built with its Point class and written through its own WriteApi (a
// transport that keeps the request instead of sending it) must come back exactly as they were put
// in: measurement, tags, fields, timestamps, in every precision.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createTextDecoderCombiner, InfluxDB, Point, type SendOptions, type Transport, type WritePrecisionType } from '@influxdata/influxdb-client'
import { createRandom, type Random } from '../domain/index.ts'
import { type FieldValue, type LinePoint, type Precision, parseLineProtocol } from './line-protocol.ts'

/** The receive time: 2024-12-05T12:00:00.789Z. */
const NOW = 1_733_400_000_789
const POINTS_PER_PRECISION = 1500

/** A write the client made: its path (with `precision=`) and body. */
interface CapturedWrite { path: string, body: string }

/** Writes points with the client's WriteApi and returns the one request it made. */
async function writeWithClient (points: Point[], precision: WritePrecisionType): Promise<CapturedWrite> {
  const writes: CapturedWrite[] = []
  const transport: Transport = {
    send (path: string, body: string, _options: SendOptions, callbacks) {
      writes.push({ path, body })
      callbacks?.responseStarted?.({}, 204)
      callbacks?.complete?.()
    },
    request: () => { throw new Error('not used: writes only') },
    iterate: () => { throw new Error('not used: writes only') },
    chunkCombiner: createTextDecoderCombiner()
  }
  const writeApi = new InfluxDB({ url: 'http://influxdb.invalid', transport })
    .getWriteApi('org', 'bucket', precision, { batchSize: points.length + 1, flushInterval: 0, maxRetries: 0 })
  writeApi.writePoints(points)
  await writeApi.close()
  assert.equal(writes.length, 1)
  return writes[0] as CapturedWrite
}

/** Characters names are made of: plain ones, ones line protocol escapes, quotes and `#`, non-ASCII. */
const PLAIN = ['a', 'b', 'x', 'Y', 'Z', '0', '1', '9', '_', '-', '.', ':', '/', 'é', 'ß', '中', '🍭', '€']
const SPECIAL = [' ', ',', '=', '"', '\'', '#']
const STRING_EXTRA = ['\\', '\n', '\r\n', '\t', '\u0000', '"', '\\"', '\\\\']

function pick<T> (random: Random, items: readonly T[]): T {
  return items[random.int(items.length)] as T
}

/**
 * A measurement, tag or field name. Backslashes come only as a run followed by a plain character:
 * line protocol cannot carry a backslash before an escaped character or at the end of a name (the
 * client does not escape backslashes; InfluxDB's own docs and the client's Point.tag say so).
 */
function name (random: Random, measurement: boolean): string {
  let text = ''
  const length = 1 + random.int(8)
  for (let i = 0; i < length; i++) {
    const r = random.next()
    if (r < 0.6) text += pick(random, PLAIN)
    else if (r < 0.85) text += pick(random, SPECIAL)
    else text += '\\'.repeat(1 + random.int(3)) + pick(random, PLAIN)
  }
  // A line starting with # is a comment: a measurement cannot start with it.
  return measurement && text.startsWith('#') ? `m${text}` : text
}

function stringValue (random: Random): string {
  let text = ''
  const length = random.int(12)
  for (let i = 0; i < length; i++) {
    const r = random.next()
    text += r < 0.5 ? pick(random, PLAIN) : r < 0.75 ? pick(random, SPECIAL) : pick(random, STRING_EXTRA)
  }
  return text
}

function floatValue (random: Random): number {
  const r = random.next()
  if (r < 0.1) return pick(random, [Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, 1e21, 1e-7, 0.1, 0.3, 22.5, 0, 123456789012345680000])
  return (random.next() - 0.5) * 10 ** (random.int(40) - 20)
}

/** floor(a / b) for BigInts (BigInt division truncates toward zero). */
function floorDiv (a: bigint, b: bigint): bigint {
  const q = a / b
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q
}

/** µs of a timestamp written as `text` in `precision`, computed with BigInt, independently of the parser. */
function expectedUs (text: string, precision: Precision): number {
  const t = BigInt(text)
  switch (precision) {
    case 'ns': return Number(floorDiv(t, 1000n))
    case 'us': return Number(t)
    case 'ms': return Number(t * 1000n)
    case 's': return Number(t * 1_000_000n)
  }
}

/** µs of a point without a timestamp: the receive time truncated to the precision. */
function defaultUs (precision: Precision): number {
  return precision === 's' ? Math.floor(NOW / 1000) * 1_000_000 : NOW * 1000
}

interface Expected { measurement: string, tags: Record<string, string>, fields: Record<string, FieldValue>, tsUs: number, newlines: number }

/** A random point for the client and what the parser must return for it. */
function randomPoint (random: Random, precision: Precision): { point: Point, expected: Expected } {
  const measurement = name(random, true)
  const point = new Point(measurement)
  const tags: Record<string, string> = {}
  for (let i = random.int(4); i > 0; i--) {
    const key = name(random, false)
    const value = name(random, false)
    point.tag(key, value)
    tags[key] = value
  }
  const fields: Record<string, FieldValue> = {}
  let newlines = 0
  for (let i = 1 + random.int(4); i > 0; i--) {
    const key = name(random, false)
    if (Object.hasOwn(fields, key) && typeof fields[key] === 'string') newlines -= ((fields[key] as string).match(/\n/g) ?? []).length
    switch (random.int(5)) {
      case 0: { const v = floatValue(random); point.floatField(key, v); fields[key] = v; break }
      case 1: { const v = Math.round((random.next() - 0.5) * 2 * Number.MAX_SAFE_INTEGER) * (random.int(2) === 0 ? 1 : 1e-10); const i = Math.floor(v) + 0; point.intField(key, i); fields[key] = i; break }
      case 2: {
        if (random.int(4) === 0) { point.uintField(key, '18446744073709551615'); fields[key] = 2 ** 64; break } // the nearest double
        const v = random.int(2 ** 31) * 2 ** random.int(22); point.uintField(key, v); fields[key] = v; break
      }
      case 3: { const v = random.int(2) === 0; point.booleanField(key, v); fields[key] = v; break }
      default: {
        const v = stringValue(random)
        point.stringField(key, v)
        fields[key] = v
        newlines += (v.match(/\n/g) ?? []).length
      }
    }
  }
  // The timestamp: a Date, a string or a number in the precision's units, or none (server time).
  let tsUs: number
  const us = Math.round((random.next() - 0.5) * 2 ** 53)
  switch (random.int(4)) {
    case 0: {
      const ms = Math.floor(us / 1000)
      point.timestamp(new Date(ms))
      tsUs = precision === 's' ? Math.floor(ms / 1000) * 1_000_000 : ms * 1000
      break
    }
    case 1: {
      const text = precision === 'ns'
        ? (BigInt(us) * 1000n + BigInt(random.int(1000))).toString()
        : precision === 'us' ? String(us) : precision === 'ms' ? String(Math.floor(us / 1000)) : String(Math.floor(us / 1e6))
      point.timestamp(text)
      tsUs = expectedUs(text, precision)
      break
    }
    case 2: {
      const value = precision === 's' ? Math.floor(us / 1e6) : precision === 'ms' ? Math.floor(us / 1000) : us
      point.timestamp(value)
      tsUs = expectedUs(String(Math.floor(value)), precision) // what the client writes for a number
      break
    }
    default:
      point.timestamp('')
      tsUs = defaultUs(precision)
  }
  return { point, expected: { measurement, tags, fields, tsUs: tsUs === 0 ? 0 : tsUs, newlines } }
}

describe('parseLineProtocol against the InfluxDB JavaScript client', () => {
  for (const precision of ['ns', 'us', 'ms', 's'] as const) {
    test(`${POINTS_PER_PRECISION} random points written with precision ${precision} come back as they were put in`, async () => {
      const random = createRandom(precision.charCodeAt(0) * 31 + precision.length)
      const made = Array.from({ length: POINTS_PER_PRECISION }, () => randomPoint(random, precision))
      const write = await writeWithClient(made.map(m => m.point), precision)
      assert.match(write.path, new RegExp(`[?&]precision=${precision}(&|$)`))
      const result = parseLineProtocol(write.body, precision, NOW, { maxLinesPerBody: 100_000, maxLineBytes: 64 * 1024 })
      assert.deepEqual(result.errors, [])
      assert.equal(result.points.length, made.length)
      let line = 1
      made.forEach(({ expected }, i) => {
        const expectedPoint: LinePoint = {
          line, measurement: expected.measurement, tags: expected.tags, fields: expected.fields, tsMs: expected.tsUs / 1000, tsUs: expected.tsUs
        }
        assert.deepEqual(result.points[i], expectedPoint, `point ${i}: ${write.body.split('\n')[line - 1] ?? ''}`)
        line += 1 + expected.newlines
      })
    })
  }

  test('the client\'s escapes of tabs and newlines in names are not line protocol: they arrive as a backslash and a letter, as in InfluxDB', async () => {
    const point = new Point('a\tb').tag('k', 'x\ny\rz').floatField('f\tg', 1).timestamp('1')
    const write = await writeWithClient([point], 'ns')
    assert.equal(write.body, 'a\\tb,k=x\\ny\\rz f\\tg=1 1')
    assert.deepEqual(parseLineProtocol(write.body, 'ns', NOW).points[0], {
      line: 1, measurement: 'a\\tb', tags: { k: 'x\\ny\\rz' }, fields: { 'f\\tg': 1 }, tsMs: 0, tsUs: 0
    })
  })

  test('what the client cannot write: a tag value ending in a backslash escapes the space after it', async () => {
    const write = await writeWithClient([new Point('m').tag('path', 'C:\\').floatField('f', 1).timestamp('')], 'ns')
    assert.equal(write.body, 'm,path=C:\\ f=1')
    // The value runs on to "C:\\ f" and stops at the field's "=".
    assert.deepEqual(parseLineProtocol(write.body, 'ns', NOW).errors.map(e => e.detail), ['unescaped "=" in the value of tag "path" (write \\=)'])
  })
})
