import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Counter, register } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../src/config/load.js';
import { ANONYMOUS, eventOf, type UsherEvent } from '../src/events/stream.js';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { IdpJar, signInAtIdp, startIdp, type TestIdp } from './helpers/oidc-provider.js';
import { freePort, ROOT } from './helpers/process.js';
import { PrivateRedis, REDIS_URL, freshPrefix, deletePrefix, pingRedis } from './helpers/redis.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const TOKEN = 'metrics-token-0123456789abcdef0123456789';

/** The value of the one sample of `name` whose labels are exactly `labels`; undefined when there is none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (JSON.stringify(Object.entries(found).sort()) === JSON.stringify(Object.entries(labels).sort())) return Number(m[3]);
  }
  return undefined;
}

/** The metric families a scrape declares (`# TYPE name kind`). */
const families = (text: string) => new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));

const scrape = async (base: string, token: string | undefined = TOKEN) => {
  const res = await fetch(`${base}/metrics`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};

const configProblems = (file: Record<string, unknown>) => {
  try {
    resolveConfig({ file });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('metrics configuration', () => {
  it.each([
    [{ enabled: true }, 'config: metrics.enabled: needs metrics.listen (a separate address) or metrics.token'],
    [{ enabled: true, token: 'short' }, 'config: metrics.token: must be at least 32 characters'],
    [{ enabled: true, listen: 'localhost' }, 'config: metrics.listen: must be host:port, such as 127.0.0.1:9464'],
    [{ enabled: true, listen: '127.0.0.1:70000' }, 'config: metrics.listen: must be host:port'],
  ])('refuses %j with one line naming the key', (metrics, line) => {
    const problems = configProblems({ metrics });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(line);
  });

  it('is off by default and reads the listen address', () => {
    expect(resolveConfig({}).metrics).toEqual({ enabled: false, listen: undefined, token: undefined });
    expect(resolveConfig({ file: { metrics: { enabled: true, listen: '[::1]:9464' } } }).metrics.listen).toEqual({ host: '::1', port: 9464 });
  });
});

describe('metrics off (the default)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer('sqlite');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('has no /metrics, even with a token', async () => {
    const res = await client(server.url).get('/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(404);
    expect(errorCode(res)).toBe('not_found');
    expect(server.usher.metrics).toBeUndefined();
  });
});

describe.each(DB_KINDS)('metrics behind a token on %s', (kind) => {
  let server: TestServer;
  let c: Client;

  beforeAll(async () => {
    server = await startServer(kind, { settings: { metrics: { enabled: true, token: TOKEN } } });
    c = client(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each([
    ['no token', {}],
    ['a wrong token', { authorization: `Bearer ${TOKEN.slice(0, -1)}x` }],
    ['a token of another length', { authorization: `Bearer ${TOKEN}0` }],
    ['another scheme', { authorization: `Basic ${TOKEN}` }],
  ])('refuses %s with 401', async (_what, headers) => {
    const res = await c.get('/metrics', { headers });
    expect(res.status).toBe(401);
    expect(errorCode(res)).toBe('auth.unauthenticated');
    expect(res.text).not.toContain('usher_');
  });

  it('counts a known sequence of requests exactly', async () => {
    const adminKey = await setupAdmin(c); // anonymous request; user.created
    for (let i = 0; i < 3; i++) expect((await c.get(`${AUTH}/me`, { key: adminKey })).status).toBe(200);
    expect((await c.get(`${AUTH}/me`, { key: `usk_${'x'.repeat(40)}` })).status).toBe(401);
    expect((await c.post(`${AUTH}/login`, { body: { username: 'admin', password: 'wrong-password' } })).status).toBe(401);
    expect((await c.post(`${AUTH}/login`, { body: { username: 'nobody', password: 'wrong-password' } })).status).toBe(401);
    expect((await c.post(`${AUTH}/login`, { body: { username: 'admin', password: 'admin-password' } })).status).toBe(200);
    expect((await c.get('/no/such/page')).status).toBe(404);

    const { status, type, text } = await scrape(server.url);
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(text, 'usher_auth_total', { method: 'api-key', result: 'success' })).toBe(3);
    expect(sample(text, 'usher_auth_total', { method: 'api-key', result: 'failure' })).toBe(1);
    expect(sample(text, 'usher_auth_total', { method: 'password', result: 'failure' })).toBe(2);
    expect(sample(text, 'usher_auth_total', { method: 'password', result: 'success' })).toBe(1);
    // setup and the three logins carried no credential
    expect(sample(text, 'usher_auth_total', { method: 'none', result: 'anonymous' })).toBe(4);
    expect(sample(text, 'usher_login_failures_total', { reason: 'password' })).toBe(1);
    expect(sample(text, 'usher_login_failures_total', { reason: 'unknown' })).toBe(1);
    expect(sample(text, 'usher_login_rate_limited_total')).toBe(0);
    expect(sample(text, 'usher_events_total', { type: 'user.created' })).toBe(1);
    expect(sample(text, 'usher_events_total', { type: 'login.failed' })).toBe(2);
    expect(sample(text, 'usher_events_total', { type: 'login.succeeded' })).toBe(1);
    expect(sample(text, 'usher_events_total', { type: 'user.deleted' })).toBe(0);
    const requests = (route: string, status_class: string) => sample(text, 'usher_http_request_duration_seconds_count', { route, status_class });
    expect(requests(`${AUTH}/me`, '2xx')).toBe(3);
    expect(requests(`${AUTH}/login`, '4xx')).toBe(2);
    expect(requests(`${AUTH}/login`, '2xx')).toBe(1);
    expect(requests(`${AUTH}/setup`, '2xx')).toBe(1);
    // the bad key (refused before any route) and the unknown page; never a raw path as a label
    expect(requests('unmatched', '4xx')).toBe(2);
    expect(text).not.toContain('/no/such/page');
    expect(text).not.toContain('nobody');
    expect(sample(text, 'usher_users', { role: 'admin', active: 'true' })).toBe(1);
    expect(sample(text, 'usher_database_up')).toBe(1);
    // prom-client's process metrics are on Usher's registry too; no Redis configured, no Redis gauge
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(families(text).has('usher_redis_up')).toBe(false);
    // The event loop's own delay over a recent window (src/metrics/loop-delay.ts)
    expect(families(text).get('usher_event_loop_delay_p99_seconds')).toBe('gauge');
    const p99 = sample(text, 'usher_event_loop_delay_p99_seconds')!;
    const max = sample(text, 'usher_event_loop_delay_max_seconds')!;
    expect(p99).toBeGreaterThanOrEqual(0);
    expect(max).toBeGreaterThanOrEqual(p99);
  });

  it("keeps its own registry: a host app's metrics on the global one never appear", async () => {
    const name = `host_app_${kind}_total`;
    new Counter({ name, help: 'a host metric' }).inc();
    expect(await register.metrics()).toContain(name);
    const { text } = await scrape(server.url);
    expect(text).toContain('usher_auth_total');
    expect(text).not.toContain(name);
    expect(server.usher.metrics!.registry).not.toBe(register);
  });

  it('counts users by role and status at each scrape', async () => {
    const { user } = await server.usher.users.create({ username: 'carol', password: 'carol-password' });
    await server.usher.users.setActive(user.id, false);
    const { text } = await scrape(server.url);
    expect(sample(text, 'usher_users', { role: 'admin', active: 'true' })).toBe(1);
    expect(sample(text, 'usher_users', { role: 'user', active: 'false' })).toBe(1);
    expect(sample(text, 'usher_users', { role: 'user', active: 'true' })).toBeUndefined();
  });
});

describe('metrics on their own address (metrics.listen)', () => {
  let server: TestServer;
  let metricsUrl: string;

  beforeAll(async () => {
    server = await startServer('sqlite', {
      settings: { metrics: { enabled: true, listen: '127.0.0.1:0' }, auth: { loginRateLimit: { maxFailures: 1 } } },
    });
    metricsUrl = `http://127.0.0.1:${(server.usher.metrics!.server!.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('serves /metrics there and nowhere on the main port', async () => {
    const main = await client(server.url).get('/metrics');
    expect(main.status).toBe(404);
    expect(errorCode(main)).toBe('not_found');
    const { status, text } = await scrape(metricsUrl, undefined);
    expect(status).toBe(200);
    expect(sample(text, 'usher_database_up')).toBe(1);
    // the second listener serves nothing else
    const other = await client(metricsUrl).get(`${AUTH}/me`);
    expect(other.status).toBe(404);
    expect(errorCode(other)).toBe('not_found');
    expect((await client(metricsUrl).post('/metrics')).status).toBe(405);
  });

  it('counts rate-limited logins as refused', async () => {
    const c = client(server.url);
    await setupAdmin(c);
    expect((await c.post(`${AUTH}/login`, { body: { username: 'admin', password: 'wrong-password' } })).status).toBe(401);
    const limited = await c.post(`${AUTH}/login`, { body: { username: 'admin', password: 'wrong-password' } });
    expect(limited.status).toBe(429);
    const { text } = await scrape(metricsUrl, undefined);
    expect(sample(text, 'usher_login_rate_limited_total')).toBe(1);
    expect(sample(text, 'usher_auth_total', { method: 'password', result: 'refused' })).toBe(1);
    expect(sample(text, 'usher_auth_total', { method: 'password', result: 'failure' })).toBe(1);
    expect(sample(text, 'usher_http_request_duration_seconds_count', { route: `${AUTH}/login`, status_class: '4xx' })).toBe(2);
  });
});

describe('metrics with sessions in Redis', () => {
  let server: TestServer;
  let redis: PrivateRedis;
  const prefix = freshPrefix();

  beforeAll(async () => {
    await pingRedis();
    redis = await PrivateRedis.start();
    server = await startServer('sqlite', { settings: { metrics: { enabled: true, token: TOKEN }, redis: { url: redis.url, keyPrefix: prefix } } });
  });
  afterAll(async () => {
    await server?.close();
    await redis?.stop();
    await deletePrefix(prefix, REDIS_URL);
  });

  it('every metric the Grafana dashboard queries exists', async () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'docs/grafana-dashboard.json'), 'utf8')) as unknown;
    const exprs: string[] = [];
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(visit);
      else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if ((key === 'expr' || key === 'query') && typeof value === 'string') exprs.push(value);
          else visit(value);
        }
      }
    };
    visit(dashboard);
    expect(exprs.length).toBeGreaterThan(5);
    const { text } = await scrape(server.url);
    const declared = families(text);
    const queried = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:usher|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!)));
    for (const name of queried) {
      const family = declared.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
      expect(declared.get(family), `${name} is not in /metrics`).toBeDefined();
      if (family !== name) expect(declared.get(family)).toBe('histogram');
    }
    expect([...queried]).toEqual(
      expect.arrayContaining([
        'usher_auth_total',
        'usher_redis_up',
        'usher_events_total',
        'usher_users',
        'usher_sessions_active',
        'usher_oidc_request_duration_seconds_bucket',
        'usher_event_delivery_seconds_bucket',
        'usher_audit_pending',
        'usher_audit_lost_total',
      ]),
    );
  });

  it('reports Redis up, then down once it is gone', async () => {
    expect(sample((await scrape(server.url)).text, 'usher_redis_up')).toBe(1);
    await redis.stop();
    const { status, text } = await scrape(server.url);
    expect(status).toBe(200);
    expect(sample(text, 'usher_redis_up')).toBe(0);
    expect(sample(text, 'usher_database_up')).toBe(1);
  });
});

describe.each([
  ['sqlite', false],
  ['postgres', false],
  ['sqlite', true],
] as const)('active sessions on %s (Redis: %s)', (kind, inRedis) => {
  let server: TestServer;
  const prefix = freshPrefix();

  beforeAll(async () => {
    if (inRedis) await pingRedis();
    server = await startServer(kind, {
      settings: { metrics: { enabled: true, token: TOKEN }, ...(inRedis ? { redis: { url: REDIS_URL, keyPrefix: prefix } } : {}) },
    });
  });
  afterAll(async () => {
    await server?.close();
    if (inRedis) await deletePrefix(prefix, REDIS_URL);
  });

  const active = async () => sample((await scrape(server.url)).text, 'usher_sessions_active');

  it('counts the signed-in sessions in the store after logins, a logout and a disabled account', async () => {
    const c = client(server.url);
    const adminKey = await setupAdmin(c);
    const bob = await createUser(server, c, adminKey, { username: 'bob', password: 'bob-password' });
    // An API key and a failed login make no session.
    expect((await c.get(`${AUTH}/me`, { key: adminKey })).status).toBe(200);
    expect((await c.post(`${AUTH}/login`, { body: { username: 'bob', password: 'wrong-password' } })).status).toBe(401);
    expect(await active()).toBe(0);

    const signIn = async (username: string) => {
      const browser = client(server.url, {});
      expect((await browser.post(`${AUTH}/login`, { body: { username, password: `${username}-password` } })).status).toBe(200);
      return browser;
    };
    const admin1 = await signIn('admin');
    await signIn('admin');
    await signIn('bob');
    await signIn('bob');
    expect(await active()).toBe(4);

    expect((await admin1.post(`${AUTH}/logout`)).status).toBe(204);
    expect(await active()).toBe(3);
    // Disabling bob ends both his sessions.
    expect((await c.post(`${AUTH}/users/${bob.user.id}/status`, { key: adminKey, body: { active: false } })).status).toBe(200);
    expect(await active()).toBe(1);
  });
});

describe('event stream and audit backlog', () => {
  let server: TestServer;
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });

  beforeAll(async () => {
    server = await startServer('sqlite', {
      settings: { metrics: { enabled: true, token: TOKEN } },
      // A host hook that takes as long as the test says for one user.
      hooks: { onUserCreated: (user) => (user.username === 'held' ? held : undefined) },
    });
  });
  afterAll(async () => {
    release();
    await server?.close();
  });

  it('times each event to its last listener and counts the hooks still running', async () => {
    const c = client(server.url);
    const adminKey = await setupAdmin(c);
    await c.post(`${AUTH}/login`, { body: { username: 'admin', password: 'wrong-password' } });
    let text = (await scrape(server.url)).text;
    const delivered = (type: string) => sample(text, 'usher_event_delivery_seconds_count', { type });
    expect(delivered('user.created')).toBe(1);
    expect(delivered('login.failed')).toBe(1);
    expect(sample(text, 'usher_event_listeners_running')).toBe(0);

    // The hook for 'held' does not return: the request is answered, the event is not delivered yet.
    expect((await c.post(`${AUTH}/users`, { key: adminKey, body: { username: 'held', password: 'held-password' } })).status).toBe(201);
    text = (await scrape(server.url)).text;
    expect(sample(text, 'usher_event_listeners_running')).toBe(1);
    expect(delivered('user.created')).toBe(1);
    expect(sample(text, 'usher_events_total', { type: 'user.created' })).toBe(2);

    release();
    await held;
    text = (await scrape(server.url)).text;
    expect(sample(text, 'usher_event_listeners_running')).toBe(0);
    expect(delivered('user.created')).toBe(2);
  });

  it('counts the authentication events whose audit write failed', async () => {
    const c = client(server.url);
    const { db, audit } = server.usher;
    await audit.flush();
    let text = (await scrape(server.url)).text;
    expect(sample(text, 'usher_audit_pending')).toBe(0);
    expect(sample(text, 'usher_audit_oldest_pending_seconds')).toBe(0);
    expect(sample(text, 'usher_audit_lost_total', { reason: 'write_failed' })).toBe(0);
    expect(sample(text, 'usher_audit_lost_total', { reason: 'queue_full' })).toBe(0);

    await db.raw('ALTER TABLE audit_log RENAME TO audit_log_away');
    try {
      for (let i = 0; i < 2; i++) expect((await c.post(`${AUTH}/login`, { body: { username: 'admin', password: 'wrong-password' } })).status).toBe(401);
      await audit.flush();
    } finally {
      await db.raw('ALTER TABLE audit_log_away RENAME TO audit_log');
    }
    text = (await scrape(server.url)).text;
    expect(sample(text, 'usher_audit_lost_total', { reason: 'write_failed' })).toBe(2);
    expect(sample(text, 'usher_audit_pending')).toBe(0);

    // Written again once the table is back.
    expect((await c.post(`${AUTH}/login`, { body: { username: 'admin', password: 'wrong-password' } })).status).toBe(401);
    await audit.flush();
    text = (await scrape(server.url)).text;
    expect(sample(text, 'usher_audit_lost_total', { reason: 'write_failed' })).toBe(2);
    expect((await audit.list({ offset: 0, limit: 10, type: 'login.failed' })).total).toBe(2);
  });
});

describe('audit backlog while the database holds the writes (PostgreSQL)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer('postgres', { settings: { metrics: { enabled: true, token: TOKEN } } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('shows what waits and since when, and counts what a full queue drops', async () => {
    const { db, audit, events } = server.usher;
    const failed = (at: number): UsherEvent => ({ ...eventOf({ actor: ANONYMOUS }, 'login.failed', null, { method: 'password', reason: 'unknown' }), at });
    const lock = await db.transaction();
    try {
      await lock.raw('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
      // One event two minutes old goes into a batch whose write waits on the lock...
      await events.publish([failed(Date.now() - 120_000)]);
      const writing = audit.flush();
      // ...then the queue fills (10,000 at most) and the rest is dropped.
      await events.publish(Array.from({ length: 10_250 }, () => failed(Date.now())));
      const { text } = await scrape(server.url);
      expect(sample(text, 'usher_audit_pending')).toBe(10_001);
      expect(sample(text, 'usher_audit_oldest_pending_seconds')).toBeGreaterThanOrEqual(120);
      expect(sample(text, 'usher_audit_lost_total', { reason: 'queue_full' })).toBe(250);
      await lock.commit();
      await writing;
    } finally {
      if (!lock.isCompleted()) await lock.rollback();
    }
    await audit.flush();
    const { text } = await scrape(server.url);
    expect(sample(text, 'usher_audit_pending')).toBe(0);
    expect(sample(text, 'usher_audit_oldest_pending_seconds')).toBe(0);
    expect(sample(text, 'usher_audit_lost_total', { reason: 'queue_full' })).toBe(250);
    expect((await audit.list({ offset: 0, limit: 1, type: 'login.failed' })).total).toBe(10_001);
  });
});

describe('metrics of OpenID providers', () => {
  const SECRET = 'client-secret-for-tests-0123456789';
  let idp: TestIdp;
  let flaky: TestIdp;
  let server: TestServer;
  let usherUrl: string;

  beforeAll(async () => {
    const port = await freePort();
    usherUrl = `http://127.0.0.1:${port}`;
    idp = await startIdp({
      clients: [
        {
          client_id: 'usher-main',
          client_secret: SECRET,
          token_endpoint_auth_method: 'client_secret_basic',
          redirect_uris: [`${usherUrl}${AUTH}/oidc/main/callback`],
          backchannel_logout_uri: `${usherUrl}${AUTH}/oidc/main/backchannel-logout`,
        },
      ],
    });
    flaky = await startIdp({ clients: [] });
    const provider = (id: string, issuer: string) => ({ id, name: id, issuer, clientId: `usher-${id}`, clientSecret: SECRET });
    server = await startServer('sqlite', {
      port,
      settings: {
        server: { publicUrl: usherUrl },
        metrics: { enabled: true, token: TOKEN },
        oidc: { timeout: '1s', startsPerMinute: 1000, providers: [provider('main', idp.issuer), provider('flaky', flaky.issuer)] },
      },
    });
  });
  afterAll(async () => {
    await server?.close();
    await idp?.close();
    await flaky?.close();
  });

  /** The code flow with fetch; `code` replaces the IdP's code in the callback. */
  async function login(who: string, code?: string) {
    const browser = client(usherUrl, {});
    const start = await browser.get(`${AUTH}/oidc/main/login`);
    expect(start.status, start.text).toBe(302);
    const callback = new URL(await signInAtIdp(start.headers.get('location')!, who, 'password', new IdpJar()));
    if (code !== undefined) callback.searchParams.set('code', code);
    return browser.get(callback.href.slice(usherUrl.length));
  }

  it('times every request to a provider by operation and result, and counts the sessions its logins make', async () => {
    const requests = (text: string, provider: string, operation: string, result: string) =>
      sample(text, 'usher_oidc_request_duration_seconds_count', { provider, operation, result });
    expect((await login('alice')).status).toBe(302);
    expect((await login('bob')).status).toBe(302);
    // A code the IdP never issued: the token endpoint answers 400.
    const refused = await login('alice', 'not-a-code');
    expect(refused.status).toBe(401);
    expect(errorCode(refused)).toBe('oidc.login_failed');
    // A login started and never finished holds a session, but no one is signed in with it.
    expect((await client(usherUrl, {}).get(`${AUTH}/oidc/main/login`)).status).toBe(302);
    let text = (await scrape(usherUrl)).text;
    // Discovery once, then per login a token request and a userinfo request; the keys once (then cached).
    expect(requests(text, 'main', 'discovery', 'ok')).toBe(1);
    expect(requests(text, 'main', 'token', 'ok')).toBe(2);
    expect(requests(text, 'main', 'token', 'http_4xx')).toBe(1);
    expect(requests(text, 'main', 'userinfo', 'ok')).toBe(2);
    expect(requests(text, 'main', 'jwks', 'ok')).toBe(1);
    expect(requests(text, 'main', 'other', 'ok')).toBeUndefined();
    expect(sample(text, 'usher_auth_total', { method: 'oidc:main', result: 'success' })).toBe(2);
    // The refused code is a failed login, by its reason.
    expect(sample(text, 'usher_auth_total', { method: 'oidc:main', result: 'failure' })).toBe(1);
    expect(sample(text, 'usher_login_failures_total', { reason: 'provider_refused' })).toBe(1);
    expect(sample(text, 'usher_sessions_active')).toBe(2);

    // The logout token is checked against the provider's keys, fetched for it by jose.
    await idp.backchannelLogout('usher-main', 'alice');
    text = (await scrape(usherUrl)).text;
    expect(requests(text, 'main', 'jwks', 'ok')).toBe(2);
    expect(sample(text, 'usher_sessions_active')).toBe(1);

    // A failed discovery is retried at the next login: each outage is one request of its own.
    for (const outage of ['503', 'hang', 'refused'] as const) {
      await flaky.setDown(outage);
      const res = await client(usherUrl, {}).get(`${AUTH}/oidc/flaky/login`);
      expect(res.status).toBe(502);
      expect(errorCode(res)).toBe('oidc.provider_unavailable');
    }
    await flaky.setDown(false);
    text = (await scrape(usherUrl)).text;
    expect(requests(text, 'flaky', 'discovery', 'http_5xx')).toBe(1);
    expect(requests(text, 'flaky', 'discovery', 'timeout')).toBe(1);
    expect(requests(text, 'flaky', 'discovery', 'unreachable')).toBe(1);
    expect(requests(text, 'flaky', 'discovery', 'ok')).toBeUndefined();
    expect(requests(text, 'main', 'token', 'ok')).toBe(2);
  });
});
