// What a simulated device publishes: ThingsBoard telemetry JSON, as src/ingest decodes it.

/** One value a device measured: its measurement name, the value and the event time (epoch ms). */
export interface Measured {
  sensorType: string
  value: number
  ts: number
}

/**
 * The most values one message carries: far below what iot-monitor takes in one payload (1,000
 * values, 64 KiB; a value is about 45 bytes here), so a message is never refused for its size.
 */
export const MAX_VALUES_PER_MESSAGE = 200

/**
 * ThingsBoard telemetry JSON of values in event-time order: one `{"ts":<ms>,"values":{...}}` per
 * run of values with the same timestamp (a measurement seen twice at one ts starts a new entry,
 * so no value is lost to a repeated key), a lone entry as an object, several as an array:
 *   `{"ts":1765000000000,"values":{"temperature":22.53}}`
 *   `[{"ts":1765000000000,"values":{"temperature":22.53}},{"ts":1765000000200,"values":{"co2":612.4}}]`
 * Numbers are written as JSON.stringify writes them: they read back bit for bit.
 */
export function telemetryPayload (values: readonly Measured[]): string {
  const entries: string[] = []
  let ts = Number.NaN
  let keys = new Set<string>()
  let body = ''
  const close = (): void => { if (keys.size > 0) entries.push(`{"ts":${ts},"values":{${body}}}`) }
  for (const v of values) {
    if (v.ts !== ts || keys.has(v.sensorType)) {
      close()
      ts = v.ts
      keys = new Set()
      body = ''
    }
    body += `${keys.size === 0 ? '' : ','}${JSON.stringify(v.sensorType)}:${JSON.stringify(v.value)}`
    keys.add(v.sensorType)
  }
  close()
  return entries.length === 1 ? entries[0]! : `[${entries.join(',')}]`
}
