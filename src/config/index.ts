export { loadConfig, defaultConfig, usage, type Config, type SimulatorConfig, type ParsedCommand } from './config.ts'
export { parseDuration } from './duration.ts'
