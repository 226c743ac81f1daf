export { HTTP_REQUESTS, buildApp, type ApiDeps } from './app.ts'
export { LiveHub } from './live.ts'
export type * from './contract.ts'
