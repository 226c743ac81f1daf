export { formatReplaySummary, parseReplayArgs, replayUsage, runReplay, type ReplayOptions, type ReplaySummary } from './replay.ts'
