import type { Knex } from 'knex';
import { Errors, invalidField } from '../errors.js';
import type { Origin } from '../events/stream.js';
import { orgsRepo } from '../orgs/repository.js';
import { usersRepo } from '../users/repository.js';
import type { UserGuard } from '../users/service.js';
import type { UserRecord } from '../users/model.js';
import { SUPER_ROLE, holdsIn, permissionsOf, type Authorizer, type CompiledPolicy } from './enforcer.js';

/** The acting user as this transaction sees them; a disabled or deleted one holds nothing. */
async function actorIn(trx: Knex.Transaction, origin: Origin): Promise<UserRecord | null | 'holds-nothing'> {
  if (origin.actor.kind !== 'user') return null;
  const actor = await usersRepo.findById(trx, origin.actor.userId);
  return actor && actor.active ? actor : 'holds-nothing';
}

/**
 * "May the actor do `permission` on this user?", answered once for every /users/{id} path, inside the
 * change's transaction (the target's row read there, under the users lock or its own row lock):
 * - reach: the actor holds `permission` in the target's organisation (their global role and grants reach
 *   everyone; an org admin's organisation role only their organisation's members). A user out of reach who
 *   the actor would reach in their own organisation is answered as missing (404 user.not_found), never 403:
 *   an org admin learns nothing of other organisations' users.
 * - no acting on more (`rail`): only a global admin acts on an admin, or on anyone holding a permission the
 *   actor lacks (403 authz.target_holds_more).
 */
export function checkTarget(policy: CompiledPolicy, actor: UserRecord, target: UserRecord, permission: string, rail: boolean, limits: Origin['limits'] = {}): void {
  // A scoped key's scope and a device token's withheld permissions bound what the actor holds here too.
  const bounded = { ...actor, scope: limits.scope, withhold: limits.withhold };
  if (!holdsIn(policy, bounded, target.orgId, permission)) {
    throw holdsIn(policy, bounded, actor.orgId, permission) ? Errors.userNotFound() : Errors.forbidden();
  }
  if (!rail || actor.id === target.id) return;
  const mine = new Set(permissionsOf(policy, actor).effective.filter((p) => (limits.scope === undefined || limits.scope.has(p)) && !limits.withhold?.has(p)));
  // A global admin acting with its full rights acts on anyone; bounded by a key's scope, on no one holding more.
  if (actor.role === SUPER_ROLE && limits.scope === undefined) return;
  if (target.role === SUPER_ROLE && actor.role !== SUPER_ROLE) throw Errors.targetHoldsMore(`${target.username} is an admin; only an admin may do this.`);
  // self.* is power over one's own account alone: a custom role without it still acts on those who have it.
  const lacking = permissionsOf(policy, target).effective.filter((p) => !mine.has(p) && !p.startsWith('self.'));
  if (lacking.length > 0) throw Errors.targetHoldsMore(`${target.username} holds ${lacking.join(', ')}, which you do not; only someone holding it may do this.`);
}

/** The guard UserService and PolicyService call inside their transactions (see UserGuard). */
export function userGuard(authz: Authorizer): UserGuard & {
  /** The same, for a read: reach only, no rail. */
  read(trx: Knex.Transaction, origin: Origin, target: UserRecord, permission: string): Promise<void>;
} {
  const target = async (trx: Knex.Transaction, origin: Origin, user: UserRecord, permission: string, rail: boolean) => {
    const actor = await actorIn(trx, origin);
    if (actor === null) return;
    if (actor === 'holds-nothing') throw Errors.forbidden();
    checkTarget(await authz.policyAt(trx), actor, user, permission, rail, origin.limits);
  };
  return {
    target: (trx, origin, user, permission) => target(trx, origin, user, permission, true),
    read: (trx, origin, user, permission) => target(trx, origin, user, permission, false),
    async placement(trx, origin, place, permission) {
      const policy = await authz.policyAt(trx);
      if (place.orgRole !== null && place.orgId === null) throw invalidField('orgRole', 'needs an organizationId');
      if (place.orgRole !== null && !policy.roles.has(place.orgRole)) throw invalidField('orgRole', `must be one of ${[...policy.roles.keys()].join(', ')}`);
      // Read under the lock its deletion takes: a user never lands in an organisation being deleted.
      if (place.orgId !== null && !(await orgsRepo.findForUpdate(trx, place.orgId))) throw invalidField('organizationId', 'is not an organisation');
      const actor = await actorIn(trx, origin);
      if (actor === null) return;
      if (actor === 'holds-nothing') throw Errors.forbidden();
      // users.create in that organisation (an org admin: their own alone); a move needs users.set-org, global-only.
      if (!holdsIn(policy, actor, place.orgId, permission)) {
        throw Errors.forbidden(permission === 'users.create' ? 'You may create users only in your own organisation.' : "Only a global admin changes a user's organisation.");
      }
      if (place.orgRole === null) return;
      const lacking = [...(policy.byOrgRole.get(place.orgRole) ?? [])].filter((p) => !holdsIn(policy, actor, place.orgId, p)).sort();
      if (lacking.length > 0) throw Errors.escalation(`You do not hold ${lacking.join(', ')} in that organisation, so you cannot give the role ${place.orgRole}.`);
    },
  };
}
