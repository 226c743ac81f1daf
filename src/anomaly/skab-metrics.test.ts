import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addCounts, binaryCounts, emptyCounts, parseSkabCsv, skabScores } from './skab-metrics.ts'

test('skab metrics - F1, FAR and MAR of a hand-made example', () => {
  //              rows: 0  1  2  3  4  5  6  7  8  9
  const labels = [0, 0, 0, 0, 1, 1, 1, 0, 0, 0]
  const flags = [0, 1, 0, 0, 0, 1, 1, 1, 0, 0]
  const c = binaryCounts(labels, flags)
  assert.deepEqual(c, { tp: 2, fp: 2, fn: 1, tn: 5 })
  const s = skabScores(c)
  assert.equal(s.f1, 2 / (2 + (1 + 2) / 2)) // 4/7 = 0.5714...
  assert.equal(s.far, 100 * 2 / 7) // 28.57 %
  assert.equal(s.mar, 100 * 1 / 3) // 33.33 %
  // Booleans work as well as 0/1.
  assert.deepEqual(binaryCounts(labels.map(Boolean), flags.map(Boolean)), c)
})

test('skab metrics - counts of all files are summed before the measures (not an average of per-file scores)', () => {
  const total = emptyCounts()
  addCounts(total, binaryCounts([0, 0, 0, 0, 1, 1, 1, 0, 0, 0], [0, 1, 0, 0, 0, 1, 1, 1, 0, 0]))
  addCounts(total, binaryCounts([1, 1], [0, 0]))
  assert.deepEqual(total, { tp: 2, fp: 2, fn: 3, tn: 5 })
  const s = skabScores(total)
  assert.equal(s.f1, 2 / (2 + 5 / 2)) // 4/9; the mean of the per-file F1 would be (4/7 + 0) / 2
  assert.equal(s.far, 100 * 2 / 7)
  assert.equal(s.mar, 60)
})

test('skab metrics - the leaderboard\'s perfect and null detectors, and empty denominators', () => {
  const labels = [0, 1, 1, 0]
  assert.deepEqual(skabScores(binaryCounts(labels, labels)), { f1: 1, far: 0, mar: 0 })
  assert.deepEqual(skabScores(binaryCounts(labels, [0, 0, 0, 0])), { f1: 0, far: 0, mar: 100 })
  assert.deepEqual(skabScores(binaryCounts([0, 0], [0, 0])), { f1: null, far: 0, mar: null })
  assert.deepEqual(skabScores(binaryCounts([1], [1])), { f1: 1, far: null, mar: 0 })
  assert.throws(() => binaryCounts([0, 1], [0]), { code: 'IOT_ERR_VALIDATION' })
})

const labelled = 'datetime;Accelerometer1RMS;Current;Volume Flow RateRMS;anomaly;changepoint\r\n' +
  '2020-03-09 10:14:33;0.0265878;1.3302;32.0;0.0;0.0\r\n' +
  '2020-03-09 10:14:34;0.0261697;1.35399;32.0;0.0;0.0\r\n' +
  '2020-03-09 10:14:36;0.026199;-1.54006;32.0104;1.0;1.0\r\n'

test('skab csv - semicolons, CRLF, zone-less datetime as UTC, labels as 0/1, value columns in file order', () => {
  const f = parseSkabCsv(labelled, 'valve1/0')
  assert.equal(f.name, 'valve1/0')
  assert.deepEqual(f.columns, ['Accelerometer1RMS', 'Current', 'Volume Flow RateRMS'])
  assert.deepEqual([...f.ts], [Date.UTC(2020, 2, 9, 10, 14, 33), Date.UTC(2020, 2, 9, 10, 14, 34), Date.UTC(2020, 2, 9, 10, 14, 36)])
  assert.deepEqual(f.values.map(v => [...v]), [[0.0265878, 0.0261697, 0.026199], [1.3302, 1.35399, -1.54006], [32, 32, 32.0104]])
  assert.deepEqual([...(f.anomaly ?? [])], [0, 0, 1])
  assert.deepEqual([...(f.changepoint ?? [])], [0, 0, 1])
})

test('skab csv - LF endings and no label columns (the anomaly-free file); no trailing newline', () => {
  const f = parseSkabCsv('datetime;Pressure;Temperature\n2020-02-08 13:30:47;0.382638;90.6454\n2020-02-08 13:30:48;-0.273216;90.7978', 'anomaly-free/anomaly-free')
  assert.deepEqual(f.columns, ['Pressure', 'Temperature'])
  assert.equal(f.ts.length, 2)
  assert.deepEqual(f.values.map(v => [...v]), [[0.382638, -0.273216], [90.6454, 90.7978]])
  assert.equal(f.anomaly, null)
  assert.equal(f.changepoint, null)
  assert.equal(parseSkabCsv('datetime;x\r\n', 'empty').ts.length, 0)
})

test('skab csv - malformed input is refused with its line', () => {
  const bad = (text: string, line: RegExp): void => {
    assert.throws(() => parseSkabCsv(text, 'f'), (err: Error & { code?: string }) => err.code === 'IOT_ERR_VALIDATION' && line.test(err.message))
  }
  bad('time;x\n2020-01-01 00:00:00;1\n', /no "datetime"/)
  bad('datetime;x\n2020-01-01 00:00:00;1\n2020-01-01 00:00:01\n', /f:3:/)
  bad('datetime;x\n2020-01-01 00:00:00;abc\n', /f:2: x/)
  bad('datetime;x\n2020-01-01 00:00:00;\n', /f:2: x/)
  bad('datetime;x\n2020-13-01 00:00:00;1\n', /f:2: bad datetime/)
  bad('datetime;x;anomaly\n2020-01-01 00:00:00;1;0.5\n', /f:2: anomaly/)
})
