// What `simulate` prints for people on stdout: where it publishes, a status line every few
// seconds, and the summary at the end.
import { type MqttFleetStats } from './mqtt-fleet.ts'

const fmt = new Intl.NumberFormat('en-US')
const int = (n: number): string => fmt.format(Math.round(n))
const isoSecond = (ms: number): string => new Date(ms).toISOString().slice(0, 19) + 'Z'

/** `1 device`, `2 devices`, `1,500 readings`. */
export function counted (n: number, noun: string): string {
  return `${int(n)} ${noun}${n === 1 ? '' : 's'}`
}

/** The pace in words: "real time", "60x real time", "as fast as the broker takes it". */
export function paceText (speedup: number): string {
  if (speedup === Infinity) return 'as fast as the broker takes it'
  return speedup === 1 ? 'real time' : `${fmt.format(speedup)}x real time`
}

/**
 * A status line: `10:06:08 | 25 readings/s | published 3,181 | acknowledged 3,176 | in flight 5 |
 * devices 5/5 connected | event time 2026-11-24T10:08:03Z`. `readingsPerSecond` is over the last
 * interval.
 */
export function statusLine (now: number, s: MqttFleetStats, readingsPerSecond: number, eventTime: number): string {
  const clock = new Date(now).toTimeString().slice(0, 8)
  return `${clock} | ${int(readingsPerSecond)} readings/s | published ${int(s.published)} | acknowledged ${int(s.acknowledged)} | ` +
    `in flight ${int(s.inFlight)} | devices ${int(s.connected)}/${int(s.devices)} connected | event time ${isoSecond(eventTime)}\n`
}

/**
 * The last line: `5 devices published 1,500 readings in 600 messages: 1,500 acknowledged, 0 failed.`
 * Failed: published and not acknowledged (the broker did not answer before the stop, or the
 * connection ended first). Readings made and never published, and waits for the broker, are
 * added when there were any.
 */
export function summaryLine (s: MqttFleetStats): string {
  const failed = s.published - s.acknowledged
  let text = `${counted(s.devices, 'simulated device')} published ${counted(s.published, 'reading')} in ${counted(s.messages, 'message')}: ` +
    `${int(s.acknowledged)} acknowledged, ${int(failed)} failed.`
  if (s.buffered > 0) text += ` ${int(s.buffered)} readings made were not published (stopped first).`
  if (s.waits > 0) text += ` The fleet waited for the broker's acknowledgements ${int(s.waits)} times.`
  return text + '\n'
}
