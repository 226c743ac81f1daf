// Registering the fleet in the database (embedded PGlite in memory), as `simulate` does without
// --admin-token; the admin API path runs against a live system in test/integration/simulate-mqtt.test.ts.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { DeviceRegistry, addDevice, revokeDevice } from '../devices/index.ts'
import { IotError } from '../domain/index.ts'
import { createFleet } from '../sources/index.ts'
import { type Db, migrate, openPglite } from '../storage/index.ts'
import { groupFleet } from './fleet-devices.ts'
import { databaseDevices, provisionDevices } from './provision.ts'

describe('provisionDevices in the database', () => {
  let db: Db
  before(async () => {
    db = await openPglite('memory://')
    await migrate(db)
  })
  after(async () => { await db.close() })

  test('adds the missing devices, gives registered ones a new token (built-in broker) or keeps them (external); every token authenticates', async () => {
    const { devices } = groupFleet(createFleet(10))
    // One of the two is there already, at the simulator's location.
    const old = await addDevice(db, { id: 'sim-office-floor-3-01', name: 'by hand', location: 'Office Floor 3' }, 1000)
    const first = await provisionDevices(databaseDevices(db), devices, { tokens: true })
    assert.deepEqual([first.added, first.rotated, first.kept], [1, 1, 0])
    assert.deepEqual(first.members.map(m => m.device.id), ['sim-server-room-01', 'sim-office-floor-3-01'])
    const registry = new DeviceRegistry(db)
    for (const m of first.members) {
      assert.ok(m.token !== null)
      assert.deepEqual(await registry.authenticate(m.token), { id: m.device.id, name: m.device.id === 'sim-server-room-01' ? 'Simulated Server Room 01' : 'by hand', location: m.device.location })
    }
    assert.equal(await registry.authenticate(old.token), null, 'the rotated token is refused')

    const again = await provisionDevices(databaseDevices(db), devices, { tokens: false })
    assert.deepEqual([again.added, again.rotated, again.kept], [0, 0, 2])
    assert.deepEqual(again.members.map(m => m.token), [null, null])
  })

  test('a registered device at another location, or a revoked one, stops it before anything changes', async () => {
    const { devices } = groupFleet(createFleet(15), 'x-')
    await addDevice(db, { id: 'x-warehouse-01', name: 'moved', location: 'Dock' }, 1000)
    await assert.rejects(provisionDevices(databaseDevices(db), devices, { tokens: true }), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_DEVICE_EXISTS')
    const { devices: others } = groupFleet(createFleet(5), 'y-')
    await addDevice(db, { id: 'y-server-room-01', name: 'gone', location: 'Server Room' }, 1000)
    await revokeDevice(db, 'y-server-room-01', 2000)
    await assert.rejects(provisionDevices(databaseDevices(db), others, { tokens: true }), (err: unknown) => err instanceof IotError && err.code === 'IOT_ERR_DEVICE_REVOKED')
    const ids = (await db.query<{ id: string }>("SELECT device_id AS id FROM devices WHERE device_id LIKE 'x-%' ORDER BY 1")).map(r => r.id)
    assert.deepEqual(ids, ['x-warehouse-01'], 'nothing was added')
  })
})
