export { HTTP_REQUESTS, buildApp, type ApiDeps, type DeviceIngest } from './app.ts'
export { LiveHub, defaultLiveHubOptions, type LiveCap, type LiveHubOptions } from './live.ts'
export type * from './contract.ts'
