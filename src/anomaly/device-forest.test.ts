import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DeviceForest, defaultDeviceForestOptions, type DeviceScore } from './device-forest.ts'
import { fitDeviceModel, type DeviceModel, type DeviceTrainer, type DeviceTrainingJob } from './device-model.ts'
import { T0, deviceRows, scoreRows } from './device-rows.fixture.ts'

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k)

test('device forest - a measurement that breaks its correlation is flagged, and named', () => {
  // Rows 1050-1069: b flips sign where |a| is near 1 (b -2 where a and c say +2): within b's range.
  const f = new DeviceForest('lab', ['a', 'b', 'c'])
  const { alarms, scores } = scoreRows(f, deviceRows(1200, 3, i => i >= 1050 && i < 1070))
  // The device score is the median of the last 9 row scores: the alarm starts at the 5th broken
  // row and ends 4 rows after the last one; no other row of the 1200 alarms.
  assert.deepEqual(alarms, range(1054, 1074))
  const at = scores[1054]!
  assert.equal(at.model?.version, 'lab#7')
  assert.ok(at.score !== null && at.score >= 0.5)
  // Far off the relation of a, b and c: the distance (twice the farthest training row's) says more than the forests.
  assert.equal(at.score!.toFixed(4), '0.9554')
  assert.deepEqual(at.contributions.map(c => [c.measurement, c.share.toFixed(3), c.z.toFixed(2), c.expected.toFixed(2)]), [['b', '0.833', '-0.79', '0.81'], ['a', '0.167', '0.81', '-0.50']])
  // Before the break: scored, below the threshold, nobody to blame.
  assert.equal(scores[1049]!.anomaly, false)
  assert.deepEqual(scores[1049]!.contributions, [])
  // The first model is asked for at row 400 and scores from row 416 (installAfterRows 16); then a
  // new one every 100 rows (RetrainPolicy, 60 s of event time apart), each 16 rows after it was asked for.
  assert.equal(scores[415]!.model, null)
  assert.equal(scores[415]!.score, null)
  assert.equal(scores[416]!.model?.version, 'lab#1')
  assert.equal(scores[416]!.model?.trainedAt, T0 + 400_000)
  assert.equal(scores[416]!.model?.samples, 400)
  assert.equal(scores[515]!.model?.version, 'lab#1')
  assert.equal(scores[516]!.model?.version, 'lab#2')
  assert.equal(f.modelsTrained, 8)
  assert.equal(f.trainingFailures, 0)
})

test('device forest - the same device without a break: no alarm; about 1 % of rows past the threshold on their own', () => {
  const f = new DeviceForest('ok', ['a', 'b', 'c'])
  const { alarms, passed } = scoreRows(f, deviceRows(5000, 4))
  assert.deepEqual(alarms, [])
  // 4584 rows scored; the threshold is the 99th percentile of out-of-fold scores: 36 rows pass it alone (0.79 %).
  assert.equal(passed, 36)
  assert.equal(f.modelsTrained, 23)
})

test('device forest - alarmed rows stay out of training until they are most of the window', () => {
  // b shifts by +3 for good at row 600 (b's usual range is about ±2.2).
  const f = new DeviceForest('lab', ['a', 'b', 'c'], { trainingSize: 1000 })
  const rows = deviceRows(1600, 5).map((r, i) => i >= 600 ? [r[0]!, r[1]! + 3, r[2]!] : r)
  const { alarms, scores } = scoreRows(f, rows)
  // Alarmed from the 5th shifted row until the alarmed rows outnumber the others in the 1000-row
  // window (row 1104): the flags and the last row scores are dropped, and the next model, asked for
  // at row 1105, learns the window as it is. Until it scores (row 1121) the old model goes on: the
  // device alarms again from row 1109 (5 rows past its threshold) until the new model's scores
  // fill the last nine (row 1125); those 16 rows stay flagged, out of training.
  assert.deepEqual(alarms, [...range(604, 1105), ...range(1109, 1125)])
  assert.equal(scores[1120]!.model?.version, 'lab#3')
  assert.equal(scores[1121]!.model?.version, 'lab#4')
  assert.equal(scores[1121]!.model?.trainedAt, T0 + 1_105_000)
  assert.equal(f.rows, 1000)
  assert.equal(f.alarmedRows, 16)
})

test('device forest - deterministic for the same rows and seed; the seed matters', () => {
  const rows = deviceRows(700, 6)
  const a = scoreRows(new DeviceForest('d', ['a', 'b', 'c']), rows).scores.map(s => s.rowScore)
  const b = scoreRows(new DeviceForest('d', ['a', 'b', 'c']), rows).scores.map(s => s.rowScore)
  const c = scoreRows(new DeviceForest('d', ['a', 'b', 'c'], { seed: 7 }), rows).scores.map(s => s.rowScore)
  assert.deepEqual(a, b)
  assert.notDeepEqual(a, c)
})

test('device forest - options and rows are checked', () => {
  assert.throws(() => new DeviceForest('d', ['a']), { code: 'IOT_ERR_ANOMALY_CONFIG', message: 'device.measurements: a device-level model needs at least 2 measurements, got 1' })
  assert.throws(() => new DeviceForest('d', ['a', 'b'], { alarmRows: 10 }), { code: 'IOT_ERR_ANOMALY_CONFIG', message: 'device.alarmRows: must be <= alarmWindow (9), got 10' })
  assert.throws(() => new DeviceForest('d', ['a', 'b'], { firstRows: 5000 }), { code: 'IOT_ERR_ANOMALY_CONFIG' })
  assert.throws(() => new DeviceForest('d', ['a', 'b'], { falseAlarmRate: 0 }), { code: 'IOT_ERR_ANOMALY_CONFIG' })
  const f = new DeviceForest('d', ['a', 'b'])
  assert.throws(() => f.score([1], T0), RangeError)
  assert.throws(() => f.score([1, NaN], T0), /b is not a finite number/)
  assert.equal(defaultDeviceForestOptions.firstRows, 400)
})

/** A trainer that fits only when the fit is taken (as a slow thread would), recording each job and cancel. */
function deferredTrainer (fail: (job: DeviceTrainingJob) => boolean = () => false): DeviceTrainer & { jobs: Array<[number, number, number]>, cancelled: number } {
  const trainer = {
    jobs: [] as Array<[number, number, number]>,
    cancelled: 0,
    start (job: DeviceTrainingJob) {
      trainer.jobs.push([job.sequence, job.trainedAt - T0, job.rows.length / job.m])
      const copy = { ...job, rows: job.rows.slice() }
      return {
        take: (): DeviceModel => {
          if (fail(copy)) throw new Error('no model')
          return fitDeviceModel(copy)
        },
        cancel: () => { trainer.cancelled++ }
      }
    }
  }
  return trainer
}

test('device forest - a model asked for at one row scores from installAfterRows rows later, however long its fit took', () => {
  const rows = deviceRows(1200, 3, i => i >= 1050 && i < 1070)
  const inline = scoreRows(new DeviceForest('lab', ['a', 'b', 'c']), rows).scores
  const trainer = deferredTrainer()
  const deferred = new DeviceForest('lab', ['a', 'b', 'c'], {}, trainer)
  const later = scoreRows(deferred, rows).scores
  const verdict = (s: DeviceScore): unknown[] => [s.rowScore, s.score, s.anomaly, s.model?.version ?? null, s.contributions]
  assert.deepEqual(later.map(verdict), inline.map(verdict))
  // Asked for at rows 400, 500, ..., 1000 and 1120 (100 rows not alarmed since 1000: rows 1054-1073 do not count), on the rows before.
  assert.deepEqual(trainer.jobs, [[1, 400_000, 400], [2, 500_000, 500], [3, 600_000, 600], [4, 700_000, 700], [5, 800_000, 800], [6, 900_000, 900], [7, 1_000_000, 1000], [8, 1_120_000, 1100]])
  // installAfterRows 0: the trigger row itself is scored by the new model; 1: the row after it.
  for (const [k, first] of [[0, 400], [1, 401], [32, 432]] as const) {
    const scores = scoreRows(new DeviceForest('lab', ['a', 'b', 'c'], { installAfterRows: k }), rows.slice(0, 500)).scores
    assert.deepEqual([scores[first - 1]!.model, scores[first]!.model?.version], [null, 'lab#1'], `installAfterRows ${k}`)
  }
})

test('device forest - a failed fit counts, the device keeps its model, and the schedule moves on', () => {
  const trainer = deferredTrainer(job => job.sequence === 2 && job.trainedAt === T0 + 500_000)
  const f = new DeviceForest('lab', ['a', 'b', 'c'], {}, trainer)
  const { scores } = scoreRows(f, deviceRows(700, 3))
  assert.equal(scores[516]!.model?.version, 'lab#1')
  assert.equal(f.trainingFailures, 1)
  // Asked for again at the next due row (100 new rows and 60 s after row 500), under the same number.
  assert.deepEqual(trainer.jobs.map(j => j.slice(0, 2)), [[1, 400_000], [2, 500_000], [2, 600_000]])
  assert.equal(scores[615]!.model?.version, 'lab#1')
  assert.equal(scores[616]!.model?.version, 'lab#2')
  assert.equal(f.modelsTrained, 2)
  // A fit under way is cancelled with the forest's state.
  const g = new DeviceForest('lab', ['a', 'b', 'c'], {}, trainer)
  scoreRows(g, deviceRows(405, 3))
  assert.equal(g.fitPending, true)
  g.cancelFit()
  assert.deepEqual([g.fitPending, trainer.cancelled], [false, 1])
})
