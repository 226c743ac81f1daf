/** Stable error codes. Tests assert codes, never message text. */
export const errorCodes = [
  'IOT_ERR_CONFIG',
  'IOT_ERR_VALIDATION',
  'IOT_ERR_STORAGE',
  'IOT_ERR_DB_UNAVAILABLE',
  'IOT_ERR_MIGRATION',
  'IOT_ERR_BUS_CLOSED',
  'IOT_ERR_BUS',
  'IOT_ERR_BUS_FULL',
  'IOT_ERR_FENCED',
  'IOT_ERR_ANOMALY_CONFIG',
  'IOT_ERR_ANOMALY_STATE',
  'IOT_ERR_TRAINING',
  'IOT_ERR_DEVICE_EXISTS',
  'IOT_ERR_DEVICE_NOT_FOUND',
  'IOT_ERR_DEVICE_REVOKED',
  'IOT_ERR_UNAUTHORIZED',
  'IOT_ERR_FORBIDDEN',
  'IOT_ERR_TOO_LARGE',
  'IOT_ERR_RATE_LIMITED',
  'IOT_ERR_MQTT',
  // Alarm actions and notifications (src/storage/alarm-actions.ts, src/notify).
  'IOT_ERR_ALARM_NOT_FOUND',
  'IOT_ERR_ALARM_STATE',
  'IOT_ERR_SILENCE_NOT_FOUND',
  'IOT_ERR_NOTIFY'
] as const
export type ErrorCode = (typeof errorCodes)[number]

export class IotError extends Error {
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'IotError'
    this.code = code
  }
}
