import { IotError } from '../domain/index.ts'

/** A detector configuration (rule thresholds, z-score options) is invalid. Thrown at construction. */
export class AnomalyConfigError extends IotError {
  static readonly code = 'IOT_ERR_ANOMALY_CONFIG'
  declare readonly code: 'IOT_ERR_ANOMALY_CONFIG'
  /** Where in the configuration the problem is, e.g. `defaults.temperature.min`. */
  readonly path: string

  constructor (path: string, message: string) {
    super('IOT_ERR_ANOMALY_CONFIG', path === '' ? message : `${path}: ${message}`)
    this.name = 'AnomalyConfigError'
    this.path = path
  }
}

/** A persisted detector state (snapshot) cannot be restored: wrong shape or values. */
export class AnomalyStateError extends IotError {
  static readonly code = 'IOT_ERR_ANOMALY_STATE'
  declare readonly code: 'IOT_ERR_ANOMALY_STATE'
  readonly path: string

  constructor (path: string, message: string) {
    super('IOT_ERR_ANOMALY_STATE', path === '' ? message : `${path}: ${message}`)
    this.name = 'AnomalyStateError'
    this.path = path
  }
}
