import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { auditEntries } from './helpers/audit.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const ROLES = `${AUTH}/roles`;
const USERS = `${AUTH}/users`;
const APP_PERMISSIONS = [
  { name: 'cert.create', description: 'Issue a certificate.' },
  { name: 'cert.revoke', description: 'Revoke a certificate.' },
];

describe.each(DB_KINDS)('roles and permissions on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let admin: string;
  let adminId: number;

  beforeAll(async () => {
    server = await startServer(kind, { settings: { permissions: [APP_PERMISSIONS[0]] }, hooks: { permissions: [APP_PERMISSIONS[1]!] } });
    c = client(server.url);
    admin = await setupAdmin(c);
    adminId = (await c.get(`${AUTH}/me`, { key: admin })).body.id;
  });
  afterAll(() => server?.close());

  /** A fresh user of `role` (a password: admins need one), with their key. */
  let made = 0;
  const user = async (role = 'user') => {
    made++;
    return createUser(server, c, admin, { username: `person${made}`, password: 'a-long-password', role });
  };
  const createRole = async (body: Record<string, unknown>, key = admin) => {
    const res = await c.post(ROLES, { key, body });
    expect(res.status, res.text).toBe(201);
    return res.body;
  };

  it("lists Usher's permissions and the host app's (config and createUsher), to roles:read holders only", async () => {
    const res = await c.get(`${AUTH}/permissions`, { key: admin });
    expect(res.status).toBe(200);
    const names = res.body.map((p: { name: string }) => p.name);
    for (const name of ['users.list', 'users.set-role', 'users.set-permissions', 'roles.manage', 'audit.read', 'invites.create', 'self.read']) expect(names).toContain(name);
    expect(res.body).toContainEqual({ ...APP_PERMISSIONS[0], source: 'app' });
    expect(res.body).toContainEqual({ ...APP_PERMISSIONS[1], source: 'app' });
    expect(res.body.find((p: { name: string }) => p.name === 'users.list')).toMatchObject({ source: 'usher', description: expect.stringMatching(/./) });
    const { key } = await user();
    expect(errorCode(await c.get(`${AUTH}/permissions`, { key }))).toBe('auth.forbidden');
    expect(errorCode(await c.get(ROLES, { key }))).toBe('auth.forbidden');
  });

  it('declares every capability a route checks as a permission', () => {
    const checked = server.usher.endpoints.mounted.map((m) => m.endpoint.access).filter((a) => a.includes(':'));
    expect(checked.length).toBeGreaterThan(10);
    for (const access of checked) expect(server.usher.authz.isDeclared(access.replace(':', '.')), access).toBe(true);
  });

  it('shows the built-in roles: admin holds every permission, the host app’s included; user inherits nothing', async () => {
    const res = await c.get(ROLES, { key: admin });
    expect(res.status).toBe(200);
    const byName = Object.fromEntries(res.body.map((r: { name: string }) => [r.name, r]));
    expect(byName.user).toMatchObject({ builtIn: true, inherits: [], permissions: ['self.api-key', 'self.api-keys', 'self.read', 'self.recovery-code', 'self.sessions', 'self.update'] });
    expect(byName.admin).toMatchObject({ builtIn: true, inherits: ['user'] });
    expect(byName.admin.effective).toEqual(expect.arrayContaining(['cert.create', 'cert.revoke', 'roles.manage', 'users.set-permissions', 'self.read']));
    expect(server.usher.authz.can('admin', 'cert', 'create')).toBe(true);
    expect(server.usher.authz.can('user', 'cert', 'create')).toBe(false);
  });

  it('creates a custom role that users can hold at once, edits it with effect on the very next request, and audits each change', async () => {
    const role = await createRole({ name: 'editor', description: 'Reads users.', inherits: ['user'], permissions: ['users.list', 'users:read'] });
    expect(role).toEqual({
      name: 'editor',
      description: 'Reads users.',
      builtIn: false,
      inherits: ['user'],
      permissions: ['users.list', 'users.read'],
      effective: ['self.api-key', 'self.api-keys', 'self.read', 'self.recovery-code', 'self.sessions', 'self.update', 'users.list', 'users.read'],
    });
    expect((await c.get(`${ROLES}/editor`, { key: admin })).body).toEqual(role);
    const other = await user();
    const ed = await user();
    expect((await c.get(USERS, { key: ed.key })).status).toBe(403);
    const promoted = await c.patch(`${USERS}/${ed.user.id}`, { key: admin, body: { role: 'editor' } });
    expect(promoted.status, promoted.text).toBe(200);
    expect(promoted.body.role).toBe('editor');
    expect((await c.get(USERS, { key: ed.key })).status).toBe(200);
    expect((await c.get(`${USERS}/${other.user.id}`, { key: ed.key })).status).toBe(200);
    expect(errorCode(await c.post(USERS, { key: ed.key, body: { username: 'nope' } }))).toBe('auth.forbidden');

    const edited = await c.put(`${ROLES}/editor`, { key: admin, body: { permissions: ['users.list'] } });
    expect(edited.status, edited.text).toBe(200);
    expect(edited.body).toMatchObject({ description: 'Reads users.', inherits: ['user'], permissions: ['users.list'] });
    expect(errorCode(await c.get(`${USERS}/${other.user.id}`, { key: ed.key }))).toBe('auth.forbidden');

    const [changed, created] = await auditEntries(server, c, admin, 'policy.changed');
    expect(created).toMatchObject({ actor: { kind: 'user', userId: adminId }, targetUserId: null, detail: { change: 'role_created', role: 'editor', inherits: 'user', permissions: 'users.list,users.read' } });
    expect(changed).toMatchObject({ actor: { kind: 'user', userId: adminId }, detail: { change: 'role_updated', role: 'editor', permissionsAdded: '', permissionsRemoved: 'users.read', digest: server.usher.authz.digest } });
  });

  it('refuses editing, renaming or deleting the built-in roles, unknown roles, and bad input', async () => {
    expect(errorCode(await c.put(`${ROLES}/admin`, { key: admin, body: { permissions: [] } }))).toBe('role.built_in');
    expect(errorCode(await c.put(`${ROLES}/user`, { key: admin, body: { name: 'member' } }))).toBe('role.built_in');
    expect(errorCode(await c.del(`${ROLES}/user`, { key: admin }))).toBe('role.built_in');
    expect(errorCode(await c.del(`${ROLES}/admin`, { key: admin }))).toBe('role.built_in');
    expect(errorCode(await c.get(`${ROLES}/ghost`, { key: admin }))).toBe('role.not_found');
    expect(errorCode(await c.put(`${ROLES}/ghost`, { key: admin, body: {} }))).toBe('role.not_found');
    expect(errorCode(await c.del(`${ROLES}/ghost`, { key: admin }))).toBe('role.not_found');
    expect(errorCode(await c.post(ROLES, { key: admin, body: { name: 'admin' } }))).toBe('role.exists');
    expect(errorCode(await c.post(ROLES, { key: admin, body: { name: 'Admin' } }))).toBe('role.exists');
    const bad = [
      { name: 'x', permissions: ['users.fly'] },
      { name: 'x', permissions: ['nodot'] },
      { name: 'x', inherits: ['ghost'] },
      { name: 'x', inherits: ['admin'] },
      { name: 'x', inherits: ['x'] },
      { name: '9lives' },
      { name: 'x', extra: true },
    ];
    for (const body of bad) expect(errorCode(await c.post(ROLES, { key: admin, body })), JSON.stringify(body)).toBe('request.invalid');
    await createRole({ name: 'loopA' });
    await createRole({ name: 'loopB', inherits: ['loopA'] });
    expect(errorCode(await c.put(`${ROLES}/loopA`, { key: admin, body: { inherits: ['loopB'] } }))).toBe('request.invalid');
    // Renamed in the same request, the cycle is still one.
    expect(errorCode(await c.put(`${ROLES}/loopA`, { key: admin, body: { name: 'loopZ', inherits: ['loopB'] } }))).toBe('request.invalid');
    expect(errorCode(await c.put(`${ROLES}/loopA`, { key: admin, body: { name: 'loopZ', inherits: ['loopZ'] } }))).toBe('request.invalid');
    expect(server.usher.authz.roles.has('loopA')).toBe(true);
    expect(errorCode(await c.del(`${ROLES}/loopA`, { key: admin }))).toBe('role.in_use');
    expect((await c.del(`${ROLES}/loopB`, { key: admin })).status).toBe(204);
    expect((await c.del(`${ROLES}/loopA`, { key: admin })).status).toBe(204);
    expect(errorCode(await c.patch(`${USERS}/${adminId}`, { key: admin, body: { role: 'loopA' } }))).toBe('request.invalid');
  });

  it('renames a custom role with its holders; deletes a role in use only with moveTo, moving them', async () => {
    await createRole({ name: 'tmp', permissions: ['self.read'] });
    const holder = await user('tmp');
    expect(errorCode(await c.put(`${ROLES}/tmp`, { key: admin, body: { name: 'USER' } }))).toBe('role.exists');
    const renamed = await c.put(`${ROLES}/tmp`, { key: admin, body: { name: 'temp' } });
    expect(renamed.status, renamed.text).toBe(200);
    expect(renamed.body.name).toBe('temp');
    expect((await c.get(`${USERS}/${holder.user.id}`, { key: admin })).body.role).toBe('temp');
    expect(errorCode(await c.get(`${ROLES}/tmp`, { key: admin }))).toBe('role.not_found');

    const refused = await c.del(`${ROLES}/temp`, { key: admin });
    expect(refused.status).toBe(409);
    expect(errorCode(refused)).toBe('role.in_use');
    expect(errorCode(await c.del(`${ROLES}/temp?moveTo=ghost`, { key: admin }))).toBe('request.invalid');
    expect((await c.del(`${ROLES}/temp?moveTo=user`, { key: admin })).status).toBe(204);
    expect((await c.get(`${USERS}/${holder.user.id}`, { key: admin })).body.role).toBe('user');
    const [moved] = await auditEntries(server, c, admin, 'user.role_changed', holder.user.id);
    expect(moved).toMatchObject({ actor: { kind: 'user', userId: adminId }, detail: { from: 'temp', to: 'user' } });
    const [deleted] = await auditEntries(server, c, admin, 'policy.changed');
    expect(deleted).toMatchObject({ detail: { change: 'role_deleted', role: 'temp', movedTo: 'user', moved: 1 } });
  });

  it('answers GET /me/permissions with what the caller holds now, described, within a scoped key\'s scope', async () => {
    const all = (await c.get(`${AUTH}/permissions`, { key: admin })).body as { name: string }[];
    expect((await c.get(`${AUTH}/me/permissions`, { key: admin })).body).toEqual(all);

    const { user: u, key } = await user();
    const mine = await c.get(`${AUTH}/me/permissions`, { key });
    expect(mine.status).toBe(200);
    expect(mine.body.map((p: { name: string }) => p.name).sort()).toEqual(['self.api-key', 'self.api-keys', 'self.read', 'self.recovery-code', 'self.sessions', 'self.update']);
    expect(mine.body.find((p: { name: string }) => p.name === 'self.read')).toMatchObject({ source: 'usher', description: expect.stringMatching(/./) });
    // Without roles:read, the catalogue itself stays closed.
    expect(errorCode(await c.get(`${AUTH}/permissions`, { key }))).toBe('auth.forbidden');

    // A direct grant of the host app's permission shows at once, with the app's description.
    expect((await c.patch(`${USERS}/${u.id}/permissions`, { key: admin, body: { grant: ['cert.create'] } })).status).toBe(200);
    expect((await c.get(`${AUTH}/me/permissions`, { key })).body).toContainEqual({ ...APP_PERMISSIONS[0], source: 'app' });

    // A scoped key sees its scope, not its owner's rights.
    const scoped = await c.post(`${AUTH}/me/api-keys`, { key, body: { name: 'reader', permissions: ['self.read', 'cert.create'] } });
    expect(scoped.status, scoped.text).toBe(201);
    const seen = await c.get(`${AUTH}/me/permissions`, { key: scoped.body.key });
    expect(seen.body.map((p: { name: string }) => p.name).sort()).toEqual(['cert.create', 'self.read']);
    expect(errorCode(await c.get(`${AUTH}/me/permissions`))).toBe('auth.unauthenticated');
  });

  it('grants and revokes permissions of one user, in effect on the next request', async () => {
    const { user: u, key } = await user();
    expect(errorCode(await c.get(USERS, { key }))).toBe('auth.forbidden');
    const granted = await c.patch(`${USERS}/${u.id}/permissions`, { key: admin, body: { grant: ['users.list', 'cert:create'] } });
    expect(granted.status, granted.text).toBe(200);
    expect(granted.body).toEqual({
      role: 'user',
      inherited: ['self.api-key', 'self.api-keys', 'self.read', 'self.recovery-code', 'self.sessions', 'self.update'],
      direct: ['cert.create', 'users.list'],
      effective: ['cert.create', 'self.api-key', 'self.api-keys', 'self.read', 'self.recovery-code', 'self.sessions', 'self.update', 'users.list'],
    });
    expect((await c.get(USERS, { key })).status).toBe(200);
    expect(server.usher.authz.can(u, 'cert', 'create')).toBe(true);
    expect(server.usher.authz.can('user', 'cert', 'create')).toBe(false);
    expect((await c.get(`${USERS}/${u.id}/permissions`, { key })).body).toEqual(granted.body);
    expect(errorCode(await c.get(`${USERS}/${adminId}/permissions`, { key }))).toBe('auth.forbidden');
    expect(errorCode(await c.patch(`${USERS}/${u.id}/permissions`, { key, body: { revoke: ['users.list'] } }))).toBe('auth.forbidden');

    const revoked = await c.patch(`${USERS}/${u.id}/permissions`, { key: admin, body: { revoke: ['users.list'] } });
    expect(revoked.body.direct).toEqual(['cert.create']);
    expect(errorCode(await c.get(USERS, { key }))).toBe('auth.forbidden');
    expect(errorCode(await c.patch(`${USERS}/${u.id}/permissions`, { key: admin, body: { grant: ['users.list'], revoke: ['users.list'] } }))).toBe('request.invalid');
    expect(errorCode(await c.patch(`${USERS}/${u.id}/permissions`, { key: admin, body: { grant: ['users.fly'] } }))).toBe('request.invalid');
    expect(errorCode(await c.patch(`${USERS}/99999/permissions`, { key: admin, body: { grant: ['users.list'] } }))).toBe('user.not_found');
    expect(errorCode(await c.get(`${USERS}/99999/permissions`, { key: admin }))).toBe('user.not_found');

    const [entry] = await auditEntries(server, c, admin, 'policy.changed', u.id);
    expect(entry).toMatchObject({ actor: { kind: 'user', userId: adminId }, targetUserId: u.id, detail: { change: 'user_permissions', granted: '', revoked: 'users.list' } });
  });

  it('answers 401 to anonymous callers on every route', async () => {
    for (const [method, path] of [
      ['GET', `${AUTH}/permissions`],
      ['GET', ROLES],
      ['POST', ROLES],
      ['GET', `${ROLES}/user`],
      ['PUT', `${ROLES}/user`],
      ['DELETE', `${ROLES}/user`],
      ['GET', `${USERS}/${adminId}/permissions`],
      ['PATCH', `${USERS}/${adminId}/permissions`],
    ] as const) {
      const res = await c.call(method, path, method === 'POST' || method === 'PUT' || method === 'PATCH' ? { body: {} } : {});
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(errorCode(res)).toBe('auth.unauthenticated');
    }
  });

  describe('a hierarchy of custom roles, as a truth table on the database-backed policy', () => {
    beforeAll(async () => {
      await createRole({ name: 'tt-viewer', permissions: ['users.list'] });
      await createRole({ name: 'tt-support', inherits: ['tt-viewer'], permissions: ['users.reset-password'] });
      await createRole({ name: 'tt-lead', inherits: ['tt-support', 'user'], permissions: ['cert.create'] });
    });

    it.each([
      ['tt-viewer', 'users.list', true],
      ['tt-viewer', 'users.reset-password', false],
      ['tt-viewer', 'self.read', false],
      ['tt-viewer', 'cert.create', false],
      ['tt-support', 'users.list', true],
      ['tt-support', 'users.reset-password', true],
      ['tt-support', 'cert.create', false],
      ['tt-support', 'users.delete', false],
      ['tt-lead', 'users.list', true],
      ['tt-lead', 'users.reset-password', true],
      ['tt-lead', 'cert.create', true],
      ['tt-lead', 'self.read', true],
      ['tt-lead', 'cert.revoke', false],
      ['tt-lead', 'users.delete', false],
      ['tt-lead', 'roles.manage', false],
      ['admin', 'cert.revoke', true],
      ['user', 'users.list', false],
    ])('%s holds %s: %s', (role, permission, allowed) => {
      const [object, action] = permission.split('.') as [string, string];
      expect(server.usher.authz.can(role, object, action)).toBe(allowed);
    });

    it('follows an edit down the hierarchy at once: what the middle role loses, the top one loses too', async () => {
      expect(server.usher.authz.impliedRoles('tt-lead')).toEqual(expect.arrayContaining(['tt-lead', 'tt-support', 'tt-viewer', 'user']));
      expect((await c.put(`${ROLES}/tt-support`, { key: admin, body: { inherits: [] } })).status).toBe(200);
      expect(server.usher.authz.can('tt-lead', 'users', 'list')).toBe(false);
      expect(server.usher.authz.can('tt-lead', 'users', 'reset-password')).toBe(true);
      expect((await c.get(`${ROLES}/tt-lead`, { key: admin })).body.effective).not.toContain('users.list');
    });
  });

  describe('no escalation: a role manager grants only what they hold', () => {
    let manager: { user: { id: number }; key: string };
    beforeAll(async () => {
      await createRole({
        name: 'manager',
        inherits: ['user'],
        permissions: ['roles.read', 'roles.manage', 'users.list', 'users.read', 'users.create', 'users.update', 'users.set-role', 'users.set-permissions'],
      });
      await createRole({ name: 'viewer', permissions: ['users.list'] });
      await createRole({ name: 'deleter', permissions: ['users.delete'] });
      manager = await user('manager');
    });

    it.each([
      ['creating a role with a permission it lacks', () => c.post(ROLES, { key: manager.key, body: { name: 'up1', permissions: ['users.delete'] } })],
      ['creating a role with a host permission it lacks', () => c.post(ROLES, { key: manager.key, body: { name: 'up2', permissions: ['cert.create'] } })],
      ['creating a role inheriting one that holds more', () => c.post(ROLES, { key: manager.key, body: { name: 'up3', inherits: ['deleter'] } })],
      ['adding a permission it lacks to a role', () => c.put(`${ROLES}/viewer`, { key: manager.key, body: { permissions: ['users.list', 'audit.read'] } })],
      ['making a role inherit one that holds more', () => c.put(`${ROLES}/viewer`, { key: manager.key, body: { inherits: ['deleter'] } })],
      ['adding a permission it lacks to its own role', () => c.put(`${ROLES}/manager`, { key: manager.key, body: { permissions: ['roles.manage', 'users.delete'] } })],
      ['granting a user a permission it lacks', async () => c.patch(`${USERS}/${(await user()).user.id}/permissions`, { key: manager.key, body: { grant: ['users.delete'] } })],
      ['granting itself a permission it lacks', () => c.patch(`${USERS}/${manager.user.id}/permissions`, { key: manager.key, body: { grant: ['audit.read'] } })],
      ['making a user admin', async () => c.patch(`${USERS}/${(await user()).user.id}`, { key: manager.key, body: { role: 'admin' } })],
      ['making a user a role that holds more', async () => c.patch(`${USERS}/${(await user()).user.id}`, { key: manager.key, body: { role: 'deleter' } })],
      ['making itself admin', () => c.patch(`${USERS}/${manager.user.id}`, { key: manager.key, body: { role: 'admin' } })],
      ['creating an admin', () => c.post(USERS, { key: manager.key, body: { username: 'boss', password: 'a-long-password', role: 'admin' } })],
      ['moving holders of a deleted role to a role that holds more', () => c.del(`${ROLES}/doomed?moveTo=deleter`, { key: manager.key })],
    ])('refuses %s (403 authz.escalation), changing nothing', async (_, attempt) => {
      if (!server.usher.authz.roles.has('doomed')) {
        await createRole({ name: 'doomed', permissions: ['users.list'] });
        await user('doomed');
      }
      const before = server.usher.authz.digest;
      const res = await attempt();
      expect(res.status, res.text).toBe(403);
      expect(errorCode(res)).toBe('authz.escalation');
      expect(server.usher.authz.digest).toBe(before);
    });

    it('allows what it holds: roles of its permissions, granting them, giving such roles', async () => {
      await createRole({ name: 'lister', permissions: ['users.list'] }, manager.key);
      const target = await user();
      expect((await c.patch(`${USERS}/${target.user.id}`, { key: manager.key, body: { role: 'lister' } })).status).toBe(200);
      expect((await c.patch(`${USERS}/${target.user.id}/permissions`, { key: manager.key, body: { grant: ['users.read'] } })).status).toBe(200);
      // Removing what it lacks is no escalation.
      expect((await c.put(`${ROLES}/deleter`, { key: manager.key, body: { permissions: [] } })).status).toBe(200);
    });
  });
  // The concurrency rail (two admins demoting each other, 200 trials) is in admin-rail.test.ts.
});
