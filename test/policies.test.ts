import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newEnforcer } from 'casbin';
import { describe, expect, it } from 'vitest';
import { Authorizer, defaultPolicyDir } from '../src/authz/enforcer.js';

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
        ['p, viewer, users, list', 'p, support, users, reset-password', 'g, support, viewer', 'p, lead, audit, read', 'g, lead, support', 'g, lead, user', ''].join('\n'),
      );
      const authz = await Authorizer.load(dir);
      const enforcer = await newEnforcer(join(dir, 'model.conf'), join(dir, 'policy.csv'));
      let allows = 0;
      for (const role of ['user', 'viewer', 'support', 'lead']) {
        for (const { name } of authz.permissions) {
          const [object, action] = name.split(/\.(.*)/) as [string, string];
          const expected = await enforcer.enforce(role, object, action);
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
});
