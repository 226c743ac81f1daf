export { type Source } from './source.ts'
export * from './simulator/index.ts'
