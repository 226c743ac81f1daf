// The simulated fleet as devices: which simulated sensors one device carries, and what the device
// is called. Pure: a table built from the simulator's fleet layout.
import { validateDeviceId } from '../devices/index.ts'
import { type SensorSpec } from '../sources/index.ts'

/** One simulated device: a node at one location carrying up to one sensor of each type. */
export interface SimulatedDevice {
  /** `<prefix><location slug>-<NN>`, e.g. `sim-server-room-01`. */
  id: string
  /** `Simulated <location> <NN>`, e.g. `Simulated Server Room 01`. */
  name: string
  location: string
  /** Its sensors' types, in fleet order: the measurement names it publishes. */
  sensorTypes: string[]
}

/** Where a simulated sensor's readings go: its device (index into the device list) and measurement. */
export interface SensorRoute {
  device: number
  sensorType: string
}

export interface FleetDevices {
  devices: SimulatedDevice[]
  /** Simulator sensor id (`temperature-server-room-01`) → its device and measurement. */
  routes: ReadonlyMap<string, SensorRoute>
}

/** The default device id prefix: simulated devices are easy to tell from real ones. */
export const DEFAULT_DEVICE_PREFIX = 'sim-'

/**
 * Groups the simulator's sensors into devices, one per (location, NN): the simulator's sensor
 * `<type>-<location slug>-<NN>` (see createFleet) is measurement `<type>` of device
 * `<prefix><location slug>-<NN>`, so iot-monitor stores it as sensor
 * `<prefix><location slug>-<NN>.<type>` (`sim-server-room-01.temperature`) at the device's
 * location. The first 25 sensors are 5 devices of 5 sensors (one per location); each further 25
 * add one more device per location; a fleet that is not a multiple of 5 ends with a device
 * carrying fewer types. Devices come in the order of their first sensor.
 *
 * IOT_ERR_VALIDATION when the prefix makes an id that is not a device id (1-64 of A-Z a-z 0-9 . _ -).
 */
export function groupFleet (fleet: readonly SensorSpec[], prefix: string = DEFAULT_DEVICE_PREFIX): FleetDevices {
  const devices: SimulatedDevice[] = []
  const byId = new Map<string, number>()
  const routes = new Map<string, SensorRoute>()
  for (const spec of fleet) {
    // The id is `${sensorType}-${location slug}-${NN}`: what follows the type names the node.
    const node = spec.id.slice(spec.sensorType.length + 1)
    const id = validateDeviceId(prefix + node)
    let index = byId.get(id)
    if (index === undefined) {
      index = devices.length
      byId.set(id, index)
      const number = node.slice(node.lastIndexOf('-') + 1)
      devices.push({ id, name: `Simulated ${spec.location} ${number}`, location: spec.location, sensorTypes: [] })
    }
    devices[index]!.sensorTypes.push(spec.sensorType)
    routes.set(spec.id, { device: index, sensorType: spec.sensorType })
  }
  return { devices, routes }
}
