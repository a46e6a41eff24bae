import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInstances, startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';
import { SYSTEM_ORIGIN } from '../src/events/stream.js';

/** Findings of the security review of issue 12's morning (scoped keys, grants, sessions routes). */
const AUTH = '/api/v1/auth';
const USERS = `${AUTH}/users`;

describe.each(DB_KINDS)('issue 12 review on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let admin: string;
  let adminId: number;
  let n = 0;

  const someone = (body: Record<string, unknown> = {}) => createUser(server, c, admin, { username: `rv-user-${++n}`, password: 'a-long-password', ...body });
  async function scopedKey(owner: string, permissions: string[]): Promise<string> {
    const res = await c.post(`${AUTH}/me/api-keys`, { key: owner, body: { name: `rv-key-${++n}`, permissions } });
    expect(res.status, res.text).toBe(201);
    return res.body.key as string;
  }

  beforeAll(async () => {
    server = await startServer(kind, { settings: { resources: [{ type: 'library', actions: ['read', 'write'] }] } });
    c = client(server.url);
    admin = await setupAdmin(c);
    adminId = (await c.get(`${AUTH}/me`, { key: admin })).body.id;
  });
  afterAll(() => server?.close());

  describe('a scoped key grants nothing beyond its scope', () => {
    it('PATCH /users/{id}/permissions from a key scoped to users.set-permissions cannot grant users.delete', async () => {
      const key = await scopedKey(admin, ['users.set-permissions']);
      const { user } = await someone();
      const res = await c.patch(`${USERS}/${user.id}/permissions`, { key, body: { grant: ['users.delete'] } });
      expect(res.status, res.text).toBe(403);
      expect(errorCode(res)).toBe('authz.escalation');
      const perms = await c.get(`${USERS}/${user.id}/permissions`, { key: admin });
      expect(perms.body.direct).toEqual([]);
    });

    it('POST /users from a key scoped to users.create cannot make an admin', async () => {
      const key = await scopedKey(admin, ['users.create']);
      const res = await c.post(USERS, { key, body: { username: `rv-admin-${++n}`, password: 'a-long-password', role: 'admin' } });
      expect(res.status, res.text).toBe(403);
      expect(errorCode(res)).toBe('authz.escalation');
    });

    it('POST /roles from a key scoped to roles.manage cannot make a role holding what the scope lacks', async () => {
      const key = await scopedKey(admin, ['roles.manage']);
      const res = await c.post(`${AUTH}/roles`, { key, body: { name: `rv-role-${++n}`, permissions: ['users.delete'] } });
      expect(res.status, res.text).toBe(403);
      expect(errorCode(res)).toBe('authz.escalation');
    });
  });

  describe("a scoped key and the host app's resources", () => {
    it("an admin's key scoped to self.read does not write every library (the admin's implicit grants are a role check)", async () => {
      const key = await scopedKey(admin, ['self.read']);
      const set = await c.get(`${AUTH}/authz/resources?type=library&action=write`, { key });
      expect(set.status, set.text).toBe(200);
      expect(set.body).toEqual({ ids: [] });
      const check = await c.post(`${AUTH}/authz/check`, { key, body: { checks: [{ type: 'library', id: 5, action: 'write' }] } });
      expect(check.status, check.text).toBe(200);
      expect(check.body).toEqual({ results: [false] });
    });
  });

  describe("an admin's device token", () => {
    it("cannot set another user's password through PATCH /users/{id} (reset-password is withheld from it)", async () => {
      const { token } = await server.usher.devices.issue(adminId, { name: 'Admin phone' }, SYSTEM_ORIGIN);
      const { user } = await someone();
      const res = await c.patch(`${USERS}/${user.id}`, { headers: { authorization: `Bearer ${token}` }, body: { password: 'taken-over-password-1' } });
      expect(res.status, res.text).toBe(403);
      expect(errorCode(res)).toBe('auth.forbidden');
      const login = await c.post(`${AUTH}/login`, { body: { username: user.username, password: 'taken-over-password-1' } });
      expect(login.status).toBe(401);
    });
  });

  describe('who may reach an account that holds more', () => {
    it("a non-admin holding users.api-keys and users.end-sessions cannot list or revoke an admin's keys or sessions", async () => {
      const role = `rv-keymgr-${++n}`;
      const made = await c.post(`${AUTH}/roles`, { key: admin, body: { name: role, permissions: ['users.api-keys', 'users.end-sessions'] } });
      expect(made.status, made.text).toBe(201);
      const { key: helper } = await someone({ role });
      const adminScoped = await c.post(`${AUTH}/me/api-keys`, { key: admin, body: { name: `rv-admin-key-${++n}`, permissions: ['self.read'] } });
      expect(adminScoped.status, adminScoped.text).toBe(201);

      const keys = await c.get(`${USERS}/${adminId}/api-keys`, { key: helper });
      expect(keys.status, keys.text).toBe(403);
      const revoke = await c.del(`${USERS}/${adminId}/api-keys/${adminScoped.body.id}`, { key: helper });
      expect(revoke.status, revoke.text).toBe(403);
      const sessions = await c.get(`${USERS}/${adminId}/sessions`, { key: helper });
      expect(sessions.status, sessions.text).toBe(403);
      // The admin's key still works.
      expect((await c.get(`${AUTH}/me`, { key: adminScoped.body.key })).status).toBe(200);
    });
  });

  describe('malformed input is a 4xx, never a 500', () => {
    it('a NUL in a scoped key name', async () => {
      const res = await c.post(`${AUTH}/me/api-keys`, { key: admin, body: { name: 'music\u0000player', permissions: ['self.read'] } });
      expect(res.status, res.text).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
    });

    it('a NUL in a grant resource id', async () => {
      const { user } = await someone();
      const res = await c.post(`${USERS}/${user.id}/grants`, { key: admin, body: { type: 'library', id: 'a\u0000b' } });
      expect(res.status, res.text).toBe(400);
      expect(errorCode(res)).toBe('request.invalid');
    });

    it('a user id past 32 bits in POST /authz/check', async () => {
      const res = await c.post(`${AUTH}/authz/check`, { key: admin, body: { user: 2 ** 40, checks: [{ permission: 'self.read' }] } });
      expect([400, 404], res.text).toContain(res.status);
    });
  });
});

describe.each(DB_KINDS)('access grants across two instances on %s', (kind) => {
  let a: TestServer;
  let b: TestServer;
  let ca: Client;
  let cb: Client;

  beforeAll(async () => {
    [a, b] = await startInstances(kind, 2, {
      settings: { auth: { apiKeyCacheTtl: 0 }, cluster: { pollInterval: '100ms' }, resources: [{ type: 'library', actions: ['read', 'write'] }] },
    });
    ca = client(a!.url);
    cb = client(b!.url);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('a grant revoked through A stops allowing on B (as a policy change does, within the poll)', async () => {
    const admin = await setupAdmin(ca);
    const { user, key } = await createUser(a, ca, admin, { username: 'rv-two', password: 'a-long-password' });
    const made = await ca.post(`${USERS}/${user.id}/grants`, { key: admin, body: { type: 'library', id: 3 } });
    expect(made.status, made.text).toBe(201);
    const onB = async () => (await cb.post(`${AUTH}/authz/check`, { key, body: { checks: [{ type: 'library', id: 3 }] } })).body.results[0];
    await expect.poll(onB).toBe(true);
    expect((await ca.del(`${USERS}/${user.id}/grants/${made.body.id}`, { key: admin })).status).toBe(204);
    await expect.poll(onB).toBe(false);
  });
});
