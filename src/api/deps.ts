// What the HTTP API is built from: buildApp's one argument, and the parts of it the route plugins take.
import { type Registry } from 'prom-client'
import { type Logger } from 'pino'
import { type DeviceRegistry } from '../devices/index.ts'
import { type DeviceRateLimit, type IngestDevice } from '../ingest/index.ts'
import { type DeviceGateway } from '../sources/index.ts'
import { type Latency, type Queryable } from '../storage/index.ts'
import { type WindowingOptions } from '../windowing/index.ts'
import { type LiveHub } from './live.ts'

/** The database the API reads, with its kind (reported by /health and /api/pipeline). */
export type ApiDb = Queryable & { readonly kind: string }

/**
 * The pipeline's watermark, consumer lag and bus-to-stored latency, read when asked: from the
 * worker of this process, else from what the workers report in the database (null when unknown).
 */
export type PipelineStatus = () => { watermark: number, lag: number | null, latency: Latency | null }

/** Whether this process does its job now (GET /ready), with one sentence per failed check. */
export type ReadinessCheck = () => { ready: boolean, reasons: string[] }

/** Device ingest over HTTP: who a token belongs to (refusals are counted there), and the gateway to the bus. */
export interface DeviceIngest {
  authenticate: (token: string) => Promise<IngestDevice | null>
  gateway: Pick<DeviceGateway, 'telemetry' | 'lineProtocol'>
  /** Requests per device past which the answer is 429 (absent: defaultDeviceRateLimit; null: no limit). */
  rateLimit?: DeviceRateLimit | null
}

export interface ApiDeps {
  db: ApiDb
  registry: Registry
  /** Pipeline state for /health. */
  status: PipelineStatus
  /** GET /ready (absent: ready when the database answers SELECT 1). */
  readiness?: ReadinessCheck
  /** The database answers, as last seen (absent: assumed); while it does not, data endpoints answer 503 at once. */
  databaseReachable?: () => boolean
  logger?: Logger
  /** The hub of the live stream (made here when absent). */
  live?: LiveHub
  /**
   * Read what the workers store back from the database for the live stream (no worker in this
   * process feeds the hub). Default: when no hub is given.
   */
  tailDatabase?: boolean
  /** The windowing of the stored windows (series resolution; how long windows change); defaults of the pipeline when absent. */
  windowing?: Pick<WindowingOptions, 'sizeMs' | 'maxOutOfOrdernessMs' | 'allowedLatenessMs'>
  /** Folder of the built dashboard served at / (null: no dashboard). */
  webRoot?: string | null
  /** Wall clock (readings/s; device times and status). */
  now?: () => number
  /** Device ingest (POST /api/v1/<token>/telemetry, POST /api/v2/write): in a process that also ingests. */
  ingest?: DeviceIngest
  /** Bearer token of the admin API (/api/admin/...); absent or null: the admin API answers 403. It reads as well. */
  adminToken?: string | null
  /** Bearer token for reading (/api/..., the live stream, /metrics), when reading needs one. */
  viewerToken?: string | null
  /**
   * Reading needs the viewer or admin token (or a session cookie from POST /api/session); absent:
   * false. src/config readRequiresToken decides it from the address and the tokens.
   */
  readRequiresToken?: boolean
  /** The ingest's device registry in this process, if any: the admin API drops a rotated or revoked device from its cache at once. */
  deviceRegistry?: DeviceRegistry
  /** How often alarm changes are looked for while live streams are open (the `alarms` event; default 1 s). */
  alarmPollMs?: number
}
