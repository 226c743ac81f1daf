// Which key a reading travels under on the bus: its device, so that every measurement of a device
// lands on one partition, hence on one worker (the device-level detector aligns them there).

/** The built-in simulator's sensor types: its sensor ids are `<type>-<node>` (src/sources/simulator/fleet.ts). */
const SIMULATED_TYPES = ['temperature', 'humidity', 'air_quality', 'pressure', 'co2'] as const

/**
 * The bus key of a sensor's readings: the device it belongs to, so one device's measurements share
 * a partition (and a sensor's readings stay in order on one):
 * - `<device id>.<measurement>` (devices connected over MQTT, HTTP or line protocol; the last dot
 *   separates them, device ids may hold dots): the device id;
 * - the simulator's `<type>-<node>` (its co-located sensors): `sim-<node>`, as `deviceOf` groups them;
 * - any other id: the sensor id itself.
 * Pure and cheap (a scan of the id); the producers and the workers' ownership checks agree through it.
 */
export function streamKeyOf (sensorId: string): string {
  const dot = sensorId.lastIndexOf('.')
  if (dot > 0 && dot < sensorId.length - 1) return sensorId.slice(0, dot)
  for (const type of SIMULATED_TYPES) {
    if (sensorId.length > type.length + 1 && sensorId.startsWith(type) && sensorId.charCodeAt(type.length) === 45 /* - */) {
      return `sim-${sensorId.slice(type.length + 1)}`
    }
  }
  return sensorId
}
