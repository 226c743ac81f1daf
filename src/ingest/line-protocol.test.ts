import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRandom } from '../domain/index.ts'
import { defaultIngestLimits } from './limits.ts'
import { type FieldValue, type LineError, type LinePoint, type LineProtocolLimits, type LineProtocolResult, type Precision, parseLineProtocol } from './line-protocol.ts'
import { MAX_RAW_CHARS } from './reasons.ts'

/** 2024-12-05T12:00:00.789Z: the receive time, with ms so that truncation to the precision shows. */
const NOW = 1_733_400_000_789
const NOW_US = NOW * 1000

function parse (body: string | Buffer, precision: Precision = 'ns', limits: LineProtocolLimits = defaultIngestLimits): LineProtocolResult {
  return parseLineProtocol(body, precision, NOW, limits)
}

function point (line: number, measurement: string, tags: Record<string, string>, fields: Record<string, FieldValue>, tsUs: number = NOW_US): LinePoint {
  return { line, measurement, tags, fields, tsMs: tsUs / 1000, tsUs }
}

/** The one point of a one-line body. */
function only (body: string, precision: Precision = 'ns'): LinePoint {
  const r = parse(body, precision)
  assert.deepEqual(r.errors, [], body)
  assert.equal(r.points.length, 1, body)
  return r.points[0] as LinePoint
}

/** The one error of a one-line body, without its raw (the line itself). */
function failure (body: string, precision: Precision = 'ns'): Omit<LineError, 'raw'> {
  const r = parse(body, precision)
  assert.deepEqual(r.points, [], body)
  assert.equal(r.errors.length, 1, body)
  const { raw, ...rest } = r.errors[0] as LineError
  assert.equal(raw, body.split('\n')[0]?.replace(/\r$/, ''))
  return rest
}

function syntax (detail: string): Omit<LineError, 'raw'> {
  return { line: 1, reason: 'line_protocol', detail }
}

describe('parseLineProtocol: points', () => {
  test('a Telegraf line: measurement, tags, every field type, ns timestamp', () => {
    assert.deepEqual(
      only('environment,device=esp32-1,location=Lab temperature=22.5,humidity=41i,count=7u,door=t,status="ok" 1733400000000123456'),
      point(1, 'environment', { device: 'esp32-1', location: 'Lab' },
        { temperature: 22.5, humidity: 41, count: 7, door: true, status: 'ok' }, 1733400000000123))
  })

  test('no tags; the measurement as the sensor type (field value)', () => {
    assert.deepEqual(only('temperature value=21 1733400000000000000'), point(1, 'temperature', {}, { value: 21 }, 1733400000000000))
  })

  test('without a timestamp: the receive time, truncated to the precision as InfluxDB does', () => {
    assert.equal(only('m f=1').tsUs, NOW_US)
    assert.equal(only('m f=1', 'us').tsUs, NOW_US)
    assert.equal(only('m f=1', 'ms').tsUs, NOW_US)
    assert.equal(only('m f=1', 's').tsUs, 1_733_400_000_000_000)
    assert.equal(only('m f=1 ').tsUs, NOW_US, 'a trailing space is no timestamp')
  })

  test('lines: numbered physically; blank lines, comments, CRLF, spaces, a last line without newline', () => {
    const body = '# a comment\n\nm a=1 1000\r\n   \n  # indented comment\n  m,t=x   b=2   2000  \r\nm c=3 3000'
    assert.deepEqual(parse(body, 'us'), {
      points: [point(3, 'm', {}, { a: 1 }, 1000), point(6, 'm', { t: 'x' }, { b: 2 }, 2000), point(7, 'm', {}, { c: 3 }, 3000)],
      errors: []
    })
  })

  test('an empty body, only comments, only newlines: nothing', () => {
    for (const body of ['', '\n', '\r\n\r\n', '# x\n#y', '   ']) assert.deepEqual(parse(body), { points: [], errors: [] })
  })

  test('a leading byte order mark is skipped; a Buffer is UTF-8', () => {
    const expected = { points: [point(1, 'm', { t: '🍭' }, { f: 'Launch 🚀' }, 1556813561098000)], errors: [] }
    assert.deepEqual(parse('\uFEFFm,t=🍭 f="Launch 🚀" 1556813561098000000'), expected)
    assert.deepEqual(parse(Buffer.from('\uFEFFm,t=🍭 f="Launch 🚀" 1556813561098000000')), expected)
  })

  test('a tag or field named __proto__ is an own property; the prototype stays', () => {
    const p = only('m,__proto__=x __proto__=1')
    assert.deepEqual(p.tags, JSON.parse('{"__proto__":"x"}'))
    assert.deepEqual(p.fields, JSON.parse('{"__proto__":1}'))
    assert.equal(Object.getPrototypeOf(p.tags), Object.prototype)
    assert.equal(Object.getPrototypeOf(p.fields), Object.prototype)
    assert.deepEqual(only('m,constructor=a,toString=b hasOwnProperty=1').tags, { constructor: 'a', toString: 'b' })
  })

  test('names repeated line after line come out right when they change (names are reused by position)', () => {
    const r = parse('m,a=1 x=1\nm,a=2 x=2\nn,b=2 y=3\nm,a=1,c=3 x=4,z=5\nm x=6')
    assert.deepEqual(r.points.map(p => [p.measurement, p.tags, p.fields]), [
      ['m', { a: '1' }, { x: 1 }],
      ['m', { a: '2' }, { x: 2 }],
      ['n', { b: '2' }, { y: 3 }],
      ['m', { a: '1', c: '3' }, { x: 4, z: 5 }],
      ['m', {}, { x: 6 }]
    ])
  })
})

describe('parseLineProtocol: escaping (InfluxDB v2 reference, "Special characters")', () => {
  test('measurement: comma and space', () => {
    assert.equal(only('my\\ Measurement f=1').measurement, 'my Measurement')
    assert.equal(only('a\\,b f=1').measurement, 'a,b')
    assert.equal(only('a=b f=1').measurement, 'a=b', '= needs no escape in a measurement')
    assert.equal(only('a\\=b f=1').measurement, 'a\\=b', 'and \\= is not an escape there')
    assert.equal(only('"q\'uoted" f=1').measurement, '"q\'uoted"', 'quotes are part of names')
  })

  test('tag keys, tag values and field keys: comma, equals sign and space', () => {
    assert.deepEqual(only('m,tag\\ Key1=tag\\ Value1,a\\,b=c\\,d,e\\=f=g\\=h field\\ Key=1,x\\,y\\=z=2'), point(1, 'm',
      { 'tag Key1': 'tag Value1', 'a,b': 'c,d', 'e=f': 'g=h' }, { 'field Key': 1, 'x,y=z': 2 }))
  })

  test('a backslash before anything else is itself, and the character after it stays in the name', () => {
    assert.deepEqual(only('m\\n,t=a\\b,u=c\\\\d,v=e\\\\\\,f f\\t=1'), point(1, 'm\\n', { t: 'a\\b', u: 'c\\\\d', v: 'e\\\\,f' }, { 'f\\t': 1 }))
    assert.deepEqual(only('m,t=a\\"b f=1').tags, { t: 'a\\"b' })
  })

  test('a backslash at the end of a line is itself', () => {
    assert.deepEqual(failure('m\\'), syntax('no fields (a point needs at least one: measurement field=value)'))
    assert.deepEqual(failure('m f\\'), syntax('field key "f\\\\" without "=" and a value'))
  })

  test('string values: \\" is ", \\\\ is \\; other backslashes stay; commas, spaces, = and # need nothing', () => {
    assert.deepEqual(only('m f="\\"string\\" within a string",g="a,b c=d #e",h="C:\\\\dir\\\\",i="\\n\\t\\x"').fields, {
      f: '"string" within a string', g: 'a,b c=d #e', h: 'C:\\dir\\', i: '\\n\\t\\x'
    })
    assert.deepEqual(only('m f=""').fields, { f: '' })
  })

  test('backslash runs in strings: the reference table (\\ → \\, \\\\ → \\, \\\\\\ → \\\\, ...)', () => {
    for (let k = 1; k <= 6; k++) {
      assert.equal(only(`m f="x${'\\'.repeat(k)}y"`).fields.f, `x${'\\'.repeat(Math.ceil(k / 2))}y`, `${k} backslashes`)
    }
  })

  test('a string may hold newlines (CRLF too): the point spans lines and the next one is numbered after it', () => {
    assert.deepEqual(parse('m s="a\nb",n=1 1000\nm f=2 2000\nm s="x\r\ny"\r\nm f=3 3000', 'us'), {
      points: [
        point(1, 'm', {}, { s: 'a\nb', n: 1 }, 1000),
        point(3, 'm', {}, { f: 2 }, 2000),
        point(4, 'm', {}, { s: 'x\r\ny' }),
        point(6, 'm', {}, { f: 3 }, 3000)
      ],
      errors: []
    })
  })

  test('control characters are fine inside strings only', () => {
    assert.deepEqual(only('m f="a\tb\u0000c"').fields, { f: 'a\tb\u0000c' })
  })
})

describe('parseLineProtocol: field values', () => {
  test('floats: InfluxDB\'s forms, the same doubles as Number()', () => {
    const cases: Array<[string, number]> = [
      ['1', 1], ['1.0', 1], ['-1.234456e+78', -1.234456e+78], ['.5', 0.5], ['5.', 5], ['-0.5', -0.5], ['1E5', 1e5], ['1e-7', 1e-7],
      ['0.1234567890123456789', 0.12345678901234568], ['123456789012345678901234', Number('123456789012345678901234')], ['0.1', 0.1], ['0.3', 0.3],
      ['1.7976931348623157e308', 1.7976931348623157e308], ['5e-324', 5e-324], ['-.5e-3', -0.0005], ['007.50', 7.5]
    ]
    for (const [text, value] of cases) assert.equal(only(`m f=${text}`).fields.f, value, text)
  })

  test('floats: 20,000 random decimals give exactly Number(text)', () => {
    const random = createRandom(7)
    const digits = (n: number): string => Array.from({ length: n }, () => String(random.int(10))).join('')
    const lines: string[] = []
    const expected: number[] = []
    for (let i = 0; i < 20_000; i++) {
      const intPart = digits(random.int(12))
      const frac = digits(random.int(i % 2 === 0 ? 8 : 20))
      let text = (random.int(2) === 0 ? '-' : '') + (intPart === '' && frac === '' ? '0' : intPart) + (frac === '' ? '' : `.${frac}`)
      if (i % 5 === 0) text += `e${random.int(2) === 0 ? '-' : ''}${random.int(40)}`
      lines.push(`m f=${text}`)
      expected.push(Number(text))
    }
    const r = parse(lines.join('\n'))
    assert.deepEqual(r.errors, [])
    r.points.forEach((p, i) => { assert.ok(Object.is(p.fields.f, expected[i]), `${lines[i] ?? ''}: ${String(p.fields.f)}`) })
  })

  test('integers (i): int64, exact within 2^53, nearest double beyond; -0i is 0', () => {
    const cases: Array<[string, number]> = [
      ['1i', 1], ['-12485903i', -12485903], ['00012i', 12], ['9007199254740993i', 9007199254740992],
      ['9223372036854775807i', 2 ** 63], ['-9223372036854775808i', -(2 ** 63)], ['000000000000000000009223372036854775807i', 2 ** 63]
    ]
    for (const [text, value] of cases) assert.equal(only(`m f=${text}`).fields.f, value, text)
    assert.ok(Object.is(only('m f=-0i').fields.f, 0))
  })

  test('unsigned (u): 0 to 2^64 - 1', () => {
    assert.equal(only('m f=0u').fields.f, 0)
    assert.equal(only('m f=12485903u').fields.f, 12485903)
    assert.equal(only('m f=18446744073709551615u').fields.f, 2 ** 64, 'the nearest double')
  })

  test('booleans: exactly t T true True TRUE f F false False FALSE', () => {
    assert.deepEqual(only('m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE').fields,
      { a: true, b: true, c: true, d: true, e: true, f: false, g: false, h: false, i: false, j: false })
  })

  test('values that are none of these are line_protocol errors, one per line', () => {
    const notNumber = (v: string): string => `field "f" has value ${JSON.stringify(v)}: not a number (floats: 1, -1.5, 1e3; integers: 1i; unsigned: 1u)`
    const cases: Array<[string, string]> = [
      ['abc', 'field "f" has value "abc": not a number, boolean or "quoted string"'],
      ['tRUE', 'field "f" has value "tRUE": not a number, boolean or "quoted string"'],
      ['yes', 'field "f" has value "yes": not a number, boolean or "quoted string"'],
      ['NaN', 'field "f" has value "NaN": not a number, boolean or "quoted string"'],
      ['Infinity', 'field "f" has value "Infinity": not a number, boolean or "quoted string"'],
      ['+1', 'field "f" has value "+1": not a number, boolean or "quoted string"'],
      ['i', 'field "f" has value "i": not a number, boolean or "quoted string"'],
      ['1.2.3', notNumber('1.2.3')],
      ['1e', notNumber('1e')],
      ['1e+', notNumber('1e+')],
      ['--1', notNumber('--1')],
      ['-', notNumber('-')],
      ['.', notNumber('.')],
      ['0x10', notNumber('0x10')],
      ['1_000', notNumber('1_000')],
      ['-Infinity', notNumber('-Infinity')],
      ['1"', notNumber('1"')],
      ['1.5i', 'field "f" has value "1.5i": not an integer'],
      ['-i', 'field "f" has value "-i": not an integer'],
      ['1ii', 'field "f" has value "1ii": not an integer'],
      ['-1u', 'field "f" has value "-1u": not an unsigned integer'],
      ['9223372036854775808i', 'field "f" has value "9223372036854775808i": out of the int64 range'],
      ['-9223372036854775809i', 'field "f" has value "-9223372036854775809i": out of the int64 range'],
      ['18446744073709551616u', 'field "f" has value "18446744073709551616u": out of the uint64 range'],
      ['99999999999999999999999i', 'field "f" has value "99999999999999999999999i": out of the int64 range']
    ]
    for (const [value, detail] of cases) assert.deepEqual(failure(`m f=${value}`), syntax(detail), value)
  })

  test('a float beyond a double is non_finite_value', () => {
    assert.deepEqual(failure('m f=1e400'), { line: 1, reason: 'non_finite_value', detail: 'field "f" has value "1e400": beyond a 64-bit float' })
    assert.equal(failure('m f=-1.8e308').reason, 'non_finite_value')
  })
})

describe('parseLineProtocol: syntax errors', () => {
  const cases: Array<[string, string]> = [
    ['bad line', 'field key "line" without "=" and a value'],
    ['m', 'no fields (a point needs at least one: measurement field=value)'],
    ['m ', 'no fields (a point needs at least one: measurement field=value)'],
    ['m,t=1', 'no fields (a point needs at least one: measurement field=value)'],
    ['m,t=1 ', 'no fields (a point needs at least one: measurement field=value)'],
    [',t=1 f=1', 'no measurement before the first comma'],
    ['m,=v f=1', 'empty tag key'],
    ['m, f=1', 'empty tag key'],
    ['m,t f=1', 'tag key "t" without "=" and a value'],
    ['m,t=1,u', 'tag key "u" without "=" and a value'],
    ['m,t= f=1', 'tag "t" has an empty value (leave the tag out instead)'],
    ['m,t=a=b f=1', 'unescaped "=" in the value of tag "t" (write \\=)'],
    ['m,t=1,t=2 f=1', 'tag "t" is repeated'],
    ['m =1', 'empty field key'],
    ['m f=1,', 'empty field key'],
    ['m f=1,,g=2', 'empty field key'],
    ['m f', 'field key "f" without "=" and a value'],
    ['m f=', 'field "f" has no value'],
    ['m f=1,f=2', 'field "f" is repeated'],
    ['m f="a"b', 'unexpected "b" after the value of field "f"'],
    ['m f="abc', 'string field value without its closing quote'],
    ['m f="abc\\"', 'string field value without its closing quote'],
    ['m f=1 abc', 'unexpected text after the fields: "abc"'],
    ['m f=1 g=2', 'unexpected text after the fields: "g=2"'],
    ['m\tx f=1', 'control character U+0009 in a measurement'],
    ['m\\\tx f=1', 'control character U+0009 in a measurement'],
    ['m,t=a\u0000 f=1', 'control character U+0000 in a tag value'],
    ['m,t\u007f=a f=1', 'control character U+007F in a tag key'],
    ['m f\u001b=1', 'control character U+001B in a field key'],
    ['m\rx f=1', 'control character U+000D in a measurement'],
    ['\tm f=1', 'control character U+0009 in a measurement']
  ]
  for (const [body, detail] of cases) {
    test(JSON.stringify(body), () => { assert.deepEqual(failure(body), syntax(detail)) })
  }

  test('the raw of an error is its line, cut to MAX_RAW_CHARS', () => {
    const long = `m f=${'x'.repeat(5000)}`
    const r = parse(`m f=1\n${long}\nm f=2`)
    assert.equal(r.points.length, 2)
    assert.deepEqual(r.errors.map(e => [e.line, e.raw, e.reason]), [[2, long.slice(0, MAX_RAW_CHARS), 'line_protocol']])
  })

  test('a stray quote costs its line only: parsing resumes on the next physical line', () => {
    const r = parse('m f="abc\nm g=1 1000\nm h="x" 2000', 'us')
    assert.deepEqual(r.points, [point(2, 'm', {}, { g: 1 }, 1000), point(3, 'm', {}, { h: 'x' }, 2000)])
    assert.deepEqual(r.errors, [{ line: 1, raw: 'm f="abc', reason: 'line_protocol', detail: 'unexpected "x" after the value of field "f"' }])
  })
})

describe('parseLineProtocol: timestamps', () => {
  test('each precision to µs and ms', () => {
    const cases: Array<[Precision, string, number]> = [
      ['ns', '1733400000000123456', 1733400000000123],
      ['us', '1733400000000123', 1733400000000123],
      ['ms', '1733400000000', 1733400000000000],
      ['s', '1733400000', 1733400000000000],
      ['ns', '0', 0],
      ['ns', '999', 0],
      ['ns', '1000', 1],
      ['ms', '0001733400000000', 1733400000000000]
    ]
    for (const [precision, ts, tsUs] of cases) {
      const p = only(`m f=1 ${ts}`, precision)
      assert.equal(p.tsUs, tsUs, `${ts} ${precision}`)
      assert.equal(p.tsMs, tsUs / 1000)
    }
    assert.equal(only('m f=1 1733400000000123456').tsMs, 1733400000000.123)
  })

  test('ns below a µs round down, toward the past, also before 1970; -0 is 0', () => {
    const cases: Array<[string, number]> = [['-1', -1], ['-999', -1], ['-1000', -1], ['-1001', -2], ['-1500', -2], ['-0', 0], ['1999', 1]]
    for (const [ts, tsUs] of cases) assert.ok(Object.is(only(`m f=1 ${ts}`).tsUs, tsUs), ts)
    assert.ok(Object.is(only('m f=1 -0', 's').tsUs, 0))
    assert.equal(only('m f=1 -5', 's').tsUs, -5_000_000)
  })

  test('Math.round(tsMs * 1000) is tsUs for 10,000 random ns timestamps', () => {
    const random = createRandom(11)
    for (let i = 0; i < 10_000; i++) {
      const ns = String(1_600_000_000_000 + random.int(400_000_000_000)) + String(random.int(1_000_000)).padStart(6, '0')
      const p = only(`m f=1 ${ns}`)
      assert.equal(p.tsUs, Number(ns.slice(0, -3)))
      assert.equal(Math.round(p.tsMs * 1000), p.tsUs)
    }
  })

  test('the range: a safe integer of µs', () => {
    assert.equal(only('m f=1 9007199254740991', 'us').tsUs, 9007199254740991)
    assert.equal(only('m f=1 -9007199254740991', 'us').tsUs, -9007199254740991)
    assert.equal(only('m f=1 9007199254740991999', 'ns').tsUs, 9007199254740991)
    const outOfRange = (ts: string, precision: Precision): Omit<LineError, 'raw'> =>
      ({ line: 1, reason: 'bad_timestamp', detail: `timestamp "${ts}" (${precision}) is out of range: at most ±9007199254740991 µs from the epoch` })
    for (const [ts, precision] of [['9007199254740992', 'us'], ['9223372036854775806', 'ns'], ['9007199254741', 'ms'], ['9007199255', 's'], ['-9007199255', 's'],
      ['99999999999999999999999999', 'ns']] as Array<[string, Precision]>) {
      assert.deepEqual(failure(`m f=1 ${ts}`, precision), outOfRange(ts, precision), ts)
    }
  })

  test('a timestamp that is not an integer is bad_timestamp', () => {
    const bad = (ts: string): Omit<LineError, 'raw'> => ({ line: 1, reason: 'bad_timestamp', detail: `invalid timestamp "${ts}": an integer of ns since the epoch` })
    for (const ts of ['1.5', '1e9', '-', '--5', '12a', '123 456', '0x10']) assert.deepEqual(failure(`m f=1 ${ts}`), bad(ts), ts)
  })
})

describe('parseLineProtocol: bounds', () => {
  test('a line of exactly maxLineBytes (UTF-8) is parsed; one byte more is too_large, the rest goes on', () => {
    const limits = { ...defaultIngestLimits, maxLineBytes: 20 }
    const fits = 'm s="ééééééé"' // 20 bytes, 13 UTF-16 units
    assert.equal(Buffer.byteLength(fits), 20)
    const over = 'm s="éééééééé"'
    const r = parse(`${fits}\r\n${over}\r\nm f=1`, 'ns', limits)
    assert.deepEqual(r.points.map(p => [p.line, p.fields]), [[1, { s: 'ééééééé' }], [3, { f: 1 }]])
    assert.deepEqual(r.errors, [{ line: 2, raw: over, reason: 'too_large', detail: 'line exceeds 20 bytes' }])
  })

  test('a string that runs on over lines counts all of them against maxLineBytes', () => {
    const limits = { ...defaultIngestLimits, maxLineBytes: 20 }
    const r = parse('m s="0123456789\n0123456789"\nm f=1', 'ns', limits)
    // Resumed on line 2, which is no point either; line 3 is.
    assert.deepEqual(r.errors, [
      { line: 1, raw: 'm s="0123456789', reason: 'too_large', detail: 'line exceeds 20 bytes (a string field runs on over 2 lines)' },
      { line: 2, raw: '0123456789"', reason: 'line_protocol', detail: 'no fields (a point needs at least one: measurement field=value)' }
    ])
    assert.deepEqual(r.points.map(p => p.line), [3])
  })

  test('past maxLinesPerBody lines: one too_many_lines error, the lines before are kept', () => {
    const limits = { ...defaultIngestLimits, maxLinesPerBody: 3 }
    const r = parse('m f=1\n\nm f=3\nm f=4\nm f=5\n', 'ns', limits)
    assert.deepEqual(r.points.map(p => p.line), [1, 3])
    assert.deepEqual(r.errors, [{ line: 4, raw: 'm f=4', reason: 'too_many_lines', detail: 'the body has more than 3 lines; lines from 4 on were not read' }])
    assert.deepEqual(parse('m f=1\nm f=2\nm f=3\n\n \r\n', 'ns', limits).errors, [], 'only whitespace past the limit is no error')
  })

  test('10,000 malformed lines among good ones: each reported with its line number, every good line kept', () => {
    const malformed = ['m', 'm f=', 'm f=abc', 'm,t f=1', 'm f="x', 'm f=1 1.5', 'm f=1e400', '=', 'm f=1,f=2', 'm,t=a=b f=1']
    const reasons = ['line_protocol', 'line_protocol', 'line_protocol', 'line_protocol', 'line_protocol', 'bad_timestamp', 'non_finite_value', 'line_protocol', 'line_protocol', 'line_protocol']
    const lines: string[] = []
    const expectedErrors: Array<[number, string, string]> = []
    const expectedGood: number[] = []
    for (let i = 0; i < 20_000; i++) {
      if (i % 2 === 0) {
        lines.push(malformed[(i / 2) % malformed.length] as string)
        expectedErrors.push([i + 1, lines[i] as string, reasons[(i / 2) % malformed.length] as string])
      } else {
        lines.push(`sensors,device=d${i} temperature=${i}.5 ${i}000000`)
        expectedGood.push(i + 1)
      }
    }
    const r = parse(lines.join('\n'))
    assert.deepEqual(r.errors.map(e => [e.line, e.raw, e.reason]), expectedErrors)
    assert.deepEqual(r.points.map(p => p.line), expectedGood)
    r.points.forEach(p => {
      const i = p.line - 1
      assert.deepEqual([p.tags, p.fields, p.tsUs], [{ device: `d${i}` }, { temperature: i + 0.5 }, i * 1000])
    })
  })
})
