export { loadConfig, defaultConfig, usage, type Config, type LiveConfig, type ReadinessConfig, type SimulatorConfig, type ParsedCommand } from './config.ts'
export { formatDuration, parseDuration } from './duration.ts'
export { isLoopback, readRequiresToken } from './access.ts'
export { takeOwnFlags, type OwnFlags } from './own-flags.ts'
