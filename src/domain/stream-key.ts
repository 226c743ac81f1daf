// Which key a reading travels under on the bus: its device, so that every measurement of a device
// lands on one partition, hence on one worker (the device-level detector aligns them there).

/**
 * The bus key of a sensor's readings: for a device's sensor `<device id>.<measurement>` (devices
 * connected over MQTT, HTTP or line protocol; the last dot separates them, device ids may hold
 * dots) the device id, so a device's measurements share a partition and a worker; any other id
 * is its own key. The simulator's sensors (`<type>-<node>`) keep theirs: a default fleet of 25
 * sensors is 5 nodes, too few keys to keep every partition busy (an empty partition holds the
 * watermark back until it is found idle); in the embedded mode one worker sees every partition
 * in arrival order and aligns a node's sensors anyway.
 */
export function streamKeyOf (sensorId: string): string {
  const dot = sensorId.lastIndexOf('.')
  return dot > 0 && dot < sensorId.length - 1 ? sensorId.slice(0, dot) : sensorId
}
