export { type Source } from './source.ts'
export * from './simulator/index.ts'
export * from './devices/index.ts'
export * from './mqtt/index.ts'
