// What a receiver gets: Alertmanager's webhook JSON (version 4), which Grafana OnCall, PagerDuty's
// and Opsgenie's Alertmanager integrations, and any Alertmanager webhook receiver take, or a Slack
// incoming-webhook message. Pure: same notification, same bytes.
import { createHash } from 'node:crypto'
import type { Alarm } from '../alarms/index.ts'
import { formatTimestamp } from '../domain/index.ts'
import { type Labels, fingerprint, notificationAnnotations, notificationLabels } from './labels.ts'

/** One transition to notify: an outbox row with its alarm as it is now. */
export interface NotificationItem {
  outboxId: number
  idempotencyKey: string
  status: 'firing' | 'resolved'
  /** When the transition happened (event time for reading conditions, wall time for offline and operators). */
  atMs: number
  /** Wall time the row was written (the database's clock). */
  createdAt: number
  /** Delivery attempts so far. */
  attempts: number
  alarm: Alarm
}

/** What goes out in one request to each receiver: due transitions of one group. */
export interface Notification {
  /** Alertmanager's group key: `{}:{alertname="…", location="…"}`. */
  groupKey: string
  groupLabels: Labels
  items: NotificationItem[]
}

export type WebhookFormat = 'alertmanager' | 'slack'

export interface PayloadContext {
  /** The receiver's name in the payload. */
  receiver: string
  /** Where the dashboard is (Alertmanager's externalURL); generatorURL links to the alarm there. */
  externalUrl: string
}

/** Alertmanager's endsAt of an alert that is still firing. */
export const FIRING_ENDS_AT = '0001-01-01T00:00:00Z'

export interface AlertmanagerAlert {
  status: 'firing' | 'resolved'
  labels: Labels
  annotations: Labels
  startsAt: string
  endsAt: string
  fingerprint: string
  generatorURL: string
}

export interface AlertmanagerWebhook {
  version: '4'
  groupKey: string
  truncatedAlerts: number
  status: 'firing' | 'resolved'
  receiver: string
  groupLabels: Labels
  commonLabels: Labels
  commonAnnotations: Labels
  externalURL: string
  alerts: AlertmanagerAlert[]
  /** Ours (receivers ignore unknown fields): the request's idempotency key, also sent as the Idempotency-Key header. */
  idempotencyKey: string
  /** Ours: the key of each alert's transition, in the order of `alerts` (also each alert's `idempotency_key` annotation). */
  idempotencyKeys: string[]
}

/** Alertmanager's group key: the route (`{}`, ours has one) and the group labels. */
export function groupKeyOf (groupLabels: Labels): string {
  const inner = Object.keys(groupLabels).sort().map(k => `${k}=${JSON.stringify(groupLabels[k])}`).join(', ')
  return `{}:{${inner}}`
}

/**
 * The idempotency key of a request: the transition's own key when it carries one
 * (`${alarmId}|firing`, `${alarmId}|resolved`, `…|repeat-n`); for several, `batch:` and a digest of
 * their sorted keys, the same whenever the same transitions go out together.
 */
export function requestKeyOf (n: Notification): string {
  if (n.items.length === 1) return n.items[0]!.idempotencyKey
  const keys = n.items.map(i => i.idempotencyKey).sort()
  return `batch:${createHash('sha256').update(keys.join('\n')).digest('hex').slice(0, 32)}`
}

const alarmUrl = (ctx: PayloadContext, a: Alarm): string => `${ctx.externalUrl.replace(/\/+$/, '')}/?tab=alarms&alarm=${encodeURIComponent(a.id)}`

function common (maps: readonly Labels[]): Labels {
  const out: Labels = {}
  const [first, ...rest] = maps
  if (first === undefined) return out
  for (const [k, v] of Object.entries(first)) if (rest.every(m => m[k] === v)) out[k] = v
  return out
}

export function alertmanagerPayload (n: Notification, ctx: PayloadContext): AlertmanagerWebhook {
  const alerts = n.items.map((i): AlertmanagerAlert => {
    const labels = notificationLabels(i.alarm)
    return {
      status: i.status,
      labels,
      annotations: notificationAnnotations(i.alarm, i.idempotencyKey),
      startsAt: formatTimestamp(i.alarm.startMs),
      endsAt: i.status === 'firing' ? FIRING_ENDS_AT : formatTimestamp(i.alarm.clearMs ?? i.atMs),
      fingerprint: fingerprint(labels),
      generatorURL: alarmUrl(ctx, i.alarm)
    }
  })
  return {
    version: '4',
    groupKey: n.groupKey,
    truncatedAlerts: 0,
    status: alerts.some(a => a.status === 'firing') ? 'firing' : 'resolved',
    receiver: ctx.receiver,
    groupLabels: n.groupLabels,
    commonLabels: common(alerts.map(a => a.labels)),
    // The per-alert keys and ids differ: never common unless there is one alert.
    commonAnnotations: common(alerts.map(a => a.annotations)),
    externalURL: ctx.externalUrl,
    alerts,
    idempotencyKey: requestKeyOf(n),
    idempotencyKeys: n.items.map(i => i.idempotencyKey)
  }
}

/** Slack's incoming webhook: `text` (the notification's fallback) and Block Kit blocks. */
export interface SlackMessage {
  text: string
  blocks: Record<string, unknown>[]
}

const SEVERITY_ICON: Record<string, string> = { critical: ':red_circle:', major: ':large_orange_circle:', minor: ':large_yellow_circle:', warning: ':large_blue_circle:', indeterminate: ':white_circle:' }

/** Slack mrkdwn: &, < and > escaped as Slack asks. */
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function slackPayload (n: Notification, ctx: PayloadContext): SlackMessage {
  const am = alertmanagerPayload(n, ctx)
  const firing = am.alerts.filter(a => a.status === 'firing').length
  const resolved = am.alerts.length - firing
  const title = `[${am.status.toUpperCase()}${firing > 0 && resolved > 0 ? `:${firing} firing, ${resolved} resolved` : `:${am.alerts.length}`}] ` +
    Object.values(n.groupLabels).join(' ')
  const blocks: Record<string, unknown>[] = [{ type: 'header', text: { type: 'plain_text', text: title.slice(0, 150) } }]
  for (const a of am.alerts.slice(0, 20)) {
    const icon = a.status === 'resolved' ? ':white_check_mark:' : SEVERITY_ICON[a.labels.severity ?? ''] ?? ':warning:'
    const lines = [
      `${icon} *${esc(a.annotations.summary ?? a.labels.alertname ?? '')}* (${esc(a.labels.severity ?? '')}, ${a.status})`,
      ...(a.annotations.description === undefined ? [] : [esc(a.annotations.description)]),
      `since ${a.startsAt}${a.status === 'resolved' ? `, resolved ${a.endsAt}` : ''} · <${a.generatorURL}|open in iot-monitor>`
    ]
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n') } })
  }
  if (am.alerts.length > 20) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `…and ${am.alerts.length - 20} more` } })
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `idempotency key: ${esc(am.idempotencyKey)}` }] })
  return { text: title, blocks }
}
