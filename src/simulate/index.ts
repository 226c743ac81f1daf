// `iot-monitor simulate`: the simulated fleet as real devices. Each device (one per location and
// number, carrying that location's sensors) has its own MQTT connection to iot-monitor's built-in
// broker or to an external one and publishes ThingsBoard telemetry JSON with QoS 1, paced by the
// simulator (rate, speed-up, duration) as `start` paces it onto the bus.
export { DEFAULT_MAX_IN_FLIGHT, type SimulateFlags, type SimulateOptions, simulateOptions, simulateUsage, startOf, takeSimulateFlags } from './args.ts'
export { adminApiDevices } from './admin-api.ts'
export { DEFAULT_DEVICE_PREFIX, type FleetDevices, type SensorRoute, type SimulatedDevice, groupFleet } from './fleet-devices.ts'
export { type FleetBroker, type FleetMember, MqttFleet, type MqttFleetOptions, type MqttFleetStats, mqttFleetDefaults, redact } from './mqtt-fleet.ts'
export { MAX_VALUES_PER_MESSAGE, type Measured, telemetryPayload } from './payload.ts'
export { fleetProducer } from './producer.ts'
export { type DeviceAdmin, type KnownDevice, type Provisioned, type TokenSource, databaseDevices, provisionDevices, provisionFleet } from './provision.ts'
export { counted, paceText, statusLine, summaryLine } from './report.ts'
export { type SimulateIo, type SimulationResult, runSimulation } from './run.ts'
