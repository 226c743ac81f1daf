// The notification policy, pure: which due outbox rows go out now, grouped; which wait for their
// group (group_wait, group_interval); which are silenced or obsolete; when a row that failed is
// tried again (exponential back-off); and which alarms are due a repeat (repeat_interval).
// Alertmanager's defaults and meanings, applied to an outbox of transitions (docs/ARCHITECTURE.md,
// "Notifications").
import { type StoredSilence } from '../storage/index.ts'
import { type Labels, notificationLabels } from './labels.ts'
import { type Notification, type NotificationItem, groupKeyOf } from './payload.ts'
import { silencedBy } from './silences.ts'

export interface NotifyPolicy {
  /** Labels that make a group (Alertmanager's group_by). */
  groupBy: string[]
  /** A new group waits this long from its first transition, so that alarms raised together go out together. */
  groupWaitMs: number
  /** After a group went out, its next transitions wait until this long after it. */
  groupIntervalMs: number
  /** An active alarm nobody acknowledged is notified again this long after its last notification. */
  repeatIntervalMs: number
  /** Alerts in one request at most (the rest go in the next request of the same round). */
  maxAlertsPerNotification: number
  /** A transition not tried within this long of being written is dropped as expired (no receiver was configured meanwhile). */
  expireAfterMs: number
}

export const defaultNotifyPolicy: Readonly<NotifyPolicy> = {
  groupBy: ['alertname', 'location'],
  groupWaitMs: 30_000,
  groupIntervalMs: 300_000,
  repeatIntervalMs: 4 * 3_600_000,
  maxAlertsPerNotification: 100,
  expireAfterMs: 24 * 3_600_000
}

export interface RetryPolicy {
  /** The wait after the first failed attempt; it doubles with each failure. */
  baseMs: number
  /** No wait is longer than this. */
  maxMs: number
}

export const defaultRetryPolicy: Readonly<RetryPolicy> = { baseMs: 10_000, maxMs: 600_000 }

/**
 * The wait before the next attempt of a row that has failed `attempts` times (>= 1): base × 2^(n-1)
 * capped at max, jittered down by up to half (`random` in [0, 1]: 1 gives the whole step) so that
 * rows that failed together do not all come back in the same instant.
 */
export function retryDelayMs (attempts: number, policy: RetryPolicy, random: () => number): number {
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 30))
  return Math.round(step / 2 + random() * step / 2)
}

/** Whether an HTTP status is worth another attempt: 5xx, 408 (timeout), 429 (rate limited). Others (4xx) are refused for good. */
export const retryableStatus = (status: number): boolean => status >= 500 || status === 408 || status === 429

export const isRepeatKey = (key: string): boolean => /\|repeat-\d+$/.test(key)

export interface PlanInput {
  /** The clock of the plan (the database's: outbox times are its). */
  nowMs: number
  /** Rows due (not done, next attempt reached), with their alarms. */
  due: readonly NotificationItem[]
  silences: readonly StoredSilence[]
  /** When each group last went out (this process's memory; absent: never, or forgotten). */
  lastFlush: ReadonlyMap<string, number>
  policy: NotifyPolicy
}

export interface Plan {
  /** Requests to make now, in order. */
  send: Notification[]
  /** Rows held back by a silence (marked done with reason `silenced: <ids>`). */
  silenced: { item: NotificationItem, silenceIds: number[] }[]
  /** Rows not worth sending any more (marked done with this reason). */
  obsolete: { item: NotificationItem, reason: string }[]
  /** Rows waiting for their group's time. */
  held: { item: NotificationItem, untilMs: number }[]
  /** Groups whose new transitions go out in this plan (their flush time becomes nowMs). */
  flushed: string[]
}

const groupLabelsOf = (labels: Labels, groupBy: readonly string[]): Labels => {
  const g: Labels = {}
  for (const k of groupBy) if (labels[k] !== undefined) g[k] = labels[k]
  return g
}

/**
 * Plans one round. A repeat of an alarm acknowledged or cleared since is obsolete; a transition
 * first tried more than expireAfterMs after it was written has expired; a silenced one is held back
 * for good. The rest is grouped by the policy's labels: a row tried before (a retry) goes as soon as
 * it is due; new rows of a group go at max(first new row written + group_wait, the group's last
 * flush + group_interval), all together. A request holds at most one row of an alarm (an alarm that
 * fired and cleared before either went out sends firing, then resolved) and at most
 * maxAlertsPerNotification rows.
 */
export function planNotifications (input: PlanInput): Plan {
  const { nowMs, policy } = input
  const plan: Plan = { send: [], silenced: [], obsolete: [], held: [], flushed: [] }
  const groups = new Map<string, { labels: Labels, retries: NotificationItem[], fresh: NotificationItem[] }>()
  for (const item of [...input.due].sort((a, b) => a.outboxId - b.outboxId)) {
    const a = item.alarm
    if (isRepeatKey(item.idempotencyKey) && (!a.active || a.acknowledged)) {
      plan.obsolete.push({ item, reason: `obsolete: the alarm was ${a.acknowledged ? 'acknowledged' : 'cleared'} before the repeat went out` })
      continue
    }
    if (item.attempts === 0 && nowMs - item.createdAt > policy.expireAfterMs) {
      plan.obsolete.push({ item, reason: `expired: not tried within ${Math.round(policy.expireAfterMs / 60_000)} min of the transition (no receiver was configured)` })
      continue
    }
    const labels = notificationLabels(a)
    const silenceIds = silencedBy(labels, input.silences, nowMs)
    if (silenceIds.length > 0) {
      plan.silenced.push({ item, silenceIds })
      continue
    }
    const groupLabels = groupLabelsOf(labels, policy.groupBy)
    const key = groupKeyOf(groupLabels)
    let g = groups.get(key)
    if (g === undefined) groups.set(key, g = { labels: groupLabels, retries: [], fresh: [] })
    if (item.attempts > 0) g.retries.push(item)
    else g.fresh.push(item)
  }
  for (const [key, g] of groups) {
    let going = g.retries
    if (g.fresh.length > 0) {
      const first = Math.min(...g.fresh.map(i => i.createdAt))
      const until = Math.max(first + policy.groupWaitMs, (input.lastFlush.get(key) ?? -Infinity) + policy.groupIntervalMs)
      if (nowMs >= until) {
        going = [...going, ...g.fresh].sort((a, b) => a.outboxId - b.outboxId)
        plan.flushed.push(key)
      } else {
        for (const item of g.fresh) plan.held.push({ item, untilMs: until })
      }
    }
    // Split: one row per alarm and at most maxAlertsPerNotification rows per request.
    let rest = going
    while (rest.length > 0) {
      const batch: NotificationItem[] = []
      const later: NotificationItem[] = []
      const alarms = new Set<string>()
      for (const item of rest) {
        if (batch.length < policy.maxAlertsPerNotification && !alarms.has(item.alarm.id)) {
          alarms.add(item.alarm.id)
          batch.push(item)
        } else {
          later.push(item)
        }
      }
      plan.send.push({ groupKey: key, groupLabels: g.labels, items: batch })
      rest = later
    }
  }
  return plan
}

/** An active, unacknowledged alarm with what the outbox says of its notifications. */
export interface RepeatCandidate {
  alarm: NotificationItem['alarm']
  /** Firing rows it has (the first transition and its repeats so far). */
  firingRows: number
  /** When a firing notification of it was last done with, other than silenced (null: never). */
  lastNotifiedMs: number | null
  /** Whether a row of it is still waiting. */
  pending: boolean
}

/**
 * The repeats due at `nowMs`: for each active, unacknowledged alarm that has fired, nothing waiting,
 * and either no notification yet that was not silenced (a silence has ended) or its last one
 * repeatIntervalMs ago, and no silence now: the key `${alarmId}|firing|repeat-${n}`, n the number
 * of firing rows it has (1 for the first repeat).
 */
export function dueRepeats (candidates: readonly RepeatCandidate[], silences: readonly StoredSilence[], nowMs: number, policy: NotifyPolicy): { alarmId: string, idempotencyKey: string }[] {
  const out: { alarmId: string, idempotencyKey: string }[] = []
  for (const c of candidates) {
    const a = c.alarm
    if (!a.active || a.acknowledged || c.pending || c.firingRows === 0) continue
    if (c.lastNotifiedMs !== null && nowMs - c.lastNotifiedMs < policy.repeatIntervalMs) continue
    if (silencedBy(notificationLabels(a), silences, nowMs).length > 0) continue
    out.push({ alarmId: a.id, idempotencyKey: `${a.id}|firing|repeat-${c.firingRows}` })
  }
  return out
}
