// Stored readings per second, from the detection counts sampled once a second (whichever process
// stores them): the rate of GET /api/pipeline, and the pipeline tick each sample sends to the live
// dashboards. Sampling runs from start() to stop() (the pipeline routes tie it to the app's life).
import { type FastifyBaseLogger } from 'fastify'
import { type Queryable, storedReadingsTotal } from '../storage/index.ts'
import { type LivePipelineJson } from './contract.ts'
import { type PipelineStatus } from './deps.ts'
import { isoOrNull } from './json.ts'
import { type LiveHub } from './live.ts'

/** Readings stored, and per second (`rate`) since the oldest sample of the last 10 s. */
export interface PipelineSample {
  readingsTotal: number
  rate: number
}

export interface PipelineSamplerDeps {
  db: Queryable
  status: PipelineStatus
  /** Gets a pipeline tick per sample while it has clients. */
  hub: LiveHub
  /** Wall clock. */
  now: () => number
  log: FastifyBaseLogger
  /** The database answers, as last seen: while it does not, no sample is taken (absent: assumed). */
  databaseReachable?: (() => boolean) | undefined
}

const SAMPLE_INTERVAL_MS = 1000
/** Wall time the rate spans (the two newest samples are always kept). */
const RATE_SPAN_MS = 10_000
/** A shorter span since the oldest sample gives a rate of 0. */
const MIN_RATE_SPAN_MS = 500

export class PipelineSampler {
  readonly #deps: PipelineSamplerDeps
  /** [wall time, readings total], oldest first. */
  readonly #samples: [number, number][] = []
  #timer: NodeJS.Timeout | null = null
  /** The tick under way: one at a time, so a slow database does not pile up queries. */
  #ticking: Promise<void> | null = null

  constructor (deps: PipelineSamplerDeps) {
    this.#deps = deps
  }

  /** Takes the first sample (the base of the rate) and then one a second until stop(). */
  async start (): Promise<void> {
    this.#timer ??= setInterval(() => { this.tick() }, SAMPLE_INTERVAL_MS)
    this.#timer.unref()
    this.tick()
    await this.#ticking
  }

  /** Stops sampling; resolves when the sample under way is done. */
  async stop (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await this.#ticking
  }

  /** Samples now (unless a sample is under way) and sends the result to the live clients. */
  tick (): void {
    if (this.#deps.databaseReachable?.() === false) return
    this.#ticking ??= this.#sampleAndBroadcast()
      .catch((err: unknown) => { this.#deps.log.warn({ err }, 'Pipeline sample failed.') })
      .finally(() => { this.#ticking = null })
  }

  async sample (): Promise<PipelineSample> {
    const readingsTotal = await storedReadingsTotal(this.#deps.db)
    const t = this.#deps.now()
    const samples = this.#samples
    samples.push([t, readingsTotal])
    while (samples.length > 2 && samples[1]![0] <= t - RATE_SPAN_MS) samples.shift()
    const [t0, n0] = samples[0]!
    return { readingsTotal, rate: t - t0 < MIN_RATE_SPAN_MS ? 0 : (readingsTotal - n0) * 1000 / (t - t0) }
  }

  async #sampleAndBroadcast (): Promise<void> {
    const s = await this.sample()
    const { hub, status } = this.#deps
    if (hub.clients === 0) return
    const st = status()
    const data: LivePipelineJson = { readings_per_s: s.rate, readings_total: s.readingsTotal, watermark: isoOrNull(st.watermark), consumer_lag: st.lag }
    hub.broadcast('pipeline', data)
  }
}
