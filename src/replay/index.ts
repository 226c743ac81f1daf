export {
  formatReplaySummary, parseReplayArgs, replayColumns, replayUsage, runReplay, type DeviceReplaySummary, type ReplayOptions, type ReplaySummary
} from './replay.ts'
