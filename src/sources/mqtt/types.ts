/**
 * What the MQTT sources need from the rest of the system, injected by whoever wires them: the
 * device registry (who a token or a topic belongs to) and the ingest path (payload → readings →
 * bus). The sources import neither, so they can be built and tested on their own.
 */

/** A registered device as the sources see it; the device registry's own type satisfies it structurally. */
export interface MqttDevice {
  id: string
  name: string
  location: string
}

/** Home Assistant's availability payloads, the only ones a status topic takes. */
export type DeviceStatus = 'online' | 'offline'

/**
 * Decodes one telemetry payload of `device` and puts its readings on the bus. Resolves once the bus
 * has taken them all (it waits while the bus is full: that wait is the back-pressure a QoS 1
 * publisher feels, since its PUBACK goes out only after this resolves), with the number of
 * readings produced (0 for a payload that became a dead letter).
 *
 * Reject only when the readings could not be handed to the bus (bus closed, broker unreachable):
 * the message is then not acknowledged and comes again. A payload that does not decode is not a
 * reason to reject (it would come again forever); it is the decoder's dead letter.
 */
export type TelemetryHandler = (device: MqttDevice, payload: Buffer, receivedAtMs: number) => Promise<number>

/**
 * A device's availability. `retained` is true when the broker handed out a stored value (a
 * retained message delivered on subscribe): the last known state, not a sign of life. A message
 * a device sends over its own connection, and the Last Will the broker publishes when that
 * connection dies, are live (`retained` false), whatever RETAIN flag the device set on them.
 */
export type StatusHandler = (device: MqttDevice, status: DeviceStatus, retained: boolean) => void

/** Reads a status payload: exactly `online` or `offline` (Home Assistant's defaults), else null. */
export function parseStatus (payload: Buffer): DeviceStatus | null {
  const text = payload.toString('utf8')
  return text === 'online' || text === 'offline' ? text : null
}
