// The Flink alternative: the window aggregates from a Flink SQL job (deploy/flink) on the same
// topic, into flink_sensor_aggregates (docs/ARCHITECTURE.md, "Flink alternative").
export {
  FLINK_SINK_TABLE, type FlinkFlags, type FlinkJobOptions, flinkJobOptions, flinkUsage, jdbcUrl, scriptVariables, intervalLiteral, takeFlinkFlags
} from './options.ts'
export { FLINK_MAIN_CLASS, type JavaCommand, buildFlinkJob, flinkCommand, flinkDeployDir, formatCommand, spawnFlinkJob } from './launch.ts'
export { type FlinkRunIo, runFlink } from './run.ts'
