import { test } from 'node:test'
import assert from 'node:assert/strict'
import { type ScoredReading, type Verdict, type WindowAggregate } from '../domain/index.ts'
import { LiveHub, sseMessage } from './live.ts'

const normal: Verdict = { ruleAnomaly: false, zScore: 0.1, zAnomaly: false, mlScore: 0.3, mlAnomaly: false, modelVersion: 'm#1', anomaly: false, severity: null, explanation: null }
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
  const stopAll = hub.subscribe({}, c => { all.push(c); return true })
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
