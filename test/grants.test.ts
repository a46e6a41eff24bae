import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { auditEntries } from './helpers/audit.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { getFrom, proxySettings } from './helpers/proxy.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const USERS = `${AUTH}/users`;

interface GrantBody {
  id: number;
  type: string;
  resourceId: string;
  actions: string[];
  source: string;
}

const RESOURCES = [
  { type: 'library', actions: ['read', 'write'], description: 'A music library.', defaultForNewUsers: [1] },
  { type: 'share', description: 'A shared folder.' },
];
const GROUP_GRANTS = [
  { group: 'family', provider: 'proxy', type: 'library', id: 3 },
  { group: 'editors', type: 'library', id: 3, actions: ['read', 'write'] },
  { group: 'kids', provider: '*', type: 'share', id: 'cartoons' },
  { group: 'family', provider: 'oidc:elsewhere', type: 'library', id: 8 },
];

describe.each(DB_KINDS)('access grants on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let admin: string;
  let adminId: number;

  beforeAll(async () => {
    server = await startServer(kind, { settings: { ...proxySettings(), resources: RESOURCES, groupGrants: GROUP_GRANTS } });
    c = client(server.url);
    admin = await setupAdmin(c);
    adminId = (await c.get(`${AUTH}/me`, { key: admin })).body.id;
  });
  afterAll(() => server?.close());

  let made = 0;
  const user = async (role = 'user') => {
    made++;
    return createUser(server, c, admin, { username: `person${made}`, password: 'a-long-password', role });
  };
  const grantsOf = async (id: number, key = admin): Promise<GrantBody[]> => {
    const res = await c.get(`${USERS}/${id}/grants`, { key });
    expect(res.status, res.text).toBe(200);
    return res.body;
  };
  const brief = (grants: GrantBody[]) => grants.map((g) => `${g.type}:${g.resourceId}:${g.actions.join('+')}:${g.source}`).sort();

  it('lists the declared resource types with their actions to anyone signed in (GET /resources)', async () => {
    const { key } = await user();
    const res = await c.get(`${AUTH}/resources`, { key });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual([
      { type: 'library', actions: ['read', 'write'], description: 'A music library.' },
      { type: 'share', actions: ['read'], description: 'A shared folder.' },
    ]);
    expect((await c.get(`${AUTH}/resources`)).status).toBe(401);
  });

  it('gives the default grants to the setup admin and to users made with POST /users, in their creation, audited', async () => {
    expect(brief(await grantsOf(adminId))).toEqual(['library:1:read:default']);
    const { user: bob, key } = await user();
    expect(brief(await grantsOf(bob.id))).toEqual(['library:1:read:default']);
    // GET /users/{id} carries them; the list rows do not.
    const detail = await c.get(`${USERS}/${bob.id}`, { key });
    expect(detail.status).toBe(200);
    expect(brief(detail.body.grants)).toEqual(['library:1:read:default']);
    const list = await c.get(USERS, { key: admin });
    expect(list.body.every((u: Record<string, unknown>) => !('grants' in u))).toBe(true);
    const audited = await auditEntries(server, c, admin, 'grant.created', bob.id);
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({ actor: { kind: 'user', userId: adminId }, detail: { type: 'library', resource: '1', actions: 'read', source: 'default' } });
  });

  it('grants, lists and revokes through the API, with 409 for a second grant on a resource and 404s', async () => {
    const { user: bob, key } = await user();
    const res = await c.post(`${USERS}/${bob.id}/grants`, { key: admin, body: { type: 'library', id: 5, actions: ['write', 'read'] } });
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get('location')).toBe(`${USERS}/${bob.id}/grants`);
    expect(res.body).toMatchObject({ userId: bob.id, type: 'library', resourceId: '5', actions: ['read', 'write'], source: 'api', createdBy: adminId });
    const share = await c.post(`${USERS}/${bob.id}/grants`, { key: admin, body: { type: 'share', id: '*' } });
    expect(share.status).toBe(201);
    expect(share.body).toMatchObject({ resourceId: '*', actions: ['read'] });
    expect(errorCode(await c.post(`${USERS}/${bob.id}/grants`, { key: admin, body: { type: 'library', id: '5' } }))).toBe('grant.exists');
    expect(errorCode(await c.post(`${USERS}/${bob.id}/grants`, { key: admin, body: { type: 'library', id: 1, actions: ['write'] } }))).toBe('grant.exists');
    // Its owner reads their own; nobody else without grants:read.
    expect(brief(await grantsOf(bob.id, key))).toEqual(['library:1:read:default', 'library:5:read+write:api', 'share:*:read:api']);
    const other = await user();
    expect(errorCode(await c.get(`${USERS}/${bob.id}/grants`, { key: other.key }))).toBe('auth.forbidden');
    expect(errorCode(await c.post(`${USERS}/${bob.id}/grants`, { key: other.key, body: { type: 'library', id: 1 } }))).toBe('auth.forbidden');
    expect(errorCode(await c.del(`${USERS}/${bob.id}/grants/${res.body.id}`, { key: other.key }))).toBe('auth.forbidden');

    expect((await c.del(`${USERS}/${bob.id}/grants/${res.body.id}`, { key: admin })).status).toBe(204);
    expect(errorCode(await c.del(`${USERS}/${bob.id}/grants/${res.body.id}`, { key: admin }))).toBe('grant.not_found');
    // Another user's grant id through this user: not found.
    expect(errorCode(await c.del(`${USERS}/${other.user.id}/grants/${share.body.id}`, { key: admin }))).toBe('grant.not_found');
    expect(errorCode(await c.get(`${USERS}/999999/grants`, { key: admin }))).toBe('user.not_found');
    expect(errorCode(await c.post(`${USERS}/999999/grants`, { key: admin, body: { type: 'library', id: 1 } }))).toBe('user.not_found');
    expect(brief(await grantsOf(bob.id))).toEqual(['library:1:read:default', 'share:*:read:api']);
    const revoked = await auditEntries(server, c, admin, 'grant.revoked', bob.id);
    expect(revoked[0]).toMatchObject({ actor: { kind: 'user', userId: adminId }, detail: { grant: res.body.id, type: 'library', resource: '5', actions: 'read,write', source: 'api' } });
  });

  it.each([
    ['an unknown type', { type: 'album', id: 1 }, /^type: must be one of library, share/],
    ['an action the type lacks', { type: 'share', id: 1, actions: ['write'] }, /^actions: write is not an action of share/],
    ['an id with a space', { type: 'library', id: 'a b' }, /^id: /],
    ['no id', { type: 'library' }, /^id: /],
    ['an unknown field', { type: 'library', id: 1, level: 3 }, /level/],
  ])('refuses %s with 400 naming the field', async (_what, body, message) => {
    const res = await c.post(`${USERS}/${adminId}/grants`, { key: admin, body });
    expect(errorCode(res)).toBe('request.invalid');
    expect(res.body.error.message).toMatch(message);
  });

  it('lets a non-admin holder of grants:manage give and revoke only what they hold themselves', async () => {
    expect((await c.post(`${AUTH}/roles`, { key: admin, body: { name: 'librarian', permissions: ['grants.manage', 'grants.read'] } })).status).toBe(201);
    const lib = await user('librarian');
    const { user: bob } = await user();
    // The librarian holds library 1 (read), their default.
    const ok = await c.post(`${USERS}/${bob.id}/grants`, { key: lib.key, body: { type: 'share', id: 'x' } });
    expect(errorCode(ok)).toBe('authz.escalation');
    for (const body of [{ type: 'library', id: 1, actions: ['write'] }, { type: 'library', id: 2 }, { type: 'library', id: '*' }]) {
      const res = await c.post(`${USERS}/${bob.id}/grants`, { key: lib.key, body });
      expect(errorCode(res), JSON.stringify(body)).toBe('authz.escalation');
    }
    const byAdmin = await c.post(`${USERS}/${bob.id}/grants`, { key: admin, body: { type: 'library', id: 4 } });
    expect(errorCode(await c.del(`${USERS}/${bob.id}/grants/${byAdmin.body.id}`, { key: lib.key }))).toBe('authz.escalation');
    // Given every library, the librarian may give any one of them, and take one back.
    expect((await c.post(`${USERS}/${lib.user.id}/grants`, { key: admin, body: { type: 'library', id: '*' } })).status).toBe(201);
    const seven = await c.post(`${USERS}/${bob.id}/grants`, { key: lib.key, body: { type: 'library', id: 7 } });
    expect(seven.status, seven.text).toBe(201);
    expect(seven.body.createdBy).toBe(lib.user.id);
    expect((await c.del(`${USERS}/${bob.id}/grants/${byAdmin.body.id}`, { key: lib.key })).status).toBe(204);
    expect(errorCode(await c.post(`${USERS}/${bob.id}/grants`, { key: lib.key, body: { type: 'library', id: 9, actions: ['write'] } }))).toBe('authz.escalation');
    expect(brief(await grantsOf(bob.id))).toEqual(['library:1:read:default', 'library:7:read:api']);
  });

  it('syncs grants from proxy groups at each sign-in: present, changed, empty, absent; API grants stay', async () => {
    const as = (groups?: string) => getFrom(server, '127.0.0.1', { 'Remote-User': 'carol', ...(groups === undefined ? {} : { 'Remote-Groups': groups }) });
    const first = await as('family');
    expect(first.status, first.text).toBe(200);
    const carol = first.body.id as number;
    // A new account: its defaults, and the group's grant (not the rule of another provider).
    expect(brief(await grantsOf(carol))).toEqual(['library:1:read:default', 'library:3:read:group:proxy:family']);
    expect((await as('family,editors')).status).toBe(200);
    expect(brief(await grantsOf(carol))).toEqual(['library:1:read:default', 'library:3:read+write:group:proxy:family']);
    const api = await c.post(`${USERS}/${carol}/grants`, { key: admin, body: { type: 'library', id: 9 } });
    expect(api.status).toBe(201);
    expect((await as('kids')).status).toBe(200);
    expect(brief(await grantsOf(carol))).toEqual(['library:1:read:default', 'library:9:read:api', 'share:cartoons:read:group:proxy:kids']);
    // No groups header: nothing changes.
    expect((await as()).status).toBe(200);
    expect(brief(await grantsOf(carol))).toEqual(['library:1:read:default', 'library:9:read:api', 'share:cartoons:read:group:proxy:kids']);
    // In no group: the group grants go, the others stay.
    expect((await as('')).status).toBe(200);
    expect(brief(await grantsOf(carol))).toEqual(['library:1:read:default', 'library:9:read:api']);
    // A rule never replaces a grant made through the API on the same resource, nor removes it.
    const three = await c.post(`${USERS}/${carol}/grants`, { key: admin, body: { type: 'library', id: 3 } });
    expect(three.status).toBe(201);
    expect((await as('editors')).status).toBe(200);
    expect((await as('other')).status).toBe(200);
    expect(brief(await grantsOf(carol))).toEqual(['library:1:read:default', 'library:3:read:api', 'library:9:read:api']);
    const created = await auditEntries(server, c, admin, 'grant.created', carol);
    // Newest first: the sign-ins' changes, then the account's creation (its default and its group's grant, by the provider).
    expect(created.filter((e) => e.actor.kind === 'idp').map((e) => e.detail.source)).toEqual(['group:proxy:kids', 'group:proxy:family', 'group:proxy:family', 'default']);
    const revoked = await auditEntries(server, c, admin, 'grant.revoked', carol);
    expect(revoked.map((e) => e.detail.source)).toEqual(['group:proxy:kids', 'group:proxy:family']);
    expect(revoked.every((e) => e.actor.kind === 'idp' && e.actor.provider === 'proxy')).toBe(true);
  });

  it('answers POST /authz/check for the caller, and for another user with users:read', async () => {
    const { user: bob, key } = await user();
    await c.post(`${USERS}/${bob.id}/grants`, { key: admin, body: { type: 'share', id: 'music' } });
    const checks = [
      { permission: 'users.list' },
      { permission: 'self:read' },
      { type: 'library', id: 1, action: 'read' },
      { type: 'library', id: '1', action: 'write' },
      { type: 'library', id: 2 },
      { type: 'share', id: 'music' },
    ];
    const mine = await c.post(`${AUTH}/authz/check`, { key, body: { checks } });
    expect(mine.status, mine.text).toBe(200);
    expect(mine.body).toEqual({ results: [false, true, true, false, false, true] });
    expect((await c.post(`${AUTH}/authz/check`, { key: admin, body: { checks } })).body).toEqual({ results: [true, true, true, true, true, true] });
    expect((await c.post(`${AUTH}/authz/check`, { key: admin, body: { checks, user: bob.id } })).body).toEqual(mine.body);
    expect(errorCode(await c.post(`${AUTH}/authz/check`, { key, body: { checks, user: adminId } }))).toBe('auth.forbidden');
    expect((await c.post(`${AUTH}/authz/check`, { key, body: { checks, user: bob.id } })).body).toEqual(mine.body);
    expect(errorCode(await c.post(`${AUTH}/authz/check`, { key: admin, body: { checks, user: 999999 } }))).toBe('user.not_found');
    // A disabled user holds nothing.
    expect((await c.post(`${USERS}/${bob.id}/status`, { key: admin, body: { active: false } })).status).toBe(200);
    expect((await c.post(`${AUTH}/authz/check`, { key: admin, body: { checks, user: bob.id } })).body).toEqual({ results: checks.map(() => false) });
    expect((await c.post(`${AUTH}/authz/check`, { body: { checks } })).status).toBe(401);
  });

  it.each([
    ['more than 100 checks', { checks: Array.from({ length: 101 }, () => ({ permission: 'self.read' })) }, /^checks: /],
    ['no checks', { checks: [] }, /^checks: /],
    ['an unknown type', { checks: [{ permission: 'self.read' }, { type: 'album', id: 1 }] }, /^checks\[1\]\.type: /],
    ['an unknown action', { checks: [{ type: 'share', id: 1, action: 'write' }] }, /^checks\[0\]\.action: /],
    ['an undeclared permission', { checks: [{ permission: 'cert.create' }] }, /^checks\[0\]\.permission: /],
  ])('refuses a check with %s (400 naming the field)', async (_what, body, message) => {
    const res = await c.post(`${AUTH}/authz/check`, { key: admin, body });
    expect(errorCode(res)).toBe('request.invalid');
    expect(res.body.error.message).toMatch(message);
  });

  it('answers GET /authz/resources: every resource for admins and * grants, else the ids granted', async () => {
    const { user: bob, key } = await user();
    await c.post(`${USERS}/${bob.id}/grants`, { key: admin, body: { type: 'library', id: 12, actions: ['read', 'write'] } });
    expect((await c.get(`${AUTH}/authz/resources?type=library&action=read`, { key })).body).toEqual({ ids: ['1', '12'] });
    expect((await c.get(`${AUTH}/authz/resources?type=library`, { key })).body).toEqual({ ids: ['1', '12'] });
    expect((await c.get(`${AUTH}/authz/resources?type=library&action=write`, { key })).body).toEqual({ ids: ['12'] });
    expect((await c.get(`${AUTH}/authz/resources?type=share`, { key })).body).toEqual({ ids: [] });
    expect((await c.get(`${AUTH}/authz/resources?type=share`, { key: admin })).body).toEqual({ all: true });
    await c.post(`${USERS}/${bob.id}/grants`, { key: admin, body: { type: 'share', id: '*' } });
    expect((await c.get(`${AUTH}/authz/resources?type=share`, { key })).body).toEqual({ all: true });
    const bad = await c.get(`${AUTH}/authz/resources?type=album`, { key });
    expect(errorCode(bad)).toBe('request.invalid');
    expect(bad.body.error.message).toMatch(/^type: /);
    expect(errorCode(await c.get(`${AUTH}/authz/resources?type=share&action=write`, { key }))).toBe('request.invalid');
    expect((await c.get(`${AUTH}/authz/resources?type=share`)).status).toBe(401);
  });

  it('gives one grant per resource when the same grant is asked for at once', async () => {
    const { user: bob } = await user();
    const replies = await Promise.all(Array.from({ length: 6 }, () => c.post(`${USERS}/${bob.id}/grants`, { key: admin, body: { type: 'library', id: 77 } })));
    expect(replies.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    expect(replies.filter((r) => r.status === 409).every((r) => errorCode(r) === 'grant.exists')).toBe(true);
    expect(brief(await grantsOf(bob.id))).toEqual(['library:1:read:default', 'library:77:read:api']);
  });

  it('gives the bootstrap admin of the configuration the default grants', async () => {
    const other = await startServer(kind, { settings: { resources: [{ type: 'library', defaultForNewUsers: ['*'] }], bootstrap: { adminUsername: 'root', adminPassword: 'root-password' } } });
    try {
      const root = await other.usher.users.findByUsername('root');
      expect(root).not.toBeNull();
      expect((await other.usher.grants.list(root!.id)).map((g) => [g.type, g.resourceId, g.actions, g.source])).toEqual([['library', '*', ['read'], 'default']]);
    } finally {
      await other.close();
    }
  });

  it("takes a deleted user's grants with them", async () => {
    const { user: bob } = await user();
    await c.post(`${USERS}/${bob.id}/grants`, { key: admin, body: { type: 'library', id: 40 } });
    expect(server.usher.authz.can({ id: bob.id, role: 'user' }, { type: 'library', id: 40 })).toBe(true);
    expect((await c.del(`${USERS}/${bob.id}`, { key: admin })).status).toBe(200);
    expect(server.usher.authz.can({ id: bob.id, role: 'user' }, { type: 'library', id: 40 })).toBe(false);
    const [{ n }] = (await server.usher.db('grants').where({ user_id: bob.id }).count({ n: '*' })) as { n: number | string }[];
    expect(Number(n)).toBe(0);
  });
});
