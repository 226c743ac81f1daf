export * from './time-window.ts'
export * from './accumulator.ts'
export * from './watermark.ts'
export * from './operator.ts'
