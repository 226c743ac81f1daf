import { AnomalyConfigError } from './errors.ts'
import { restoreFrom, snapshotOf, type SnapshotReader, type SnapshotWriter, type StateInstaller } from './snapshot.ts'

/**
 * Steps smaller than this fraction of the value's magnitude are floating-point noise (a unit
 * conversion, a sum printed with 17 digits), not a step of the sensor.
 */
const ROUND_OFF = 1e-9

class Step {
  last = NaN
  /** Smallest non-zero step seen between consecutive readings; Infinity until one is seen. */
  step = Infinity
}

/**
 * A sensor's resolution: the smallest difference it can show. Learnt per sensor as the smallest
 * non-zero step between consecutive readings (a thermometer that reports 22.0, 22.1, 22.0 has
 * resolution 0.1; one that reports full doubles has a tiny one), or declared per sensor type;
 * the larger of the two counts. Infinity means unknown: the sensor never changed and nothing was
 * declared.
 *
 * It bounds what the other detectors can call a change: the z-score's scale is never below one
 * step (no division by zero, no alarm on a one-step flicker) and a flat line is "no change of half
 * a step or more" (see `stuck.ts`). Pure; 16 bytes per sensor.
 */
export class ResolutionEstimator {
  readonly declared: Readonly<Record<string, number>>
  readonly #sensors = new Map<string, Step>()

  /** `declared`: resolution per sensor type, in the type's unit (e.g. `{ temperature: 0.1 }`). */
  constructor (declared: Readonly<Record<string, number>> = {}) {
    for (const [type, r] of Object.entries(declared)) {
      if (!Number.isFinite(r) || !(r > 0)) throw new AnomalyConfigError(`resolution.${type}`, `must be a finite number > 0, got ${String(r)}`)
    }
    this.declared = Object.freeze({ ...declared })
  }

  get size (): number {
    return this.#sensors.size
  }

  /** The resolution before this reading (learnt, or declared for its type, whichever is larger), then learns from it. */
  observe (sensorId: string, sensorType: string, value: number): number {
    let s = this.#sensors.get(sensorId)
    if (s === undefined) {
      s = new Step()
      this.#sensors.set(sensorId, s)
    }
    const learnt = s.step
    if (Number.isFinite(value)) {
      const d = Math.abs(value - s.last)
      if (d > 0 && d < s.step && d > ROUND_OFF * Math.abs(value)) s.step = d
      s.last = value
    }
    const declared = this.declared[sensorType]
    return declared === undefined || (learnt !== Infinity && learnt > declared) ? learnt : declared
  }

  /** The learnt resolution of a sensor (Infinity when unknown), or undefined if it is not tracked. */
  learnt (sensorId: string): number | undefined {
    return this.#sensors.get(sensorId)?.step
  }

  /** The sensor's state as a standalone snapshot (`snapshot.ts`), or null when it has none. */
  snapshot (sensorId: string): Uint8Array | null {
    return snapshotOf('resolution', this, sensorId)
  }

  /** Replaces the sensor's state with a snapshot's; damaged bytes throw `AnomalyStateError` and leave it with none. */
  restore (sensorId: string, bytes: Uint8Array): void {
    restoreFrom('resolution', this, sensorId, bytes)
  }

  /** Appends the sensor's state (the last value and the smallest step: 16 bytes); false, writing nothing, when it has none. */
  writeSnapshot (sensorId: string, out: SnapshotWriter): boolean {
    const s = this.#sensors.get(sensorId)
    if (s === undefined) return false
    out.f64(s.last)
    out.f64(s.step)
    return true
  }

  /** Decodes what `writeSnapshot` wrote; the installer replaces a sensor's state with it. */
  readSnapshot (input: SnapshotReader): StateInstaller {
    const s = new Step()
    s.last = input.f64('last')
    s.step = input.f64('step')
    if (!(s.step > 0)) input.fail('step', `the smallest step is > 0 or Infinity, got ${s.step}`)
    return (sensorId) => { this.#sensors.set(sensorId, s) }
  }

  forget (sensorId: string): boolean {
    return this.#sensors.delete(sensorId)
  }

  clear (): void {
    this.#sensors.clear()
  }
}
