export { buildApp, defaultWebRoot, type ApiDeps } from './app.ts'
export { LiveHub, type LiveBatch, type LiveFilter } from './live.ts'
export type * from './contract.ts'
