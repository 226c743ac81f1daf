// The storage module: PostgreSQL or embedded PGlite behind one port, the schema's migrations, the
// worker's batch commit, and the queries behind the API and the dashboard.
export { openDb, openPglite, openPostgres, type Db, type Queryable, type Row } from './db.ts'
export { migrate } from './migrate.ts'
export { type AvailabilityState, DbAvailability, answersWithin, isUnavailable, startProbe, watchDb } from './availability.ts'
export { BinaryCopy } from './copy-binary.ts'
export { type QueryFilter } from './filter-sql.ts'
// The worker's write path.
export { commitBatch } from './batch.ts'
export { ensureDayPartitions, summarizeTimeIndex } from './partitions.ts'
export { copyReadingRows, insertReadings, loadReadingKeysSince, loadWarmupReadings, readingColumns, resolveKeys } from './readings.ts'
export { type LateReading, insertLateReadings, recentLateReadings } from './late-readings.ts'
export { insertDeadLetters, recentDeadLetters } from './dead-letters.ts'
export { finalizeWindows, mergeHourlyRollups, mergeWindowDeltas, recentAggregates } from './windows.ts'
export { upsertSensors } from './sensors.ts'
export { countDetections, loadDetectionCounts, mergeDetectionCounts } from './detection-counts.ts'
export { type ModelInfo, type StoredModel, loadLatestModels, newestModels, recentModels, saveModels } from './models.ts'
export {
  FINALITY_LOCK_CLASS, type PartitionProgress, type PartitionState, advanceWatermark, claimPartitions, loadPartitions, loadWatermark, lockFinality, markIdle
} from './progress.ts'
export { applyRetention, vacuumRewrittenTables } from './maintenance.ts'
export { type GroupStatus, type Latency, loadGroupStatus, removeWorkerStatus, reportWorkerStatus } from './worker-status.ts'
// Devices that send readings themselves (MQTT, HTTP) and the digests of their tokens.
export {
  type DeviceConnection, type DeviceSensor, type NewDevice, type StoredDevice, deviceSensors, findDevice, findDeviceByTokenHash, insertDevice,
  listDevices, markOnlineDevicesOffline, recordDevicesSeen, replaceDeviceToken, revokeDevice, setDeviceConnection
} from './devices.ts'
// The API's and the dashboard's reads.
export { type StoredReading, newestEventTime, recentAnomalies, recentReadings, recentScores } from './reading-lists.ts'
export {
  type RangeFilter, type Resolution, correlation, keptAsideCounts, loadMeta, newestReadingTime, openWindows, rangeStats,
  scoreBins, sensorCounts, sensorUnits, series, storedReadingsTotal
} from './dashboard.ts'
// Alarms: what operators do with them (acknowledge, clear, silence) and what the API and the notifier read.
export {
  ALARM_COLUMNS, type AlarmCounts, type AlarmListFilter, type AlarmNotification, type AlarmRow, type NewSilence, type OperatorAction,
  type SilenceMatcher, type StoredAlarmEvent, type StoredSilence, acknowledgeAlarm, alarmCounts, alarmHistory, alarmNotifications, alarmOf,
  alarmStatusOf, alarmsChangedSince, alarmsVersion, clearAlarmByOperator, createSilence, deleteSilence, emptyAlarmCounts, findAlarm, findAlarms,
  listAlarms, listSilences, silencesInForce
} from './alarm-actions.ts'
// Alarms as the worker writes them in its batch transaction and restores them on a claim (src/alarms is the core).
export {
  type StoredAlarmState, commitAlarmCheck, foldAlarmConditions, listAllAlarms, loadAlarmState, loadKnownSensors, loadOperatorState, loadReadingsForAlarms, writeAlarmBatch
} from './alarms.ts'
export { type DeviceScorePoint, type DeviceScoreRow, type DeviceScoreSummary, deleteDeviceScoresBefore, deviceScores, insertDeviceScores, listDeviceScoreSummaries } from './device-scores.ts'
export { type DetectorSnapshot, deleteDetectorStateBefore, loadDetectorState, saveDetectorState } from './detector-state.ts'
