import { ANY_PROVIDER } from './group-roles.js';
import { SUPER_ROLE, type CompiledPolicy } from './enforcer.js';

/**
 * What one step looked at. More kinds come with organisations (`org-binding`), resource grants (`grant`)
 * and scoped keys (`key-scope`): each adds its own kind and fields, the list keeps its order of evaluation.
 */
export type ExplainKind = 'account' | 'super-role' | 'role' | 'inherited-role' | 'direct' | 'group-rule';

export interface ExplainStep {
  readonly kind: ExplainKind;
  /** `allow`: this step gives the permission now; `deny`: it refuses whatever the others give; `none`: neither. */
  readonly result: 'allow' | 'deny' | 'none';
  /** One sentence for a person. */
  readonly detail: string;
  /** The role the step is about (`role`, `inherited-role`, `super-role`, the role a group rule gives). */
  readonly role?: string;
  /** For `inherited-role`: the role it is inherited through (the user's role, or one it inherits). */
  readonly via?: string;
  /** For `group-rule`: the external group and the provider that names it (`proxy`, `oidc:<id>`, `*`). */
  readonly group?: string;
  readonly provider?: string;
}

export interface Explanation {
  readonly allowed: boolean;
  readonly steps: readonly ExplainStep[];
  readonly decision: string;
}

/** The account asked about, as the explanation needs it. */
export interface ExplainedUser {
  readonly id: number;
  readonly role: string;
  readonly active: boolean;
  /** `local`, `proxy` or `oidc:<id>`: which group rules apply to it at sign-in. */
  readonly authSource: string;
}

/**
 * Why the policy allows `permission` to `user`, or not, step by step, from the same compiled policy the
 * request path reads: the account's state, admin's super role, the user's role, each role it inherits
 * (breadth first, with the role it comes through), a direct grant, then the IdP group rules whose role
 * holds the permission (they give a role at sign-in, never on their own). `allowed` is the policy's own
 * decision (`byRole`, `direct`); the steps are checked against it in test/explain.test.ts.
 */
export function explain(policy: CompiledPolicy, user: ExplainedUser, permission: string): Explanation {
  const steps: ExplainStep[] = [];
  if (!user.active) steps.push({ kind: 'account', result: 'deny', detail: 'The account is disabled: it cannot sign in, so it is allowed nothing whatever it holds.' });
  const role = policy.roles.get(user.role);
  if (user.role === SUPER_ROLE) {
    steps.push({ kind: 'super-role', role: SUPER_ROLE, result: 'allow', detail: `${SUPER_ROLE} holds every permission, Usher's and the host app's.` });
  } else if (!role) {
    steps.push({ kind: 'role', role: user.role, result: 'none', detail: `${user.role} is not a role of the policy: it gives nothing.` });
  } else {
    const own = role.permissions.includes(permission);
    steps.push({ kind: 'role', role: user.role, result: own ? 'allow' : 'none', detail: `The user's role ${user.role} ${own ? 'holds' : 'does not hold'} ${permission} itself.` });
    // Breadth first from the user's role, each inherited role once, with the role it is reached through.
    const seen = new Set([user.role]);
    const queue = role.inherits.map((r) => ({ name: r, via: user.role }));
    while (queue.length > 0) {
      const { name, via } = queue.shift()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const parent = policy.roles.get(name);
      const holds = parent?.permissions.includes(permission) ?? false;
      steps.push({ kind: 'inherited-role', role: name, via, result: holds ? 'allow' : 'none', detail: `${via} inherits ${name}, which ${holds ? 'holds' : 'does not hold'} ${permission}.` });
      for (const next of parent?.inherits ?? []) queue.push({ name: next, via: name });
    }
  }
  const direct = policy.direct.get(user.id)?.has(permission) ?? false;
  steps.push({ kind: 'direct', result: direct ? 'allow' : 'none', detail: direct ? `${permission} is granted to this user directly.` : `${permission} is not granted to this user directly.` });
  for (const rule of policy.groupRules) {
    if (!(policy.byRole.get(rule.role)?.has(permission) ?? false)) continue;
    const applies = rule.provider === ANY_PROVIDER ? user.authSource !== 'local' : rule.provider === user.authSource;
    const where = rule.provider === ANY_PROVIDER ? 'any identity provider' : rule.provider;
    steps.push({
      kind: 'group-rule',
      role: rule.role,
      group: rule.group,
      provider: rule.provider,
      result: 'none',
      detail: `Members of ${rule.group} (${where}) get ${rule.role}, which holds ${permission}, at sign-in; ${applies ? 'this account signs in there, so its groups then decide its role' : `this account (${user.authSource}) does not sign in there`}.`,
    });
  }

  const granted = (policy.byRole.get(user.role)?.has(permission) ?? false) || direct;
  const allowed = granted && user.active;
  return { allowed, steps, decision: decision(steps, permission, user, allowed) };
}

function decision(steps: readonly ExplainStep[], permission: string, user: ExplainedUser, allowed: boolean): string {
  if (allowed) {
    const by = steps.find((s) => s.result === 'allow')!;
    return `Allowed: ${by.detail}`;
  }
  const refused = steps.find((s) => s.result === 'deny');
  if (refused) return `Denied: ${refused.detail}`;
  return `Denied: neither the role ${user.role}, the roles it inherits, nor a direct grant holds ${permission}.`;
}
