import { ANY_PROVIDER } from './group-roles.js';

/** One rule: members of `group`, as `provider` names them, hold `role` in the organisation named `org`. */
export interface OrgGroupRule {
  readonly group: string;
  readonly org: string;
  readonly role: string;
  /** 'proxy', `oidc:${id}`, or ANY_PROVIDER. */
  readonly provider: string;
}

/**
 * Turns an external identity's groups into an organisation and a role inside it (config `orgGroups`), the
 * per-organisation counterpart of g2 (group-roles.ts). Group names match exactly, case included. When
 * several groups match, the strongest role wins (the g2 order: `rank`), then the first rule.
 */
export class OrgGroupRoles {
  constructor(
    private readonly rules: readonly OrgGroupRule[],
    private readonly rank: () => ReadonlyMap<string, number>,
  ) {}

  /** Every role a rule gives (configuration pins them: they are never deleted or renamed). */
  roles(): string[] {
    return [...new Set(this.rules.map((r) => r.role))];
  }

  /** Does any rule cover this provider? Without one, groups never change an organisation role. */
  hasRules(provider: string): boolean {
    return this.rules.some((r) => r.provider === provider || r.provider === ANY_PROVIDER);
  }

  /** The organisation (by name) and role `groups` give at `provider`; null when no rule matches. */
  placeFor(provider: string, groups: readonly string[]): { org: string; role: string } | null {
    const rank = this.rank();
    let best: OrgGroupRule | null = null;
    for (const rule of this.rules) {
      if ((rule.provider !== provider && rule.provider !== ANY_PROVIDER) || !groups.includes(rule.group)) continue;
      if (best === null || (rank.get(rule.role) ?? Infinity) < (rank.get(best.role) ?? Infinity)) best = rule;
    }
    return best && { org: best.org, role: best.role };
  }
}
