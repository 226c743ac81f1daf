import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Reading } from '../../domain/index.ts'
import { partitionFor } from '../partitioner.ts'
import { type BusConsumer, type BusRecord, type StartOffsets } from '../port.ts'
import { MemoryBus } from './memory-bus.ts'

const CLOSED = { name: 'IotError', code: 'IOT_ERR_BUS_CLOSED' }

/** Subscribes the bus's consumer; the handler returns `start` and records what it was given. */
async function subscribe (bus: MemoryBus, start: StartOffsets = new Map()): Promise<{ consumer: BusConsumer, assigned: number[][] }> {
  const consumer = bus.consumer()
  const assigned: number[][] = []
  await consumer.subscribe({
    onAssigned: async (partitions) => { assigned.push(partitions); return start },
    onRevoked: async () => {}
  })
  return { consumer, assigned }
}

/** `n` distinct keys that all land on `partition`. */
function keysOn (partition: number, n: number, partitions = 4): string[] {
  const out: string[] = []
  for (let i = 0; out.length < n; i++) {
    const key = `sensor-${i}`
    if (partitionFor(key, partitions) === partition) out.push(key)
  }
  return out
}

/** Next offsets after these records, per partition: what a worker commits after storing them. */
function nextOffsets (records: readonly BusRecord[]): Map<number, number> {
  const next = new Map<number, number>()
  for (const r of records) next.set(r.partition, r.offset + 1)
  return next
}

function produceAll (bus: MemoryBus, keys: readonly string[]): void {
  const p = bus.producer()
  for (const k of keys) assert.equal(p.tryProduce(k, `v:${k}`), true)
}

/** Tracks whether a promise has settled. */
function track (p: Promise<unknown>): { settled: boolean } {
  const s = { settled: false }
  p.then(() => { s.settled = true }, () => { s.settled = true })
  return s
}

const reading: Reading = {
  sensorId: 'TEMP_001', sensorType: 'temperature', location: 'Server Room', value: 22.45, ts: 1_763_378_555_123, unit: '°C', anomaly: false, anomalyKind: null, seq: 3
}

describe('MemoryBus - partitions and offsets', () => {
  test('defaults: topic iot_sensors, 4 partitions, capacity 100000, nothing held', () => {
    const bus = new MemoryBus()
    assert.equal(bus.topic, 'iot_sensors')
    assert.equal(bus.partitions, 4)
    assert.equal(bus.capacity, 100_000)
    assert.equal(bus.held, 0)
    assert.equal(bus.lag, 0)
    const custom = new MemoryBus({ topic: 't', partitions: 6, capacity: 10 })
    assert.deepEqual([custom.topic, custom.partitions, custom.capacity], ['t', 6, 10])
  })

  test('records go to the murmur2 partition of their key; offsets count from 0 per partition, in produce order', async () => {
    for (const partitions of [1, 4, 6]) {
      const bus = new MemoryBus({ partitions })
      const { consumer } = await subscribe(bus)
      const keys = Array.from({ length: 60 }, (_, i) => `sensor-${i % 20}`)
      produceAll(bus, keys)
      const records = await consumer.poll(1000, 0)
      assert.equal(records.length, 60)
      const next = new Array<number>(partitions).fill(0)
      records.forEach((r, i) => {
        assert.equal(r.key, keys[i], 'delivered in produce order')
        assert.equal(r.value, `v:${keys[i]}`)
        assert.equal(r.partition, partitionFor(r.key, partitions))
        assert.equal(r.offset, next[r.partition], `offset on partition ${r.partition}`)
        next[r.partition]!++
      })
      assert.equal(next.reduce((a, b) => a + b, 0), 60)
      if (partitions > 1) assert.ok(next.filter(n => n > 0).length > 1, 'keys spread over partitions')
    }
  })

  test('a key always lands on the same partition (Kafka-compatible: "21" on 6 partitions)', async () => {
    const bus = new MemoryBus({ partitions: 6 })
    const { consumer } = await subscribe(bus)
    produceAll(bus, ['21', '21', '21'])
    const records = await consumer.poll(10, 0)
    assert.deepEqual(records.map(r => [r.partition, r.offset]), [[(-973932308 & 0x7fffffff) % 6, 0], [(-973932308 & 0x7fffffff) % 6, 1], [(-973932308 & 0x7fffffff) % 6, 2]])
  })

  test('an in-process Reading travels as the same object, not serialised', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    assert.equal(bus.producer().tryProduce(reading.sensorId, reading), true)
    const [r] = await consumer.poll(10, 0)
    assert.ok(r !== undefined)
    assert.equal(r.value, reading)
    assert.equal(r.key, 'TEMP_001')
    assert.equal(r.partition, partitionFor('TEMP_001', 4))
  })

  test('newestEventTime is null: nothing outlives the process, whatever it holds now', async () => {
    const bus = new MemoryBus()
    assert.equal(await bus.newestEventTime(), null)
    bus.producer().tryProduce(reading.sensorId, reading)
    assert.equal(await bus.newestEventTime(), null)
  })
})

describe('MemoryBus - subscribe and start offsets', () => {
  test('onAssigned gets every partition once', async () => {
    const { assigned } = await subscribe(new MemoryBus({ partitions: 6 }))
    assert.deepEqual(assigned, [[0, 1, 2, 3, 4, 5]])
  })

  test('offsets continue from the start offsets the handler returns; partitions not given start at 0', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus, new Map([[0, 100], [2, 5]]))
    const k0 = keysOn(0, 3); const k1 = keysOn(1, 2); const k2 = keysOn(2, 2)
    produceAll(bus, [k0[0]!, k1[0]!, k2[0]!, k0[1]!, k2[1]!, k1[1]!, k0[2]!])
    const records = await consumer.poll(100, 0)
    assert.deepEqual(records.map(r => [r.partition, r.offset]), [[0, 100], [1, 0], [2, 5], [0, 101], [2, 6], [1, 1], [0, 102]])
  })

  test('a start offset of 0 leaves records produced before subscribe as they are', async () => {
    const bus = new MemoryBus()
    const keys = keysOn(3, 3)
    produceAll(bus, keys)
    const { consumer } = await subscribe(bus, new Map([[3, 0]]))
    produceAll(bus, keys.slice(0, 1))
    assert.deepEqual((await consumer.poll(100, 0)).map(r => [r.partition, r.offset]), [[3, 0], [3, 1], [3, 2], [3, 3]])
  })

  test('records produced before subscribe also continue from the start offsets', async () => {
    const bus = new MemoryBus()
    const k0 = keysOn(0, 3)
    const k1 = keysOn(1, 5)
    produceAll(bus, [...k0, ...k1])
    const { consumer } = await subscribe(bus, new Map([[0, 100], [1, 2]]))
    produceAll(bus, [k0[0]!, k1[0]!])
    const records = await consumer.poll(100, 0)
    assert.deepEqual(records.map(r => [r.partition, r.offset]), [
      [0, 100], [0, 101], [0, 102],
      [1, 2], [1, 3], [1, 4], [1, 5], [1, 6],
      [0, 103], [1, 7]
    ])
  })

  test('a second consumer is refused (IOT_ERR_CONFIG) once one has subscribed', async () => {
    const bus = new MemoryBus()
    await subscribe(bus)
    assert.throws(() => bus.consumer(), { name: 'IotError', code: 'IOT_ERR_CONFIG' })
  })

  test('a second consumer is refused even before the first subscribes', async () => {
    const bus = new MemoryBus()
    const first = bus.consumer()
    let second: BusConsumer | null = null
    try { second = bus.consumer() } catch {}
    const handler = { onAssigned: async () => new Map<number, number>(), onRevoked: async () => {} }
    await first.subscribe(handler)
    if (second !== null) await assert.rejects(second.subscribe(handler), { name: 'IotError', code: 'IOT_ERR_CONFIG' })
  })
})

describe('MemoryBus - poll', () => {
  test('returns up to max records in order, the rest on the next poll', async () => {
    const bus = new MemoryBus({ partitions: 1 })
    const { consumer } = await subscribe(bus)
    produceAll(bus, Array.from({ length: 10 }, (_, i) => `k${i}`))
    assert.deepEqual((await consumer.poll(3, 0)).map(r => r.offset), [0, 1, 2])
    assert.deepEqual((await consumer.poll(3, 1000)).map(r => r.offset), [3, 4, 5], 'no wait when records are there')
    assert.deepEqual((await consumer.poll(100, 0)).map(r => r.offset), [6, 7, 8, 9])
    assert.deepEqual(await consumer.poll(100, 0), [])
    assert.deepEqual(await consumer.poll(0, 0), [])
  })

  test('empty: resolves [] after waitMs', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    const t0 = performance.now()
    assert.deepEqual(await consumer.poll(10, 60), [])
    const elapsed = performance.now() - t0
    assert.ok(elapsed >= 55, `waited ${elapsed} ms`)
    assert.ok(elapsed < 500, `waited ${elapsed} ms`)
  })

  test('empty with waitMs 0: resolves [] at once', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    const t0 = performance.now()
    assert.deepEqual(await consumer.poll(10, 0), [])
    assert.ok(performance.now() - t0 < 20)
  })

  test('wakes as soon as a record arrives, long before waitMs', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    const t0 = performance.now()
    const polled = consumer.poll(10, 5000)
    setTimeout(() => { bus.producer().tryProduce('a', 'first') }, 20)
    const records = await polled
    const elapsed = performance.now() - t0
    assert.deepEqual(records.map(r => r.value), ['first'])
    assert.ok(elapsed >= 15 && elapsed < 1000, `woke after ${elapsed} ms`)
  })

  test('records produced in the same tick as the wake-up come in the same poll', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    const polled = consumer.poll(10, 5000)
    setTimeout(() => { produceAll(bus, ['a', 'b', 'c']) }, 5)
    assert.deepEqual((await polled).map(r => r.key), ['a', 'b', 'c'])
  })

  test('a poll that timed out does not swallow later records', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    for (let i = 0; i < 5; i++) assert.deepEqual(await consumer.poll(10, 1), [])
    produceAll(bus, ['a'])
    assert.deepEqual((await consumer.poll(10, 0)).map(r => r.key), ['a'])
  })
})

describe('MemoryBus - held, lag, commit and seek', () => {
  test('held counts produced-not-committed, lag counts produced-not-delivered', async () => {
    const bus = new MemoryBus({ partitions: 1 })
    const { consumer } = await subscribe(bus)
    produceAll(bus, ['a', 'b', 'c', 'd', 'e'])
    assert.deepEqual([bus.held, bus.lag], [5, 5])
    const first = await consumer.poll(2, 0)
    assert.deepEqual([bus.held, bus.lag], [5, 3])
    await consumer.commit(nextOffsets(first))
    assert.deepEqual([bus.held, bus.lag], [3, 3])
    await consumer.poll(3, 0)
    assert.deepEqual([bus.held, bus.lag], [3, 0])
    consumer.seek(new Map([[0, 2]]))
    assert.deepEqual([bus.held, bus.lag], [3, 3])
    const again = await consumer.poll(10, 0)
    await consumer.commit(nextOffsets(again))
    assert.deepEqual([bus.held, bus.lag], [0, 0])
  })

  test('seek after a failed batch re-delivers exactly the same records', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    produceAll(bus, Array.from({ length: 12 }, (_, i) => `sensor-${i}`))
    const batch = await consumer.poll(8, 0)
    assert.equal(batch.length, 8)
    // The batch failed: nothing committed, go back to the stored offsets.
    consumer.seek(new Map([[0, 0], [1, 0], [2, 0], [3, 0]]))
    const again = await consumer.poll(8, 0)
    assert.deepEqual(again, batch)
    again.forEach((r, i) => assert.equal(r, batch[i], 'the very same records'))
    assert.deepEqual((await consumer.poll(100, 0)).map(r => r.key), ['sensor-8', 'sensor-9', 'sensor-10', 'sensor-11'])
  })

  test('seek after a partial commit re-delivers only the uncommitted records', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    produceAll(bus, Array.from({ length: 6 }, (_, i) => `sensor-${i}`))
    const all = await consumer.poll(6, 0)
    await consumer.commit(nextOffsets(all.slice(0, 2)))
    consumer.seek(nextOffsets(all.slice(0, 2)))
    assert.deepEqual(await consumer.poll(100, 0), all.slice(2))
    await consumer.commit(nextOffsets(all))
    consumer.seek(nextOffsets(all))
    assert.deepEqual(await consumer.poll(100, 0), [], 'committed records are never re-delivered')
    assert.equal(bus.held, 0)
  })

  test('commit of a prefix releases only that prefix, across interleaved partitions', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    const keys = [...keysOn(0, 3), ...keysOn(1, 3), ...keysOn(2, 2)]
    const order = [keys[0]!, keys[3]!, keys[6]!, keys[1]!, keys[4]!, keys[7]!, keys[2]!, keys[5]!]
    produceAll(bus, order)
    const all = await consumer.poll(100, 0)
    assert.equal(all.length, 8)
    for (let n = 1; n <= 8; n++) {
      await consumer.commit(nextOffsets(all.slice(0, n)))
      assert.equal(bus.held, 8 - n, `after committing ${n}`)
    }
  })

  test('a commit that skips an earlier record releases nothing past it (in-order release)', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    const [a] = keysOn(0, 1); const [b] = keysOn(1, 1)
    produceAll(bus, [a!, b!])
    const all = await consumer.poll(10, 0)
    await consumer.commit(new Map([[1, 1]]))
    assert.equal(bus.held, 2)
    await consumer.commit(new Map([[0, 1], [1, 1]]))
    assert.equal(bus.held, 0)
    assert.equal(all.length, 2)
  })

  test('commit cannot release records that were not delivered yet', async () => {
    const bus = new MemoryBus({ partitions: 1 })
    const { consumer } = await subscribe(bus)
    produceAll(bus, ['a', 'b', 'c', 'd'])
    await consumer.poll(2, 0)
    await consumer.commit(new Map([[0, 1000]]))
    assert.deepEqual([bus.held, bus.lag], [2, 2])
    assert.deepEqual((await consumer.poll(10, 0)).map(r => r.key), ['c', 'd'])
  })

  test('long runs: offsets stay contiguous and seek stays exact after the queue is compacted', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    const producer = bus.producer()
    const seen = new Array<number>(4).fill(0)
    let total = 0
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 3000; i++) assert.equal(producer.tryProduce(`sensor-${i % 97}`, String(i)), true)
      for (;;) {
        const batch = await consumer.poll(700, 0)
        if (batch.length === 0) break
        if (total % 3 === 0) { // fail every third batch once: it comes back identical
          consumer.seek(new Map(seen.map((next, p) => [p, next])))
          assert.deepEqual(await consumer.poll(700, 0), batch)
        }
        for (const r of batch) {
          assert.equal(r.offset, seen[r.partition], `contiguous offsets on partition ${r.partition}`)
          seen[r.partition]!++
        }
        total += batch.length
        await consumer.commit(nextOffsets(batch))
        assert.equal(bus.held, bus.lag)
      }
    }
    assert.equal(total, 18_000)
    assert.equal(bus.held, 0)
    assert.equal(bus.lag, 0)
  })
})

describe('MemoryBus - back-pressure', () => {
  test('tryProduce returns false at capacity; writable() resolves only after a commit releases records', async () => {
    const bus = new MemoryBus({ partitions: 1, capacity: 3 })
    const { consumer } = await subscribe(bus)
    const producer = bus.producer()
    assert.equal(producer.tryProduce('a', '1'), true)
    assert.equal(producer.tryProduce('b', '2'), true)
    assert.equal(producer.tryProduce('c', '3'), true)
    assert.equal(producer.tryProduce('d', '4'), false)
    assert.equal(bus.held, 3)
    const room = track(producer.writable())
    await sleep(20)
    assert.equal(room.settled, false, 'full: no room yet')

    const batch = await consumer.poll(10, 0)
    assert.deepEqual(batch.map(r => r.value), ['1', '2', '3'], 'the refused record was not enqueued')
    await sleep(10)
    assert.equal(room.settled, false, 'delivered is not released: still held')
    assert.equal(producer.tryProduce('d', '4'), false)

    await consumer.commit(nextOffsets(batch.slice(0, 1)))
    await sleep(0)
    assert.equal(room.settled, true, 'a commit made room')
    assert.equal(bus.held, 2)
    assert.equal(producer.tryProduce('d', '4'), true)
    assert.equal(producer.tryProduce('e', '5'), false)
  })

  test('writable() resolves at once when there is room', async () => {
    const bus = new MemoryBus({ capacity: 2 })
    const producer = bus.producer()
    await producer.writable()
    producer.tryProduce('a', '1')
    await producer.writable()
  })

  test('capacity counts held records, so a slow consumer that polls but does not commit still blocks', async () => {
    const bus = new MemoryBus({ capacity: 5 })
    const { consumer } = await subscribe(bus)
    const producer = bus.producer()
    for (let i = 0; i < 5; i++) assert.equal(producer.tryProduce(`k${i}`, String(i)), true)
    assert.equal((await consumer.poll(100, 0)).length, 5)
    assert.equal(bus.lag, 0)
    assert.equal(producer.tryProduce('x', '0'), false)
  })

  test('every producer waiting for room is woken', async () => {
    const bus = new MemoryBus({ capacity: 1 })
    const { consumer } = await subscribe(bus)
    const producer = bus.producer()
    producer.tryProduce('a', '1')
    const waits = [track(producer.writable()), track(bus.producer().writable())]
    const batch = await consumer.poll(1, 0)
    await consumer.commit(nextOffsets(batch))
    await sleep(0)
    assert.deepEqual(waits.map(w => w.settled), [true, true])
  })

  test('flush and producer close resolve', async () => {
    const producer = new MemoryBus().producer()
    producer.tryProduce('a', '1')
    await producer.flush()
    await producer.close()
  })
})

describe('MemoryBus - close', () => {
  test('after close: poll returns [] at once, tryProduce throws IOT_ERR_BUS_CLOSED, writable resolves', async () => {
    const bus = new MemoryBus({ capacity: 1 })
    const { consumer } = await subscribe(bus)
    const producer = bus.producer()
    producer.tryProduce('a', '1')
    const batch = await consumer.poll(10, 0)
    assert.equal(batch.length, 1)
    const room = track(producer.writable())
    await bus.close()
    await sleep(0)
    assert.equal(room.settled, true, 'a producer waiting for room is released')
    const t0 = performance.now()
    assert.deepEqual(await consumer.poll(10, 5000), [])
    assert.ok(performance.now() - t0 < 100, 'no wait on a closed bus')
    assert.throws(() => producer.tryProduce('b', '2'), CLOSED)
    assert.throws(() => bus.producer().tryProduce('b', '2'), CLOSED)
    await producer.writable()
  })

  test('a poll waiting when the bus closes resolves [] promptly', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    const t0 = performance.now()
    const polled = consumer.poll(10, 5000)
    setTimeout(() => { bus.close().catch(() => {}) }, 10)
    assert.deepEqual(await polled, [])
    assert.ok(performance.now() - t0 < 1000)
  })

  test('closing the consumer wakes a waiting poll with []', async () => {
    const bus = new MemoryBus()
    const { consumer } = await subscribe(bus)
    const t0 = performance.now()
    const polled = consumer.poll(10, 5000)
    await sleep(10)
    await consumer.close()
    assert.deepEqual(await polled, [])
    assert.ok(performance.now() - t0 < 1000)
  })

  test('close is idempotent', async () => {
    const bus = new MemoryBus()
    await bus.close()
    await bus.close()
    assert.throws(() => bus.producer().tryProduce('a', '1'), CLOSED)
  })
})
