import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { newEnforcer, newModelFromString } from 'casbin';
import { ADMIN_ROLE } from '../users/model.js';
import { GroupRoles, type GroupRoleRule } from './group-roles.js';
import { GLOBAL_ONLY, permissionName, USHER_PERMISSIONS, type PermissionInfo, type PermissionSource } from './permissions.js';
import { policyRepo, type PolicyRows, type RoleRow } from './policy-repository.js';

/** The top-level policies/ folder, found from this file whether run from src/ or dist/src/. */
export function defaultPolicyDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    dir = resolve(dir, '..');
    if (existsSync(join(dir, 'policies', 'model.conf'))) return join(dir, 'policies');
  }
  throw new Error('policies/ folder not found');
}

/** The domain of a global binding (a user's global role, the built-in inheritance): it holds in every domain. */
export const ALL_DOMAINS = '*';

/** The Casbin domain of organisation `id`. */
export const orgDomain = (id: number) => `org:${id}`;

/** Casbin's domain matching for g: a binding in `*` holds in every domain, any other in its own alone. */
export const anyDomain = (requested: string, bound: string) => bound === ALL_DOMAINS || requested === bound;

/** The role that holds every permission, Usher's and the host app's; its permissions are not editable. */
export const SUPER_ROLE = ADMIN_ROLE;

/**
 * Who is asked about: a role alone, or a user (their global role and direct permissions, and, inside their
 * own organisation only, their organisation role and the permissions granted to them there). A user acting
 * through a scoped API key carries its `scope`: they may then do only what both the scope and they hold; a
 * device token carries what it `withhold`s whatever the user holds.
 */
export type Subject = string | UserSubject;

export interface UserSubject {
  readonly id: number;
  readonly role: string;
  readonly orgId?: number | null;
  readonly orgRole?: string | null;
  readonly scope?: ReadonlySet<string>;
  readonly withhold?: ReadonlySet<string>;
}

/** A permission of the catalogue: Usher's own or one the host app declared. */
export interface DeclaredPermission extends PermissionInfo {
  readonly source: PermissionSource;
}

/** A role as the policy now holds it. */
export interface RoleView {
  readonly name: string;
  readonly description: string;
  readonly builtIn: boolean;
  /** The roles it inherits directly. */
  readonly inherits: readonly string[];
  /** Its own permissions (`admin`: every permission). */
  readonly permissions: readonly string[];
  /** Everything it holds, inherited included. */
  readonly effective: readonly string[];
}

/** The whole policy, compiled into sets: what every check on the request path reads. */
export interface CompiledPolicy {
  readonly roles: ReadonlyMap<string, RoleView>;
  readonly roleNames: ReadonlySet<string>;
  readonly digest: string;
  /** role → permission names it holds, inherited included. */
  readonly byRole: ReadonlyMap<string, ReadonlySet<string>>;
  /** user id → permissions granted to them directly, everywhere. */
  readonly direct: ReadonlyMap<number, ReadonlySet<string>>;
  /** user id → organisation id → permissions granted to them in that organisation (by an org admin). */
  readonly orgDirect: ReadonlyMap<number, ReadonlyMap<number, ReadonlySet<string>>>;
  /** role → what it gives as an organisation role: what it holds, less the global-only permissions. */
  readonly byOrgRole: ReadonlyMap<string, ReadonlySet<string>>;
  readonly implied: ReadonlyMap<string, readonly string[]>;
  /** Roles, strongest first (the g2 order). */
  readonly rank: ReadonlyMap<string, number>;
  readonly groupRules: readonly GroupRoleRule[];
}

export interface PolicySources {
  /** Folder of model.conf and policy.csv. */
  policyDir?: string;
  /** g2 rules configuration adds to policy.csv's (USHER_PROXY_ADMIN_GROUPS...). */
  groupRules?: readonly GroupRoleRule[];
  /** The host app's permissions (config `permissions:`, `createUsher({ permissions })`). */
  permissions?: readonly PermissionInfo[];
}

const BUILT_IN_DESCRIPTIONS: Record<string, string> = {
  user: 'Every account: its own profile, API key, sessions and recovery code.',
  admin: 'Holds every permission, Usher’s and the host app’s.',
};

/**
 * Decides who may do what. The model is policies/model.conf; the rules live in the database (custom roles,
 * inheritance, role permissions, users' direct permissions), with policies/policy.csv defining the built-in
 * roles (written into the database at each start). Casbin compiles the rules once per change into what
 * each role holds; checks on the request path are then set lookups, with no promise. A change made
 * through this instance is compiled before its request answers (`refresh()`); another instance sees it at
 * its next `sync()` (policy-sync.ts polls it every `cluster.pollInterval`).
 */
export class Authorizer {
  private state: CompiledPolicy;
  /** The policy version `state` was read at: an older compilation never replaces a newer one. */
  private installedVersion = -1;
  private refreshing: Promise<void> = Promise.resolve();
  /** Who waits for a version to be installed (`installed()`). */
  private waiters: { version: number; resolve: () => void }[] = [];
  /** External groups → role, from g2 (policy.csv and configuration); re-ranked on each change. */
  readonly groupRoles: GroupRoles;

  private constructor(
    state: CompiledPolicy,
    /** model.conf's text, read once: each change compiles the policy again. */
    private readonly modelText: string,
    /** Every permission roles may hold: Usher's and the host app's. */
    readonly permissions: readonly DeclaredPermission[],
    private readonly groupRules: readonly GroupRoleRule[],
    private readonly db: Knex | undefined,
  ) {
    this.state = state;
    this.groupRoles = new GroupRoles(state.groupRules, state.rank);
  }

  /** The policy of the files alone, without a database (truth tables, tools). */
  static async load(policyDir = defaultPolicyDir(), groupRules: readonly GroupRoleRule[] = [], permissions: readonly PermissionInfo[] = []): Promise<Authorizer> {
    const model = readFileSync(join(policyDir, 'model.conf'), 'utf8');
    const file = await readPolicyFile(policyDir);
    const declared = catalogue(permissions, file.rows);
    const state = await compilePolicy(model, { ...file.rows, direct: [] }, declared, [...file.groupRules, ...groupRules]);
    return new Authorizer(state, model, declared, [...file.groupRules, ...groupRules], undefined);
  }

  /** The policy of the database, after writing policy.csv's built-in roles into it. */
  static async open(db: Knex, sources: PolicySources = {}): Promise<Authorizer> {
    const policyDir = sources.policyDir ?? defaultPolicyDir();
    const model = readFileSync(join(policyDir, 'model.conf'), 'utf8');
    const file = await readPolicyFile(policyDir);
    const declared = catalogue(sources.permissions ?? [], file.rows);
    await db.transaction((trx) => policyRepo.syncBuiltIns(trx, file.rows, Date.now()));
    const groupRules = [...file.groupRules, ...(sources.groupRules ?? [])];
    const version = await policyRepo.version(db);
    const state = await compilePolicy(model, await policyRepo.readAll(db), declared, groupRules);
    const authz = new Authorizer(state, model, declared, groupRules, db);
    authz.installedVersion = version;
    return authz;
  }

  /** Every role, built-in and custom. */
  get roles(): ReadonlySet<string> {
    return this.state.roleNames;
  }

  /**
   * A digest of what the roles grant and of the group rules: it changes when the policy does. Users' direct
   * permissions are left out: each grant is audited when made, and a user's deletion takes theirs along.
   */
  get digest(): string {
    return this.state.digest;
  }

  get policy(): CompiledPolicy {
    return this.state;
  }

  /** The policy version installed (the `locks` row named 'policy'); -1 for the files alone. */
  get version(): number {
    return this.installedVersion;
  }

  /** The role and every role it inherits (admin → admin, user); just the role when the policy does not know it. */
  impliedRoles(role: string): readonly string[] {
    return this.state.implied.get(role) ?? [role];
  }

  /**
   * May this role, or this user, do `action` on `object` somewhere: through their global role or a direct
   * grant, or in their own organisation. The routes' gate; what a route does to one user then asks
   * `canIn` the target's organisation (src/authz/targets.ts).
   */
  can(who: Subject, object: string, action: string): boolean {
    const name = permissionName(object, action);
    if (typeof who === 'string') return this.state.byRole.get(who)?.has(name) ?? false;
    return holdsIn(this.state, who, who.orgId ?? null, name);
  }

  /**
   * May this user do it in organisation `orgId` (null: outside every organisation, i.e. globally)? Their
   * global role and global grants hold everywhere; their organisation role and the grants made in their
   * organisation only there, and never a global-only permission (`GLOBAL_ONLY`).
   */
  canIn(who: UserSubject, orgId: number | null, object: string, action: string): boolean {
    return holdsIn(this.state, who, orgId, permissionName(object, action));
  }

  /**
   * May `actor` act on `target`'s credentials and sessions: do they hold (within their key's scope) every
   * permission the target holds, the target's own-account `self.*` aside? Admins reach everyone; nobody
   * else reaches an admin. Oneself, always.
   */
  reaches(actor: Exclude<Subject, string>, target: { readonly id: number; readonly role: string }): boolean {
    if (actor.id === target.id) return true;
    const held = [...(this.state.byRole.get(target.role) ?? []), ...(this.state.direct.get(target.id) ?? [])];
    return held.every((name) => {
      const at = name.indexOf('.');
      return name.startsWith('self.') || this.can(actor, name.slice(0, at), name.slice(at + 1));
    });
  }

  /** Is `name` a permission of the catalogue (`users.list`)? */
  isDeclared(name: string): boolean {
    return this.permissions.some((p) => p.name === name);
  }

  /**
   * The policy as the database holds it inside `trx`, for checks made under the lock: the installed one
   * when it is of the database's version (no other instance changed it since), else compiled again.
   */
  async policyAt(trx: Knex.Transaction): Promise<CompiledPolicy> {
    const state = this.state;
    const version = this.installedVersion;
    return (await policyRepo.version(trx)) === version ? state : this.compile(trx);
  }

  /** Compiles the policy the database holds (inside `trx`: as that transaction sees it). */
  async compile(trx: Knex.Transaction | Knex): Promise<CompiledPolicy> {
    return compilePolicy(this.modelText, await policyRepo.readAll(trx), this.permissions, this.groupRules);
  }

  /**
   * Compiles the database's policy again and swaps it in: call after a committed change, before answering.
   * Refreshes run one after another, so the last one reads the last commit.
   */
  refresh(): Promise<void> {
    const db = this.db;
    if (!db) return Promise.resolve();
    const next = this.refreshing.then(async () => {
      const version = await policyRepo.version(db);
      this.install(await this.compile(db), version);
    });
    this.refreshing = next.catch(() => undefined);
    return next;
  }

  /**
   * Installs the database's policy when its version moved past the installed one (a change made through
   * another instance); answers whether it did. The poll of policy-sync.ts calls it, and so may a
   * notification from the other instances. Runs after any refresh under way; never blocks a check.
   */
  sync(): Promise<boolean> {
    const db = this.db;
    if (!db) return Promise.resolve(false);
    const next = this.refreshing.then(async () => {
      const version = await policyRepo.version(db);
      if (version <= this.installedVersion) return false;
      // Read at `version` or later: a later commit only makes it newer than its label, and the next sync
      // compiles again.
      return this.install(await this.compile(db), version);
    });
    this.refreshing = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  /** Resolves once a policy of `version` or newer is installed. */
  installed(version: number): Promise<void> {
    if (this.installedVersion >= version) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ version, resolve }));
  }

  /**
   * Swaps in a policy compiled inside a committed change's transaction, under the lock at `version`: the
   * change's own compilation serves, with no second one. Older than what is installed: ignored (answers false).
   */
  install(policy: CompiledPolicy, version: number): boolean {
    if (version < this.installedVersion) return false;
    this.installedVersion = version;
    this.state = policy;
    this.groupRoles.rerank(policy.rank);
    const due = this.waiters.filter((w) => w.version <= version);
    this.waiters = this.waiters.filter((w) => w.version > version);
    for (const w of due) w.resolve();
    return true;
  }
}

/** Does the user hold `name` in organisation `orgId` (null: globally)? Set lookups only. */
export function holdsIn(policy: CompiledPolicy, who: UserSubject, orgId: number | null, name: string): boolean {
  if (who.scope !== undefined && !who.scope.has(name)) return false;
  if (who.withhold?.has(name)) return false;
  if (policy.byRole.get(who.role)?.has(name) || policy.direct.get(who.id)?.has(name)) return true;
  if (orgId === null || who.orgId !== orgId) return false;
  if (who.orgRole && policy.byOrgRole.get(who.orgRole)?.has(name)) return true;
  return (!GLOBAL_ONLY.has(name) && policy.orgDirect.get(who.id)?.get(orgId)?.has(name)) ?? false;
}

/** What a user holds in their own organisation beyond their global role and grants (empty without one). */
export function orgPermissionsOf(policy: CompiledPolicy, user: UserSubject): string[] {
  if (user.orgId === null || user.orgId === undefined) return [];
  const fromRole = user.orgRole ? [...(policy.byOrgRole.get(user.orgRole) ?? [])] : [];
  const granted = [...(policy.orgDirect.get(user.id)?.get(user.orgId) ?? [])].filter((p) => !GLOBAL_ONLY.has(p));
  return [...new Set([...fromRole, ...granted])].sort();
}

/**
 * Permissions a user holds: through their role, directly, and all of them (their organisation's
 * included: `effective` is what they hold anywhere, the set the no-escalation rails compare).
 */
export function permissionsOf(policy: CompiledPolicy, user: UserSubject) {
  const inherited = [...(policy.byRole.get(user.role) ?? [])].sort();
  const direct = [...(policy.direct.get(user.id) ?? [])].sort();
  const inOrg = orgPermissionsOf(policy, user);
  const effective = [...new Set([...inherited, ...direct, ...inOrg])].sort();
  return { role: user.role, inherited, direct, effective, inOrg };
}

/** The global permissions alone: the role's and the global grants. */
export function globalPermissionsOf(policy: CompiledPolicy, user: UserSubject): Set<string> {
  return new Set([...(policy.byRole.get(user.role) ?? []), ...(policy.direct.get(user.id) ?? [])]);
}

/** Usher's permissions, the host app's, and any other the policy file names (a custom policies/ folder). */
function catalogue(app: readonly PermissionInfo[], file: Pick<PolicyRows, 'permissions'>): DeclaredPermission[] {
  const out = new Map<string, DeclaredPermission>();
  for (const p of USHER_PERMISSIONS) out.set(p.name, { ...p, source: 'usher' });
  for (const p of app) {
    if (out.has(p.name)) throw new Error(`permissions: ${p.name} is declared twice, or is one of Usher's own`);
    out.set(p.name, { ...p, source: 'app' });
  }
  for (const [, object, action] of file.permissions) {
    const name = permissionName(object, action);
    if (!out.has(name)) out.set(name, { name, description: '', source: 'usher' });
  }
  return [...out.values()];
}

interface PolicyFile {
  rows: Omit<PolicyRows, 'direct'>;
  groupRules: GroupRoleRule[];
}

/** policy.csv as rows: its roles are the built-ins. */
async function readPolicyFile(policyDir: string): Promise<PolicyFile> {
  const enforcer = await newEnforcer(join(policyDir, 'model.conf'), join(policyDir, 'policy.csv'));
  await enforcer.addNamedDomainMatchingFunc('g', anyDomain);
  enforcer.enableAutoSave(false);
  const permissions = (await enforcer.getPolicy()).map(([sub, obj, act]) => [sub!, obj!, act!] as [string, string, string]);
  const inherits: [string, string][] = [];
  for (const row of await enforcer.getGroupingPolicy()) {
    const [member, role, domain] = row;
    // The built-in roles' inheritance holds everywhere; users' bindings live in the database.
    if (!member || !role || domain !== ALL_DOMAINS) throw new Error(`policy: g needs member, role, ${ALL_DOMAINS} (inheritance holds in every domain); got ${JSON.stringify(row)}`);
    inherits.push([member, role]);
  }
  const names = new Set<string>();
  for (const [sub] of permissions) names.add(sub);
  for (const [member, role] of inherits) names.add(member).add(role);
  const roles: RoleRow[] = [...names].map((name) => ({ name, description: BUILT_IN_DESCRIPTIONS[name] ?? '', builtIn: true }));
  const hasG2 = enforcer.getModel().model.get('g')?.has('g2') ?? false;
  const groupRules: GroupRoleRule[] = [];
  if (hasG2) {
    for (const row of await enforcer.getNamedGroupingPolicy('g2')) {
      const [group, role, provider] = row;
      if (row.length !== 3 || !group || !role || !provider) throw new Error(`policy: g2 needs group, role, provider (or *); got ${JSON.stringify(row)}`);
      groupRules.push({ group, role, provider });
    }
  }
  return { rows: { roles, inherits, permissions }, groupRules };
}

const key = (role: string, name: string) => `${role}\u0000${name}`;

/**
 * Compiles what every role holds with Casbin's RBAC API over the model's g and p, and ranks the
 * roles for g2: one that inherits another comes first, then by how much it holds, then by name.
 */
async function compilePolicy(modelText: string, rows: PolicyRows, declared: readonly DeclaredPermission[], groupRules: readonly GroupRoleRule[]): Promise<CompiledPolicy> {
  const enforcer = await newEnforcer(newModelFromString(modelText));
  enforcer.enableAutoSave(false);
  await enforcer.addNamedDomainMatchingFunc('g', anyDomain);
  const roleNames = new Set(rows.roles.map((r) => r.name));
  const pairs = new Map<string, [string, string]>();
  for (const p of declared) {
    const at = p.name.indexOf('.');
    pairs.set(p.name, [p.name.slice(0, at), p.name.slice(at + 1)]);
  }
  for (const [, obj, act] of rows.permissions) pairs.set(permissionName(obj, act), [obj, act]);
  const policy = rows.permissions.map((r) => [...r]);
  if (roleNames.has(SUPER_ROLE)) for (const [obj, act] of pairs.values()) policy.push([SUPER_ROLE, obj, act]);
  if (policy.length > 0) await enforcer.addPolicies(policy);
  if (rows.inherits.length > 0) await enforcer.addGroupingPolicies(rows.inherits.map((r) => [...r, ALL_DOMAINS]));
  const hasG2 = enforcer.getModel().model.get('g')?.has('g2') ?? false;
  if (groupRules.length > 0 && !hasG2) throw new Error('policy: model.conf has no g2 grouping (group, role, provider), which group-to-role mapping needs');
  for (const rule of groupRules) {
    if (!roleNames.has(rule.role)) throw new Error(`policy: g2 maps group ${JSON.stringify(rule.group)} to ${JSON.stringify(rule.role)}, which is not a role of the policy`);
  }
  if (groupRules.length > 0) await enforcer.addNamedGroupingPolicies('g2', groupRules.map((r) => [r.group, r.role, r.provider]));

  const byRole = new Map<string, Set<string>>();
  const implied = new Map<string, readonly string[]>();
  for (const role of roleNames) {
    // Casbin's RBAC API walks g and p as the model defines them. Asking enforce() of every (role, pair)
    // instead costs a matcher run per policy row: 2.5 s for 100 roles (bench/permissions.ts).
    // test/policies.test.ts checks both agree.
    // What a role holds in `*`: its inheritance is bound there, and holds in every organisation alike.
    const held = new Set<string>();
    const inherited = (await enforcer.getImplicitRolesForUser(role, ALL_DOMAINS)).filter((r) => r !== role);
    for (const r of [role, ...inherited]) {
      for (const [, obj, act] of await enforcer.getFilteredPolicy(0, r)) {
        const name = permissionName(obj!, act!);
        if (pairs.has(name)) held.add(name);
      }
    }
    byRole.set(role, held);
    implied.set(role, [role, ...inherited]);
  }
  const direct = new Map<number, Set<string>>();
  for (const [userId, obj, act] of rows.direct) {
    let set = direct.get(userId);
    if (!set) direct.set(userId, (set = new Set()));
    set.add(permissionName(obj, act));
  }
  const orgDirect = new Map<number, Map<number, Set<string>>>();
  for (const [userId, orgId, obj, act] of rows.orgDirect ?? []) {
    let byOrg = orgDirect.get(userId);
    if (!byOrg) orgDirect.set(userId, (byOrg = new Map()));
    let set = byOrg.get(orgId);
    if (!set) byOrg.set(orgId, (set = new Set()));
    set.add(permissionName(obj, act));
  }
  const byOrgRole = new Map<string, Set<string>>();
  for (const [role, held] of byRole) byOrgRole.set(role, new Set([...held].filter((p) => !GLOBAL_ONLY.has(p))));
  const roles = new Map<string, RoleView>();
  for (const r of rows.roles) {
    const own = r.name === SUPER_ROLE ? [...pairs.keys()] : rows.permissions.filter(([sub]) => sub === r.name).map(([, o, a]) => permissionName(o, a));
    roles.set(r.name, {
      name: r.name,
      description: r.description,
      builtIn: r.builtIn,
      inherits: rows.inherits.filter(([m]) => m === r.name).map(([, p]) => p).sort(),
      permissions: [...new Set(own)].sort(),
      effective: [...byRole.get(r.name)!].sort(),
    });
  }
  const order = [...roleNames].sort((a, b) => implied.get(b)!.length - implied.get(a)!.length || byRole.get(b)!.size - byRole.get(a)!.size || (a < b ? -1 : a > b ? 1 : 0));
  const lines = [
    ...[...byRole].flatMap(([role, held]) => [...held].map((p) => key(role, p))),
    ...groupRules.map((r) => `g2\u0000${r.group}\u0000${r.role}\u0000${r.provider}`),
  ];
  const digest = createHash('sha256').update(lines.sort().join('\n')).digest('hex').slice(0, 16);
  return { roles, roleNames: new Set([...roleNames].sort()), digest, byRole, direct, orgDirect, byOrgRole, implied, rank: new Map(order.map((role, i) => [role, i])), groupRules };
}
