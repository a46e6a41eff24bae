import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { auditEntries } from './helpers/audit.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client } from './helpers/http.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const ORGS = `${AUTH}/orgs`;
const USERS = `${AUTH}/users`;
const PASSWORD = 'a-long-password';

describe.each(DB_KINDS)('organisations on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let admin: string;
  let adminId: number;
  let acme: number;
  let globex: number;
  /** acme's org admin (global role user, org role admin), and members of acme, globex and none. */
  let orgAdmin: { id: number; key: string };
  let alice: { id: number; key: string };
  let bob: { id: number; key: string };
  let loner: { id: number; key: string };

  const make = async (body: Record<string, unknown>) => {
    const { user, key } = await createUser(server, c, admin, { password: PASSWORD, ...body });
    return { id: user.id as number, key, user };
  };

  beforeAll(async () => {
    server = await startServer(kind, { settings: { permissions: [{ name: 'cert.create', description: 'Issue a certificate.' }], resources: [{ type: 'library' }] } });
    c = client(server.url);
    admin = await setupAdmin(c);
    adminId = (await c.get(`${AUTH}/me`, { key: admin })).body.id;
    acme = (await c.post(ORGS, { key: admin, body: { name: 'Acme', description: 'Rockets' } })).body.id;
    globex = (await c.post(ORGS, { key: admin, body: { name: 'Globex' } })).body.id;
    orgAdmin = await make({ username: 'acme-admin', organizationId: acme, orgRole: 'admin' });
    alice = await make({ username: 'alice', organizationId: acme });
    bob = await make({ username: 'bob', organizationId: globex });
    loner = await make({ username: 'loner' });
  });
  afterAll(() => server?.close());

  it('creates, lists, reads, renames organisations; names differ by more than case', async () => {
    const made = await c.post(ORGS, { key: admin, body: { name: 'Initech' } });
    expect(made.status, made.text).toBe(201);
    expect(made.headers.get('location')).toBe(`${ORGS}/${made.body.id}`);
    expect(made.body).toMatchObject({ name: 'Initech', description: '' });
    expect(errorCode(await c.post(ORGS, { key: admin, body: { name: 'INITECH' } }))).toBe('org.exists');
    expect(errorCode(await c.post(ORGS, { key: admin, body: { name: '' } }))).toBe('request.invalid');
    const renamed = await c.put(`${ORGS}/${made.body.id}`, { key: admin, body: { name: 'Initrode', description: 'Printers' } });
    expect(renamed.body).toMatchObject({ id: made.body.id, name: 'Initrode', description: 'Printers' });
    expect(errorCode(await c.put(`${ORGS}/${made.body.id}`, { key: admin, body: { name: 'acme' } }))).toBe('org.exists');
    expect((await c.get(ORGS, { key: admin })).body.map((o: { name: string }) => o.name)).toEqual(['Acme', 'Globex', 'Initrode']);
    expect((await c.get(`${ORGS}/${acme}`, { key: admin })).body).toMatchObject({ id: acme, name: 'Acme', description: 'Rockets' });
    expect(errorCode(await c.get(`${ORGS}/999`, { key: admin }))).toBe('org.not_found');
    expect((await c.del(`${ORGS}/${made.body.id}`, { key: admin })).status).toBe(204);
    expect(errorCode(await c.get(`${ORGS}/${made.body.id}`, { key: admin }))).toBe('org.not_found');
    const created = await auditEntries(server, c, admin, 'org.created');
    expect(created[0]).toMatchObject({ actor: { kind: 'user', userId: adminId }, detail: { orgId: made.body.id, name: 'Initech' } });
    expect((await auditEntries(server, c, admin, 'org.updated'))[0]).toMatchObject({ detail: { from: 'Initech', to: 'Initrode' } });
    expect((await auditEntries(server, c, admin, 'org.deleted'))[0]).toMatchObject({ detail: { orgId: made.body.id, detached: 0 } });
  });

  it('shows organizationId and orgRole on the user; an unknown organisation is refused', async () => {
    expect((await c.get(`${USERS}/${orgAdmin.id}`, { key: admin })).body).toMatchObject({ organizationId: acme, orgRole: 'admin', role: 'user' });
    expect((await c.get(`${USERS}/${loner.id}`, { key: admin })).body).toMatchObject({ organizationId: null, orgRole: null });
    expect(errorCode(await c.post(USERS, { key: admin, body: { username: 'nowhere', organizationId: 999 } }))).toBe('request.invalid');
    expect(errorCode(await c.post(USERS, { key: admin, body: { username: 'roleless', orgRole: 'admin' } }))).toBe('request.invalid');
  });

  it('lets an org admin see only their organisation: lists, counts, detail, permissions, invites, audit', async () => {
    const list = await c.get(USERS, { key: orgAdmin.key });
    expect(list.status, list.text).toBe(200);
    const ids = list.body.map((u: { id: number }) => u.id);
    expect(ids).toContain(orgAdmin.id);
    expect(ids).toContain(alice.id);
    expect(ids).not.toContain(bob.id);
    expect(ids).not.toContain(loner.id);
    expect(ids).not.toContain(adminId);
    expect(list.body.every((u: { organizationId: number }) => u.organizationId === acme)).toBe(true);
    expect(Number(list.headers.get('x-total-count'))).toBe(list.body.length);
    // A filter by id does not reach past the organisation either.
    const byId = await c.get(`${USERS}?id=${bob.id}&id=${alice.id}`, { key: orgAdmin.key });
    expect(byId.body.map((u: { id: number }) => u.id)).toEqual([alice.id]);
    expect(byId.headers.get('x-total-count')).toBe('1');

    expect((await c.get(`${USERS}/${alice.id}`, { key: orgAdmin.key })).status).toBe(200);
    for (const other of [bob.id, loner.id, adminId]) {
      for (const path of [`${USERS}/${other}`, `${USERS}/${other}/permissions`, `${USERS}/${other}/invites`]) {
        const res = await c.get(path, { key: orgAdmin.key });
        expect([path, res.status, errorCode(res)]).toEqual([path, 404, 'user.not_found']);
      }
    }
    // Only their own organisation among the organisations.
    expect((await c.get(ORGS, { key: orgAdmin.key })).body.map((o: { id: number }) => o.id)).toEqual([acme]);
    expect(errorCode(await c.get(`${ORGS}/${globex}`, { key: orgAdmin.key }))).toBe('org.not_found');

    // The audit log: entries about acme's members alone.
    await c.patch(`${USERS}/${bob.id}`, { key: admin, body: { name: 'Bob' } });
    await c.patch(`${USERS}/${alice.id}`, { key: admin, body: { name: 'Alice' } });
    await server.usher.audit.flush();
    const audit = await c.get(`${AUTH}/audit?type=user.updated`, { key: orgAdmin.key });
    expect(audit.status, audit.text).toBe(200);
    const targets = new Set(audit.body.map((e: { targetUserId: number }) => e.targetUserId));
    expect(targets.has(alice.id)).toBe(true);
    expect(targets.has(bob.id)).toBe(false);
    expect([...targets].every((id) => id === alice.id || id === orgAdmin.id)).toBe(true);
    expect(Number(audit.headers.get('x-total-count'))).toBe(audit.body.length);
    const aboutBob = await c.get(`${AUTH}/audit?user=${bob.id}`, { key: orgAdmin.key });
    expect(aboutBob.body).toEqual([]);
    expect(aboutBob.headers.get('x-total-count')).toBe('0');
  });

  it("answers 404 on every /users/{id} change to a user outside the org admin's organisation", async () => {
    for (const other of [bob.id, loner.id, adminId]) {
      const attempts = [
        await c.patch(`${USERS}/${other}`, { key: orgAdmin.key, body: { email: 'x@example.com' } }),
        await c.post(`${USERS}/${other}/reset-password`, { key: orgAdmin.key, body: { password: PASSWORD } }),
        await c.post(`${USERS}/${other}/api-key`, { key: orgAdmin.key }),
        await c.del(`${USERS}/${other}/sessions`, { key: orgAdmin.key }),
        await c.del(`${USERS}/${other}/recovery-code`, { key: orgAdmin.key }),
        await c.post(`${USERS}/${other}/invites`, { key: orgAdmin.key, body: {} }),
        await c.patch(`${USERS}/${other}/permissions`, { key: orgAdmin.key, body: { grant: ['cert.create'] } }),
        await c.del(`${USERS}/${other}`, { key: orgAdmin.key }),
      ];
      expect(attempts.map((r) => `${r.status} ${errorCode(r)}`)).toEqual(Array(attempts.length).fill('404 user.not_found'));
    }
    expect((await c.get(`${USERS}/${bob.id}`, { key: admin })).body).toMatchObject({ email: null, organizationId: globex });
  });

  it("keeps an org admin out of other organisations' grants, checks and explanations (404), and lets them reach their own", async () => {
    const AUTHZ = `${AUTH}/authz`;
    for (const outside of [bob.id, loner.id]) {
      expect(errorCode(await c.get(`${USERS}/${outside}/grants`, { key: orgAdmin.key }))).toBe('user.not_found');
      expect(errorCode(await c.post(`${USERS}/${outside}/grants`, { key: orgAdmin.key, body: { type: 'library', id: '1' } }))).toBe('user.not_found');
      expect(errorCode(await c.post(`${AUTHZ}/check`, { key: orgAdmin.key, body: { user: outside, checks: [{ permission: 'cert.create' }] } }))).toBe('user.not_found');
      expect(errorCode(await c.get(`${AUTHZ}/explain?user=${outside}&permission=users.list`, { key: orgAdmin.key }))).toBe('user.not_found');
    }
    expect((await c.get(`${USERS}/${alice.id}/grants`, { key: orgAdmin.key })).status).toBe(200);
    const checked = await c.post(`${AUTHZ}/check`, { key: orgAdmin.key, body: { user: alice.id, checks: [{ permission: 'cert.create' }, { permission: 'self.read' }] } });
    expect(checked.body).toEqual({ results: [false, true] });
    expect((await c.get(`${AUTHZ}/explain?user=${alice.id}&permission=users.list`, { key: orgAdmin.key })).body).toMatchObject({ allowed: false });
    // A global admin reaches everyone.
    expect((await c.get(`${USERS}/${bob.id}/grants`, { key: admin })).status).toBe(200);
  });

  it("lets an org admin change their members' email, password and permissions (seed 003's Admin (same org))", async () => {
    const patched = await c.patch(`${USERS}/${alice.id}`, { key: orgAdmin.key, body: { email: 'alice@acme.example' } });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body.email).toBe('alice@acme.example');
    expect((await c.post(`${USERS}/${alice.id}/reset-password`, { key: orgAdmin.key, body: { password: 'another-long-password' } })).status).toBe(204);
    const granted = await c.patch(`${USERS}/${alice.id}/permissions`, { key: orgAdmin.key, body: { grant: ['cert.create'] } });
    expect(granted.status, granted.text).toBe(200);
    // Granted in acme alone: never beyond the organisation the granter holds it in.
    expect(granted.body).toMatchObject({ direct: [], organizationId: acme, orgRole: null });
    expect(granted.body.inOrganization).toEqual(['cert.create']);
    const aliceNow = (await server.usher.users.get(alice.id))!;
    expect(server.usher.authz.canIn(aliceNow, acme, 'cert', 'create')).toBe(true);
    expect(server.usher.authz.canIn(aliceNow, globex, 'cert', 'create')).toBe(false);
    expect(server.usher.authz.canIn(aliceNow, null, 'cert', 'create')).toBe(false);
    const entry = (await auditEntries(server, c, admin, 'policy.changed', alice.id))[0];
    expect(entry).toMatchObject({ actor: { userId: orgAdmin.id }, detail: { change: 'user_permissions', granted: 'cert.create', orgId: acme } });
    const revoked = await c.patch(`${USERS}/${alice.id}/permissions`, { key: orgAdmin.key, body: { revoke: ['cert.create'] } });
    expect(revoked.body.inOrganization).toEqual([]);
  });

  it('refuses an org admin every way up', async () => {
    const me = `${USERS}/${orgAdmin.id}`;
    const tries: [string, Awaited<ReturnType<Client['get']>>, string][] = [
      ['own role', await c.patch(me, { key: orgAdmin.key, body: { role: 'admin' } }), 'auth.forbidden'],
      ['own role via /me', await c.patch(`${AUTH}/me`, { key: orgAdmin.key, body: { role: 'admin' } }), 'auth.forbidden'],
      ['own status', await c.post(`${me}/status`, { key: orgAdmin.key, body: { active: true } }), 'auth.forbidden'],
      ['own organisation', await c.patch(me, { key: orgAdmin.key, body: { organizationId: globex } }), 'auth.forbidden'],
      ['a member to another organisation', await c.patch(`${USERS}/${alice.id}`, { key: orgAdmin.key, body: { organizationId: globex } }), 'auth.forbidden'],
      ['a member out of every organisation', await c.patch(`${USERS}/${alice.id}`, { key: orgAdmin.key, body: { organizationId: null } }), 'auth.forbidden'],
      ["a member's role", await c.patch(`${USERS}/${alice.id}`, { key: orgAdmin.key, body: { role: 'admin' } }), 'auth.forbidden'],
      ["a member's status", await c.post(`${USERS}/${alice.id}/status`, { key: orgAdmin.key, body: { active: false } }), 'auth.forbidden'],
      ['a global admin', await c.post(USERS, { key: orgAdmin.key, body: { username: 'sneaky', password: PASSWORD, role: 'admin' } }), 'authz.escalation'],
      ['a user in another organisation', await c.post(USERS, { key: orgAdmin.key, body: { username: 'sneaky2', organizationId: globex } }), 'auth.forbidden'],
      ['a global-only permission', await c.patch(`${USERS}/${alice.id}/permissions`, { key: orgAdmin.key, body: { grant: ['users.set-role'] } }), 'authz.escalation'],
      ['orgs.manage', await c.patch(`${USERS}/${alice.id}/permissions`, { key: orgAdmin.key, body: { grant: ['orgs.manage'] } }), 'authz.escalation'],
      ['create an organisation', await c.post(ORGS, { key: orgAdmin.key, body: { name: 'Mine' } }), 'auth.forbidden'],
      ['delete their organisation', await c.del(`${ORGS}/${acme}?members=detach`, { key: orgAdmin.key }), 'auth.forbidden'],
      ['a custom role', await c.post(`${AUTH}/roles`, { key: orgAdmin.key, body: { name: 'mine' } }), 'auth.forbidden'],
    ];
    expect(tries.map(([what, res]) => `${what}: ${res.status} ${errorCode(res)}`)).toEqual(tries.map(([what, res, code]) => `${what}: ${res.status === 404 ? 404 : 403} ${code}`));
    const after = (await c.get(`${USERS}/${orgAdmin.id}`, { key: admin })).body;
    expect(after).toMatchObject({ role: 'user', organizationId: acme, orgRole: 'admin' });
    expect((await c.get(`${USERS}/${alice.id}`, { key: admin })).body).toMatchObject({ role: 'user', organizationId: acme, active: true });
    // A user created by an org admin lands in their organisation.
    const made = await c.post(USERS, { key: orgAdmin.key, body: { username: 'acme-new', orgRole: 'user' } });
    expect(made.status, made.text).toBe(201);
    expect(made.body).toMatchObject({ role: 'user', organizationId: acme, orgRole: 'user' });
  });

  it('lets an org admin invite and end the sessions of their members', async () => {
    const invite = await c.post(`${USERS}/${alice.id}/invites`, { key: orgAdmin.key, body: {} });
    expect(invite.status, invite.text).toBe(201);
    const listed = await c.get(`${USERS}/${alice.id}/invites`, { key: orgAdmin.key });
    expect(listed.body.active.id).toBe(invite.body.invite.id);
    expect((await c.del(`${USERS}/${alice.id}/invites/${invite.body.invite.id}`, { key: orgAdmin.key })).status).toBe(200);
    expect((await c.del(`${USERS}/${alice.id}/sessions`, { key: orgAdmin.key })).status).toBe(204);
  });

  it('refuses giving an organisation role holding more than the giver holds there', async () => {
    const role = await c.post(`${AUTH}/roles`, { key: admin, body: { name: 'org-helper', permissions: ['users.list', 'users.read', 'users.create', 'users.update'] } });
    expect(role.status, role.text).toBe(201);
    const helper = await make({ username: 'acme-helper', organizationId: acme, orgRole: 'org-helper' });
    expect((await c.get(USERS, { key: helper.key })).status).toBe(200);
    expect(errorCode(await c.post(USERS, { key: helper.key, body: { username: 'acme-boss2', orgRole: 'admin' } }))).toBe('authz.escalation');
    expect(errorCode(await c.patch(`${USERS}/${alice.id}`, { key: helper.key, body: { orgRole: 'admin' } }))).toBe('authz.escalation');
    expect(errorCode(await c.patch(`${USERS}/${helper.id}`, { key: helper.key, body: { orgRole: 'admin' } }))).toBe('authz.escalation');
    // Their own role's worth is fine.
    const made = await c.post(USERS, { key: helper.key, body: { username: 'acme-helper2', orgRole: 'org-helper' } });
    expect(made.status, made.text).toBe(201);
    expect(made.body).toMatchObject({ organizationId: acme, orgRole: 'org-helper' });
    // A role held as an organisation role is in use: deleting it needs moveTo.
    expect(errorCode(await c.del(`${AUTH}/roles/org-helper`, { key: admin }))).toBe('role.in_use');
  });

  it('refuses an org admin acting on an admin or on a member holding more (403 authz.target_holds_more)', async () => {
    const boss = await make({ username: 'acme-boss', role: 'admin', organizationId: acme });
    const strong = await make({ username: 'acme-strong', organizationId: acme });
    expect((await c.patch(`${USERS}/${strong.id}/permissions`, { key: admin, body: { grant: ['users.set-status'] } })).status).toBe(200);
    for (const target of [boss.id, strong.id]) {
      const attempts = [
        await c.patch(`${USERS}/${target}`, { key: orgAdmin.key, body: { email: 'x@acme.example' } }),
        await c.post(`${USERS}/${target}/reset-password`, { key: orgAdmin.key, body: { password: PASSWORD } }),
        await c.post(`${USERS}/${target}/api-key`, { key: orgAdmin.key }),
        await c.del(`${USERS}/${target}/sessions`, { key: orgAdmin.key }),
        await c.del(`${USERS}/${target}/recovery-code`, { key: orgAdmin.key }),
        await c.post(`${USERS}/${target}/invites`, { key: orgAdmin.key, body: {} }),
        await c.patch(`${USERS}/${target}/permissions`, { key: orgAdmin.key, body: { grant: ['cert.create'] } }),
        await c.del(`${USERS}/${target}`, { key: orgAdmin.key }),
      ];
      expect(attempts.map((r) => `${r.status} ${errorCode(r)}`)).toEqual(Array(attempts.length).fill('403 authz.target_holds_more'));
    }
    // A global admin acts on anyone.
    expect((await c.post(`${USERS}/${strong.id}/reset-password`, { key: admin, body: { password: PASSWORD } })).status).toBe(204);
  });

  it('refuses a holder of users.* acting on an account that holds more, and lets them act on one that does not', async () => {
    const role = await c.post(`${AUTH}/roles`, { key: admin, body: { name: 'helpdesk', permissions: ['users.list', 'users.read', 'users.update', 'users.reset-password', 'users.end-sessions'] } });
    expect(role.status, role.text).toBe(201);
    const helper = await make({ username: 'helper', role: 'helpdesk' });
    const plain = await make({ username: 'plain' });
    const certified = await make({ username: 'certified' });
    await c.patch(`${USERS}/${certified.id}/permissions`, { key: admin, body: { grant: ['cert.create'] } });
    for (const target of [adminId, certified.id]) {
      expect(errorCode(await c.post(`${USERS}/${target}/reset-password`, { key: helper.key, body: { password: PASSWORD } }))).toBe('authz.target_holds_more');
      expect(errorCode(await c.patch(`${USERS}/${target}`, { key: helper.key, body: { email: 'taken@example.com' } }))).toBe('authz.target_holds_more');
      expect(errorCode(await c.del(`${USERS}/${target}/sessions`, { key: helper.key }))).toBe('authz.target_holds_more');
    }
    expect((await c.post(`${USERS}/${plain.id}/reset-password`, { key: helper.key, body: { password: PASSWORD } })).status).toBe(204);
    expect((await c.patch(`${USERS}/${plain.id}`, { key: helper.key, body: { email: 'plain@example.com' } })).status).toBe(200);
    expect((await c.del(`${USERS}/${plain.id}/sessions`, { key: helper.key })).status).toBe(204);
    // The helpdesk role is global: it reaches users of every organisation.
    expect((await c.get(`${USERS}/${bob.id}`, { key: helper.key })).status).toBe(200);
  });

  it('refuses deleting an organisation with members unless told to detach them', async () => {
    const org = (await c.post(ORGS, { key: admin, body: { name: 'Soon gone' } })).body.id as number;
    const member = await make({ username: 'soon-gone-admin', organizationId: org, orgRole: 'admin' });
    expect((await c.get(USERS, { key: member.key })).status).toBe(200);
    const refused = await c.del(`${ORGS}/${org}`, { key: admin });
    expect([refused.status, errorCode(refused)]).toEqual([409, 'org.in_use']);
    expect((await c.get(`${USERS}/${member.id}`, { key: admin })).body.organizationId).toBe(org);
    expect((await c.del(`${ORGS}/${org}?members=detach`, { key: admin })).status).toBe(204);
    expect((await c.get(`${USERS}/${member.id}`, { key: admin })).body).toMatchObject({ organizationId: null, orgRole: null });
    expect((await auditEntries(server, c, admin, 'user.org_changed', member.id))[0]).toMatchObject({ detail: { from: org, to: null, reason: 'org_deleted' } });
    // Their org role went with the organisation, on their very next request.
    expect(errorCode(await c.get(USERS, { key: member.key }))).toBe('auth.forbidden');
  });

  it('lets a global admin move a user between organisations, recorded with the org role', async () => {
    const moved = await c.patch(`${USERS}/${bob.id}`, { key: admin, body: { organizationId: acme, orgRole: 'user' } });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toMatchObject({ organizationId: acme, orgRole: 'user' });
    expect((await auditEntries(server, c, admin, 'user.org_changed', bob.id))[0]).toMatchObject({ detail: { from: globex, to: acme, orgRoleFrom: null, orgRoleTo: 'user' } });
    expect((await c.get(`${USERS}/${bob.id}`, { key: orgAdmin.key })).status).toBe(200);
    const back = await c.patch(`${USERS}/${bob.id}`, { key: admin, body: { organizationId: globex } });
    expect(back.body).toMatchObject({ organizationId: globex, orgRole: null });
    expect(errorCode(await c.get(`${USERS}/${bob.id}`, { key: orgAdmin.key }))).toBe('user.not_found');
  });
});
