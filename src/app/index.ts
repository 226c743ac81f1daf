export { allRoles, startEmbedded, startSystem, type Role, type RunningSystem } from './system.ts'
export { startStatusLine } from './status-line.ts'
export { StopSignals } from './stop-signals.ts'
