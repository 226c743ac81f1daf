export * from './reading.ts'
export * from './random.ts'
