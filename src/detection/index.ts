// The detectors as the stream runs them (per-sensor detectors, online Isolation Forest models,
// cadence): used by the live worker (src/pipeline) and by replay (src/replay), which needs none of
// the pipeline's storage and bus code.
export { PipelineDetector, type DetectionOptions, type ReadingDetector } from './detection.ts'
