import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryBus, partitionFor, type BusConsumer, type BusRecord } from '../../bus/index.ts'
import { type Reading } from '../../domain/index.ts'
import { Simulator } from './simulator.ts'
import { SimulatorSource, type SimulatorSourceOptions } from './source.ts'

const START = Date.UTC(2025, 0, 15, 12) // event time of the first reading
const SENSORS = 5 // 5 sensors at 1 reading/s: one fleet reading every 200 ms of event time
const STEP = 200

/** A wall clock that only moves when the test says so. */
class FakeWall {
  t = 1_000_000
  readonly now = (): number => this.t
  advance (ms: number): void { this.t += ms }
}

interface Rig {
  bus: MemoryBus
  consumer: BusConsumer
  sim: Simulator
  source: SimulatorSource
  wall: FakeWall
}

async function rig (opts: Partial<SimulatorSourceOptions> & { capacity?: number } = {}): Promise<Rig> {
  const bus = new MemoryBus({ capacity: opts.capacity ?? 100_000 })
  const consumer = bus.consumer()
  await consumer.subscribe({ onAssigned: async () => new Map(), onRevoked: async () => {} })
  const sim = new Simulator({ sensors: SENSORS, ratePerSensor: 1, seed: 42, startTs: START })
  const wall = new FakeWall()
  const source = new SimulatorSource(sim, bus.producer(), {
    speedup: opts.speedup ?? 60,
    endTs: opts.endTs ?? null,
    wallClock: opts.wallClock ?? wall.now
  })
  return { bus, consumer, sim, source, wall }
}

/** Waits (real time) until `cond` holds. */
async function until (cond: () => boolean, what: string, timeoutMs = 1500): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

/** Delivers and commits everything the bus holds. */
async function drain (consumer: BusConsumer): Promise<BusRecord[]> {
  const out: BusRecord[] = []
  for (;;) {
    const batch = await consumer.poll(10_000, 0)
    if (batch.length === 0) return out
    out.push(...batch)
    const next = new Map<number, number>()
    for (const r of batch) next.set(r.partition, r.offset + 1)
    await consumer.commit(next)
  }
}

function tsOf (records: readonly BusRecord[]): number[] {
  return records.map(r => (r.value as Reading).ts)
}

/** Stops the source while a consumer keeps making room, so a source blocked on a full bus sees the stop. */
async function stopDraining (source: SimulatorSource, consumer: BusConsumer): Promise<void> {
  const stopped = track(source.stop())
  while (!stopped.settled) {
    await drain(consumer)
    await sleep(2)
  }
  await source.done()
}

/** Tracks whether a promise has settled. */
function track (p: Promise<unknown>): { settled: boolean } {
  const s = { settled: false }
  p.then(() => { s.settled = true }, () => { s.settled = true })
  return s
}

describe('SimulatorSource - pacing against the virtual clock', () => {
  test('speedup 60: after 1 s of wall time the event times are exactly those in [start, start + 60 s]', async () => {
    const { consumer, source, wall } = await rig({ speedup: 60 })
    source.start()
    await sleep(30)
    assert.equal(source.produced, 1, 'only the reading at the start instant before the wall moves')
    wall.advance(1000)
    await until(() => source.produced === 301, '301 readings')
    await sleep(30)
    assert.equal(source.produced, 301, 'nothing beyond start + 60 s')
    const records = await drain(consumer)
    assert.equal(records.length, 301)
    const ts = tsOf(records)
    assert.deepEqual(ts, Array.from({ length: 301 }, (_, g) => START + g * STEP))
    assert.equal(Math.min(...ts), START)
    assert.equal(Math.max(...ts), START + 60_000)
    await source.stop()
  })

  test('readings are keyed by sensor id and carried as Reading objects', async () => {
    const { consumer, source, wall } = await rig({ speedup: 60 })
    source.start()
    wall.advance(100)
    await until(() => source.produced === 31, '31 readings')
    const records = await drain(consumer)
    await source.stop()
    const ids = new Set<string>()
    for (const r of records) {
      const reading = r.value as Reading
      assert.equal(typeof reading, 'object')
      assert.equal(r.key, reading.sensorId)
      assert.equal(r.partition, partitionFor(reading.sensorId, 4))
      ids.add(reading.sensorId)
    }
    assert.equal(ids.size, SENSORS)
  })

  test('now() is start + wall elapsed × speedup', async () => {
    const { source, wall } = await rig({ speedup: 60 })
    source.start()
    assert.equal(source.now(), START)
    wall.advance(250)
    assert.equal(source.now(), START + 15_000)
    wall.advance(750)
    assert.equal(source.now(), START + 60_000)
    wall.advance(59_000)
    assert.equal(source.now(), START + 3_600_000)
    await source.stop()
  })

  test('now() with a fractional speedup', async () => {
    const { source, wall } = await rig({ speedup: 0.5 })
    source.start()
    wall.advance(10_000)
    assert.equal(source.now(), START + 5000)
    await source.stop()
  })

  test('the production keeps up as the wall moves on in steps', async () => {
    const { consumer, source, wall } = await rig({ speedup: 10 })
    source.start()
    const counts: number[] = []
    for (let i = 0; i < 5; i++) {
      wall.advance(100) // +1 s of event time = 5 readings
      const expected = 1 + (i + 1) * 5
      await until(() => source.produced === expected, `${expected} readings`)
      counts.push(source.produced)
    }
    assert.deepEqual(counts, [6, 11, 16, 21, 26])
    assert.deepEqual(tsOf(await drain(consumer)), Array.from({ length: 26 }, (_, g) => START + g * STEP))
    await source.stop()
  })
})

describe('SimulatorSource - bounded runs', () => {
  test('endTs: exactly the readings before endTs, then finished and done() resolve', async () => {
    const endTs = START + 10_000
    const { consumer, source, wall, sim } = await rig({ speedup: 60, endTs })
    source.start()
    const done = track(source.done())
    assert.equal(source.finished, false)
    wall.advance(100) // now = start + 6 s
    await until(() => source.produced === 31, '31 readings')
    await sleep(20)
    assert.equal(done.settled, false)
    assert.equal(source.finished, false)
    wall.advance(900) // now = start + 60 s, past endTs
    await until(() => source.finished, 'finished')
    await source.done()
    assert.equal(source.produced, 50)
    assert.equal(sim.nextTs, endTs)
    const ts = tsOf(await drain(consumer))
    assert.deepEqual(ts, Array.from({ length: 50 }, (_, g) => START + g * STEP))
    assert.ok(ts.every(t => t < endTs))
    await source.stop()
    assert.equal(source.produced, 50, 'stop after the end changes nothing')
  })

  test('an endTs that is not on the reading grid: readings strictly before it', async () => {
    const endTs = START + 1001
    const { consumer, source } = await rig({ speedup: Infinity, endTs })
    source.start()
    await source.done()
    assert.equal(source.finished, true)
    assert.deepEqual(tsOf(await drain(consumer)), [START, START + 200, START + 400, START + 600, START + 800, START + 1000])
  })

  test('endTs at the start: nothing is produced, finished at once', async () => {
    const { bus, source } = await rig({ speedup: 60, endTs: START })
    source.start()
    await source.done()
    assert.equal(source.finished, true)
    assert.equal(source.produced, 0)
    assert.equal(bus.lag, 0)
  })

  test('speedup Infinity produces everything up to endTs as fast as possible (real clock)', async () => {
    const endTs = START + 3_600_000 // one hour: 18000 readings
    const bus = new MemoryBus()
    const consumer = bus.consumer()
    await consumer.subscribe({ onAssigned: async () => new Map(), onRevoked: async () => {} })
    const sim = new Simulator({ sensors: SENSORS, ratePerSensor: 1, seed: 42, startTs: START })
    const source = new SimulatorSource(sim, bus.producer(), { speedup: Infinity, endTs })
    const t0 = performance.now()
    source.start()
    await source.done()
    const elapsed = performance.now() - t0
    assert.ok(elapsed < 1500, `an hour of event time took ${elapsed} ms`)
    assert.equal(source.finished, true)
    assert.equal(source.produced, 18_000)
    assert.equal(bus.lag, 18_000)
    assert.equal(source.now(), endTs, 'with speedup Infinity the clock is where the simulator got to')
    const ts = tsOf(await drain(consumer))
    assert.equal(ts.length, 18_000)
    assert.equal(ts[0], START)
    assert.equal(ts[17_999], endTs - STEP)
    for (let i = 1; i < ts.length; i++) assert.ok(ts[i]! >= ts[i - 1]!, 'event time never decreases')
  })

  test('speedup Infinity with a small bus: paced by the consumer, nothing lost or duplicated', async () => {
    const endTs = START + 600_000 // 3000 readings
    const { bus, consumer, source } = await rig({ speedup: Infinity, endTs, capacity: 100 })
    source.start()
    const seen: number[] = []
    while (!source.finished || bus.lag > 0) {
      assert.ok(bus.held <= 100, 'never more than the capacity')
      const batch = await consumer.poll(37, 5)
      seen.push(...tsOf(batch))
      const next = new Map<number, number>()
      for (const r of batch) next.set(r.partition, r.offset + 1)
      await consumer.commit(next)
    }
    await source.done()
    assert.equal(source.produced, 3000)
    assert.deepEqual(seen, Array.from({ length: 3000 }, (_, g) => START + g * STEP))
  })
})

describe('SimulatorSource - back-pressure', () => {
  test('with a full bus the source stops producing until the consumer commits', async () => {
    const { bus, consumer, source, wall } = await rig({ speedup: 60, capacity: 10 })
    source.start()
    wall.advance(1000) // wants 301 readings
    await until(() => source.produced === 10, '10 readings')
    await sleep(40)
    assert.equal(source.produced, 10, 'blocked')
    assert.equal(bus.held, 10)

    const first = await consumer.poll(100, 0)
    assert.equal(first.length, 10)
    await sleep(20)
    assert.equal(source.produced, 10, 'delivered but not committed: still blocked')

    await consumer.commit(new Map(first.map(r => [r.partition, r.offset + 1])))
    await until(() => source.produced === 20, '20 readings')
    await sleep(20)
    assert.equal(source.produced, 20)
    assert.equal(bus.held, 10)

    const rest: BusRecord[] = [...first]
    while (source.produced < 301 || bus.lag > 0) {
      const batch = await consumer.poll(100, 5)
      rest.push(...batch)
      await consumer.commit(new Map(batch.map(r => [r.partition, r.offset + 1])))
    }
    assert.deepEqual(tsOf(rest), Array.from({ length: 301 }, (_, g) => START + g * STEP), 'in order, none lost')
    await source.stop()
  })

  test('wall time spent blocked is not event time: after the pause, now() excludes it', async () => {
    const { consumer, source, wall } = await rig({ speedup: 60, capacity: 10 })
    source.start()
    wall.advance(1000)
    await until(() => source.produced === 10, '10 readings')
    wall.advance(5000) // blocked for 5 s of wall time
    const batch = await consumer.poll(100, 0)
    await consumer.commit(new Map(batch.map(r => [r.partition, r.offset + 1])))
    await until(() => source.produced === 20, '20 readings') // blocked again, with the wall standing still
    assert.equal(source.now(), START + 60_000)
    const more = await drain(consumer)
    assert.ok(tsOf([...batch, ...more]).every(t => t <= START + 60_000), 'no event time from the paused wall time')
    await stopDraining(source, consumer)
  })

  test('the virtual clock stands still while blocked', async () => {
    const { consumer, source, wall } = await rig({ speedup: 60, capacity: 10 })
    source.start()
    wall.advance(1000)
    await until(() => source.produced === 10, '10 readings')
    const before = source.now()
    assert.equal(before, START + 60_000)
    wall.advance(5000)
    const during = source.now()
    const batch = await consumer.poll(100, 0)
    await consumer.commit(new Map(batch.map(r => [r.partition, r.offset + 1])))
    await until(() => source.produced === 20, '20 readings')
    const after = source.now()
    await stopDraining(source, consumer)
    assert.equal(during, before, 'no advance during the pause')
    assert.ok(after >= during, 'never goes backwards')
  })
})

describe('SimulatorSource - stop', () => {
  test('stop() ends an unbounded run; nothing is produced afterwards', async () => {
    const { bus, source, wall } = await rig({ speedup: 60 })
    source.start()
    wall.advance(100)
    await until(() => source.produced === 31, '31 readings')
    await source.stop()
    await source.done()
    assert.equal(source.finished, false, 'stopped, not finished')
    wall.advance(10_000)
    await sleep(150)
    assert.equal(source.produced, 31)
    assert.equal(bus.lag, 31)
  })

  test('stop() at speedup Infinity without an end', async () => {
    const { bus, consumer, source } = await rig({ speedup: Infinity, capacity: 1000 })
    source.start()
    await until(() => bus.held === 1000, 'a full bus')
    const stopped = source.stop()
    await drain(consumer) // makes room, so the blocked producer sees the stop
    await stopped
    const n = source.produced
    await sleep(20)
    assert.equal(source.produced, n)
  })

  test('stop() while blocked on a full bus returns once the consumer makes room, producing nothing more', async () => {
    const { bus, consumer, source, wall } = await rig({ speedup: 60, capacity: 10 })
    source.start()
    wall.advance(1000)
    await until(() => bus.held === 10, 'a full bus')
    const stopped = track(source.stop())
    await sleep(30)
    assert.equal(stopped.settled, false, 'still waiting for room')
    const records = await drain(consumer)
    await until(() => stopped.settled, 'stop')
    assert.equal(records.length, 10)
    assert.equal(bus.lag, 0)
    assert.equal(bus.held, 0)
  })

  test('produced counts only readings the bus accepted, also when stopped while blocked', async () => {
    const { bus, consumer, source, wall } = await rig({ speedup: 60, capacity: 10 })
    source.start()
    wall.advance(1000)
    await until(() => bus.held === 10, 'a full bus')
    const stopped = source.stop()
    const records = await drain(consumer)
    await stopped
    assert.equal(records.length, 10)
    assert.equal(source.produced, 10)
  })
})
