// Recording stand-ins for the hooks the MQTT sources are given (our own seams: the ingest path and
// the device registry are wired in by the application).
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { type DeviceStatus, type MqttDevice, type StatusHandler, type TelemetryHandler } from './types.ts'

export interface TelemetryCall {
  device: MqttDevice
  payload: string
  receivedAtMs: number
}

/**
 * Records what reaches onTelemetry. While `holding`, each call waits until the test releases it,
 * as a full bus would keep it waiting; `failNext` makes calls reject as a closed bus would.
 */
export class TelemetryRecorder {
  readonly calls: TelemetryCall[] = []
  holding = false
  failNext = 0
  readonly #held: Array<() => void> = []

  readonly handler: TelemetryHandler = async (device, payload, receivedAtMs) => {
    this.calls.push({ device, payload: payload.toString('utf8'), receivedAtMs })
    if (this.failNext > 0) {
      this.failNext--
      throw new Error('bus closed')
    }
    if (this.holding) await new Promise<void>(resolve => { this.#held.push(resolve) })
    return 1
  }

  /** Calls waiting for release. */
  get held (): number {
    return this.#held.length
  }

  releaseOne (): void {
    this.#held.shift()?.()
  }

  releaseAll (): void {
    this.holding = false
    for (const release of this.#held.splice(0)) release()
  }

  payloads (): string[] {
    return this.calls.map(c => c.payload)
  }
}

export interface StatusCall {
  deviceId: string
  status: DeviceStatus
  retained: boolean
}

export class StatusRecorder {
  readonly calls: StatusCall[] = []
  readonly handler: StatusHandler = (device, status, retained) => {
    this.calls.push({ deviceId: device.id, status, retained })
  }
}

export const devices: Record<string, MqttDevice> = {
  'dev-1': { id: 'dev-1', name: 'Lab sensor', location: 'lab' },
  'dev-2': { id: 'dev-2', name: 'Server room sensor', location: 'server-room' }
}

/** Tokens as the registry would know them. */
export const tokens: Record<string, MqttDevice> = {
  'token-1': devices['dev-1']!,
  'token-2': devices['dev-2']!
}

/** Waits (real time) until `cond` holds. */
export async function until (cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(5)
  }
}
