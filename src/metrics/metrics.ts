import type { Request, RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AppError } from '../errors.js';
import { EVENT_TYPES, type EventStream, type UsherEvent } from '../events/stream.js';

/** What the gauges read at scrape time; each probe is given `probeTimeoutMs` and counts as down past it. */
export interface MetricsProbes {
  /** Users counted by (role, active), one grouped query. */
  users(): Promise<readonly { role: string; active: boolean; count: number }[]>;
  database(): Promise<unknown>;
  /** Only when sessions live in Redis. */
  redis?: () => Promise<unknown>;
}

/** Any label value outside these becomes 'other': label values stay bounded whatever a caller passes. */
export interface MetricsLabels {
  /** Authentication methods: the chain's ('api-key', 'session', 'proxy'), 'password', `oidc:<id>` for each provider. */
  readonly methods: readonly string[];
}

/** How a request fared in the authentication chain, or a login attempt. */
export type AuthResult = 'success' | 'failure' | 'refused' | 'error' | 'anonymous';

const LOGIN_FAILURE_REASONS = ['unknown', 'password', 'disabled', 'password_login_off'];

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
  private readonly auth: Counter<'method' | 'result'>;
  private readonly loginFailures: Counter<'reason'>;
  private readonly rateLimited: Counter;
  private readonly events: Counter<'type'>;
  private readonly duration: Histogram<'route' | 'status_class'>;

  constructor(labels: MetricsLabels, probes: MetricsProbes, probeTimeoutMs = 2_000) {
    const registers = [this.registry];
    this.methods = new Set([...labels.methods, 'none']);
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

  /** Counts every event, and the login ones as authentication outcomes. Synchronous: never slows a publish. */
  listenTo(events: EventStream): void {
    events.on((e) => this.heard(e));
  }

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
    const counted = new WeakSet<Request>();
    return (req, res, next) => {
      authenticate(req, res, (err?: unknown) => {
        if (!counted.has(req)) {
          counted.add(req);
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
