import { test } from 'node:test'
import assert from 'node:assert/strict'
import { IotError } from '../domain/index.ts'
import { createFleet } from '../sources/index.ts'
import { groupFleet } from './fleet-devices.ts'

test('groupFleet - the original 25 sensors are 5 devices, one per location, each with the 5 types', () => {
  const { devices, routes } = groupFleet(createFleet(25))
  assert.deepEqual(devices.map(d => [d.id, d.name, d.location]), [
    ['sim-server-room-01', 'Simulated Server Room 01', 'Server Room'],
    ['sim-office-floor-3-01', 'Simulated Office Floor 3 01', 'Office Floor 3'],
    ['sim-warehouse-01', 'Simulated Warehouse 01', 'Warehouse'],
    ['sim-laboratory-01', 'Simulated Laboratory 01', 'Laboratory'],
    ['sim-manufacturing-01', 'Simulated Manufacturing 01', 'Manufacturing']
  ])
  for (const d of devices) assert.deepEqual(d.sensorTypes, ['temperature', 'humidity', 'air_quality', 'pressure', 'co2'])
  assert.equal(routes.size, 25)
  assert.deepEqual(routes.get('air_quality-office-floor-3-01'), { device: 1, sensorType: 'air_quality' })
  assert.deepEqual(routes.get('co2-manufacturing-01'), { device: 4, sensorType: 'co2' })
})

test('groupFleet - further sensors make further devices; a partial last device; the prefix is the caller\'s', () => {
  const { devices, routes } = groupFleet(createFleet(27), 'lab.')
  assert.equal(devices.length, 6)
  assert.deepEqual(devices[5], { id: 'lab.server-room-02', name: 'Simulated Server Room 02', location: 'Server Room', sensorTypes: ['temperature', 'humidity'] })
  assert.deepEqual(routes.get('humidity-server-room-02'), { device: 5, sensorType: 'humidity' })
  assert.throws(() => groupFleet(createFleet(5), 'bad prefix '), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_VALIDATION')
})
