import assert from 'node:assert/strict'
import { test } from 'node:test'
import { streamKeyOf } from './stream-key.ts'

test('streamKeyOf: a device\'s measurements share its key (the id up to the last dot)', () => {
  assert.equal(streamKeyOf('esp32-1.temperature'), 'esp32-1')
  assert.equal(streamKeyOf('esp32-1.co2'), 'esp32-1')
  assert.equal(streamKeyOf('building.a.esp32-1.co2'), 'building.a.esp32-1')
})

test('streamKeyOf: any other id is its own key (the simulator\'s sensors too)', () => {
  assert.equal(streamKeyOf('temperature-server-room-01'), 'temperature-server-room-01')
  assert.equal(streamKeyOf('s1'), 's1')
  assert.equal(streamKeyOf('.hidden'), '.hidden')
  assert.equal(streamKeyOf('trailing.'), 'trailing.')
})
