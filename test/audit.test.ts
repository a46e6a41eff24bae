import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { auditEntries, type AuditEntry } from './helpers/audit.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client, type Jar } from './helpers/http.js';
import { requestFrom } from './helpers/peer-http.js';
import { proxySettings } from './helpers/proxy.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';

type Entry = AuditEntry;

describe.each(DB_KINDS)('the audit log on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  const admin = { kind: 'user', userId: 1, method: 'api-key' };

  /** The entries of one type about one user, newest first, after the batched ones are written. */
  const entries = (type: string, userId?: number): Promise<Entry[]> => auditEntries(server, c, adminKey, type, userId);

  const fromProxy = (user: string, groups: string) => requestFrom('127.0.0.1', `${server.url}${AUTH}/me`, { headers: { 'Remote-User': user, 'Remote-Groups': groups } });

  beforeAll(async () => {
    server = await startServer(kind, { settings: proxySettings({ adminGroups: ['admins'] }) });
    c = client(server.url);
    adminKey = await setupAdmin(c);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('records the first admin made by setup, with no user as the actor', async () => {
    const [made] = await entries('user.created', 1);
    expect(made).toMatchObject({ actor: { kind: 'system' }, targetUserId: 1, detail: { username: 'admin', role: 'admin' } });
  });

  it.each([
    ['user.created', async (_id: number) => (await c.post(`${AUTH}/users`, { key: adminKey, body: { username: 'made', password: 'made-password' } })).body.id, { role: 'user' }],
    ['user.updated', async (id: number) => c.put(`${AUTH}/users/${id}`, { key: adminKey, body: { name: 'New Name' } }), { fields: 'name' }],
    ['user.role_changed', async (id: number) => c.put(`${AUTH}/users/${id}`, { key: adminKey, body: { role: 'admin' } }), { from: 'user', to: 'admin' }],
    ['user.disabled', async (id: number) => c.post(`${AUTH}/users/${id}/status`, { key: adminKey, body: { active: false } }), {}],
    ['user.enabled', async (id: number) => c.post(`${AUTH}/users/${id}/status`, { key: adminKey, body: { active: true } }), {}],
    ['user.password_reset', async (id: number) => c.post(`${AUTH}/users/${id}/reset-password`, { key: adminKey, body: { password: 'reset-password' } }), {}],
    ['apikey.rotated', async (id: number) => c.post(`${AUTH}/users/${id}/api-key`, { key: adminKey }), {}],
    ['user.deleted', async (id: number) => c.del(`${AUTH}/users/${id}`, { key: adminKey }), { username: 'made' }],
  ] as const)('records %s with the admin as the actor and the user as the target', async (type, act, detail) => {
    const id = type === 'user.created' ? ((await act(0)) as number) : (await c.get(`${AUTH}/users?q=made`, { key: adminKey })).body[0].id;
    if (type !== 'user.created') {
      const res = await act(id);
      expect((res as { status: number }).status).toBeLessThan(300);
    }
    const [entry] = await entries(type, id);
    expect(entry).toMatchObject({ type, actor: admin, targetUserId: id, ip: '127.0.0.1', detail });
    expect(JSON.stringify(entry)).not.toMatch(/password"|usk_|\$argon2/);
  });

  it('records a user changing and clearing passwords: their own change, and an admin clearing one', async () => {
    const { user, key } = await createUser(server, c, adminKey, { username: 'pw', password: 'first-password' });
    expect((await c.put(`${AUTH}/me`, { key, body: { password: 'second-password', currentPassword: 'first-password' } })).status).toBe(200);
    expect(await entries('user.password_changed', user.id)).toMatchObject([{ actor: { kind: 'user', userId: user.id, method: 'api-key' } }]);
    expect((await c.put(`${AUTH}/users/${user.id}`, { key: adminKey, body: { password: null } })).status).toBe(200);
    expect(await entries('user.password_cleared', user.id)).toMatchObject([{ actor: admin }]);
  });

  it('records what an identity provider does at sign-in, with the provider as the actor', async () => {
    const first = await fromProxy('ivy', 'staff');
    expect(first.status).toBe(200);
    const id = first.body.id as number;
    expect(await entries('user.created', id)).toMatchObject([{ actor: { kind: 'idp', provider: 'proxy' }, detail: { authSource: 'proxy' } }]);
    expect((await fromProxy('ivy', 'admins')).status).toBe(200);
    expect(await entries('idp.role_synced', id)).toMatchObject([{ actor: { kind: 'idp', provider: 'proxy' }, detail: { from: 'user', to: 'admin' } }]);
    await createUser(server, c, adminKey, { username: 'local-jo', password: 'jo-password' });
    const linked = await fromProxy('local-jo', 'staff');
    expect(await entries('identity.linked', linked.body.id)).toMatchObject([{ actor: { kind: 'idp', provider: 'proxy' }, detail: { provider: 'proxy', by: 'username' } }]);
    expect((await c.put(`${AUTH}/users/${id}`, { key: adminKey, body: { passwordLogin: true } })).status).toBe(200);
    expect(await entries('user.password_login_changed', id)).toMatchObject([{ actor: admin, detail: { enabled: true } }]);
  });

  it('records logins, failed logins (naming no unknown username) and refused ones, once a minute per address', async () => {
    const { user } = await createUser(server, c, adminKey, { username: 'logger', password: 'logger-password' });
    const jar: Jar = {};
    expect((await client(server.url, jar).post(`${AUTH}/login`, { body: { username: 'logger', password: 'logger-password' } })).status).toBe(200);
    expect(await entries('login.succeeded', user.id)).toMatchObject([{ actor: { kind: 'user', userId: user.id, method: 'password' }, detail: { method: 'password' } }]);
    expect((await c.post(`${AUTH}/login`, { body: { username: 'logger', password: 'wrong' } })).status).toBe(401);
    expect(await entries('login.failed', user.id)).toMatchObject([{ actor: { kind: 'anonymous' }, targetUserId: user.id, detail: { reason: 'password' } }]);
    const secretTyped = 'my-secret-typed-as-a-name';
    for (let i = 0; i < 11; i++) await c.post(`${AUTH}/login`, { body: { username: 'logger', password: 'wrong' }, headers: {} });
    expect((await c.post(`${AUTH}/login`, { body: { username: secretTyped, password: 'x' } })).status).toBeGreaterThanOrEqual(400);
    const all = await c.get(`${AUTH}/audit?limit=1000`, { key: adminKey });
    expect(all.text).not.toContain(secretTyped);
    const refused = await entries('login.rate_limited');
    expect(refused.length).toBe(1);
    expect(refused[0]).toMatchObject({ actor: { kind: 'anonymous' }, targetUserId: null, ip: '127.0.0.1' });
  });

  it('records sessions made and ended: sign-in, logout, one revoked, all ended by an admin', async () => {
    const { user } = await createUser(server, c, adminKey, { username: 'sessy', password: 'sessy-password' });
    const signIn = async () => {
      const jar: Jar = {};
      const browser = client(server.url, jar);
      expect((await browser.post(`${AUTH}/login`, { body: { username: 'sessy', password: 'sessy-password' } })).status).toBe(200);
      return browser;
    };
    const first = await signIn();
    expect(await entries('session.created', user.id)).toMatchObject([{ actor: { kind: 'user', userId: user.id, method: 'password' } }]);
    expect((await first.post(`${AUTH}/logout`)).status).toBe(204);
    expect(await entries('session.ended', user.id)).toMatchObject([{ actor: { kind: 'user', userId: user.id, method: 'session' }, detail: { reason: 'logout' } }]);
    const a = await signIn();
    await signIn();
    const other = (await a.get(`${AUTH}/me/sessions`)).body.find((x: { current: boolean }) => !x.current);
    expect((await a.del(`${AUTH}/me/sessions/${other.id}`)).status).toBe(204);
    expect((await c.del(`${AUTH}/users/${user.id}/sessions`, { key: adminKey })).status).toBe(204);
    const ended = await entries('session.ended', user.id);
    expect(ended.map((e) => e.detail.reason)).toEqual(['ended_by_admin', 'revoked', 'logout']);
    expect(ended[0]!.actor).toMatchObject(admin);
    expect(JSON.stringify(ended)).not.toMatch(/"sessionId"|sid/);
  });

  it('records identity headers from an untrusted address, once a minute', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await requestFrom('127.0.0.2', `${server.url}${AUTH}/me`, { headers: { 'Remote-User': 'admin', 'Remote-Groups': 'admins' } });
      expect(res.status).toBe(401);
    }
    expect(await entries('proxy.untrusted_headers')).toMatchObject([{ actor: { kind: 'anonymous' }, ip: '127.0.0.2', targetUserId: null }]);
  });

  it('writes no entry for a change its safety rail refused', async () => {
    const { user } = await createUser(server, c, adminKey, { username: 'nopw' });
    const before = await c.get(`${AUTH}/audit?limit=1000`, { key: adminKey });
    const refused = await c.put(`${AUTH}/users/${user.id}`, { key: adminKey, body: { role: 'admin', name: 'Would Be Admin' } });
    expect(errorCode(refused)).toBe('user.admin_needs_password');
    const after = await c.get(`${AUTH}/audit?limit=1000`, { key: adminKey });
    expect(after.body.length).toBe(before.body.length);
    expect((await c.get(`${AUTH}/users/${user.id}`, { key: adminKey })).body).toMatchObject({ role: 'user', name: null });
  });

  it('is read with audit:read only, and filtered, paged and checked like the users list', async () => {
    const { key } = await createUser(server, c, adminKey, { username: 'nosy', password: 'nosy-password' });
    expect((await c.get(`${AUTH}/audit`, { key })).status).toBe(403);
    expect((await client(server.url).get(`${AUTH}/audit`)).status).toBe(401);
    const bad = await c.get(`${AUTH}/audit?type=user.exploded`, { key: adminKey });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^type: /);
    expect((await c.get(`${AUTH}/audit?since=yesterday`, { key: adminKey })).status).toBe(400);
    const page = await c.get(`${AUTH}/audit?limit=2&offset=1&actor=1&since=1d`, { key: adminKey });
    expect(page.status).toBe(200);
    expect(page.body).toHaveLength(2);
    expect(Number(page.headers.get('x-total-count'))).toBeGreaterThan(2);
    expect(page.body.every((e: Entry) => e.actor.userId === 1)).toBe(true);
    expect(Date.parse(page.body[0].at)).toBeGreaterThanOrEqual(Date.parse(page.body[1].at));
  });

  it('prunes entries older than the retention', async () => {
    await server.usher.db('audit_log').insert({ at: Date.now() - 91 * 86_400_000, type: 'user.updated', actor_kind: 'system', detail: '{}' });
    expect(await server.usher.audit.prune()).toBe(1);
    const left = await server.usher.db('audit_log').where('at', '<', Date.now() - 90 * 86_400_000);
    expect(left).toHaveLength(0);
  });
});
