export { DeviceGateway, type GatewayDeps, type IngestOutcome, type IngestRejection, type PutOptions } from './gateway.ts'
