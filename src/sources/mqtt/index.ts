export {
  ConnackCode,
  mqttBrokerDefaults,
  type MqttBrokerHooks,
  type MqttBrokerSettings,
  MqttBrokerSource,
  type MqttBrokerSourceOptions,
  type MqttBrokerStats,
  statusTopic,
  TELEMETRY_TOPIC
} from './broker-source.ts'
export {
  externalMqttDefaults,
  type ExternalMqttHooks,
  type ExternalMqttSettings,
  ExternalMqttSource,
  type ExternalMqttSourceOptions,
  type ExternalMqttStats
} from './external-source.ts'
export { type DeviceStatus, type MqttDevice, type StatusHandler, type TelemetryHandler } from './types.ts'
