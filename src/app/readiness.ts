// Readiness: whether this process does its job now, and if not, why. Liveness (/health) only says
// the process answers; readiness (/ready) fails while the database is out of reach, after repeated
// failed batches, or when readings wait and nothing has been stored for too long.
import { type ReadinessConfig, defaultConfig } from '../config/index.ts'
import { type AvailabilityState } from '../storage/index.ts'
import { type WorkerHealth } from '../pipeline/index.ts'

export interface ReadinessInput {
  now: number
  /** Wall time the process started (the stall clock's origin before the first stored batch). */
  startedAt: number
  /** Null: this process has no database (an ingest role on its own). */
  database: Readonly<AvailabilityState> | null
  /** Null: no worker in this process. */
  worker: Readonly<WorkerHealth> | null
  /** Readings waiting to be consumed (null when unknown). */
  backlog: number | null
}

export interface Readiness {
  ready: boolean
  /** One sentence per failed check (empty when ready). */
  reasons: string[]
}

const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`

export function readiness (input: ReadinessInput, options: ReadinessConfig = defaultConfig.readiness): Readiness {
  const reasons: string[] = []
  const { database: db, worker, now } = input
  if (db !== null && !db.reachable) {
    reasons.push(`the database has been unreachable for ${seconds(now - (db.downSince ?? now))}: ${db.reason ?? 'no answer'}`)
  }
  if (worker !== null) {
    if (worker.consecutiveFailures >= options.maxFailures) {
      reasons.push(`${worker.consecutiveFailures} attempts to store a batch failed in a row; the last: ${worker.lastError ?? 'unknown'}`)
    }
    const quietMs = now - (worker.lastStoredAt ?? input.startedAt)
    if (input.backlog !== null && input.backlog > 0 && quietMs > options.stallMs) {
      reasons.push(`${input.backlog} readings are waiting and nothing was stored for ${seconds(quietMs)}`)
    }
  }
  return { ready: reasons.length === 0, reasons }
}
