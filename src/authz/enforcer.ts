import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newEnforcer } from 'casbin';

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
 */
export class Authorizer {
  private constructor(
    private readonly allowed: ReadonlySet<string>,
    /** Every role the policy names. */
    readonly roles: ReadonlySet<string>,
  ) {}

  static async load(policyDir = defaultPolicyDir()): Promise<Authorizer> {
    const enforcer = await newEnforcer(join(policyDir, 'model.conf'), join(policyDir, 'policy.csv'));
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
    return new Authorizer(allowed, roles);
  }

  /** May a holder of `role` do `action` on `object`? */
  can(role: string, object: string, action: string): boolean {
    return this.allowed.has(key(role, object, action));
  }
}

const key = (role: string, object: string, action: string) => `${role}\u0000${object}\u0000${action}`;
