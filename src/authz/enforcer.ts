import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newEnforcer, type Enforcer } from 'casbin';

/** The top-level policies/ folder, found from this file whether run from src/ or dist/src/. */
export function defaultPolicyDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    dir = resolve(dir, '..');
    if (existsSync(join(dir, 'policies', 'model.conf'))) return join(dir, 'policies');
  }
  throw new Error('policies/ folder not found');
}

/** Decides who may do what, from policies/model.conf and policies/policy.csv. */
export class Authorizer {
  // The policy is static while running, so each (role, object, action) answer is computed once.
  private readonly memo = new Map<string, boolean>();

  private constructor(
    private readonly enforcer: Enforcer,
    /** Every role the policy names. */
    readonly roles: ReadonlySet<string>,
  ) {}

  static async load(policyDir = defaultPolicyDir()): Promise<Authorizer> {
    const enforcer = await newEnforcer(join(policyDir, 'model.conf'), join(policyDir, 'policy.csv'));
    const roles = new Set<string>();
    for (const [sub] of await enforcer.getPolicy()) if (sub) roles.add(sub);
    for (const [member, role] of await enforcer.getGroupingPolicy()) {
      if (member) roles.add(member);
      if (role) roles.add(role);
    }
    return new Authorizer(enforcer, roles);
  }

  /** May a holder of `role` do `action` on `object`? */
  async can(role: string, object: string, action: string): Promise<boolean> {
    const key = `${role}\u0000${object}\u0000${action}`;
    let answer = this.memo.get(key);
    if (answer === undefined) {
      answer = await this.enforcer.enforce(role, object, action);
      this.memo.set(key, answer);
    }
    return answer;
  }
}
