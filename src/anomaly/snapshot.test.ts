import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isDeepStrictEqual } from 'node:util'
import { createRandom, type Reading, type Verdict } from '../domain/index.ts'
import { snapshotLastTs } from './detector.ts'
import {
  AnomalyStateError,
  Detector,
  ForestScorer,
  IsolationForest,
  ZScoreDetector,
  decodeModel,
  encodeModel,
  inlineTrainer,
  type ForestOptions,
  type ForestTrainer,
  type TrainedModel
} from './index.ts'
import { SnapshotReader, SnapshotWriter, crc32 } from './snapshot.ts'

const MINUTE = 60_000
const DAY = 86_400_000
/** Midnight UTC: the series' days are the daily profile's days. */
const T0 = Date.UTC(2026, 0, 5)

interface SensorSpec {
  sensorId: string
  sensorType: string
  location: string
  unit: string
  /** Value at minute i without noise. */
  level: (i: number) => number
  noise: number
  /** Rounding step of what the sensor reports (0: full precision). */
  step: number
}

function round (value: number, step: number): number {
  return step === 0 ? value : Math.round(value / step) * step
}

/**
 * Four sensors at 1 reading a minute (a few seconds apart), interleaved in event-time order: a
 * daily cycle and noise each, spikes on two of them, a stuck stretch (day 1, 14:00-17:00) on one,
 * a slow drift (day 2, 6:00-16:00, then back) on another.
 */
function fleet (days: number): Reading[] {
  const random = createRandom(20_260_105)
  const daily = (i: number, amplitude: number, phase: number): number => amplitude * Math.sin(2 * Math.PI * (i / 1440 - phase))
  const specs: SensorSpec[] = [
    { sensorId: 'temp-a', sensorType: 'temperature', location: 'Office Floor 3', unit: '°C', level: i => 21 + daily(i, 3, 0.3), noise: 0.15, step: 0.01 },
    { sensorId: 'temp-b', sensorType: 'temperature', location: 'Server Room', unit: '°C', level: i => 22 + daily(i, 1.5, 0.25), noise: 0.1, step: 0.1 },
    {
      sensorId: 'hum-c',
      sensorType: 'humidity',
      location: 'Warehouse',
      unit: '%',
      level: i => 50 + daily(i, 5, 0.4) + (i >= 1440 * 2 + 360 && i < 1440 * 2 + 960 ? 0.012 * (i - 1440 * 2 - 360) : 0),
      noise: 0.4,
      step: 0
    },
    { sensorId: 'co2-d', sensorType: 'co2', location: 'Lab', unit: 'ppm', level: i => 650 + daily(i, 120, 0.35), noise: 15, step: 1 }
  ]
  const out: Reading[] = []
  let stuckAt = NaN
  for (let i = 0; i < days * 1440; i++) {
    specs.forEach((s, k) => {
      let value = round(s.level(i) + s.noise * random.normal(), s.step)
      if (s.sensorId === 'temp-a' && i % 997 === 500) value += 2.5
      if (s.sensorId === 'co2-d' && i % 1303 === 700) value += 700
      if (s.sensorId === 'temp-b') {
        if (i === 1440 + 840) stuckAt = value
        if (i >= 1440 + 840 && i < 1440 + 1020) value = stuckAt
      }
      out.push({ sensorId: s.sensorId, sensorType: s.sensorType, location: s.location, value, ts: T0 + i * MINUTE + k * 7000, unit: s.unit, anomaly: null, anomalyKind: null, seq: null })
    })
  }
  return out
}

const SERIES_DAYS = 4
const BATCH = 40
const READINGS = fleet(SERIES_DAYS)

const forestOptions = (scope: ForestOptions['scope']): Partial<ForestOptions> =>
  ({ scope, minSamples: 50, trainingSize: 400, installAfterRows: 48, nEstimators: 25, retrainMs: 5 * MINUTE })

/** The inline trainer, counting the fits it started (a fit is pending while started > installed + failed). */
class CountingTrainer implements ForestTrainer {
  started = 0
  start (job: Parameters<ForestTrainer['start']>[0]): ReturnType<ForestTrainer['start']> {
    this.started++
    return inlineTrainer.start(job)
  }
}

function detectorWith (scope: ForestOptions['scope'], trainer: ForestTrainer): { detector: Detector, forest: ForestScorer } {
  const forest = new ForestScorer(forestOptions(scope), trainer, { retainTrained: false })
  return { detector: new Detector({ ml: forest }), forest }
}

/** Verdicts of readings[from .. to) in batches of BATCH (from a multiple of BATCH). */
function run (detector: Detector, from: number, to: number): Verdict[] {
  const out: Verdict[] = []
  for (let i = from; i < to; i += BATCH) out.push(...detector.detectMany(READINGS.slice(i, Math.min(to, i + BATCH))))
  return out
}

/** The first differing verdict, with its reading, then the whole. */
function assertSameVerdicts (actual: Verdict[], expected: Verdict[], from: number, label: string): void {
  assert.equal(actual.length, expected.length, label)
  for (let i = 0; i < actual.length; i++) {
    if (!isDeepStrictEqual(actual[i], expected[i])) assert.deepStrictEqual(actual[i], expected[i], `${label}: reading ${from + i} (${JSON.stringify(READINGS[from + i])})`)
  }
  assert.deepStrictEqual(actual, expected, label)
}

/** The states at the end are the same too, byte for byte (every field, also those no verdict showed yet). */
function assertSameState (actual: { detector: Detector, forest: ForestScorer }, expected: { detector: Detector, forest: ForestScorer }, label: string): void {
  const a = save(actual.detector, actual.forest)
  const e = save(expected.detector, expected.forest)
  assert.deepStrictEqual(a.sensors, e.sensors, label)
  assert.deepStrictEqual(a.keys, e.keys, label)
  assert.deepStrictEqual(a.models.map(m => m.version), e.models.map(m => m.version), label)
}

/** A model as the worker stores and reads it back (encodeModel / decodeModel). */
function stored (m: TrainedModel): TrainedModel {
  return { key: m.key, sequence: m.sequence, version: m.version, trainedAt: m.trainedAt, samples: m.samples, forest: IsolationForest.fromJSON(decodeModel(encodeModel(m.forest.toParts()))) }
}

interface Saved {
  sensors: Map<string, Uint8Array>
  keys: Map<string, Uint8Array>
  models: TrainedModel[]
}

function save (detector: Detector, forest: ForestScorer): Saved {
  const sensors = new Map<string, Uint8Array>()
  for (const id of new Set(READINGS.map(r => r.sensorId))) {
    const bytes = detector.snapshotSensor(id)
    if (bytes !== null) sensors.set(id, bytes)
  }
  const keys = new Map<string, Uint8Array>()
  for (const key of forest.keys()) keys.set(key, forest.snapshotKey(key) as Uint8Array)
  return { sensors, keys, models: forest.models().map(stored) }
}

function restored (scope: ForestOptions['scope'], saved: Saved, modelsFirst: boolean): { detector: Detector, forest: ForestScorer, trainer: CountingTrainer } {
  const trainer = new CountingTrainer()
  const { detector, forest } = detectorWith(scope, trainer)
  if (modelsFirst) forest.restore(saved.models)
  for (const [key, bytes] of saved.keys) forest.restoreKey(key, bytes)
  if (!modelsFirst) forest.restore(saved.models)
  for (const [id, bytes] of saved.sensors) detector.restoreSensor(id, bytes)
  return { detector, forest, trainer }
}

for (const scope of ['sensor', 'type'] as const) {
  test(`snapshot - a detector restored from snapshots at any point gives the verdicts of the one that never stopped (forest per ${scope})`, () => {
    const n = READINGS.length
    const reference = detectorWith(scope, new CountingTrainer())
    const expected = run(reference.detector, 0, n)
    // What the tail holds: every detector fires in it (the restored state is put to use).
    const tail = expected.slice(Math.floor(n * 0.3))
    assert.ok(tail.some(v => v.ruleAnomaly), 'a rule verdict')
    assert.ok(tail.some(v => v.zAnomaly), 'a z-score verdict')
    assert.ok(tail.some(v => v.stuck), 'a stuck verdict')
    assert.ok(tail.some(v => v.drift), 'a drift verdict')
    assert.ok(tail.some(v => v.mlAnomaly === true), 'an Isolation Forest verdict')
    assert.equal(reference.detector.seasonal?.pattern('temp-a'), 'cycle')

    const trainer = new CountingTrainer()
    const { detector, forest } = detectorWith(scope, trainer)
    // Cuts: within the first day (no daily profile yet), days 1.3 (before the stuck stretch), 1.65
    // (in it), 2.5 (in the drift), 3.1, and the first batch after day 2.2 with a fit pending.
    const cuts = [0.6, 1.3, 1.65, 2.5, 3.1].map(d => Math.floor(d * 1440 * 4 / BATCH) * BATCH)
    let pendingCut = -1
    let done = 0
    const last = Math.max(...cuts) + 40 * BATCH
    for (let at = 0; at < last; at += BATCH) {
      detector.detectMany(READINGS.slice(at, at + BATCH))
      done = at + BATCH
      const pending = trainer.started > forest.modelsTrained + forest.trainingFailures
      const isPendingCut = pendingCut < 0 && pending && done >= 2.2 * 1440 * 4
      if (!cuts.includes(done) && !isPendingCut) continue
      if (isPendingCut) pendingCut = done
      const saved = save(detector, forest)
      assert.equal(saved.sensors.size, 4)
      const modelsFirst = cuts.indexOf(done) % 2 === 0
      const c = restored(scope, saved, modelsFirst)
      if (!isPendingCut) {
        const label = `cut at ${done}, models ${modelsFirst ? 'first' : 'last'}`
        assertSameVerdicts(run(c.detector, done, n), expected.slice(done), done, label)
        assertSameState(c, reference, label)
        continue
      }
      // A fit is pending: the restored scorer starts it again, and installs the same model at the same row.
      assert.equal(c.trainer.started, trainer.started - forest.modelsTrained - forest.trainingFailures, 'the pending fits restarted')
      assert.ok(c.trainer.started > 0)
      const partial = run(c.detector, done, done + 2 * BATCH)
      assertSameVerdicts(partial, expected.slice(done, done + 2 * BATCH), done, `pending cut at ${done}`)
      // Restored twice over: a snapshot of the restored detector (its fit still pending, with the
      // job's rows the window overwrote since the first cut kept) goes on the same way.
      assert.ok(c.trainer.started > c.forest.modelsTrained, 'still pending after two batches')
      const again = restored(scope, save(c.detector, c.forest), true)
      assertSameVerdicts(run(again.detector, done + 2 * BATCH, n), expected.slice(done + 2 * BATCH), done + 2 * BATCH, `pending cut at ${done}, restored again`)
      assertSameState(again, reference, `pending cut at ${done}, restored again`)
      assert.ok(again.forest.modelsTrained > 0)
    }
    assert.ok(pendingCut > 0, 'a cut with a pending fit')
  })
}

test('snapshot - the newest event time, null for an unknown sensor, the sensor state sizes', () => {
  const d = new Detector()
  assert.equal(d.snapshotSensor('nobody'), null)
  // 3 days at 1 reading a minute: every part warm (daily profile on, drift rings full).
  const days = READINGS.filter(r => r.sensorId === 'temp-a' && r.ts < T0 + 3 * DAY)
  d.detectMany(days)
  const bytes = d.snapshotSensor('temp-a') as Uint8Array
  assert.equal(snapshotLastTs(bytes), T0 + (3 * 1440 - 1) * MINUTE)
  assert.equal(d.seasonal?.pattern('temp-a'), 'cycle')
  assert.equal(bytes.length, 2797)
  // 1 hour at 1 reading a second, full precision: no daily profile yet (one day is being accumulated).
  const random = createRandom(5)
  const fast = new Detector()
  for (let i = 0; i < 3600; i++) fast.detect({ sensorId: 'p', sensorType: 'pressure', location: 'Lab', value: 1013 + 0.2 * random.normal(), ts: T0 + i * 1000, unit: 'hPa', anomaly: null, anomalyKind: null, seq: null })
  assert.equal(fast.snapshotSensor('p')?.length, 2391)
  // A detector without the optional parts writes less, and a full detector restores it (the parts it lacks start empty).
  const bare = new Detector({ stuck: false, drift: false, seasonal: false })
  bare.detectMany(days)
  const small = bare.snapshotSensor('temp-a') as Uint8Array
  assert.equal(small.length, 983)
  const full = new Detector()
  full.restoreSensor('temp-a', small)
  assert.equal(full.size, 1)
  assert.equal(full.stuck?.size, 0)
  // ... and the other way round: the sections of parts it runs without are skipped.
  const bare2 = new Detector({ stuck: false, drift: false, seasonal: false })
  bare2.restoreSensor('temp-a', bytes)
  assert.deepEqual(bare2.snapshotSensor('temp-a')?.length, small.length)
})

test('snapshot - damaged bytes, another version or kind throw IOT_ERR_ANOMALY_STATE and leave the sensor without state', () => {
  const d = new Detector()
  d.detectMany(READINGS.slice(0, 4 * 600))
  const bytes = d.snapshotSensor('temp-a') as Uint8Array
  const restoredOk = new Detector()
  restoredOk.restoreSensor('temp-a', bytes)
  assert.deepEqual(restoredOk.snapshotSensor('temp-a'), bytes)
  const damaged: Array<[string, Uint8Array, RegExp]> = [
    ['a flipped bit', bytes.map((b, i) => i === 200 ? b ^ 4 : b), /checksum mismatch/],
    ['truncated', bytes.slice(0, bytes.length - 9), /checksum mismatch/],
    ['empty', new Uint8Array(0), /too short/],
    ['not a snapshot', new TextEncoder().encode('{"sensor":"temp-a","state":[]}'), /no IOTS magic/],
    ['version 2', withByte(bytes, 4, 2), /format version 2, this build reads 1/],
    ['a z-score snapshot', d.zscore.snapshot('temp-a') as Uint8Array, /a snapshot of kind zscore, not detector/]
  ]
  for (const [what, bad, message] of damaged) {
    const target = new Detector()
    target.restoreSensor('temp-a', bytes)
    target.detect(READINGS[1] as Reading) // another sensor's state stays
    assert.throws(() => { target.restoreSensor('temp-a', bad) }, (err: unknown) => {
      assert.ok(err instanceof AnomalyStateError, what)
      assert.equal(err.code, 'IOT_ERR_ANOMALY_STATE', what)
      assert.match(err.message, message, what)
      return true
    })
    assert.equal(target.snapshotSensor('temp-a'), null, `${what}: no state left`)
    assert.equal(target.size, 1, what)
    assert.notEqual(target.snapshotSensor('temp-b'), null, what)
    assert.throws(() => snapshotLastTs(bad), AnomalyStateError)
  }
  // Well-formed bytes that do not fit: a window of another size; a section past its end.
  const narrow = new Detector({ zscore: { windowSize: 50, minSamples: 30 } })
  assert.throws(() => { narrow.restoreSensor('temp-a', bytes) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'detector.zscore.windowSize: a window of 100 values, this detector keeps 50' })
  assert.equal(narrow.size, 0)
  const unknownSection = new SnapshotWriter('detector')
  unknownSection.f64(T0)
  unknownSection.section(42, () => true)
  assert.throws(() => { d.restoreSensor('x', unknownSection.finish()) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'detector.section: unknown section 42' })
  const short = new SnapshotWriter('detector')
  short.f64(T0)
  short.section(2, () => { short.f64(1); return true }) // resolution: two numbers, one written
  assert.throws(() => { d.restoreSensor('x', short.finish()) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'detector.resolution.step: truncated: 8 bytes wanted at byte 27 of 27' })
})

test('snapshot - a forest key: damaged bytes or another key throw and leave the key with its model only; the window size must match', () => {
  const trainer = new CountingTrainer()
  const { detector, forest } = detectorWith('sensor', trainer)
  detector.detectMany(READINGS.slice(0, 4 * 1000))
  const bytes = forest.snapshotKey('temp-a') as Uint8Array
  assert.equal(forest.snapshotKey('nobody'), null)
  assert.deepEqual(forest.keys(), ['temp-a', 'temp-b', 'hum-c', 'co2-d'])
  // A full window of 400 rows of 7 Float32 features: 11,200 bytes, and the schedule.
  assert.equal(bytes.length, 11_238)
  const models = forest.models().map(stored)
  const target = new ForestScorer(forestOptions('sensor'))
  target.restore(models)
  assert.throws(() => { target.restoreKey('temp-a', bytes.map((b, i) => i === 500 ? b ^ 1 : b)) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'forestKey: checksum mismatch: the snapshot is damaged' })
  assert.throws(() => { target.restoreKey('temp-b', bytes) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'forestKey.key: a snapshot of key "temp-a", not "temp-b"' })
  const a = models.find(m => m.key === 'temp-a') as TrainedModel
  const b = models.find(m => m.key === 'temp-b') as TrainedModel
  // (A key that failed to restore is set up anew: it moves to the end of the keys.)
  assert.deepEqual(target.models().map(m => m.version), ['hum-c#5', 'co2-d#5', 'temp-a#5', 'temp-b#5'])
  assert.ok(target.models().includes(a) && target.models().includes(b))
  // The key's schedule is the model's again, its window empty: what a snapshot of it says.
  const after = new SnapshotReader(target.snapshotKey('temp-a') as Uint8Array, 'forestKey')
  assert.deepEqual([after.string('key'), after.uint('features'), after.uint('size'), after.uint('count'), after.uint('head'), after.uint('fresh'), after.uint('sequence'), after.f64('at'), after.uint('samples')],
    ['temp-a', 7, 400, 0, 0, 0, a.sequence, a.trainedAt, a.samples])
  const wider = new ForestScorer({ ...forestOptions('sensor'), trainingSize: 500 })
  assert.throws(() => { wider.restoreKey('temp-a', bytes) }, { code: 'IOT_ERR_ANOMALY_STATE', message: 'forestKey.trainingSize: a window of 400 rows, this scorer keeps 500' })
  assert.equal(wider.size, 0)
})

function withByte (bytes: Uint8Array, at: number, value: number): Uint8Array {
  const out = bytes.slice()
  out[at] = value
  // Sealed again: only the changed byte is wrong.
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out, out.length - 4), true)
  return out
}

test('snapshot - writer and reader: every field as written, exact floats, bounds checked', () => {
  const w = new SnapshotWriter('zscore', 1)
  w.u8(7)
  w.uint(0)
  w.uint(127)
  w.uint(128)
  w.uint(Number.MAX_SAFE_INTEGER)
  w.bool(true)
  w.f64(-0)
  w.f64(NaN)
  w.f64(0.1)
  w.f32(0.1)
  w.f64s([1.5, -Infinity, 3])
  w.f32s(new Float32Array([0.25, 1e-40]))
  w.string('temp-1 °C')
  w.sparseF64([0, -0, 2.5, 0])
  w.wholeOrF64s([60_000, 1, 0])
  w.wholeOrF64s([60_000, 0.5])
  w.section(3, () => { w.uint(300); return true })
  assert.equal(w.section(4, () => false), false)
  const bytes = w.finish()
  // Header 6; u8 1; varints 1, 1, 2, 8; flag 1; f64 3 × 8; f32 4; f64s 24; f32s 8; string 1 + 10 (° is 2 bytes);
  // sparse 1 + 2 × 8; whole 1 + 3 + 1 + 1; not whole 1 + 2 × 8; section 5 + 2 (the empty one taken back); CRC 4.
  assert.equal(bytes.length, 6 + 1 + (1 + 1 + 2 + 8) + 1 + 24 + 4 + 24 + 8 + 11 + 17 + 6 + 17 + 7 + 4)
  assert.deepEqual([...bytes.subarray(0, 6)], [0x49, 0x4f, 0x54, 0x53, 1, 4])
  const r = new SnapshotReader(bytes, 'zscore')
  assert.equal(r.u8('a'), 7)
  assert.deepEqual([r.uint('b'), r.uint('c'), r.uint('d'), r.uint('e')], [0, 127, 128, Number.MAX_SAFE_INTEGER])
  assert.equal(r.bool('f'), true)
  assert.ok(Object.is(r.f64('g'), -0))
  assert.ok(Number.isNaN(r.f64('h')))
  assert.equal(r.f64('i'), 0.1)
  assert.equal(r.f32('j'), Math.fround(0.1))
  const f64s = new Float64Array(3)
  r.f64s('k', f64s)
  assert.deepEqual([...f64s], [1.5, -Infinity, 3])
  const f32s = new Float32Array(2)
  r.f32s('l', f32s)
  assert.deepEqual([...f32s], [0.25, Math.fround(1e-40)])
  assert.equal(r.string('m'), 'temp-1 °C')
  const sparse = new Float64Array(4).fill(9)
  r.sparseF64('n', sparse)
  assert.deepEqual([...sparse], [0, -0, 2.5, 0])
  assert.ok(Object.is(sparse[1], -0))
  const whole = new Float64Array(3)
  r.wholeOrF64s('o', whole)
  assert.deepEqual([...whole], [60_000, 1, 0])
  const mixed = new Float64Array(2)
  r.wholeOrF64s('p', mixed)
  assert.deepEqual([...mixed], [60_000, 0.5])
  const { tag, end } = r.section('q')
  assert.equal(tag, 3)
  assert.equal(r.uint('r', 299 + 1), 300)
  r.endSection('q', end)
  assert.equal(r.atEnd, true)
  r.end()
  assert.throws(() => r.u8('s'), { code: 'IOT_ERR_ANOMALY_STATE', message: 'zscore.s: truncated: 1 bytes wanted at byte 138 of 138' })
  const again = new SnapshotReader(bytes, 'zscore')
  again.u8('a')
  assert.equal(again.uint('b', 0), 0)
  assert.throws(() => again.uint('count', 100), { code: 'IOT_ERR_ANOMALY_STATE', message: 'zscore.count: 127 is beyond 100' })
  assert.throws(() => new SnapshotReader(bytes, 'drift'), { code: 'IOT_ERR_ANOMALY_STATE', message: 'drift: a snapshot of kind zscore, not drift' })
})

test('snapshot - a restored z-score window has the baseline it was written with (per class: see each test file)', () => {
  const z = new ZScoreDetector({ windowSize: 5, minSamples: 2 })
  for (const v of [1, 2, 3, 4, 5, 6, 7]) z.update('s', v)
  const y = new ZScoreDetector({ windowSize: 5, minSamples: 2 })
  y.restore('s', z.snapshot('s') as Uint8Array)
  assert.deepEqual(y.values('s'), [3, 4, 5, 6, 7])
  assert.deepEqual(y.stats('s'), z.stats('s'))
})
