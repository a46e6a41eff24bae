import type { Knex } from 'knex';
import { Errors, invalidField } from '../errors.js';
import { uniqueViolation, type Db } from '../db/connect.js';
import { eventOf, type EventDetail, type EventStream, type Origin, type UsherEvent } from '../events/stream.js';
import { usersRepo } from '../users/repository.js';
import type { UserGuard } from '../users/service.js';
import { GLOBAL_ONLY } from './permissions.js';
import { SUPER_ROLE, globalPermissionsOf, holdsIn, permissionsOf, type Authorizer, type CompiledPolicy, type RoleView } from './enforcer.js';
import { policyRepo } from './policy-repository.js';

export interface RoleInput {
  name: string;
  description?: string;
  inherits?: readonly string[];
  /** `object.action` names. */
  permissions?: readonly string[];
}

export type RoleChange = Partial<RoleInput>;

/** What a user holds: through their role, granted directly, and both. */
export interface UserPermissions {
  role: string;
  inherited: string[];
  direct: string[];
  effective: string[];
  /** A member of an organisation: it, their role there, and what they hold there beyond the rest. */
  organizationId?: number;
  orgRole?: string | null;
  inOrganization?: string[];
}

const list = (items: readonly string[]) => [...items].sort().join(',');

/**
 * Changes to the policy: custom roles and users' direct permissions. Each runs under the users lock (the
 * one users' role changes take), checks inside that transaction that the actor grants nothing they do not
 * hold, records `policy.changed` with the new digest, and compiles the policy again before it answers.
 */
export class PolicyService {
  private guard: UserGuard | undefined;

  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly events: EventStream,
    /** Roles configuration names (g2 targets, default roles): never deleted or renamed. */
    private readonly pinned: ReadonlySet<string> = new Set(),
  ) {}

  /** Who may read and change whose permissions (src/authz/targets.ts). */
  guardTargets(guard: UserGuard): void {
    this.guard = guard;
  }

  roles(): RoleView[] {
    return [...this.authz.policy.roles.values()];
  }

  role(name: string): RoleView {
    const role = this.authz.policy.roles.get(name);
    if (!role) throw Errors.roleNotFound();
    return role;
  }

  async createRole(input: RoleInput, origin: Origin): Promise<RoleView> {
    await this.change(origin, async (trx, before, now) => {
      this.checkNameFree(before, input.name);
      this.checkInherits(before, input.name, input.inherits ?? []);
      try {
        await policyRepo.insertRole(trx, { name: input.name, description: input.description ?? '' }, now);
      } catch (err) {
        throw uniqueViolation(err) === null ? err : Errors.roleExists();
      }
      await policyRepo.setInherits(trx, input.name, input.inherits ?? []);
      await policyRepo.setPermissions(trx, input.name, input.permissions ?? []);
      return { role: input.name, detail: { change: 'role_created', role: input.name, inherits: list(input.inherits ?? []), permissions: list(input.permissions ?? []) } };
    });
    return this.role(input.name);
  }

  /** Changes what is given (absent: unchanged); a new `name` renames a custom role and moves its holders with it. */
  async updateRole(name: string, input: RoleChange, origin: Origin): Promise<RoleView> {
    const target = input.name ?? name;
    await this.change(origin, async (trx, before, now) => {
      const role = await policyRepo.findRole(trx, name);
      if (!role) throw Errors.roleNotFound();
      if (role.builtIn) throw Errors.roleBuiltIn();
      const renamed = target !== name;
      let moved: number[] = [];
      if (renamed) {
        if (this.pinned.has(name)) throw Errors.roleInUse(`${name} is named by configuration (a group rule or a default role); change it there first`);
        this.checkNameFree(before, target, name);
        moved = ((await trx('users').where({ role: name }).select('id')) as { id: number }[]).map((r) => Number(r.id));
        await policyRepo.updateRole(trx, name, { name: target, description: input.description }, now);
      } else if (input.description !== undefined) {
        await policyRepo.updateRole(trx, name, { description: input.description }, now);
      }
      let inherits: { added: string[]; removed: string[] } | undefined;
      if (input.inherits !== undefined) {
        // Checked against the names as they were: a cycle runs through the old name.
        this.checkInherits(before, name, input.inherits.map((r) => (r === target ? name : r)));
        inherits = await policyRepo.setInherits(trx, target, input.inherits);
      }
      const permissions = input.permissions !== undefined ? await policyRepo.setPermissions(trx, target, input.permissions) : undefined;
      const detail: Record<string, string> = { change: 'role_updated', role: target };
      if (renamed) detail.renamedFrom = name;
      if (input.description !== undefined) detail.description = 'changed';
      if (inherits) Object.assign(detail, { inheritsAdded: list(inherits.added), inheritsRemoved: list(inherits.removed) });
      if (permissions) Object.assign(detail, { permissionsAdded: list(permissions.added), permissionsRemoved: list(permissions.removed) });
      return { role: target, previousRole: name, detail, moved: moved.map((id) => ({ id, from: name, to: target })) };
    });
    return this.role(target);
  }

  /** Deletes a custom role; its holders move to `moveTo` when given, else a role in use is refused. */
  async deleteRole(name: string, moveTo: string | undefined, origin: Origin): Promise<void> {
    await this.change(origin, async (trx, before, now) => {
      const role = await policyRepo.findRole(trx, name);
      if (!role) throw Errors.roleNotFound();
      if (role.builtIn) throw Errors.roleBuiltIn();
      if (this.pinned.has(name)) throw Errors.roleInUse(`${name} is named by configuration (a group rule or a default role); change it there first`);
      const heirs = await policyRepo.inheritedBy(trx, name);
      if (heirs.length > 0) throw Errors.roleInUse(`${name} is inherited by ${heirs.sort().join(', ')}`);
      const holders = await policyRepo.countHolders(trx, name);
      let moved: number[] = [];
      if (holders > 0) {
        if (moveTo === undefined) throw Errors.roleInUse(`${name} is held by ${holders} user${holders === 1 ? '' : 's'}; name a role to move them to with moveTo`);
        if (moveTo === name || !before.roles.has(moveTo)) throw invalidField('moveTo', moveTo === name ? 'must be another role' : 'is not a role');
        this.checkHolds(before, origin, before.byRole.get(moveTo) ?? new Set(), await this.actorOf(trx, origin));
        moved = await policyRepo.moveHolders(trx, name, moveTo, now);
      }
      await policyRepo.deleteRole(trx, name);
      const detail: Record<string, string | number> = { change: 'role_deleted', role: name };
      if (moved.length > 0) Object.assign(detail, { movedTo: moveTo!, moved: moved.length });
      return { role: undefined, detail, moved: moved.map((id) => ({ id, from: name, to: moveTo! })) };
    });
  }

  /** The user's permissions as the policy now holds them; `origin` must reach them (404 out of an org admin's organisation). */
  async userPermissions(userId: number, origin?: Origin): Promise<UserPermissions> {
    const user = await this.db.transaction(async (trx) => {
      const user = await usersRepo.findById(trx, userId);
      if (!user) throw Errors.userNotFound();
      if (origin && !(origin.actor.kind === 'user' && origin.actor.userId === userId)) await this.guard?.read(trx, origin, user, 'users.read');
      return user;
    });
    const { inOrg, ...all } = permissionsOf(this.authz.policy, user);
    return user.orgId === null ? all : { ...all, organizationId: user.orgId, orgRole: user.orgRole, inOrganization: inOrg };
  }

  /** Grants and revokes direct permissions of one user: only permissions the actor holds are granted. */
  async changeUserPermissions(userId: number, change: { grant: readonly string[]; revoke: readonly string[] }, origin: Origin): Promise<UserPermissions> {
    const both = change.grant.filter((p) => change.revoke.includes(p));
    if (both.length > 0) throw invalidField('revoke', `${both.join(', ')}: both granted and revoked`);
    await this.change(origin, async (trx, before, now) => {
      const user = await usersRepo.findById(trx, userId);
      if (!user) throw Errors.userNotFound();
      await this.guard?.target(trx, origin, user, 'users.set-permissions');
      const actor = await this.actorOf(trx, origin);
      // Someone holding users.set-permissions only through their organisation role grants in that
      // organisation alone: what they give never reaches beyond it.
      const orgId = actor === null || holdsIn(before, actor, null, 'users.set-permissions') ? null : user.orgId;
      const held = new Set(orgId === null ? await policyRepo.directOf(trx, userId) : await policyRepo.orgDirectOf(trx, userId, orgId));
      const grant = [...new Set(change.grant)].filter((p) => !held.has(p));
      const revoke = [...new Set(change.revoke)].filter((p) => held.has(p));
      if (orgId === null) this.checkHolds(before, origin, new Set(grant), actor);
      else {
        const lacking = grant.filter((p) => GLOBAL_ONLY.has(p) || !holdsIn(before, actor!, orgId, p)).sort();
        if (lacking.length > 0) throw Errors.escalation(`You do not hold ${lacking.join(', ')} in your organisation, so you cannot grant it.`);
      }
      await policyRepo.grant(trx, userId, grant, origin.actor.kind === 'user' ? origin.actor.userId : null, now, orgId);
      await policyRepo.revoke(trx, userId, revoke, orgId);
      const detail: Record<string, string | number> = { change: 'user_permissions', granted: list(grant), revoked: list(revoke) };
      if (orgId !== null) detail.orgId = orgId;
      return { role: undefined, target: userId, detail };
    });
    return this.userPermissions(userId);
  }

  /**
   * For users' role changes, inside their transaction (under the users lock): the role must exist, and the
   * actor must hold everything it gives. Changes by Usher itself, the CLI or an identity provider pass.
   */
  async checkRoleAssignment(trx: Knex.Transaction, role: string, origin: Origin): Promise<void> {
    const policy = await this.authz.policyAt(trx);
    if (!policy.roles.has(role)) throw invalidField('role', `must be one of ${[...policy.roles.keys()].join(', ')}`);
    this.checkHolds(policy, origin, policy.byRole.get(role)!, await this.actorOf(trx, origin));
  }

  // ---- internals ----

  /** The acting user as they are in this transaction; null for Usher itself, the CLI, an identity provider. */
  private async actorOf(trx: Knex.Transaction, origin: Origin): Promise<{ id: number; role: string; orgId?: number | null; orgRole?: string | null } | null> {
    if (origin.actor.kind !== 'user') return null;
    const user = await usersRepo.findById(trx, origin.actor.userId);
    // An actor deleted meanwhile holds nothing.
    return user && user.active ? user : { id: origin.actor.userId, role: '' };
  }

  /** What is given everywhere must be held everywhere: an organisation role's power does not count. */
  private checkHolds(policy: CompiledPolicy, origin: Origin, given: ReadonlySet<string>, actor: { id: number; role: string } | null): void {
    if (origin.actor.kind !== 'user' || actor === null) return;
    const { scope, withhold } = origin.limits ?? {};
    const holds = new Set([...globalPermissionsOf(policy, actor)].filter((p) => (scope === undefined || scope.has(p)) && !withhold?.has(p)));
    const lacking = [...given].filter((p) => !holds.has(p)).sort();
    if (lacking.length > 0) throw Errors.escalation(`You do not hold ${lacking.join(', ')}, so you cannot grant it.`);
  }

  /** Role names differ by more than case: `Admin` beside `admin` would pass for it in every list. */
  private checkNameFree(policy: CompiledPolicy, name: string, except?: string): void {
    const taken = [...policy.roles.keys()].find((n) => n !== except && n.toLowerCase() === name.toLowerCase());
    if (taken !== undefined) throw Errors.roleExists(taken === name ? undefined : `The role ${taken} exists already; role names differ by more than case.`);
  }

  /** Refuses inheriting an unknown role, the super role (admin-like power is the built-in's alone) or a cycle. */
  private checkInherits(policy: CompiledPolicy, role: string, inherits: readonly string[]): void {
    for (const parent of inherits) {
      if (!policy.roles.has(parent) && parent !== role) throw invalidField('inherits', `${parent} is not a role`);
      // Admin's power stays with the built-in role, which the last-admin rail counts.
      if (parent === SUPER_ROLE) throw invalidField('inherits', `${SUPER_ROLE} cannot be inherited; give the permissions the role needs`);
      if (parent === role || policy.implied.get(parent)?.includes(role)) throw invalidField('inherits', `${parent}: a role cannot inherit itself`);
    }
  }

  /**
   * Runs a policy change under the lock: `apply` writes it; what the role now holds beyond what it held
   * must be held by the actor; the event is recorded in the transaction with the new digest.
   */
  private async change(
    origin: Origin,
    apply: (
      trx: Knex.Transaction,
      before: CompiledPolicy,
      now: number,
    ) => Promise<{ role: string | undefined; previousRole?: string; target?: number; detail: EventDetail; moved?: { id: number; from: string; to: string }[] }>,
  ): Promise<void> {
    const { events, after, version } = await this.db.transaction(async (trx) => {
      await policyRepo.lock(trx);
      const before = await this.authz.policyAt(trx);
      await policyRepo.bump(trx);
      const version = await policyRepo.version(trx);
      const now = Date.now();
      const done = await apply(trx, before, now);
      const after = await this.authz.compile(trx);
      if (done.role !== undefined) {
        const had = before.byRole.get(done.previousRole ?? done.role) ?? new Set<string>();
        const added = new Set([...(after.byRole.get(done.role) ?? [])].filter((p) => !had.has(p)));
        this.checkHolds(before, origin, added, await this.actorOf(trx, origin));
      }
      const events: UsherEvent[] = [eventOf(origin, 'policy.changed', done.target ?? null, { ...done.detail, digest: after.digest, previous: before.digest, roles: after.roles.size })];
      for (const m of done.moved ?? []) events.push(eventOf(origin, 'user.role_changed', m.id, { from: m.from, to: m.to }));
      await this.events.record(trx, events);
      return { events, after, version };
    });
    this.authz.install(after, version);
    await this.events.publish(events);
  }
}

export { SUPER_ROLE };
