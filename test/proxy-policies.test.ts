import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Authorizer, defaultPolicyDir } from '../src/authz/enforcer.js';

/** A copy of the real policies/ folder with `lines` appended to its policy.csv. */
function policyWith(lines: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'usher-policy-'));
  cpSync(defaultPolicyDir(), dir, { recursive: true });
  appendFileSync(join(dir, 'policy.csv'), lines);
  return dir;
}

describe('group-to-role mapping (g2) in the Casbin files of policies/', () => {
  const dirs: string[] = [];
  const load = (lines: string, extra: Parameters<typeof Authorizer.load>[1] = []) => {
    const dir = policyWith(lines);
    dirs.push(dir);
    return Authorizer.load(dir, extra);
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('declares g2 = group, role, provider in model.conf, and policy.csv maps no group by default', async () => {
    expect(readFileSync(join(defaultPolicyDir(), 'model.conf'), 'utf8')).toMatch(/^g2 = _, _, _$/m);
    const authz = await Authorizer.load();
    expect(authz.groupRoles.hasRules('proxy')).toBe(false);
    expect(authz.groupRoles.roleFor('proxy', ['admins', 'admin'])).toBeUndefined();
  });

  it.each([
    ['a configured admin group at its provider', 'proxy', ['staff', 'admins'], 'admin'],
    ['nothing for the same group name at another provider', 'oidc:corp', ['admins'], undefined],
    ['nothing for another case of the name', 'proxy', ['Admins', 'ADMINS'], undefined],
    ['nothing for no group', 'proxy', [], undefined],
  ])('real files plus configuration: %s', async (_name, provider, groups, role) => {
    const authz = await Authorizer.load(undefined, [{ group: 'admins', role: 'admin', provider: 'proxy' }]);
    expect(authz.groupRoles.roleFor(provider, groups)).toBe(role);
  });

  it.each([
    ['a "*" rule at any provider', 'oidc:corp', ['family'], 'user'],
    ['a provider rule only there', 'proxy', ['parents'], 'admin'],
    ['the strongest role when groups give several (admin inherits user)', 'proxy', ['family', 'parents'], 'admin'],
    ['the strongest role whatever the order of the groups', 'proxy', ['parents', 'family'], 'admin'],
    ['configuration and policy.csv together', 'proxy', ['ops'], 'admin'],
    ['no role for a provider rule elsewhere', 'oidc:corp', ['parents'], undefined],
  ])('policy.csv g2 rules: %s', async (_name, provider, groups, role) => {
    const authz = await load('g2, family, user, *\ng2, parents, admin, proxy\n', [{ group: 'ops', role: 'admin', provider: 'proxy' }]);
    expect(authz.groupRoles.roleFor(provider, groups)).toBe(role);
  });

  it('gives a role granted to a group everything that role inherits', async () => {
    const authz = await load('g2, parents, admin, proxy\n');
    const role = authz.groupRoles.roleFor('proxy', ['parents'])!;
    expect(authz.can(role, 'users', 'list')).toBe(true);
    expect(authz.can(role, 'self', 'read')).toBe(true);
    expect(authz.impliedRoles(role)).toEqual(['admin', 'user']);
    expect(authz.impliedRoles('user')).toEqual(['user']);
  });

  it('keeps groups out of the roles: a g2 rule does not make a group a role', async () => {
    const authz = await load('g2, parents, admin, proxy\n');
    expect([...authz.roles].sort()).toEqual(['admin', 'user']);
  });

  it.each([
    ['a role the policy does not know', 'g2, parents, superuser, proxy\n', /g2 maps group "parents" to "superuser", which is not a role of the policy/],
    ['a rule without its provider', 'g2, parents, admin\n', /g2 needs group, role, provider \(or \*\); got \["parents","admin"\]/],
  ])('refuses to load a g2 rule naming %s', async (_name, lines, message) => {
    await expect(load(lines)).rejects.toThrow(message);
  });

  it('never writes configured rules back to policy.csv', async () => {
    const dir = policyWith('');
    dirs.push(dir);
    const before = readFileSync(join(dir, 'policy.csv'), 'utf8');
    await Authorizer.load(dir, [{ group: 'admins', role: 'admin', provider: 'proxy' }]);
    expect(readFileSync(join(dir, 'policy.csv'), 'utf8')).toBe(before);
  });
});
