// Notifications of alarm transitions (issue 17): Alertmanager-compatible and Slack webhooks, grouping
// (group_wait, group_interval), repeats until acknowledged (repeat_interval), retries with back-off,
// silences. The planner, payloads and matchers are pure; the dispatcher and the outbox statements are
// the thin adapters. See docs/ARCHITECTURE.md, "Notifications".
export { type Labels, fingerprint, notificationAnnotations, notificationLabels } from './labels.ts'
export {
  type AlertmanagerAlert, type AlertmanagerWebhook, FIRING_ENDS_AT, type Notification, type NotificationItem, type PayloadContext, type SlackMessage,
  type WebhookFormat, alertmanagerPayload, groupKeyOf, requestKeyOf, slackPayload
} from './payload.ts'
export {
  type NotifyPolicy, type Plan, type PlanInput, type RepeatCandidate, type RetryPolicy, defaultNotifyPolicy, defaultRetryPolicy, dueRepeats, isRepeatKey,
  planNotifications, retryDelayMs, retryableStatus
} from './planner.ts'
export { matcherMatches, parseMatcher, silencedBy, validateMatchers } from './silences.ts'
export {
  ALARM_NOTIFICATIONS, type DispatcherOptions, NotificationDispatcher, type NotificationResult, type WebhookTarget, notificationCounter
} from './dispatcher.ts'
