export { buildApp, type ApiDeps } from './app.ts'
