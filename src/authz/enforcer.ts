import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newEnforcer } from 'casbin';
import { GroupRoles, type GroupRoleRule } from './group-roles.js';

/** The top-level policies/ folder, found from this file whether run from src/ or dist/src/. */
export function defaultPolicyDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    dir = resolve(dir, '..');
    if (existsSync(join(dir, 'policies', 'model.conf'))) return join(dir, 'policies');
  }
  throw new Error('policies/ folder not found');
}

/**
 * Decides who may do what, from policies/model.conf and policies/policy.csv.
 * The policy is static while running, so every (role, object, action) the policy names is asked of the
 * Casbin enforcer once at load; checks on the request path are then a set lookup, with no promise.
 * The g2 grouping maps external (IdP, proxy) groups to roles: see GroupRoles.
 */
export class Authorizer {
  private constructor(
    private readonly allowed: ReadonlySet<string>,
    /** Every role the policy names. */
    readonly roles: ReadonlySet<string>,
    /** External groups → role, from g2 (policy.csv and configuration). */
    readonly groupRoles: GroupRoles,
    private readonly implied: ReadonlyMap<string, readonly string[]>,
    /** A digest of what the policy grants (capabilities and group rules): it changes when the policy does. */
    readonly digest: string,
  ) {}

  /** `groupRules` are g2 rules that configuration adds to policy.csv's (USHER_PROXY_ADMIN_GROUPS...). */
  static async load(policyDir = defaultPolicyDir(), groupRules: readonly GroupRoleRule[] = []): Promise<Authorizer> {
    const enforcer = await newEnforcer(join(policyDir, 'model.conf'), join(policyDir, 'policy.csv'));
    // Rules added here live in memory only; never write them to policy.csv.
    enforcer.enableAutoSave(false);
    const roles = new Set<string>();
    const capabilities = new Map<string, [string, string]>();
    for (const [sub, obj, act] of await enforcer.getPolicy()) {
      if (sub) roles.add(sub);
      if (obj && act) capabilities.set(key('', obj, act), [obj, act]);
    }
    for (const [member, role] of await enforcer.getGroupingPolicy()) {
      if (member) roles.add(member);
      if (role) roles.add(role);
    }
    const allowed = new Set<string>();
    for (const role of roles) {
      for (const [obj, act] of capabilities.values()) {
        if (await enforcer.enforce(role, obj, act)) allowed.add(key(role, obj, act));
      }
    }
    const implied = new Map<string, readonly string[]>();
    for (const role of roles) implied.set(role, [role, ...(await enforcer.getImplicitRolesForUser(role)).filter((r) => r !== role)]);
    const groupRoles = await loadGroupRoles(enforcer, roles, implied, allowed, groupRules);
    const rules = [...allowed, ...groupRules.map((r) => `g2\u0000${r.group}\u0000${r.role}\u0000${r.provider}`), ...(await enforcer.getNamedGroupingPolicy('g2')).map((r) => `g2\u0000${r.join('\u0000')}`)];
    const digest = createHash('sha256').update(rules.sort().join('\n')).digest('hex').slice(0, 16);
    return new Authorizer(allowed, roles, groupRoles, implied, digest);
  }

  /** The role and every role it inherits (admin → admin, user); just the role when the policy does not know it. */
  impliedRoles(role: string): readonly string[] {
    return this.implied.get(role) ?? [role];
  }

  /** May a holder of `role` do `action` on `object`? */
  can(role: string, object: string, action: string): boolean {
    return this.allowed.has(key(role, object, action));
  }
}

const key = (role: string, object: string, action: string) => `${role}\u0000${object}\u0000${action}`;

type Enforcer = Awaited<ReturnType<typeof newEnforcer>>;

/**
 * Reads the g2 rules (group, role, provider) of the policy and adds `extra` to them. Ranks roles so that
 * one that inherits another comes first: by how many roles it implies, then capabilities, then name.
 */
async function loadGroupRoles(
  enforcer: Enforcer,
  roles: ReadonlySet<string>,
  implied: ReadonlyMap<string, readonly string[]>,
  allowed: ReadonlySet<string>,
  extra: readonly GroupRoleRule[],
): Promise<GroupRoles> {
  const hasG2 = enforcer.getModel().model.get('g')?.has('g2') ?? false;
  if (!hasG2) {
    if (extra.length > 0) throw new Error('policy: model.conf has no g2 grouping (group, role, provider), which group-to-role mapping needs');
    return new GroupRoles([], new Map());
  }
  for (const rule of extra) await enforcer.addNamedGroupingPolicy('g2', rule.group, rule.role, rule.provider);
  const rules: GroupRoleRule[] = [];
  for (const row of await enforcer.getNamedGroupingPolicy('g2')) {
    const [group, role, provider] = row;
    if (row.length !== 3 || !group || !role || !provider) throw new Error(`policy: g2 needs group, role, provider (or *); got ${JSON.stringify(row)}`);
    if (!roles.has(role)) throw new Error(`policy: g2 maps group ${JSON.stringify(group)} to ${JSON.stringify(role)}, which is not a role of the policy`);
    rules.push({ group, role, provider });
  }
  const capabilities = (role: string) => [...allowed].filter((k) => k.startsWith(`${role}\u0000`)).length;
  const order = [...roles].sort(
    (a, b) => implied.get(b)!.length - implied.get(a)!.length || capabilities(b) - capabilities(a) || (a < b ? -1 : a > b ? 1 : 0),
  );
  return new GroupRoles(rules, new Map(order.map((role, i) => [role, i])));
}
