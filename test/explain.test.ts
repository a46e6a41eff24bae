import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPolicyDir } from '../src/authz/enforcer.js';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const EXPLAIN = `${AUTH}/authz/explain`;
const ROLES = `${AUTH}/roles`;
const USERS = `${AUTH}/users`;

/** The shipped model and policy, plus a built-in `reader` and two g2 rules, as a deployment would write them. */
function policyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'usher-explain-policy-'));
  const shipped = defaultPolicyDir();
  copyFileSync(join(shipped, 'model.conf'), join(dir, 'model.conf'));
  const csv = readFileSync(join(shipped, 'policy.csv'), 'utf8');
  writeFileSync(join(dir, 'policy.csv'), `${csv}\np, reader, users, read\ng2, readers, reader, *\ng2, usher-admins, admin, proxy\n`);
  return dir;
}

interface Step {
  kind: string;
  result: string;
  detail: string;
  role?: string;
  via?: string;
  group?: string;
  provider?: string;
}

describe.each(DB_KINDS)('GET /authz/explain on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let admin: string;
  let adminId: number;
  const dir = policyDir();

  beforeAll(async () => {
    server = await startServer(kind, {
      settings: {
        permissions: [{ name: 'cert.create', description: 'Issue a certificate.' }],
        resources: [{ type: 'library', actions: ['read', 'write'] }],
        groupGrants: [{ group: 'family', provider: 'proxy', type: 'library', id: '3' }],
      },
      hooks: { policyDir: dir },
    });
    c = client(server.url);
    admin = await setupAdmin(c);
    adminId = (await c.get(`${AUTH}/me`, { key: admin })).body.id;
    expect((await c.post(ROLES, { key: admin, body: { name: 'lister', permissions: ['users.list'] } })).status).toBe(201);
    expect((await c.post(ROLES, { key: admin, body: { name: 'middle', inherits: ['lister'] } })).status).toBe(201);
    expect((await c.post(ROLES, { key: admin, body: { name: 'clerk', inherits: ['middle'], permissions: ['audit.read'] } })).status).toBe(201);
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let made = 0;
  const person = async (role = 'user') => (await createUser(server, c, admin, { username: `explained${++made}`, role })).user.id as number;
  const ask = async (user: number, permission: string) => {
    const res = await c.get(`${EXPLAIN}?user=${user}&permission=${encodeURIComponent(permission)}`, { key: admin });
    expect(res.status, res.text).toBe(200);
    const record = (await server.usher.users.get(user))!;
    // The explanation's decision is the request path's.
    expect(res.body.allowed).toBe(record.active && server.usher.authz.can(record, ...(permission.split('.') as [string, string])));
    return res.body as { allowed: boolean; steps: Step[]; decision: string };
  };

  it("allows admin through its super role, and lists the group rules that give it at sign-in", async () => {
    const body = await ask(adminId, 'users.read');
    expect(body.allowed).toBe(true);
    expect(body.steps[0]).toMatchObject({ kind: 'super-role', role: 'admin', result: 'allow' });
    expect(body.steps.map((s) => s.kind)).toEqual(['super-role', 'direct', 'group-rule', 'group-rule']);
    expect(body.decision).toMatch(/^Allowed: admin holds every permission/);
  });

  it("allows through the user's own role, and says so", async () => {
    const body = await ask(await person('lister'), 'users.list');
    expect(body.allowed).toBe(true);
    expect(body.steps[0]).toEqual({ kind: 'role', role: 'lister', result: 'allow', detail: "The user's role lister holds users.list itself." });
    expect(body.decision).toBe("Allowed: The user's role lister holds users.list itself.");
  });

  it('walks the inherited roles, each with the role it comes through', async () => {
    const body = await ask(await person('clerk'), 'users.list');
    expect(body.allowed).toBe(true);
    expect(body.steps.slice(0, 3)).toEqual([
      { kind: 'role', role: 'clerk', result: 'none', detail: "The user's role clerk does not hold users.list itself." },
      { kind: 'inherited-role', role: 'middle', via: 'clerk', result: 'none', detail: 'clerk inherits middle, which does not hold users.list.' },
      { kind: 'inherited-role', role: 'lister', via: 'middle', result: 'allow', detail: 'middle inherits lister, which holds users.list.' },
    ]);
    expect(body.decision).toBe('Allowed: middle inherits lister, which holds users.list.');
    // The role's own permission is found before the inherited ones.
    expect((await ask(await person('clerk'), 'audit.read')).steps[0]).toMatchObject({ kind: 'role', result: 'allow' });
  });

  it("allows through a direct grant of the host app's permission", async () => {
    const id = await person();
    expect((await ask(id, 'cert.create')).allowed).toBe(false);
    expect((await c.patch(`${USERS}/${id}/permissions`, { key: admin, body: { grant: ['cert.create'] } })).status).toBe(200);
    const body = await ask(id, 'cert.create');
    expect(body.allowed).toBe(true);
    expect(body.steps).toContainEqual({ kind: 'direct', result: 'allow', detail: 'cert.create is granted to this user directly.' });
    expect(body.decision).toBe('Allowed: cert.create is granted to this user directly.');
  });

  it('denies, naming the group rules that would give a role holding it at sign-in, and where they apply', async () => {
    const body = await ask(await person(), 'users.read');
    expect(body.allowed).toBe(false);
    expect(body.steps).toEqual([
      { kind: 'role', role: 'user', result: 'none', detail: "The user's role user does not hold users.read itself." },
      { kind: 'direct', result: 'none', detail: 'users.read is not granted to this user directly.' },
      {
        kind: 'group-rule',
        role: 'reader',
        group: 'readers',
        provider: '*',
        result: 'none',
        detail: 'Members of readers (any identity provider) get reader, which holds users.read, at sign-in; this account (local) does not sign in there.',
      },
      expect.objectContaining({ kind: 'group-rule', role: 'admin', group: 'usher-admins', provider: 'proxy', result: 'none' }),
    ]);
    expect(body.decision).toBe('Denied: neither the role user, the roles it inherits, nor a direct grant holds users.read.');
    // An account of the proxy: both rules apply to it at its next sign-in.
    const { user: proxied } = await server.usher.users.create({ username: 'proxied', authSource: 'proxy' });
    const rules = (await ask(proxied.id, 'users.read')).steps.filter((s) => s.kind === 'group-rule');
    expect(rules.map((s) => s.detail.endsWith('this account signs in there, so its groups then decide its role.'))).toEqual([true, true]);
    // A permission no group rule's role holds besides admin's: only admin's rule is listed.
    expect((await ask(await person(), 'users.delete')).steps.filter((s) => s.kind === 'group-rule').map((s) => s.role)).toEqual(['admin']);
  });

  it('denies a disabled account whatever its role holds', async () => {
    const id = await person('lister');
    expect((await c.post(`${USERS}/${id}/status`, { key: admin, body: { active: false } })).status).toBe(200);
    const body = await ask(id, 'users.list');
    expect(body.allowed).toBe(false);
    expect(body.steps[0]).toMatchObject({ kind: 'account', result: 'deny' });
    expect(body.steps[1]).toMatchObject({ kind: 'role', result: 'allow' });
    expect(body.decision).toMatch(/^Denied: The account is disabled/);
  });

  it.each([
    ['an undeclared permission', 'user=1&permission=nope.nothing'],
    ['a malformed permission', 'user=1&permission=users'],
    ['a user id that is not one', 'user=abc&permission=users.list'],
    ['no user', 'permission=users.list'],
    ['no permission', 'user=1'],
    ['an unknown parameter', 'user=1&permission=users.list&org=3'],
  ])('answers 400 request.invalid for %s', async (_, query) => {
    expect(errorCode(await c.get(`${EXPLAIN}?${query}`, { key: admin }))).toBe('request.invalid');
  });

  it("explains an organisation binding: the org role gives within the organisation, never a global-only permission", async () => {
    const org = (await c.post(`${AUTH}/orgs`, { key: admin, body: { name: `Acme ${kind}` } })).body.id as number;
    const { user } = await createUser(server, c, admin, { username: 'org-boss', organizationId: org, orgRole: 'admin' });
    const lists = await ask(user.id, 'users.list');
    expect(lists.allowed).toBe(true);
    expect(lists.steps.find((s) => s.kind === 'org-role')).toMatchObject({ role: 'admin', orgId: org, result: 'allow' });
    expect(lists.decision).toContain(`within organisation ${org}`);
    const setsRoles = await ask(user.id, 'users.set-role');
    expect(setsRoles.allowed).toBe(false);
    expect(setsRoles.steps.find((s) => s.kind === 'org-role')).toMatchObject({ result: 'none' });
    expect(setsRoles.steps.find((s) => s.kind === 'org-role')!.detail).toContain('global roles only');
    expect(setsRoles.decision).toContain('the organisation binding');
  });

  it('explains a resource: each grant on it, admin, and the group rules that would grant it at sign-in', async () => {
    const reader = await person();
    const resource = async (user: number, query: string) => {
      const res = await c.get(`${EXPLAIN}?user=${user}&${query}`, { key: admin });
      expect(res.status, res.text).toBe(200);
      return res.body as { allowed: boolean; steps: (Step & { grantId?: number; source?: string })[]; decision: string };
    };
    const none = await resource(reader, 'type=library&id=3');
    expect(none.allowed).toBe(false);
    expect(none.steps.map((s) => [s.kind, s.result])).toEqual([
      ['grant', 'none'],
      ['group-rule', 'none'],
    ]);
    expect(none.steps[1]).toMatchObject({ group: 'family', provider: 'proxy' });
    expect(none.steps[1]!.detail).toContain('does not sign in there');
    const given = await c.post(`${USERS}/${reader}/grants`, { key: admin, body: { type: 'library', id: '3' } });
    expect(given.status, given.text).toBe(201);
    const read = await resource(reader, 'type=library&id=3&action=read');
    expect(read.allowed).toBe(true);
    expect(read.steps[0]).toMatchObject({ kind: 'grant', grantId: given.body.id, source: 'api', result: 'allow' });
    const write = await resource(reader, 'type=library&id=3&action=write');
    expect(write.allowed).toBe(false);
    expect(write.steps[0]).toMatchObject({ kind: 'grant', result: 'none' });
    expect(write.steps[0]!.detail).toContain('not write');
    const admins = await resource(adminId, 'type=library&id=9');
    expect(admins.allowed).toBe(true);
    expect(admins.steps[0]).toMatchObject({ kind: 'super-role', result: 'allow' });
    for (const bad of [`permission=users.list&type=library&id=3`, 'type=library', 'id=3', 'type=album&id=3', 'type=library&id=3&action=delete', '']) {
      const res = await c.get(`${EXPLAIN}?user=${reader}&${bad}`, { key: admin });
      expect([res.status, errorCode(res)], bad).toEqual([400, 'request.invalid']);
    }
  });

  it('answers 404 for an unknown user, 403 without authz.explain, 401 anonymous', async () => {
    const res = await c.get(`${EXPLAIN}?user=999999&permission=users.list`, { key: admin });
    expect(res.status).toBe(404);
    expect(errorCode(res)).toBe('user.not_found');
    const { key } = await createUser(server, c, admin, { username: 'curious', role: 'clerk' });
    expect(errorCode(await c.get(`${EXPLAIN}?user=${adminId}&permission=users.list`, { key }))).toBe('auth.forbidden');
    expect((await c.get(`${EXPLAIN}?user=${adminId}&permission=users.list`)).status).toBe(401);
  });
});
