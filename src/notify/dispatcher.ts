// The notifier: polls alarm_outbox on the wall clock in the process that runs the worker, plans a
// round (planner.ts), and posts the notifications to every configured webhook, at least once. Several
// processes may run it on one database: rows are claimed with FOR UPDATE SKIP LOCKED and a lease
// (outbox.ts). Logs say when a receiver starts and stops failing, never one line per notification.
import { type Logger } from 'pino'
import { Counter, type Registry } from 'prom-client'
import { IotError } from '../domain/index.ts'
import { type Queryable, silencesInForce } from '../storage/index.ts'
import { claim, insertRepeats, loadDue, loadRepeatCandidates, markDone, markFailed } from './outbox.ts'
import { type Notification, type PayloadContext, type WebhookFormat, alertmanagerPayload, requestKeyOf, slackPayload } from './payload.ts'
import { type NotifyPolicy, type RetryPolicy, defaultNotifyPolicy, defaultRetryPolicy, dueRepeats, planNotifications, retryDelayMs, retryableStatus } from './planner.ts'

export interface WebhookTarget {
  url: string
  format: WebhookFormat
}

/** Notifications by outcome: delivered, failed (an attempt that failed; a row may fail several times), silenced. Counted per transition (alert), not per request. */
export const ALARM_NOTIFICATIONS = 'iot_alarm_notifications_total'
export type NotificationResult = 'delivered' | 'failed' | 'silenced'

/** The counter of notifications in `registry`, made when it has none. */
export function notificationCounter (registry: Registry): Counter<'result'> {
  const found = registry.getSingleMetric(ALARM_NOTIFICATIONS)
  if (found instanceof Counter) return found as Counter<'result'>
  return new Counter({
    name: ALARM_NOTIFICATIONS,
    help: 'Alarm notifications (one per transition and attempt) by result: delivered to every webhook, failed (an attempt that failed; retried with back-off), silenced (held back by a silence).',
    labelNames: ['result'],
    registers: [registry]
  })
}

export interface DispatcherOptions {
  db: Queryable
  targets: readonly WebhookTarget[]
  policy?: Partial<NotifyPolicy>
  retry?: Partial<RetryPolicy>
  payload: PayloadContext
  log: Logger
  registry?: Registry
  /** Between rounds (default 1 s). */
  pollMs?: number
  /** Between repeat checks (default 10 s; never more often than a round). */
  repeatCheckMs?: number
  /** How long a claimed row stays invisible to others while it is being sent (default 60 s; above the request timeout). */
  leaseMs?: number
  /** Per request (default 10 s). */
  timeoutMs?: number
  /** Rows read per round at most (default 1000). */
  batchSize?: number
  /** Whether the database answers now (rounds are skipped while it does not). */
  reachable?: () => boolean
  /** In [0, 1]: the back-off's jitter (tests pass a constant). */
  random?: () => number
  /** The HTTP client (default: the global fetch). */
  fetch?: typeof fetch
}

/** What one request to one webhook came to. */
type Outcome = { ok: true } | { ok: false, retry: boolean, error: string }

/** A webhook URL for the logs: scheme, host and path, without query or credentials (Slack's path is a secret too: cut). */
function redact (url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.hostname.endsWith('slack.com') ? '/…' : u.pathname}`
  } catch {
    return '(invalid url)'
  }
}

export class NotificationDispatcher {
  readonly policy: NotifyPolicy
  readonly retry: RetryPolicy
  readonly #o: DispatcherOptions
  readonly #counter: Counter<'result'> | null
  readonly #lastFlush = new Map<string, number>()
  /** Failing webhooks (by url), with the failures since the first: logged once when they start, once when they end. */
  readonly #failing = new Map<string, number>()
  #lastRepeatCheck = -Infinity
  #timer: NodeJS.Timeout | null = null
  #round: Promise<void> | null = null
  #stopped = false

  constructor (o: DispatcherOptions) {
    if (o.targets.length === 0) throw new IotError('IOT_ERR_CONFIG', 'the notifier needs at least one webhook (--webhook-url)')
    this.#o = o
    this.policy = { ...defaultNotifyPolicy, ...o.policy }
    this.retry = { ...defaultRetryPolicy, ...o.retry }
    this.#counter = o.registry === undefined ? null : notificationCounter(o.registry)
  }

  start (): void {
    if (this.#timer !== null || this.#stopped) return
    const loop = (): void => {
      this.#timer = setTimeout(() => {
        this.#round = this.tick().catch((err: unknown) => {
          this.#o.log.warn({ err }, 'A notification round failed; the next one tries again.')
        }).finally(() => {
          this.#round = null
          if (!this.#stopped) loop()
        })
      }, this.#o.pollMs ?? 1000)
      this.#timer.unref()
    }
    loop()
  }

  /** Stops polling and waits for the round in flight (its rows are marked; a row in a request cut short comes back after its lease). */
  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    await this.#round
  }

  /** One round: repeats due, then the due rows planned and sent. Exported for tests. */
  async tick (): Promise<void> {
    const o = this.#o
    if (o.reachable !== undefined && !o.reachable()) return
    const silences = await silencesInForce(o.db)
    const now = Date.now()
    if (now - this.#lastRepeatCheck >= (o.repeatCheckMs ?? 10_000)) {
      this.#lastRepeatCheck = now
      const { nowMs, candidates } = await loadRepeatCandidates(o.db)
      const repeats = dueRepeats(candidates, silences, nowMs, this.policy)
      const written = await insertRepeats(o.db, repeats)
      if (written > 0) o.log.debug({ repeats: written }, 'Repeats of unacknowledged alarms queued.')
    }
    const { nowMs, items } = await loadDue(o.db, o.batchSize ?? 1000)
    if (items.length === 0) return
    // Forget groups quiet for longer than an interval: their next transition waits group_wait anyway.
    for (const [k, at] of this.#lastFlush) if (nowMs - at > this.policy.groupIntervalMs) this.#lastFlush.delete(k)
    const plan = planNotifications({ nowMs, due: items, silences, lastFlush: this.#lastFlush, policy: this.policy })
    for (const k of plan.flushed) this.#lastFlush.set(k, nowMs)
    // Silenced rows are done: by silence, so the notes say which.
    const bySilences = new Map<string, number[]>()
    for (const s of plan.silenced) {
      const reason = `silenced: ${s.silenceIds.join(',')}`
      bySilences.set(reason, [...bySilences.get(reason) ?? [], s.item.outboxId])
    }
    for (const [reason, ids] of bySilences) this.#counter?.inc({ result: 'silenced' }, (await markDone(o.db, ids, reason, false)).length)
    for (const x of plan.obsolete) await markDone(o.db, [x.item.outboxId], x.reason, false)
    for (const n of plan.send) await this.#deliver(n)
  }

  async #deliver (planned: Notification): Promise<void> {
    const o = this.#o
    const claimed = await claim(o.db, planned.items.map(i => i.outboxId), o.leaseMs ?? 60_000)
    const n: Notification = { ...planned, items: planned.items.filter(i => claimed.has(i.outboxId)) }
    if (n.items.length === 0) return
    const outcomes = await Promise.all(o.targets.map(async t => await this.#post(t, n)))
    const failed = outcomes.filter((x): x is Extract<Outcome, { ok: false }> => !x.ok)
    const ids = n.items.map(i => i.outboxId)
    if (failed.length === 0) {
      await markDone(o.db, ids, null, true)
      this.#counter?.inc({ result: 'delivered' }, ids.length)
      return
    }
    this.#counter?.inc({ result: 'failed' }, ids.length)
    const error = failed.map(f => f.error).join('; ')
    if (failed.every(f => !f.retry)) {
      // Refused for good (a 4xx other than 408 and 429): sending it again would be refused again.
      await markDone(o.db, ids, `rejected: ${error}`.slice(0, 1000), true)
      return
    }
    const random = o.random ?? Math.random
    // `attempts` in the row counts the claim just made.
    await markFailed(o.db, new Map(n.items.map(i => [i.outboxId, retryDelayMs(i.attempts + 1, this.retry, random)])), error)
  }

  async #post (t: WebhookTarget, n: Notification): Promise<Outcome> {
    const o = this.#o
    const body = JSON.stringify(t.format === 'slack' ? slackPayload(n, o.payload) : alertmanagerPayload(n, o.payload))
    let outcome: Outcome
    try {
      const res = await (o.fetch ?? fetch)(t.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': requestKeyOf(n), 'user-agent': 'iot-monitor' },
        body,
        signal: AbortSignal.timeout(o.timeoutMs ?? 10_000)
      })
      // The body is not needed; reading it frees the connection.
      const text = await res.text().catch(() => '')
      outcome = res.ok ? { ok: true } : { ok: false, retry: retryableStatus(res.status), error: `HTTP ${res.status}${text === '' ? '' : `: ${text.slice(0, 200)}`}` }
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } }
      outcome = { ok: false, retry: true, error: e.name === 'TimeoutError' ? `no answer within ${o.timeoutMs ?? 10_000} ms` : `${e.message}${e.cause?.code === undefined ? '' : ` (${e.cause.code})`}` }
    }
    const failures = this.#failing.get(t.url)
    if (!outcome.ok) {
      if (failures === undefined) o.log.warn({ webhook: redact(t.url), error: outcome.error, retry: outcome.retry }, outcome.retry ? 'Webhook failing; notifications are retried with back-off.' : 'Webhook refused a notification; it is not sent again.')
      this.#failing.set(t.url, (failures ?? 0) + 1)
    } else if (failures !== undefined) {
      this.#failing.delete(t.url)
      o.log.info({ webhook: redact(t.url), failures }, 'Webhook answers again.')
    }
    return outcome
  }
}
