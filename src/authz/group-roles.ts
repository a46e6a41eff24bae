/** Every provider: a g2 rule with this provider applies to the groups of any proxy or OIDC provider. */
export const ANY_PROVIDER = '*';

/** One g2 rule of the policy: members of `group`, as `provider` names them, hold `role`. */
export interface GroupRoleRule {
  readonly group: string;
  readonly role: string;
  /** 'proxy', `oidc:${id}`, or ANY_PROVIDER. */
  readonly provider: string;
}

/**
 * Turns an external identity's groups into one role, from the policy's g2 rules (policies/policy.csv
 * plus the ones configuration adds, such as USHER_PROXY_ADMIN_GROUPS). Group names match exactly,
 * case included. When several groups give different roles, the strongest wins: a role that inherits
 * another outranks it (see compilePolicy in enforcer.ts for the order).
 */
export class GroupRoles {
  /** provider → group → roles. */
  private readonly rules = new Map<string, Map<string, string[]>>();

  constructor(
    rules: readonly GroupRoleRule[],
    /** Lower is stronger; every role of the rules is in it. */
    private rank: ReadonlyMap<string, number>,
  ) {
    for (const { group, role, provider } of rules) {
      let groups = this.rules.get(provider);
      if (!groups) this.rules.set(provider, (groups = new Map()));
      const roles = groups.get(group) ?? [];
      if (!roles.includes(role)) groups.set(group, [...roles, role]);
    }
  }

  /** Every role a rule gives. */
  roles(): string[] {
    return [...new Set([...this.rules.values()].flatMap((groups) => [...groups.values()].flat()))];
  }

  /** The roles' order after a change of the policy (a role now inherits another). */
  rerank(rank: ReadonlyMap<string, number>): void {
    this.rank = rank;
  }

  /** Does any group give a role at this provider? Without such a rule, groups never change a role. */
  hasRules(provider: string): boolean {
    return this.rules.has(provider) || this.rules.has(ANY_PROVIDER);
  }

  /** The role that `groups` give at `provider`, or undefined when none of them maps to a role. */
  roleFor(provider: string, groups: readonly string[]): string | undefined {
    let best: string | undefined;
    for (const scope of [this.rules.get(provider), this.rules.get(ANY_PROVIDER)]) {
      if (!scope) continue;
      for (const group of groups) {
        for (const role of scope.get(group) ?? []) {
          if (best === undefined || this.rank.get(role)! < this.rank.get(best)!) best = role;
        }
      }
    }
    return best;
  }
}
