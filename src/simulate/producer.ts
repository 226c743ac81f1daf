// The fleet as the simulator's outlet: SimulatorSource paces a Simulator against a BusProducer
// (virtual clock, --speedup, --duration, standing still while the outlet is full), so the devices
// get exactly that pacing by taking the producer's place.
import { type BusProducer, type BusValue } from '../bus/index.ts'
import { IotError } from '../domain/index.ts'
import { type SensorRoute } from './fleet-devices.ts'
import { type MqttFleet } from './mqtt-fleet.ts'

/**
 * A BusProducer that hands each simulated reading to its device in the fleet (`routes`: the
 * simulator's sensor id → device and measurement). `tryProduce` is false while that device is
 * at its in-flight limit with a full message; `writable()` resolves when the fleet has room again.
 * Only the simulator's Readings are taken, not wire text.
 */
export function fleetProducer (fleet: MqttFleet, routes: ReadonlyMap<string, SensorRoute>): BusProducer {
  return {
    tryProduce (key: string, value: BusValue): boolean {
      if (typeof value === 'string') throw new IotError('IOT_ERR_VALIDATION', 'the simulated fleet publishes simulated readings, not wire text')
      const route = routes.get(key)
      if (route === undefined) throw new IotError('IOT_ERR_VALIDATION', `sensor ${key} belongs to no simulated device`)
      return fleet.offer(route.device, { sensorType: route.sensorType, value: value.value, ts: value.ts })
    },
    writable: async () => { await fleet.room() },
    flush: async () => { await fleet.flush() },
    get unacknowledged () { return fleet.unacknowledged },
    close: async () => { await fleet.close() }
  }
}
