// Alarms for operators (issue 17): GET /api/alarms (active first, then by severity and start, with
// the counts), GET /api/alarms/:id (with its history and notifications), POST /api/alarms/:id/ack and
// POST /api/alarms/:id/clear ({comment, by}), GET/POST/DELETE /api/silences. Reading follows the read
// API's rule (src/api/access.ts); the actions (POST, DELETE) need the admin token when one is
// configured (401 without it or with a wrong one, 403 for the viewer token; counted in
// iot_api_refused_total{scope="admin"}), and are open to whoever may read when none is (the
// zero-config `npm start` on loopback). Changes reach dashboards as the live stream's `alarms` event
// (AlarmWatch: a cheap poll of the database while streams are open, so changes made by the worker or
// by another api process show too), and the gauge iot_alarms{state,severity} is read at each scrape.
import { type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from 'fastify'
import { type Logger } from 'pino'
import { type Counter, Gauge, type Registry } from 'prom-client'
import { Type, type Static } from '@sinclair/typebox'
import type { Alarm } from '../../alarms/index.ts'
import { parseDuration } from '../../config/index.ts'
import { type ErrorCode, IotError, parseTimestamp } from '../../domain/index.ts'
import { parseMatcher, validateMatchers } from '../../notify/index.ts'
import {
  type AlarmCounts, type Queryable, type SilenceMatcher, type StoredSilence, acknowledgeAlarm, alarmCounts, alarmHistory, alarmNotifications, alarmStatusOf,
  alarmsChangedSince, alarmsVersion, clearAlarmByOperator, createSilence, deleteSilence, findAlarm, findAlarms, listAlarms, listSilences
} from '../../storage/index.ts'
import {
  type AlarmDetailJson, type AlarmJson, type AlarmListJson, type LiveAlarmsJson, type SilenceJson
} from '../contract.ts'
import { iso, isoOrNull } from '../json.ts'
import { type LiveHub } from '../live.ts'
import { querySchema } from '../query.ts'
import { type ApiTokens, bearerToken } from '../tokens.ts'

export interface AlarmRoutesOptions {
  db: Queryable
  tokens: ApiTokens
  refused: Counter<'scope' | 'reason'>
  /** Wall clock: operator actions, silences, ages. */
  now: () => number
  hub: LiveHub
  registry: Registry
  log: Logger | undefined
  /** How often the database is asked whether alarms changed while live streams are open (default 1 s). */
  pollMs?: number
}

/** The gauge of alarms by state (ThingsBoard's status) and severity, read from the database at each scrape. */
export const ALARMS_GAUGE = 'iot_alarms'

export const alarmJson = (a: Alarm): AlarmJson => ({
  id: a.id,
  originator: { kind: a.originator.kind, id: a.originator.id },
  type: a.type,
  severity: a.severity,
  status: alarmStatusOf(a),
  sensor_type: a.sensorType,
  location: a.location,
  start: iso(a.startMs),
  last: iso(a.lastMs),
  cleared_at: isoOrNull(a.clearMs),
  acknowledged_at: isoOrNull(a.ackMs),
  acknowledged_by: a.ackBy,
  ack_comment: a.ackComment,
  details: a.details,
  labels: a.labels
})

const silenceJson = (s: StoredSilence, now: number): SilenceJson => ({
  id: s.id,
  matchers: s.matchers,
  starts_at: iso(s.startsAt),
  ends_at: iso(s.endsAt),
  created_by: s.createdBy,
  comment: s.comment,
  created_at: iso(s.createdAt),
  state: s.endsAt <= now ? 'expired' : s.startsAt > now ? 'pending' : 'active'
})

const Severity = Type.Union(['critical', 'major', 'minor', 'warning', 'indeterminate'].map(s => Type.Literal(s)))
const ListQuery = querySchema({
  state: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('cleared'), Type.Literal('all')])),
  severity: Type.Optional(Severity),
  location: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  sensor_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 }))
})
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 1000 }) })
const SilenceIdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) })
const NoQuery = querySchema({})
const SilenceQuery = querySchema({ expired: Type.Optional(Type.Boolean()) })
const MatcherJson = Type.Object({
  name: Type.String(), value: Type.String(), isRegex: Type.Optional(Type.Boolean()), isEqual: Type.Optional(Type.Boolean())
}, { additionalProperties: false })
/**
 * A silence: matchers as Alertmanager's objects, as text (`location="lab"`, `alertname=~"offline|stuck"`),
 * or an object of equalities ({"location": "lab"}); from `starts_at` (default now) to `ends_at`, or for
 * `duration` (e.g. "2h").
 */
const SilenceBody = Type.Object({
  matchers: Type.Union([Type.Array(Type.Union([MatcherJson, Type.String()]), { maxItems: 20 }), Type.Record(Type.String(), Type.String())]),
  starts_at: Type.Optional(Type.String({ maxLength: 40 })),
  ends_at: Type.Optional(Type.String({ maxLength: 40 })),
  duration: Type.Optional(Type.String({ maxLength: 20 })),
  comment: Type.Optional(Type.String({ maxLength: 2000 })),
  created_by: Type.Optional(Type.String({ minLength: 1, maxLength: 100 }))
}, { additionalProperties: false })

const answers: Partial<Record<ErrorCode, [number, string]>> = {
  IOT_ERR_ALARM_NOT_FOUND: [404, 'not_found'],
  IOT_ERR_SILENCE_NOT_FOUND: [404, 'not_found'],
  IOT_ERR_ALARM_STATE: [409, 'conflict']
}

const realm = 'Bearer realm="iot-monitor"'

function time (text: string, name: string): number {
  const t = parseTimestamp(text)
  if (Number.isNaN(t)) throw new IotError('IOT_ERR_VALIDATION', `${name}: not an ISO 8601 date-time: "${text}"`)
  return t
}

function durationOf (text: string): number {
  try {
    return parseDuration(text, 'duration')
  } catch (err) {
    throw new IotError('IOT_ERR_VALIDATION', (err as Error).message)
  }
}

function matchersOf (m: Static<typeof SilenceBody>['matchers']): SilenceMatcher[] {
  if (!Array.isArray(m)) return Object.entries(m).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }))
  return m.map(x => typeof x === 'string' ? parseMatcher(x) : { name: x.name, value: x.value, isRegex: x.isRegex ?? false, isEqual: x.isEqual ?? true })
}

/**
 * Pushes alarm changes to live streams: while streams are open, asks the database every pollMs for
 * the newest history entry and the number of active alarms (two index lookups); when either moved,
 * broadcasts `alarms` with the counts and the alarms changed since. `poke` asks at once (after an
 * action here).
 */
export class AlarmWatch {
  readonly #db: Queryable
  readonly #hub: LiveHub
  readonly #now: () => number
  readonly #log: Logger | undefined
  #last: { lastEventId: number, active: number } | null = null
  #timer: NodeJS.Timeout | null = null
  #busy = false
  #again = false
  #failing = false

  constructor (db: Queryable, hub: LiveHub, now: () => number, log: Logger | undefined, pollMs: number) {
    this.#db = db
    this.#hub = hub
    this.#now = now
    this.#log = log
    this.#timer = setInterval(() => { this.poke() }, pollMs)
    this.#timer.unref()
  }

  poke (): void {
    if (this.#hub.clients === 0) {
      // Nobody listens: the next stream starts from the state it reads itself.
      this.#last = null
      return
    }
    if (this.#busy) {
      this.#again = true
      return
    }
    this.#busy = true
    this.#check().then(() => { this.#failing = false }, (err: unknown) => {
      if (!this.#failing) this.#log?.warn({ err }, 'Checking alarms for the live stream failed; trying again.')
      this.#failing = true
    }).finally(() => {
      this.#busy = false
      if (this.#again) {
        this.#again = false
        this.poke()
      }
    })
  }

  async #check (): Promise<void> {
    const v = await alarmsVersion(this.#db)
    const last = this.#last
    this.#last = v
    // The first look only sets the mark: a stream reads the list when it opens.
    if (last === null || (v.lastEventId === last.lastEventId && v.active === last.active)) return
    const ids = await alarmsChangedSince(this.#db, last.lastEventId)
    const [counts, changed] = await Promise.all([alarmCounts(this.#db), findAlarms(this.#db, ids)])
    const body: LiveAlarmsJson = { as_of: iso(this.#now()), counts, changed: changed.map(alarmJson) }
    this.#hub.broadcast('alarms', body)
  }

  close (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}

/** iot_alarms{state,severity}: set from the database when /metrics is scraped (the last values stay while it does not answer). */
function alarmsGauge (registry: Registry, db: Queryable): void {
  if (registry.getSingleMetric(ALARMS_GAUGE) !== undefined) return
  // prom-client calls collect with the gauge as `this`.
  const gauge: Gauge<'state' | 'severity'> = new Gauge({
    name: ALARMS_GAUGE,
    help: 'Alarms by state (active_unack, active_ack, cleared_unack, cleared_ack) and severity.',
    labelNames: ['state', 'severity'],
    registers: [registry],
    collect: async () => {
      let counts: AlarmCounts
      try {
        counts = await alarmCounts(db)
      } catch {
        return
      }
      for (const [state, bySeverity] of Object.entries(counts)) {
        for (const [severity, n] of Object.entries(bySeverity)) gauge.set({ state, severity }, n)
      }
    }
  })
}

export const alarmRoutes: FastifyPluginAsync<AlarmRoutesOptions> = async (app, o) => {
  const { db, tokens, refused, now, hub } = o
  const watch = new AlarmWatch(db, hub, now, o.log, o.pollMs ?? 1000)
  app.addHook('onClose', async () => { watch.close() })
  alarmsGauge(o.registry, db)

  app.setErrorHandler(async (err, _req, reply) => {
    if (!(err instanceof IotError)) throw err
    const answer = answers[err.code]
    if (answer === undefined) throw err
    return await reply.code(answer[0]).send({ error: answer[1], code: err.code, message: err.message })
  })

  app.get<{ Querystring: Static<typeof ListQuery> }>('/api/alarms', { schema: { querystring: ListQuery } }, async (req): Promise<AlarmListJson> => {
    const q = req.query
    const t = now()
    const [alarms, counts] = await Promise.all([
      listAlarms(db, { active: q.state === 'active' ? true : q.state === 'cleared' ? false : undefined, severity: q.severity as Alarm['severity'] | undefined, location: q.location, sensorType: q.sensor_type, limit: q.limit ?? 200 }),
      alarmCounts(db)
    ])
    return { as_of: iso(t), count: alarms.length, counts, alarms: alarms.map(alarmJson) }
  })

  app.get<{ Params: Static<typeof IdParams> }>('/api/alarms/:id', { schema: { params: IdParams, querystring: NoQuery } }, async (req): Promise<AlarmDetailJson> => {
    const id = req.params.id
    const [alarm, history, notifications] = await Promise.all([findAlarm(db, id), alarmHistory(db, id), alarmNotifications(db, id)])
    if (alarm === null) throw new IotError('IOT_ERR_ALARM_NOT_FOUND', `no alarm "${id}"`)
    return {
      as_of: iso(now()),
      alarm: alarmJson(alarm),
      history: history.map(e => ({ id: e.eventId, kind: e.kind, at: iso(e.atMs), by: e.by, comment: e.comment, details: e.details })),
      notifications: notifications.map(n => ({
        idempotency_key: n.idempotencyKey,
        status: n.status,
        created_at: iso(n.createdAt),
        attempts: n.attempts,
        next_attempt_at: iso(n.nextAttemptAt),
        done_at: isoOrNull(n.deliveredAt),
        note: n.lastError
      }))
    }
  })

  app.get<{ Querystring: Static<typeof SilenceQuery> }>('/api/silences', { schema: { querystring: SilenceQuery } }, async (req): Promise<{ silences: SilenceJson[] }> => {
    const t = now()
    return { silences: (await listSilences(db, t, req.query.expired === true)).map(s => silenceJson(s, t)) }
  })

  // The actions, in a plugin of their own: the admin check applies to them only.
  await app.register(async actions => {
    /** Who acts: the name given, else the role of the token (admin), else `operator`. */
    const actor = (req: FastifyRequest, given: string | undefined): string => {
      if (given !== undefined) return given
      const token = bearerToken(req.headers.authorization)
      return token !== null && tokens.roleOf(token) === 'admin' ? 'admin' : 'operator'
    }
    actions.addHook('onRequest', async (req, reply: FastifyReply) => {
      if (!tokens.hasAdmin) return
      const token = bearerToken(req.headers.authorization)
      const role = token === null ? null : tokens.roleOf(token)
      if (role === 'admin') return
      if (token === null) {
        refused.inc({ scope: 'admin', reason: 'missing' })
        return await reply.code(401).header('www-authenticate', realm)
          .send({ error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message: 'acting on alarms and silences needs "Authorization: Bearer <admin token>"' })
      }
      if (role === 'viewer') {
        refused.inc({ scope: 'admin', reason: 'forbidden' })
        return await reply.code(403).header('www-authenticate', `${realm}, error="insufficient_scope"`)
          .send({ error: 'forbidden', code: 'IOT_ERR_FORBIDDEN', message: 'the viewer token reads; acting on alarms and silences needs the admin token' })
      }
      refused.inc({ scope: 'admin', reason: 'invalid' })
      return await reply.code(401).header('www-authenticate', `${realm}, error="invalid_token"`)
        .send({ error: 'unauthorized', code: 'IOT_ERR_UNAUTHORIZED', message: 'wrong admin token' })
    })

    const bodyOf = (body: unknown): { comment?: string | undefined, by?: string | undefined } => {
      if (body === undefined || body === null || body === '') return {}
      if (typeof body !== 'object' || Array.isArray(body)) throw new IotError('IOT_ERR_VALIDATION', 'the body is a JSON object {"comment": "…", "by": "…"}')
      const b = body as Record<string, unknown>
      for (const k of Object.keys(b)) if (k !== 'comment' && k !== 'by') throw new IotError('IOT_ERR_VALIDATION', `unknown field "${k}" (expected comment, by)`)
      if (b.comment !== undefined && (typeof b.comment !== 'string' || b.comment.length > 2000)) throw new IotError('IOT_ERR_VALIDATION', 'comment: a string of at most 2000 characters')
      if (b.by !== undefined && (typeof b.by !== 'string' || b.by.length === 0 || b.by.length > 100)) throw new IotError('IOT_ERR_VALIDATION', 'by: a string of 1 to 100 characters')
      return { comment: b.comment as string | undefined, by: b.by as string | undefined }
    }

    for (const [path, act] of [['ack', acknowledgeAlarm], ['clear', clearAlarmByOperator]] as const) {
      actions.post<{ Params: Static<typeof IdParams> }>(`/api/alarms/:id/${path}`, { schema: { params: IdParams, querystring: NoQuery } },
        async (req): Promise<{ alarm: AlarmJson }> => {
          const body = bodyOf(req.body)
          const comment = body.comment === undefined || body.comment.trim() === '' ? null : body.comment.trim()
          const alarm = await act(db, req.params.id, { by: actor(req, body.by), comment, atMs: now() })
          watch.poke()
          return { alarm: alarmJson(alarm) }
        })
    }

    actions.post<{ Body: Static<typeof SilenceBody> }>('/api/silences', { schema: { body: SilenceBody, querystring: NoQuery } },
      async (req, reply): Promise<{ silence: SilenceJson }> => {
        const b = req.body
        const t = now()
        const matchers = matchersOf(b.matchers)
        validateMatchers(matchers)
        const startsAt = b.starts_at === undefined ? t : time(b.starts_at, 'starts_at')
        if (b.ends_at !== undefined && b.duration !== undefined) throw new IotError('IOT_ERR_VALIDATION', 'give ends_at or duration, not both')
        if (b.ends_at === undefined && b.duration === undefined) throw new IotError('IOT_ERR_VALIDATION', 'a silence needs ends_at or duration')
        const endsAt = b.ends_at !== undefined ? time(b.ends_at, 'ends_at') : startsAt + durationOf(b.duration ?? '')
        if (!(endsAt > startsAt)) throw new IotError('IOT_ERR_VALIDATION', 'ends_at must be after starts_at')
        if (endsAt <= t) throw new IotError('IOT_ERR_VALIDATION', 'the silence would have ended already')
        const silence = await createSilence(db, { matchers, startsAt, endsAt, createdBy: actor(req, b.created_by), comment: b.comment ?? '' })
        reply.code(201)
        return { silence: silenceJson(silence, t) }
      })

    actions.delete<{ Params: Static<typeof SilenceIdParams> }>('/api/silences/:id', { schema: { params: SilenceIdParams, querystring: NoQuery } },
      async (req): Promise<{ silence: SilenceJson }> => {
        const s = await deleteSilence(db, req.params.id)
        return { silence: silenceJson(s, now()) }
      })
  })
}
