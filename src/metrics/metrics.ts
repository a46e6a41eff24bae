import type { Request, RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AppError } from '../errors.js';
import type { AuditBacklog } from '../events/audit.js';
import { EVENT_TYPES, type EventStream, type UsherEvent } from '../events/stream.js';
import type { OidcRequest } from '../authn/oidc/observed-fetch.js';
import { LoopDelay } from './loop-delay.js';

/** What the gauges read at scrape time; each probe is given `probeTimeoutMs` and counts as down past it. */
export interface MetricsProbes {
  /** Users counted by (role, active), one grouped query. */
  users(): Promise<readonly { role: string; active: boolean; count: number }[]>;
  database(): Promise<unknown>;
  /** Only when sessions live in Redis. */
  redis?: () => Promise<unknown>;
  /** The signed-in sessions alive in the session store. */
  sessions(): Promise<number>;
  /** The audit log's batched writes: what waits, since when, and what was lost. */
  audit(): AuditBacklog;
}

/** Any label value outside these becomes 'other': label values stay bounded whatever a caller passes. */
export interface MetricsLabels {
  /** Authentication methods: the chain's ('api-key', 'session', 'proxy'), 'password', `oidc:<id>` for each provider. */
  readonly methods: readonly string[];
  /** The ids of oidc.providers. */
  readonly oidcProviders: readonly string[];
}

/** How a request fared in the authentication chain, or a login attempt. */
export type AuthResult = 'success' | 'failure' | 'refused' | 'error' | 'anonymous';

/** Password logins' reasons, then OpenID callbacks' (src/authn/oidc/login.ts). */
const LOGIN_FAILURE_REASONS = ['unknown', 'password', 'disabled', 'password_login_off', 'provider_refused', 'provider_unavailable', 'not_allowed', 'not_provisioned'];
/** Up to oidc.timeout's longest (120 s); a provider answers in tens to hundreds of milliseconds. */
const OIDC_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];
/** Most events' listeners are done at once; ending sessions waits for the session store. */
const DELIVERY_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60];

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * Usher's Prometheus metrics, on a registry of its own (a host app's metrics on the global registry never mix
 * with them), with prom-client's process metrics. Counters hear the event stream and the authentication chain;
 * gauges read the database and Redis when scraped.
 */
export class UsherMetrics {
  readonly registry = new Registry();
  private readonly methods: ReadonlySet<string>;
  private readonly oidcProviders: ReadonlySet<string>;
  private readonly auth: Counter<'method' | 'result'>;
  private readonly loginFailures: Counter<'reason'>;
  private readonly rateLimited: Counter;
  private readonly events: Counter<'type'>;
  private readonly duration: Histogram<'route' | 'status_class'>;
  private readonly oidcRequests: Histogram<'provider' | 'operation' | 'result'>;
  private readonly delivery: Histogram<'type'>;
  private readonly loopDelay = new LoopDelay();

  constructor(labels: MetricsLabels, probes: MetricsProbes, probeTimeoutMs = 2_000) {
    const registers = [this.registry];
    this.methods = new Set([...labels.methods, 'none']);
    this.oidcProviders = new Set(labels.oidcProviders);
    collectDefaultMetrics({ register: this.registry });
    this.auth = new Counter({
      name: 'usher_auth_total',
      help: 'Authentication outcomes: each API request through the chain (method none: no credential) and each login.',
      labelNames: ['method', 'result'],
      registers,
    });
    this.loginFailures = new Counter({ name: 'usher_login_failures_total', help: 'Failed password logins, by reason.', labelNames: ['reason'], registers });
    this.rateLimited = new Counter({ name: 'usher_login_rate_limited_total', help: 'Logins refused by the login limiter (first refusal per client and minute).', registers });
    this.events = new Counter({ name: 'usher_events_total', help: 'Events published on the event stream, by type.', labelNames: ['type'], registers });
    for (const type of EVENT_TYPES) this.events.inc({ type }, 0);
    this.rateLimited.inc(0);
    this.duration = new Histogram({
      name: 'usher_http_request_duration_seconds',
      help: 'HTTP requests by route template (unmatched: no route answered) and status class.',
      labelNames: ['route', 'status_class'],
      registers,
    });
    this.oidcRequests = new Histogram({
      name: 'usher_oidc_request_duration_seconds',
      help: 'Requests to OpenID providers, to their response headers, by provider, operation (discovery, token, userinfo, jwks, other) and result (ok, http_4xx, http_5xx, timeout, unreachable).',
      labelNames: ['provider', 'operation', 'result'],
      buckets: OIDC_BUCKETS,
      registers,
    });
    this.delivery = new Histogram({
      name: 'usher_event_delivery_seconds',
      help: "From an event's publication until every listener (audit queue, hooks, session ending, caches, metrics) is done, by event type.",
      labelNames: ['type'],
      buckets: DELIVERY_BUCKETS,
      registers,
    });

    const timed = <T>(probe: () => Promise<T>) => withTimeout(probe(), probeTimeoutMs);
    const up = async (probe: () => Promise<unknown>) => {
      try {
        await timed(probe);
        return 1;
      } catch {
        return 0;
      }
    };
    new Gauge({
      name: 'usher_users',
      help: 'Users by role and whether they are enabled (read from the database at each scrape).',
      labelNames: ['role', 'active'],
      registers,
      async collect() {
        const rows = await timed(probes.users).catch(() => undefined);
        // Unreadable: no series rather than zeros, so a dashboard does not show every user gone.
        this.reset();
        for (const row of rows ?? []) this.set({ role: row.role, active: String(row.active) }, row.count);
      },
    });
    new Gauge({
      name: 'usher_database_up',
      help: '1 when the database answered a trivial query at the scrape, else 0.',
      registers,
      async collect() {
        this.set(await up(probes.database));
      },
    });
    new Gauge({
      name: 'usher_sessions_active',
      help: 'Signed-in sessions alive in the session store, which every instance shares (read at each scrape).',
      registers,
      async collect() {
        const count = await timed(probes.sessions).catch(() => undefined);
        // Unreadable: no sample rather than a zero that looks like everyone signed out.
        this.reset();
        if (count !== undefined) this.set(count);
      },
    });
    new Gauge({
      name: 'usher_audit_pending',
      help: 'Authentication events waiting to be written to the audit log (written in batches about every second).',
      registers,
      collect() {
        this.set(probes.audit().pending);
      },
    });
    new Gauge({
      name: 'usher_audit_oldest_pending_seconds',
      help: 'Age of the oldest authentication event waiting to be written to the audit log; 0 when none waits.',
      registers,
      collect() {
        const { oldestAt } = probes.audit();
        this.set(oldestAt === undefined ? 0 : Math.max(0, (Date.now() - oldestAt) / 1000));
      },
    });
    new Counter({
      name: 'usher_audit_lost_total',
      help: 'Authentication events never written to the audit log: queue_full (more came than could be written), write_failed (the database refused the batch).',
      labelNames: ['reason'],
      registers,
      collect() {
        const { lost } = probes.audit();
        this.reset();
        this.inc({ reason: 'queue_full' }, lost.queueFull);
        this.inc({ reason: 'write_failed' }, lost.writeFailed);
      },
    });
    const loopDelay = this.loopDelay;
    const window = `the last ${loopDelay.windowMs / 1000} to ${(2 * loopDelay.windowMs) / 1000} s`;
    new Gauge({
      name: 'usher_event_loop_delay_p99_seconds',
      help: `p99 of how long a ready callback waited for the event loop over ${window} (perf_hooks.monitorEventLoopDelay, sampled every 10 ms, the sampling period not counted).`,
      registers,
      collect() {
        this.set(loopDelay.percentile(99));
      },
    });
    new Gauge({
      name: 'usher_event_loop_delay_max_seconds',
      help: `The longest the event loop kept a ready callback waiting over ${window}.`,
      registers,
      collect() {
        this.set(loopDelay.max());
      },
    });
    if (probes.redis) {
      const redis = probes.redis;
      new Gauge({
        name: 'usher_redis_up',
        help: '1 when Redis (the session store) answered at the scrape, else 0.',
        registers,
        async collect() {
          this.set(await up(redis));
        },
      });
    }
  }

  /**
   * Counts every event, and the login ones as authentication outcomes; times each event's delivery to its
   * listeners, and counts the listeners still running. Synchronous: never slows a publish.
   */
  listenTo(events: EventStream): void {
    events.on((e) => this.heard(e));
    events.onDelivered((e, seconds) => this.delivery.observe({ type: e.type }, seconds));
    new Gauge({
      name: 'usher_event_listeners_running',
      help: 'Event listeners not awaited by the change that published the event (host hooks) and still running: one that hangs stays counted.',
      registers: [this.registry],
      collect() {
        this.set(events.listenersRunning);
      },
    });
  }

  /** Stops sampling the event loop. */
  close(): void {
    this.loopDelay.close();
  }

  /** One request to an OpenID provider (OidcClient's observer). */
  readonly observeOidcRequest = (r: OidcRequest): void => {
    const provider = this.oidcProviders.has(r.provider) ? r.provider : 'other';
    this.oidcRequests.observe({ provider, operation: r.operation, result: r.result }, r.seconds);
  };

  private heard(e: UsherEvent): void {
    this.events.inc({ type: e.type });
    const method = this.method(typeof e.detail.method === 'string' ? e.detail.method : 'password');
    if (e.type === 'login.succeeded') this.auth.inc({ method, result: 'success' });
    else if (e.type === 'login.failed') {
      this.auth.inc({ method, result: 'failure' });
      const reason = String(e.detail.reason);
      this.loginFailures.inc({ reason: LOGIN_FAILURE_REASONS.includes(reason) ? reason : 'other' });
    } else if (e.type === 'login.rate_limited') {
      this.auth.inc({ method, result: 'refused' });
      this.rateLimited.inc();
    }
  }

  private method(name: string): string {
    return this.methods.has(name) ? name : 'other';
  }

  /**
   * Wraps the authentication middleware: counts how each request fared, once per request. The method is the
   * one that proved it, else the first that recognised a credential in it, else 'none'.
   */
  countAuthOutcomes(authenticate: RequestHandler, methods: readonly { name: string; applies(req: Request): boolean }[]): RequestHandler {
    // A symbol property rather than a WeakSet: no entry for the garbage collector to track per request.
    const counted = Symbol('usher.authCounted');
    return (req, res, next) => {
      authenticate(req, res, (err?: unknown) => {
        const marked = req as Request & { [counted]?: true };
        if (!marked[counted]) {
          marked[counted] = true;
          const method = req.user?.authMethod ?? methods.find((m) => m.applies(req))?.name ?? 'none';
          this.auth.inc({ method: this.method(method), result: outcome(err, req.user !== undefined, method !== 'none') });
        }
        next(err);
      });
    };
  }

  /**
   * Times each request, labelled by the route template Express matched (never the raw path). Usher's routes
   * hold their full paths, so the template is the route's path under where this middleware is mounted
   * (req.baseUrl at finish is whichever router last handled the request, an error handler's included).
   */
  readonly timeRequests: RequestHandler = (req, res, next) => {
    const start = process.hrtime.bigint();
    const base = req.baseUrl;
    res.on('finish', () => {
      const route = req.route ? `${base}${String((req.route as { path: unknown }).path)}` : 'unmatched';
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      this.duration.observe({ route, status_class: `${Math.floor(res.statusCode / 100)}xx` }, seconds);
    });
    next();
  };
}

function outcome(err: unknown, authenticated: boolean, hadCredential: boolean): AuthResult {
  if (err === undefined || err === null) return authenticated ? 'success' : hadCredential ? 'failure' : 'anonymous';
  const status = err instanceof AppError ? err.status : 500;
  if (status === 401) return 'failure';
  if (status >= 500) return 'error';
  return 'refused';
}
