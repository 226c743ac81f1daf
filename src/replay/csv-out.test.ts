import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { stringify } from 'csv-stringify/sync'
import { createRandom } from '../domain/index.ts'
import { CsvOut, csvLine } from './csv-out.ts'

test('csvLine writes exactly what csv-stringify writes by default, quotes, commas and line breaks included', () => {
  const rows = [
    ['2026-01-01T00:00:00.000Z', '21.5', '0.012345', 'false', '', 'critical'],
    ['a,b', 'say "hi"', 'two\nlines', 'cr\r', ' spaced ', '"', ',', ''],
    ['z-score 4.2σ above the daily profile; rule max 35 °C (value 41.2)', 'ünïcödé', '1e-7']
  ]
  const random = createRandom(3)
  const alphabet = ['a', ',', '"', '\n', '\r', ' ', 'é', '0', ';', '\t']
  for (let i = 0; i < 500; i++) {
    rows.push(Array.from({ length: 1 + random.int(6) }, () => Array.from({ length: random.int(8) }, () => alphabet[random.int(alphabet.length)]).join('')))
  }
  for (const row of rows) assert.equal(csvLine(row), stringify([row]), JSON.stringify(row))
})

test('CsvOut: the header, then every row, in 64 KB pieces; a file sink is ended, standard output is not', async () => {
  for (const endSink of [true, false]) {
    const sink = new PassThrough()
    const chunks: string[] = []
    sink.on('data', (c: Buffer) => chunks.push(c.toString()))
    const out = new CsvOut(sink, ['timestamp', 'value'], endSink)
    for (let i = 0; i < 10_000; i++) await out.write([String(i), i % 2 === 0 ? 'x,y' : 'z'])
    await out.end()
    assert.equal(sink.writableEnded, endSink)
    const text = chunks.join('')
    assert.equal(text, 'timestamp,value\n' + Array.from({ length: 10_000 }, (_, i) => `${i},${i % 2 === 0 ? '"x,y"' : 'z'}\n`).join(''))
    assert.ok(chunks.length > 1 && chunks.length < 10, `${chunks.length} pieces`)
  }
})
