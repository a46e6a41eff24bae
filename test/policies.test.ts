import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newEnforcer } from 'casbin';
import { describe, expect, it } from 'vitest';
import { ALL_DOMAINS, Authorizer, anyDomain, defaultPolicyDir, orgDomain, type UserSubject } from '../src/authz/enforcer.js';
import { GLOBAL_ONLY } from '../src/authz/permissions.js';

describe('the Casbin policy in policies/', () => {
  it('knows exactly the roles user and admin', async () => {
    const authz = await Authorizer.load();
    expect([...authz.roles].sort()).toEqual(['admin', 'user']);
  });

  it.each([
    ['user', 'self', 'read', true],
    ['user', 'self', 'update', true],
    ['user', 'self', 'api-key', true],
    ['user', 'users', 'list', false],
    ['user', 'users', 'create', false],
    ['user', 'users', 'read', false],
    ['user', 'users', 'update', false],
    ['user', 'users', 'set-role', false],
    ['user', 'users', 'set-password-login', false],
    ['user', 'users', 'delete', false],
    ['admin', 'users', 'list', true],
    ['admin', 'users', 'create', true],
    ['admin', 'users', 'set-role', true],
    ['admin', 'users', 'set-password-login', true],
    ['admin', 'users', 'set-status', true],
    ['admin', 'users', 'reset-password', true],
    ['admin', 'users', 'rotate-api-key', true],
    ['admin', 'users', 'delete', true],
    ['admin', 'invites', 'create', true],
    ['admin', 'invites', 'read', true],
    ['admin', 'invites', 'revoke', true],
    ['user', 'invites', 'create', false],
    ['user', 'invites', 'read', false],
    ['user', 'invites', 'revoke', false],
    ['user', 'self', 'recovery-code', true],
    ['user', 'self', 'api-keys', true],
    ['admin', 'users', 'api-keys', true],
    ['user', 'users', 'api-keys', false],
    ['admin', 'self', 'recovery-code', true],
    ['admin', 'users', 'revoke-recovery-code', true],
    ['user', 'users', 'revoke-recovery-code', false],
    ['user', 'self', 'revoke-recovery-code', false],
    ['admin', 'users', 'set-permissions', true],
    ['admin', 'roles', 'read', true],
    ['admin', 'roles', 'manage', true],
    ['user', 'users', 'set-permissions', false],
    ['user', 'roles', 'read', false],
    ['user', 'roles', 'manage', false],
    ['admin', 'cert', 'create', true],
    ['user', 'cert', 'create', false],
    // admin inherits what user may do
    ['admin', 'self', 'read', true],
    ['admin', 'self', 'api-key', true],
    ['stranger', 'self', 'read', false],
    ['admin', 'users', 'launch-missiles', false],
  ])('%s may %s/%s: %s', async (role, object, action, allowed) => {
    // admin holds every permission, the host app's (cert.create) included.
    const authz = await Authorizer.load(undefined, [], [{ name: 'cert.create', description: 'Issue a certificate.' }]);
    expect(authz.can(role, object, action)).toBe(allowed);
  });

  it("does not give admin a permission nobody declared", async () => {
    const authz = await Authorizer.load();
    expect(authz.can('admin', 'cert', 'create')).toBe(false);
    expect(authz.can('admin', 'users', 'list')).toBe(true);
  });

  it('checks a user by their role; direct grants come from the database only', async () => {
    const authz = await Authorizer.load();
    expect(authz.can({ id: 1, role: 'admin' }, 'users', 'list')).toBe(true);
    expect(authz.can({ id: 2, role: 'user' }, 'users', 'list')).toBe(false);
    expect(authz.can({ id: 2, role: 'user' }, 'self', 'read')).toBe(true);
    expect(authz.can({ id: 3, role: 'stranger' }, 'self', 'read')).toBe(false);
  });

  it('checks a user acting through a scoped key by the intersection of the scope and what they hold', async () => {
    const authz = await Authorizer.load();
    const scope = new Set(['self.read', 'users.list']);
    expect(authz.can({ id: 1, role: 'admin', scope }, 'users', 'list')).toBe(true);
    expect(authz.can({ id: 1, role: 'admin', scope }, 'users', 'delete')).toBe(false);
    expect(authz.can({ id: 2, role: 'user', scope }, 'self', 'read')).toBe(true);
    expect(authz.can({ id: 2, role: 'user', scope }, 'users', 'list')).toBe(false);
    expect(authz.can({ id: 2, role: 'user', scope }, 'self', 'update')).toBe(false);
    expect(authz.can({ id: 2, role: 'user', scope: new Set() }, 'self', 'read')).toBe(false);
  });

  it("lists Usher's own permissions, every route capability among them", async () => {
    const authz = await Authorizer.load();
    const names = authz.permissions.map((p) => p.name);
    for (const name of ['users.list', 'users.set-role', 'users.end-sessions', 'audit.read', 'invites.revoke', 'self.recovery-code', 'roles.manage']) expect(names).toContain(name);
    for (const p of authz.permissions) expect(p.description, p.name).not.toBe('');
  });

  it("compiles what Casbin's enforce() answers, for every role and permission, through a hierarchy of roles", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'usher-policy-'));
    try {
      cpSync(defaultPolicyDir(), dir, { recursive: true });
      appendFileSync(
        join(dir, 'policy.csv'),
        ['p, viewer, users, list', 'p, support, users, reset-password', 'g, support, viewer, *', 'p, lead, audit, read', 'g, lead, support, *', 'g, lead, user, *', ''].join('\n'),
      );
      const authz = await Authorizer.load(dir);
      const enforcer = await newEnforcer(join(dir, 'model.conf'), join(dir, 'policy.csv'));
      await enforcer.addNamedDomainMatchingFunc('g', anyDomain);
      let allows = 0;
      for (const role of ['user', 'viewer', 'support', 'lead']) {
        for (const { name } of authz.permissions) {
          const [object, action] = name.split(/\.(.*)/) as [string, string];
          const expected = await enforcer.enforce(role, '*', object, action);
          expect(authz.can(role, object, action), `${role} ${name}`).toBe(expected);
          if (expected) allows++;
        }
      }
      // user's six, viewer's one, support's two, lead's three plus user's six.
      expect(allows).toBe(6 + 1 + 2 + 9);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** An example of policies/examples/ as the policy.csv of a folder beside the real model.conf. */
  async function example(file: string, permissions: { name: string; description: string }[]) {
    const dir = mkdtempSync(join(tmpdir(), 'usher-example-'));
    try {
      cpSync(join(defaultPolicyDir(), 'model.conf'), join(dir, 'model.conf'));
      cpSync(join(defaultPolicyDir(), 'examples', file), join(dir, 'policy.csv'));
      return await Authorizer.load(dir, [], permissions);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const declared = (...names: string[]) => names.map((name) => ({ name, description: name }));

  it.each([
    ['manager', 'users.create', true],
    ['manager', 'users.set-status', true],
    ['manager', 'assets.manage', true],
    ['manager', 'self.read', true],
    ['manager', 'users.set-role', false],
    ['manager', 'users.delete', false],
    ['manager', 'roles.manage', false],
    ['editor', 'assets.manage', true],
    ['editor', 'storage.manage', false],
    ['editor', 'users.list', false],
    ['user', 'assets.manage', false],
    ['admin', 'users.set-role', true],
    ['admin', 'ai.manage', true],
  ])('policies/examples/nekohub.csv: %s holds %s: %s', async (role, permission, allowed) => {
    const authz = await example('nekohub.csv', declared('storage.manage', 'ai.manage', 'assets.manage'));
    const [object, action] = permission.split('.') as [string, string];
    expect(authz.can(role, object, action)).toBe(allowed);
  });

  it.each([
    ['issuer', 'cert.create', true],
    ['issuer', 'cert.revoke', true],
    ['issuer', 'cert.download', true],
    ['user', 'cert.download', true],
    ['user', 'cert.create', false],
    ['user', 'cert.revoke', false],
    ['issuer', 'users.list', false],
    ['admin', 'cert.create', true],
  ])('policies/examples/pki.csv: %s holds %s: %s', async (role, permission, allowed) => {
    const authz = await example('pki.csv', declared('cert.create', 'cert.revoke', 'cert.download'));
    const [object, action] = permission.split('.') as [string, string];
    expect(authz.can(role, object, action)).toBe(allowed);
  });

  describe('roles bound per organisation (RBAC with domains)', () => {
    // Global roles are bindings in *, organisation roles bindings in org:<id>; as Usher compiles them from users' rows.
    const people: Record<string, UserSubject> = {
      root: { id: 1, role: 'admin', orgId: null, orgRole: null },
      acmeAdmin: { id: 2, role: 'user', orgId: 3, orgRole: 'admin' },
      acmeMember: { id: 3, role: 'user', orgId: 3, orgRole: null },
      globexUser: { id: 4, role: 'user', orgId: 4, orgRole: 'user' },
      rootInAcme: { id: 5, role: 'admin', orgId: 3, orgRole: 'user' },
      loner: { id: 6, role: 'user', orgId: null, orgRole: null },
    };
    const domains: (number | null)[] = [null, 3, 4];

    /** The real model.conf and policy.csv, admin given every declared permission as compilePolicy does, and the users' bindings. */
    async function casbin(authz: Authorizer) {
      const enforcer = await newEnforcer(join(defaultPolicyDir(), 'model.conf'), join(defaultPolicyDir(), 'policy.csv'));
      await enforcer.addNamedDomainMatchingFunc('g', anyDomain);
      // One at a time: addPolicies adds nothing when one row exists already.
      for (const p of authz.permissions) await enforcer.addPolicy('admin', ...(p.name.split(/\.(.*)/).slice(0, 2) as [string, string]));
      for (const [name, u] of Object.entries(people)) {
        await enforcer.addGroupingPolicy(name, u.role, ALL_DOMAINS);
        if (u.orgId != null && u.orgRole) await enforcer.addGroupingPolicy(name, u.orgRole, orgDomain(u.orgId));
      }
      // A global-only permission is always asked in *: an organisation role never gives it.
      return (name: string, orgId: number | null, permission: string) => {
        const [object, action] = permission.split(/\.(.*)/) as [string, string];
        return enforcer.enforce(name, orgId === null || GLOBAL_ONLY.has(permission) ? ALL_DOMAINS : orgDomain(orgId), object, action);
      };
    }

    it('Casbin and the compiled sets agree for every user, organisation and permission', async () => {
      const authz = await Authorizer.load(undefined, [], [{ name: 'cert.create', description: 'Issue a certificate.' }]);
      const enforce = await casbin(authz);
      let allows = 0;
      let denies = 0;
      for (const [name, who] of Object.entries(people)) {
        for (const orgId of domains) {
          for (const { name: permission } of authz.permissions) {
            const [object, action] = permission.split(/\.(.*)/) as [string, string];
            const expected = await enforce(name, orgId, permission);
            expect(authz.canIn(who, orgId, object, action), `${name} in ${orgId ?? '*'}: ${permission}`).toBe(expected);
            if (expected) allows++;
            else denies++;
          }
        }
      }
      expect(allows).toBeGreaterThan(0);
      expect(denies).toBeGreaterThan(0);
    });

    it.each([
      // [who, organisation (null: globally), permission, allowed]
      ['root', null, 'users.set-role', true],
      ['root', 3, 'users.list', true],
      ['root', 4, 'orgs.manage', true],
      ['acmeAdmin', 3, 'users.list', true],
      ['acmeAdmin', 3, 'users.update', true],
      ['acmeAdmin', 3, 'users.set-permissions', true],
      ['acmeAdmin', 3, 'cert.create', true],
      ['acmeAdmin', 3, 'audit.read', true],
      ['acmeAdmin', 3, 'self.read', true],
      ['acmeAdmin', 3, 'users.set-role', false],
      ['acmeAdmin', 3, 'users.set-status', false],
      ['acmeAdmin', 3, 'users.set-org', false],
      ['acmeAdmin', 3, 'orgs.manage', false],
      ['acmeAdmin', 3, 'roles.manage', false],
      ['acmeAdmin', 4, 'users.list', false],
      ['acmeAdmin', null, 'users.list', false],
      ['acmeAdmin', null, 'self.read', true],
      ['acmeMember', 3, 'users.list', false],
      ['acmeMember', 3, 'self.read', true],
      ['globexUser', 4, 'users.list', false],
      ['globexUser', 3, 'self.read', true],
      ['rootInAcme', 4, 'users.delete', true],
      ['loner', 3, 'users.list', false],
      ['loner', null, 'self.update', true],
    ] as const)('%s in organisation %s holds %s: %s', async (name, orgId, permission, allowed) => {
      const authz = await Authorizer.load(undefined, [], [{ name: 'cert.create', description: 'Issue a certificate.' }]);
      const [object, action] = permission.split(/\.(.*)/) as [string, string];
      expect(authz.canIn(people[name]!, orgId, object, action)).toBe(allowed);
      expect(await (await casbin(authz))(name, orgId, permission)).toBe(allowed);
    });

    it('answers can() for the route gate: anywhere the user holds it, their own organisation included', async () => {
      const authz = await Authorizer.load();
      expect(authz.can(people.acmeAdmin!, 'users', 'list')).toBe(true);
      expect(authz.can(people.acmeAdmin!, 'users', 'set-role')).toBe(false);
      expect(authz.can(people.acmeMember!, 'users', 'list')).toBe(false);
      expect(authz.can(people.loner!, 'self', 'read')).toBe(true);
    });

    it('refuses a policy.csv binding inheritance outside *', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'usher-policy-'));
      try {
        cpSync(defaultPolicyDir(), dir, { recursive: true });
        appendFileSync(join(dir, 'policy.csv'), 'g, admin, user, org:3\n');
        await expect(Authorizer.load(dir)).rejects.toThrow(/g needs member, role, \*/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
