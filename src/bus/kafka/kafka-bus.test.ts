// The Kafka bus against a real broker (KAFKA_BROKERS): keys and partitions, offsets from the
// handler, seek, a consumer group of two sharing the partitions, a record batch the runtime
// cannot decode (zstd written by kcat, where Node has no zstd), and the newest event time on the topic.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import zlib from 'node:zlib'
import { pino } from 'pino'
import { type Reading } from '../../domain/index.ts'
import { kafkaBrokers, kafkaSkip, uniqueTopic } from '../../../test/helpers/kafka.ts'
import { partitionFor } from '../partitioner.ts'
import { type AssignmentHandler, type BusConsumer, type BusRecord, type StartOffsets } from '../port.ts'
import { KafkaBus, ensureTopics } from './kafka-bus.ts'

const log = pino({ level: process.env.TEST_LOG ?? 'silent' })
const T0 = Date.UTC(2026, 0, 1)

function reading (sensorId: string, i: number): Reading {
  return { sensorId, sensorType: 'temperature', location: 'Lab', value: 20 + i / 10, ts: T0 + i * 1000, unit: '°C', anomaly: false, anomalyKind: null, seq: i }
}

/** One line per record of a topic from the beginning, read with kcat in its `-f` format (`%T` timestamp, `%s` value). */
function kcat (topic: string, format: string, ...extra: string[]): string[] {
  const r = spawnSync('kcat', ['-b', (kafkaBrokers ?? []).join(','), '-C', '-t', topic, '-o', 'beginning', '-e', '-q', ...extra, '-f', `${format}\\n`], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(r.status, 0, r.stderr)
  return r.stdout.trim().split('\n').filter(Boolean)
}

/** Produces `lines` (`key|value`) with kcat and these settings. */
function kcatProduce (topic: string, lines: string[], ...settings: string[]): void {
  const r = spawnSync('kcat', ['-b', (kafkaBrokers ?? []).join(','), '-P', '-t', topic, '-K', '|', ...settings], { input: lines.join('\n') + '\n', encoding: 'utf8', timeout: 30_000 })
  assert.equal(r.status, 0, r.stderr)
}

/** A handler that resumes from a shared "store" of next offsets, like the worker's database. */
function storeHandler (store: Map<number, number>, calls: string[]): AssignmentHandler {
  return {
    onAssigned: async (ps) => {
      calls.push(`assigned ${ps.join(',')}`)
      return new Map(ps.map(p => [p, store.get(p) ?? 0])) as StartOffsets
    },
    onRevoked: async (ps) => { calls.push(`revoked ${ps.join(',')}`) }
  }
}

async function waitFor (ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

async function pollUntil (consumer: BusConsumer, want: number, into: BusRecord[], store?: Map<number, number>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (into.length < want) {
    if (Date.now() > deadline) throw new Error(`got ${into.length} of ${want} records`)
    const got = await consumer.poll(1000, 100)
    into.push(...got)
    if (store !== undefined) for (const r of got) store.set(r.partition, r.offset + 1)
  }
}

describe('KafkaBus (real broker)', { skip: kafkaSkip }, () => {
  const brokers = kafkaBrokers ?? []

  test('creates the topic once, keeps an existing one as it is', async () => {
    const topic = uniqueTopic('bus_create')
    const bus = await KafkaBus.connect({ brokers, topic, partitions: 3, log })
    assert.equal(bus.partitions, 3)
    await bus.close()
    const again = await KafkaBus.connect({ brokers, topic, partitions: 8, log })
    assert.equal(again.partitions, 3, 'an existing topic keeps its partitions')
    await again.close()
    assert.deepEqual(await ensureTopics(brokers, [{ name: topic, partitions: 5 }]), new Map([[topic, 3]]))
    // Several workers starting at once create the same new topics: all of them succeed.
    const fresh = [uniqueTopic('race_a'), uniqueTopic('race_b')].map(name => ({ name, partitions: 2 }))
    const all = await Promise.all([1, 2, 3, 4].map(async () => await ensureTopics(brokers, fresh)))
    for (const counts of all) assert.deepEqual(counts, new Map(fresh.map(t => [t.name, 2])))
  })

  test('records are keyed by sensor id onto murmur2 partitions, in order, with their (simulated) ingest time; seek rewinds', async () => {
    const topic = uniqueTopic('bus_roundtrip')
    const bus = await KafkaBus.connect({ brokers, topic, partitions: 4, log, ingestClock: () => T0 + 42 })
    const producer = bus.producer()
    const sensors = ['s-1', 's-2', 's-3', 's-4', 's-5', 's-6', 's-7']
    const n = 700
    for (let i = 0; i < n; i++) {
      const id = sensors[i % sensors.length]!
      // Half as in-process readings, half as raw text (what other producers send).
      const value = i % 2 === 0 ? reading(id, i) : `{"sensor_id":"${id}","i":${i}}`
      while (!producer.tryProduce(id, value)) await producer.writable()
    }
    await producer.flush()
    const consumer = bus.consumer(uniqueTopic('group'))
    const calls: string[] = []
    await consumer.subscribe(storeHandler(new Map(), calls))
    // Consumer lag from the log end offsets (refreshed every second): everything, then nothing.
    await waitFor(() => consumer.lag?.() === n)
    const got: BusRecord[] = []
    await pollUntil(consumer, n, got)
    assert.equal(consumer.lag?.(), 0)
    assert.deepEqual(calls, ['assigned 0,1,2,3'])
    assert.equal(got.length, n)
    for (const r of got) {
      assert.equal(r.partition, partitionFor(r.key, 4), `key ${r.key} on its murmur2 partition`)
      assert.equal(r.timestamp, T0 + 42, 'the simulated ingest clock, from the header')
      assert.equal(typeof r.value, 'string')
    }
    // Per partition: offsets 0, 1, 2, … and each sensor's records in the order produced.
    for (let p = 0; p < 4; p++) {
      const offsets = got.filter(r => r.partition === p).map(r => r.offset)
      assert.deepEqual(offsets, offsets.map((_, i) => i))
    }
    const first = JSON.parse(got.find(r => r.key === 's-1')!.value as string) as Record<string, unknown>
    assert.deepEqual(first, { sensor_id: 's-1', sensor_type: 'temperature', location: 'Lab', value: 20, timestamp: '2026-01-01T00:00:00.000Z', unit: '°C', anomaly: false, seq: 0 })
    // Seek back on one partition: its records come again from there, the others do not.
    const p0 = got.filter(r => r.partition === 0)
    consumer.seek(new Map([[0, p0[p0.length - 3]!.offset]]))
    const again: BusRecord[] = []
    await pollUntil(consumer, 3, again)
    await new Promise(resolve => setTimeout(resolve, 300))
    again.push(...await consumer.poll(1000, 200))
    assert.deepEqual(again.map(r => [r.partition, r.offset]), p0.slice(-3).map(r => [r.partition, r.offset]))
    // The record timestamp itself is wall time: the broker's time-based retention must not see 2026-01-01.
    const stamps = kcat(topic, '%T', '-c', '20').map(Number)
    assert.ok(stamps.length > 0 && stamps.every(t => Math.abs(t - Date.now()) < 600_000), `record timestamps near now: ${stamps.slice(0, 3).join(',')}`)
    await bus.close()
  })

  test('two members of a group share the partitions and, resuming from stored offsets, read every record once', async () => {
    const topic = uniqueTopic('bus_group')
    const group = uniqueTopic('group')
    const bus = await KafkaBus.connect({ brokers, topic, partitions: 6, log, sessionTimeoutMs: 6000 })
    const producer = bus.producer()
    const produceRange = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) producer.tryProduce(`sensor-${i % 50}`, `{"i":${i}}`)
      await producer.flush()
    }
    await produceRange(0, 3000)
    const store = new Map<number, number>()
    const callsA: string[] = []
    const a = bus.consumer(group)
    await a.subscribe(storeHandler(store, callsA))
    const got: BusRecord[] = []
    await pollUntil(a, 3000, got, store)
    // A second member joins: the group rebalances and each gets some of the six partitions.
    const b = bus.consumer(group)
    const callsB: string[] = []
    const joined = b.subscribe(storeHandler(store, callsB))
    // A keeps polling so it takes part in the rebalance.
    while (callsB.length === 0) got.push(...await a.poll(1000, 100))
    await joined
    await produceRange(3000, 6000)
    const deadline = Date.now() + 30_000
    while (got.length < 6000 && Date.now() < deadline) {
      for (const c of [a, b]) {
        const recs = await c.poll(1000, 50)
        got.push(...recs)
        for (const r of recs) store.set(r.partition, r.offset + 1)
      }
    }
    const ids = got.map(r => JSON.parse(r.value as string).i as number).sort((x, y) => x - y)
    assert.equal(ids.length, 6000, 'each record once')
    assert.deepEqual(ids, Array.from({ length: 6000 }, (_, i) => i))
    const lastA = callsA.filter(c => c.startsWith('assigned')).at(-1)!.slice(9).split(',').map(Number)
    const lastB = callsB.filter(c => c.startsWith('assigned')).at(-1)!.slice(9).split(',').map(Number)
    assert.equal(lastA.length + lastB.length, 6)
    assert.ok(lastA.length > 0 && lastB.length > 0, `both got partitions: ${JSON.stringify({ callsA, callsB })}`)
    assert.deepEqual([...lastA, ...lastB].sort(), [0, 1, 2, 3, 4, 5])
    await bus.close()
  })

  test('a record batch the runtime cannot decode (zstd on Node 20) comes out as one undecodable record, once warned; the partition moves on', async () => {
    const topic = uniqueTopic('bus_undecodable')
    const warnings: string[] = []
    const bus = await KafkaBus.connect({ brokers, topic, partitions: 1, log: pino({ level: 'warn' }, { write: (line: string) => { warnings.push(line) } }) })
    const producer = bus.producer()
    const produceOurs = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) producer.tryProduce('s-1', `{"i":${i}}`)
      await producer.flush()
    }
    await produceOurs(0, 10) // lz4: offsets 0-9
    // One zstd batch (everything lingers until kcat's flush at the end of its input): offsets 10-19.
    kcatProduce(topic, Array.from({ length: 10 }, (_, i) => `s-1|{"i":${10 + i}}`), '-X', 'compression.codec=zstd', '-X', 'linger.ms=2000')
    await produceOurs(20, 30)
    const hasZstd = typeof (zlib as { zstdDecompressSync?: unknown }).zstdDecompressSync === 'function'
    const undecodable: BusRecord = { partition: 0, offset: 19, key: '', value: '', undecodable: `record batch at offsets 10-19 of ${topic}/0: unsupported compression codec 4 (zstd)` }
    const expected = hasZstd
      ? Array.from({ length: 30 }, (_, i) => i)
      : [...Array.from({ length: 10 }, (_, i) => i), undecodable, ...Array.from({ length: 10 }, (_, i) => 20 + i)]
    const shown = (records: BusRecord[]): unknown[] => records.map(r => r.undecodable === undefined ? JSON.parse(r.value as string).i : { ...r })
    const consumer = bus.consumer(uniqueTopic('group'))
    await consumer.subscribe(storeHandler(new Map(), []))
    const got: BusRecord[] = []
    await pollUntil(consumer, expected.length, got)
    assert.deepEqual(shown(got), expected)
    assert.deepEqual(got.map(r => r.offset), [...Array.from({ length: 10 }, (_, i) => i), ...(hasZstd ? Array.from({ length: 10 }, (_, i) => 10 + i) : [19]), ...Array.from({ length: 10 }, (_, i) => 20 + i)])
    assert.equal(await consumer.caughtUp?.(), true, 'past the batch, up to the end of the partition')
    // A failed worker batch has it delivered again: the same records, no second warning.
    consumer.seek(new Map([[0, 5]]))
    const again: BusRecord[] = []
    await pollUntil(consumer, expected.length - 5, again)
    assert.deepEqual(shown(again), expected.slice(5))
    const warned = warnings.map(line => JSON.parse(line) as { msg: string, detail?: string }).filter(w => w.msg.startsWith('Kafka record batch cannot be decoded'))
    assert.deepEqual(warned.map(w => w.detail), hasZstd ? [] : [undecodable.undecodable])
    await bus.close()
  })

  test('newestEventTime: null for an empty topic', async () => {
    const bus = await KafkaBus.connect({ brokers, topic: uniqueTopic('bus_newest_empty'), partitions: 3, log })
    assert.equal(await bus.newestEventTime(), null)
    await bus.close()
  })

  test('newestEventTime: the largest over partitions of each one\'s newest decodable reading, past records that are not readings, within the last 100 offsets', async () => {
    const topic = uniqueTopic('bus_newest')
    const bus = await KafkaBus.connect({ brokers, topic, partitions: 4, log })
    const producer = bus.producer()
    /** A sensor id on partition p of four. */
    const sensorOn = (p: number): string => {
      for (let i = 0; ; i++) if (partitionFor(`s-${i}`, 4) === p) return `s-${i}`
    }
    const produce = async (p: number, ...times: number[]): Promise<void> => {
      const id = sensorOn(p)
      for (const [i, ts] of times.entries()) assert.ok(producer.tryProduce(id, { ...reading(id, i), ts }))
      await producer.flush()
    }
    const foreign = (p: number, values: string[], ...settings: string[]): void => {
      kcatProduce(topic, values.map(v => `x|${v}`), '-p', String(p), ...settings)
    }
    // Readings in order on partition 0; on partition 1 the newest (by offset) is not the latest in time.
    await produce(0, T0 + 1000, T0 + 2000, T0 + 5000)
    await produce(1, T0 + 10_000, T0 + 7000)
    assert.equal(await bus.newestEventTime(), T0 + 7000, 'partition 1 gives its last reading (7 s), partition 0 its 5 s')
    // The last records of partition 0 are not readings: text, JSON without the fields (with a far-off timestamp).
    await produce(0, T0 + 20_000)
    foreign(0, ['not a reading'])
    foreign(0, ['{"sensor_id":"x","timestamp":"2999-01-01T00:00:00.000Z"}'])
    assert.equal(await bus.newestEventTime(), T0 + 20_000, 'the reading before two records that are not readings')
    // Partition 2: a reading, then 99 foreign records: the reading is the 100th offset from the end, still looked at.
    await produce(2, T0 + 7_200_000)
    foreign(2, Array.from({ length: 99 }, (_, i) => `garbage ${i}`))
    // Partition 3: a later reading, then 100 foreign records: beyond the look-back, not seen.
    await produce(3, T0 + 10_800_000)
    foreign(3, Array.from({ length: 100 }, (_, i) => `garbage ${i}`))
    assert.equal(await bus.newestEventTime(), T0 + 7_200_000, 'partition 2 within the last 100 offsets; partition 3 beyond them')
    // A batch this runtime cannot decode (zstd on Node 20) ends partition 1: passed over like any record that is not a reading.
    const late = reading(sensorOn(1), 0)
    foreign(1, [JSON.stringify({ sensor_id: late.sensorId, sensor_type: late.sensorType, location: late.location, value: 1, timestamp: new Date(T0 + 14_400_000).toISOString() })],
      '-X', 'compression.codec=zstd')
    const hasZstd = typeof (zlib as { zstdDecompressSync?: unknown }).zstdDecompressSync === 'function'
    assert.equal(await bus.newestEventTime(), hasZstd ? T0 + 14_400_000 : T0 + 7_200_000)
    await bus.close()
  })
})
