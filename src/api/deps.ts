// What the HTTP API is built from: buildApp's one argument, and the parts of it the route plugins take.
import { type Registry } from 'prom-client'
import { type Logger } from 'pino'
import { type Queryable } from '../storage/index.ts'
import { type WindowingOptions } from '../windowing/index.ts'
import { type LiveHub } from './live.ts'

/** The database the API reads, with its kind (reported by /health and /api/pipeline). */
export type ApiDb = Queryable & { readonly kind: string }

/** The pipeline's watermark and consumer lag, read when asked. */
export type PipelineStatus = () => { watermark: number, lag: number | null }

export interface ApiDeps {
  db: ApiDb
  registry: Registry
  /** Pipeline state for /health. */
  status: PipelineStatus
  logger?: Logger
  /** Live feed of the batches stored by a worker in this process; without one, the database is tailed for changes. */
  live?: LiveHub
  /** The windowing of the stored windows (series resolution; how long windows change); defaults of the pipeline when absent. */
  windowing?: Pick<WindowingOptions, 'sizeMs' | 'maxOutOfOrdernessMs' | 'allowedLatenessMs'>
  /** Folder of the built dashboard served at / (null: no dashboard). */
  webRoot?: string | null
  /** Wall clock (readings/s). */
  now?: () => number
}
