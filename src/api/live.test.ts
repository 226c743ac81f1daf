import { test } from 'node:test'
import assert from 'node:assert/strict'
import { type ScoredReading, type Verdict, type WindowAggregate } from '../domain/index.ts'
import { LiveHub, defaultLiveHubOptions, sseMessage } from './live.ts'

const normal: Verdict = { ruleAnomaly: false, zScore: 0.1, zAnomaly: false, mlScore: 0.3, mlAnomaly: false, modelVersion: 'm#1', stuck: false, drift: false, anomalyScore: 0, anomaly: false, severity: null, explanation: null }
const scored = (sensorId: string, location: string, sensorType: string, ts: number, verdict: Partial<Verdict> = {}): ScoredReading => ({
  reading: { sensorId, sensorType, location, value: ts / 1000, ts, unit: 'u', anomaly: null, anomalyKind: null, seq: null },
  verdict: { ...normal, ...verdict }
})
const window = (location: string, sensorType: string, windowStart: number, revision: number): WindowAggregate => ({
  windowStart,
  windowEnd: windowStart + 60_000,
  location,
  sensorType,
  avg: 1,
  min: 1,
  max: 1,
  stddev: 0,
  count: revision,
  anomalyCount: 0,
  labelAnomalyCount: 0,
  zScoreAnomalies: 0,
  mlAnomalyCount: 0,
  combinedAnomalyCount: 0,
  revision,
  isFinal: false
})

/** Parses the SSE messages written to a client into [event, data]. */
function events (chunks: string[]): [string, unknown][] {
  return chunks.map(c => {
    const m = /^event: (\w+)\ndata: (.*)\n\n$/s.exec(c)
    assert.ok(m !== null, `an SSE message: ${c.slice(0, 80)}`)
    return [m[1]!, JSON.parse(m[2]!)]
  })
}

test('sseMessage - one event with its JSON data and a blank line', () => {
  assert.equal(sseMessage('readings', [1, 'a']), 'event: readings\ndata: [1,"a"]\n\n')
})

test('LiveHub - per-client filters; readings, anomalies and the newest revision of each window, sent together at the flush', () => {
  const hub = new LiveHub({ maxItems: 3 })
  const all: string[] = []
  const lab: string[] = []
  const stopAll = hub.subscribe({}, c => { all.push(c); return true })!
  hub.subscribe({ location: 'lab', sensorType: 'co2' }, c => { lab.push(c); return true })
  assert.equal(hub.clients, 2)

  hub.publish({
    stored: [scored('a', 'lab', 'co2', 1000), scored('b', 'yard', 'co2', 2000, { ruleAnomaly: true, anomaly: true, severity: 'critical' }),
      scored('c', 'lab', 'co2', 3000, { mlAnomaly: true })],
    revised: [window('lab', 'co2', 0, 1), window('yard', 'co2', 0, 1)],
    finalized: []
  })
  hub.publish({ stored: [], revised: [window('lab', 'co2', 0, 2)], finalized: [] })
  assert.deepEqual(all, [], 'nothing is sent before the flush')
  hub.flush()

  const a = events(all)
  assert.deepEqual(a.map(([e]) => e), ['readings', 'anomalies', 'windows'])
  assert.deepEqual((a[0]![1] as { sensor_id: string }[]).map(r => r.sensor_id), ['a', 'b', 'c'])
  assert.deepEqual((a[1]![1] as { sensor_id: string, severity: string | null }[]).map(r => [r.sensor_id, r.severity]), [['b', 'critical'], ['c', null]])
  assert.deepEqual((a[2]![1] as { location: string, revision: number }[]).map(w => [w.location, w.revision]), [['yard', 1], ['lab', 2]],
    'one entry per window: its newest revision')
  const l = events(lab)
  assert.deepEqual((l[0]![1] as { sensor_id: string }[]).map(r => r.sensor_id), ['a', 'c'], 'the filtered client sees only lab/co2')
  assert.deepEqual((l[2]![1] as { location: string }[]).map(w => w.location), ['lab'])

  all.length = 0
  hub.flush()
  assert.deepEqual(all, [], 'nothing new, nothing sent')

  // More than maxItems between flushes: the newest maxItems are sent.
  hub.publish({ stored: [1, 2, 3, 4, 5, 6, 7].map(i => scored(`s${i}`, 'lab', 'co2', i * 1000)), revised: [], finalized: [] })
  hub.flush()
  assert.deepEqual((events(all)[0]![1] as { sensor_id: string }[]).map(r => r.sensor_id), ['s5', 's6', 's7'])

  stopAll()
  all.length = 0
  hub.broadcast('pipeline', { readings_per_s: 1 })
  assert.deepEqual(all, [], 'an unsubscribed client gets nothing')
  assert.deepEqual(events(lab).at(-1), ['pipeline', { readings_per_s: 1 }])
  hub.close()
  assert.equal(hub.clients, 0)
})

test('LiveHub - a client whose socket is backed up misses messages instead of queueing them', () => {
  const hub = new LiveHub()
  let open = false
  const got: string[] = []
  hub.subscribe({}, c => { if (!open) return false; got.push(c); return true })
  hub.publish({ stored: [scored('a', 'lab', 'co2', 1000)], revised: [], finalized: [] })
  hub.flush()
  open = true
  hub.flush()
  assert.deepEqual(got, [], 'the message skipped while backed up is not resent')
  hub.publish({ stored: [scored('b', 'lab', 'co2', 2000)], revised: [], finalized: [] })
  hub.flush()
  assert.deepEqual((events(got)[0]![1] as { sensor_id: string }[]).map(r => r.sensor_id), ['b'])
  hub.close()
})

test('LiveHub - defaults: 500 clients in total, 50 per address, Retry-After 10 s', () => {
  assert.deepEqual(
    [defaultLiveHubOptions.maxClients, defaultLiveHubOptions.maxClientsPerAddress, defaultLiveHubOptions.retryAfterSeconds],
    [500, 50, 10])
  assert.throws(() => new LiveHub({ maxClients: -1 }), { code: 'IOT_ERR_CONFIG' })
  assert.throws(() => new LiveHub({ maxClientsPerAddress: 1.5 }), { code: 'IOT_ERR_CONFIG' })
})

test('LiveHub - caps clients in total and per address, counts each client out exactly once', () => {
  const hub = new LiveHub({ maxClients: 4, maxClientsPerAddress: 2 })
  const sink = (): boolean => true
  const a1 = hub.subscribe({}, sink, 'a')
  const a2 = hub.subscribe({ location: 'lab' }, sink, 'a')
  assert.ok(a1 !== null && a2 !== null)
  assert.equal(hub.capReached('a'), 'address')
  assert.equal(hub.subscribe({}, sink, 'a'), null, 'a third client from a: refused')
  assert.deepEqual([hub.clients, hub.clientsFrom('a'), hub.rejected], [2, 2, 1])

  const b1 = hub.subscribe({}, sink, 'b')
  const c1 = hub.subscribe({}, sink, 'c')
  assert.ok(b1 !== null && c1 !== null)
  assert.equal(hub.capReached('d'), 'total')
  assert.equal(hub.subscribe({}, sink, 'd'), null, 'a fifth client: refused whatever its address')
  assert.deepEqual([hub.clients, hub.rejected], [4, 2])

  a1()
  a1()
  assert.deepEqual([hub.clients, hub.clientsFrom('a')], [3, 1], 'removing twice counts out once')
  const a3 = hub.subscribe({}, sink, 'a')
  assert.ok(a3 !== null, 'a place freed: accepted again')
  for (const stop of [a2, a3, b1, c1]) stop()
  assert.deepEqual([hub.clients, hub.clientsFrom('a'), hub.clientsFrom('b'), hub.capReached('a')], [0, 0, 0, null])

  // close() forgets everyone; their removal functions then change nothing.
  const d1 = hub.subscribe({}, sink, 'd')!
  hub.subscribe({}, sink, 'd')
  hub.close()
  d1()
  assert.deepEqual([hub.clients, hub.clientsFrom('d')], [0, 0])
  assert.ok(hub.subscribe({}, sink, 'd') !== null)
  hub.close()
})

test('LiveHub - clients with one filter are sent the same message; what was queued for a filter goes with its last client', () => {
  const hub = new LiveHub()
  const first: string[] = []
  const second: string[] = []
  const other: string[] = []
  const stopFirst = hub.subscribe({ location: 'lab' }, c => { first.push(c); return true })!
  const stopSecond = hub.subscribe({ location: 'lab' }, c => { second.push(c); return true })!
  hub.subscribe({ location: 'yard' }, c => { other.push(c); return true })
  hub.publish({ stored: [scored('a', 'lab', 'co2', 1000), scored('b', 'yard', 'co2', 2000)], revised: [], finalized: [] })
  hub.flush()
  assert.equal(first.length, 1)
  assert.deepEqual(second, first)
  assert.deepEqual((events(first)[0]![1] as { sensor_id: string }[]).map(r => r.sensor_id), ['a'])
  assert.deepEqual((events(other)[0]![1] as { sensor_id: string }[]).map(r => r.sensor_id), ['b'])

  hub.publish({ stored: [scored('c', 'lab', 'co2', 3000)], revised: [], finalized: [] })
  stopFirst()
  stopSecond()
  const later: string[] = []
  hub.subscribe({ location: 'lab' }, c => { later.push(c); return true })
  hub.flush()
  assert.deepEqual(later, [], 'nothing queued for clients that left reaches the next one')
  hub.close()
})

test('LiveHub - pings every client on one timer; the last broadcast is kept for clients that join', async () => {
  const hub = new LiveHub({ flushMs: 5, pingMs: 20 })
  const got: string[] = []
  hub.subscribe({}, c => { got.push(c); return true })
  const deadline = Date.now() + 2000
  while (!got.includes(': ping\n\n')) {
    assert.ok(Date.now() < deadline, 'a ping within 2 s')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  assert.equal(hub.recentBroadcast('pipeline', 1000), null)
  hub.broadcast('pipeline', { readings_per_s: 2 })
  assert.equal(hub.recentBroadcast('pipeline', 1000), sseMessage('pipeline', { readings_per_s: 2 }))
  assert.equal(hub.recentBroadcast('pipeline', -1), null, 'older than asked: none')
  hub.close()
})
