import assert from 'node:assert/strict'
import { test } from 'node:test'
import { streamKeyOf } from './stream-key.ts'

test('streamKeyOf: a device\'s measurements share its key; the simulator\'s co-located sensors share their node', () => {
  assert.equal(streamKeyOf('esp32-1.temperature'), 'esp32-1')
  assert.equal(streamKeyOf('building.a.esp32-1.co2'), 'building.a.esp32-1')
  assert.equal(streamKeyOf('temperature-server-room-01'), 'sim-server-room-01')
  assert.equal(streamKeyOf('air_quality-server-room-01'), 'sim-server-room-01')
  assert.equal(streamKeyOf('co2-lab-02'), 'sim-lab-02')
})

test('streamKeyOf: any other id is its own key', () => {
  assert.equal(streamKeyOf('s1'), 's1')
  assert.equal(streamKeyOf('temperature'), 'temperature')
  assert.equal(streamKeyOf('temperature-'), 'temperature-')
  assert.equal(streamKeyOf('.hidden'), '.hidden')
  assert.equal(streamKeyOf('trailing.'), 'trailing.')
  assert.equal(streamKeyOf('temperatures-1'), 'temperatures-1')
})
