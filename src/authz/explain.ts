import { ANY_PROVIDER } from './group-roles.js';
import { SUPER_ROLE, holdsIn, type CompiledPolicy } from './enforcer.js';
import { GLOBAL_ONLY } from './permissions.js';

/** What one step looked at; the list keeps the order of evaluation. */
export type ExplainKind = 'account' | 'super-role' | 'role' | 'inherited-role' | 'direct' | 'org-role' | 'org-direct' | 'grant' | 'group-rule';

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
  /** For `org-role` and `org-direct`: the organisation the binding holds in. */
  readonly orgId?: number;
  /** For `grant`: the grant's id (`GET /users/{id}/grants`) and where it came from (`api`, `default`, `group:...`). */
  readonly grantId?: number;
  readonly source?: string;
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
  readonly orgId: number | null;
  readonly orgRole: string | null;
}

/** Whether a rule given at sign-in by `provider` applies to an account signing in through `authSource`. */
export function ruleApplies(provider: string, authSource: string): boolean {
  return provider === ANY_PROVIDER ? authSource !== 'local' : provider === authSource;
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
  if (user.orgId !== null) steps.push(...orgSteps(policy, { ...user, orgId: user.orgId }, permission));
  for (const rule of policy.groupRules) {
    if (!(policy.byRole.get(rule.role)?.has(permission) ?? false)) continue;
    const applies = ruleApplies(rule.provider, user.authSource);
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

  // What the request path's can() answers: global role, direct grant, or the user's own organisation's binding.
  const allowed = holdsIn(policy, user, user.orgId, permission) && user.active;
  return { allowed, steps, decision: decision(steps, permission, user, allowed) };
}

/** The organisation binding: the org role, and permissions granted inside the organisation; never a global-only one. */
function orgSteps(policy: CompiledPolicy, user: ExplainedUser & { orgId: number }, permission: string): ExplainStep[] {
  const steps: ExplainStep[] = [];
  const globalOnly = GLOBAL_ONLY.has(permission);
  const within = `within organisation ${user.orgId} (for its members only)`;
  if (user.orgRole !== null) {
    const holds = !globalOnly && (policy.byOrgRole.get(user.orgRole)?.has(permission) ?? false);
    steps.push({
      kind: 'org-role',
      role: user.orgRole,
      orgId: user.orgId,
      result: holds ? 'allow' : 'none',
      detail: globalOnly
        ? `${permission} is given by global roles only: the organisation role ${user.orgRole} cannot give it.`
        : `The user's organisation role ${user.orgRole} ${holds ? 'holds' : 'does not hold'} ${permission} ${within}.`,
    });
  }
  const granted = policy.orgDirect.get(user.id)?.get(user.orgId)?.has(permission) ?? false;
  if (granted) {
    steps.push({
      kind: 'org-direct',
      orgId: user.orgId,
      result: globalOnly ? 'none' : 'allow',
      detail: globalOnly ? `${permission} was granted inside the organisation, where a global-only permission gives nothing.` : `${permission} is granted to this user directly ${within}.`,
    });
  }
  return steps;
}

/** A grant as the resource explanation reads it. */
export interface ExplainedGrant {
  readonly id: number;
  readonly type: string;
  readonly resourceId: string;
  readonly actions: readonly string[];
  readonly source: string;
}

/** A group rule giving grants at sign-in (config groupGrants). */
export interface ExplainedGroupGrant {
  readonly group: string;
  readonly provider: string;
  readonly type: string;
  readonly id: string;
  readonly actions: readonly string[];
}

/**
 * Why the user may `action` on resource `id` of `type`, or not: the account, admin's super role (every
 * resource), each grant on that resource or on every one of the type, then the IdP group rules that would
 * give one at sign-in. `allowed` is the grants' own decision, passed in (GrantService.can).
 */
export function explainResource(
  user: ExplainedUser,
  what: { type: string; id: string; action: string },
  grants: readonly ExplainedGrant[],
  groupRules: readonly ExplainedGroupGrant[],
  allowed: boolean,
): Explanation {
  const steps: ExplainStep[] = [];
  const resource = what.id === '*' ? `every ${what.type}` : `${what.type} ${what.id}`;
  if (!user.active) steps.push({ kind: 'account', result: 'deny', detail: 'The account is disabled: it cannot sign in, so it is allowed nothing whatever it holds.' });
  if (user.role === SUPER_ROLE) steps.push({ kind: 'super-role', role: SUPER_ROLE, result: 'allow', detail: `${SUPER_ROLE} reaches every resource of the host app.` });
  const matching = grants.filter((g) => g.type === what.type && (g.resourceId === '*' || g.resourceId === what.id));
  for (const g of matching) {
    const holds = g.actions.includes(what.action);
    const on = g.resourceId === '*' ? `every ${g.type}` : `${g.type} ${g.resourceId}`;
    steps.push({ kind: 'grant', grantId: g.id, source: g.source, result: holds ? 'allow' : 'none', detail: `Grant ${g.id} (${g.source}) gives ${g.actions.join(', ')} on ${on}${holds ? '' : `, not ${what.action}`}.` });
  }
  if (matching.length === 0) steps.push({ kind: 'grant', result: 'none', detail: `No grant of this user is on ${resource} or on every ${what.type}.` });
  for (const rule of groupRules) {
    if (rule.type !== what.type || (rule.id !== '*' && rule.id !== what.id) || !rule.actions.includes(what.action)) continue;
    const applies = ruleApplies(rule.provider, user.authSource);
    const where = rule.provider === ANY_PROVIDER ? 'any identity provider' : rule.provider;
    steps.push({
      kind: 'group-rule',
      group: rule.group,
      provider: rule.provider,
      result: 'none',
      detail: `Members of ${rule.group} (${where}) are granted ${what.action} on ${rule.id === '*' ? `every ${rule.type}` : `${rule.type} ${rule.id}`} at sign-in; ${applies ? 'this account signs in there, so its groups then decide' : `this account (${user.authSource}) does not sign in there`}.`,
    });
  }
  const ok = allowed && user.active;
  const by = steps.find((s) => s.result === 'allow');
  const refused = steps.find((s) => s.result === 'deny');
  const sentence = ok && by ? `Allowed: ${by.detail}` : refused ? `Denied: ${refused.detail}` : `Denied: no grant gives ${what.action} on ${resource}.`;
  return { allowed: ok, steps, decision: sentence };
}

function decision(steps: readonly ExplainStep[], permission: string, user: ExplainedUser, allowed: boolean): string {
  if (allowed) {
    const by = steps.find((s) => s.result === 'allow')!;
    return `Allowed: ${by.detail}`;
  }
  const refused = steps.find((s) => s.result === 'deny');
  if (refused) return `Denied: ${refused.detail}`;
  const org = user.orgId !== null ? ', the organisation binding' : '';
  return `Denied: neither the role ${user.role}, the roles it inherits${org}, nor a direct grant holds ${permission}.`;
}
