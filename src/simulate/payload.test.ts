import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeTelemetry } from '../ingest/index.ts'
import { telemetryPayload } from './payload.ts'

test('telemetryPayload - one entry per timestamp, a lone entry as an object, values read back bit for bit by the ingest', () => {
  assert.equal(telemetryPayload([{ sensorType: 'temperature', value: 22.5, ts: 1000 }]), '{"ts":1000,"values":{"temperature":22.5}}')
  const values = [
    { sensorType: 'temperature', value: 0.1 + 0.2, ts: 1000 },
    { sensorType: 'humidity', value: 41, ts: 1000 },
    { sensorType: 'co2', value: 612.123456789012, ts: 1200 },
    // The same measurement twice at one time (rates above 1000/s): a new entry, nothing overwritten.
    { sensorType: 'co2', value: 613, ts: 1200 }
  ]
  const payload = telemetryPayload(values)
  assert.equal(payload, '[{"ts":1000,"values":{"temperature":0.30000000000000004,"humidity":41}},{"ts":1200,"values":{"co2":612.123456789012}},{"ts":1200,"values":{"co2":613}}]')
  const decoded = decodeTelemetry(payload, { id: 'sim-lab-01', name: 'x', location: 'Laboratory' }, 1000, { maxPayloadBytes: 65_536, maxValuesPerPayload: 1000, maxPastMs: null, maxFutureMs: null })
  assert.deepEqual(decoded.rejected, [])
  assert.deepEqual(decoded.readings.map(r => [r.sensorId, r.sensorType, r.location, r.value, r.ts]), [
    ['sim-lab-01.temperature', 'temperature', 'Laboratory', 0.30000000000000004, 1000],
    ['sim-lab-01.humidity', 'humidity', 'Laboratory', 41, 1000],
    ['sim-lab-01.co2', 'co2', 'Laboratory', 612.123456789012, 1200],
    ['sim-lab-01.co2', 'co2', 'Laboratory', 613, 1200]
  ])
})
