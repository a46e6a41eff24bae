import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/load.js';
import { problems as problemsOf } from './helpers/config.js';
import { storeGet } from '../src/sessions/backend.js';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, sidOf, type Jar } from './helpers/http.js';

const AUTH = '/api/v1/auth';

/** The problem lines resolveConfig reports for these sources (none: []). */
/** The problem lines for a config file (and environment). */
const problems = (file: unknown, env: Record<string, string> = {}) => problemsOf(env, file);

describe('session.cookieDomain in the configuration', () => {
  it('is unset by default (a host-only cookie), and read from the file or USHER_SESSION_COOKIE_DOMAIN', () => {
    expect(resolveConfig({}).session.cookieDomain).toBeUndefined();
    expect(resolveConfig({ file: { session: { cookieDomain: '.Example.com' } } }).session.cookieDomain).toBe('example.com');
    expect(resolveConfig({ env: { USHER_SESSION_COOKIE_DOMAIN: 'example.com' } }).session.cookieDomain).toBe('example.com');
  });

  it.each([
    ['a top-level domain (browsers refuse it)', 'com'],
    ['an IP address', '10.0.0.1'],
    ['a URL', 'https://example.com'],
    ['a wildcard', '*.example.com'],
  ])('refuses %s', (_name, value) => {
    expect(problems({ session: { cookieDomain: value } })).toEqual([
      `config: session.cookieDomain: must be a domain name such as example.com (the cookie then reaches every host under it), got ${JSON.stringify(value)}`,
    ]);
  });

  it.each([
    ['the same domain', ['example.com']],
    ['hosts under it', ['books.example.com', 'auth.example.com']],
  ])('accepts redirect domains that are %s', (_name, redirectDomains) => {
    const settings = { server: { publicUrl: 'https://auth.example.com' }, session: { cookieDomain: 'example.com' }, auth: { forwardAuth: { redirectDomains } } };
    expect(problems(settings)).toEqual([]);
  });

  it('names, one line each, every redirect domain the cookie would not reach, and a public URL that could not set it', () => {
    const settings = {
      server: { publicUrl: 'https://usher.example.org' },
      session: { cookieDomain: 'apps.example.com' },
      auth: { forwardAuth: { redirectDomains: ['example.com', 'books.apps.example.com', 'example.net'] } },
    };
    expect(problems(settings)).toEqual([
      'config: session.cookieDomain: apps.example.com does not cover usher.example.org (server.publicUrl): browsers would refuse the cookie',
      'config: auth.forwardAuth.redirectDomains: example.com is neither apps.example.com (session.cookieDomain) nor under it: the session cookie would not reach it',
      'config: auth.forwardAuth.redirectDomains: example.net is neither apps.example.com (session.cookieDomain) nor under it: the session cookie would not reach it',
    ]);
    expect(problems({}, { USHER_SESSION_COOKIE_DOMAIN: 'example.com', USHER_FORWARD_AUTH_REDIRECT_DOMAINS: 'example.org' })).toEqual([
      'config: USHER_FORWARD_AUTH_REDIRECT_DOMAINS: example.org is neither example.com (USHER_SESSION_COOKIE_DOMAIN) nor under it: the session cookie would not reach it',
    ]);
  });
});

describe.each(DB_KINDS)('the session cookie with session.cookieDomain on %s', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(kind, { settings: { session: { cookieDomain: 'example.test' } } });
    await server.usher.users.create({ username: 'dora', password: 'dora-password' });
  });
  afterAll(async () => {
    await server?.close();
  });

  const login = (jar: Jar) => client(server.url, jar).post(`${AUTH}/login`, { body: { username: 'dora', password: 'dora-password' } });

  it('is set for the whole domain at login, and cleared for it at logout', async () => {
    const jar: Jar = {};
    const res = await login(jar);
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual([expect.stringMatching(/^usher\.sid=s%3A[^;]+; Domain=example\.test; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/)]);
    const out = await client(server.url, jar).post(`${AUTH}/logout`);
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie()).toEqual([
      expect.stringMatching(/^usher\.sid=; Domain=example\.test; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax$/),
      // The host-only cookie of the same name, were one left from before the option was set.
      expect.stringMatching(/^usher\.sid=; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax$/),
    ]);
  });

  it('drops a host-only cookie left from before at login: browsers would send it first, naming a dead session', async () => {
    const jar: Jar = { cookie: 'usher.sid=s%3Aold.signature' };
    const res = await login(jar);
    const lines = res.headers.getSetCookie();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^usher\.sid=; Path=\/; Expires=Thu, 01 Jan 1970/);
    expect(lines[1]).toMatch(/^usher\.sid=s%3A[^;]+; Domain=example\.test;/);
  });

  it('keeps the configured Domain when a session is written back, whatever was stored beside it', async () => {
    const jar: Jar = {};
    await login(jar);
    const store = server.usher.sessions.backend.store;
    const sid = sidOf(jar.cookie);
    const data = (await storeGet(store, sid))!;
    // As a session saved before the option was set holds it: no domain, and last seen long enough ago to be touched.
    const stale = { ...data, lastSeenAt: Date.now() - 120_000, cookie: { ...data.cookie, domain: undefined } };
    await new Promise<void>((resolve, reject) => store.set(sid, stale, (err) => (err ? reject(err) : resolve())));
    const res = await client(server.url, jar).get(`${AUTH}/me`);
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual([expect.stringMatching(/^usher\.sid=s%3A[^;]+; Domain=example\.test;/)]);
  });
});
