// The API's route plugins by area; buildApp (../app.ts) registers them with their options.
export { healthRoutes } from './health.ts'
export { recordRoutes } from './records.ts'
export { detectionRoutes } from './detection.ts'
export { viewRoutes } from './views.ts'
export { pipelineRoutes } from './pipeline.ts'
export { liveRoutes } from './live.ts'
export { webRoutes } from './web.ts'
export { deviceRoutes } from './devices.ts'
