// The devices module: nodes that send readings themselves (MQTT, HTTP), their tokens (random,
// shown once, stored as SHA-256 digests), the lookup the ingest authenticates with, and the
// `iot-monitor devices` command. A device's measurement M is the sensor `${device.id}.${M}`.
export { DEVICE_ID_PATTERN, ONLINE_WITHIN_MS, type Device, type DeviceStatus, deviceStatus, validateDeviceId, validateLabel } from './device.ts'
export { TOKEN_PREFIX, hashToken, isWellFormedToken, newDeviceToken } from './token.ts'
export { type DeviceInput, type IssuedToken, addDevice, revokeDevice, rotateDeviceToken } from './manage.ts'
export { DeviceRegistry, type DeviceRegistryOptions, type RefusalReason, defaultRegistryOptions } from './registry.ts'
export { LastSeenRecorder } from './last-seen.ts'
export { type DeviceFlags, type DevicesCommand, devicesUsage, formatDeviceTable, parseDevicesCommand, runDevicesCommand, takeDeviceFlags } from './cli.ts'
// The stored rows and the storage calls the ingest needs besides the registry.
export { type DeviceConnection, type StoredDevice, findDevice, listDevices, markOnlineDevicesOffline, setDeviceConnection } from '../storage/index.ts'
