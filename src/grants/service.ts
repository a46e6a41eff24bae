import type { Knex } from 'knex';
import { Errors, invalidField } from '../errors.js';
import { uniqueViolation, type Db } from '../db/connect.js';
import type { GroupGrantConfig, ResourceConfig } from '../config/parsers.js';
import { eventOf, type EventStream, type Origin, type UsherEvent } from '../events/stream.js';
import { ADMIN_ROLE, type UserRecord } from '../users/model.js';
import { usersRepo } from '../users/repository.js';
import type { UserGuard } from '../users/service.js';
import { grantsRepo, type NewGrant } from './repository.js';
import {
  ALL, NO_GRANTS, compileGrants, grantAllows, grantedResources, groupSource, holdsAll, implicitAll,
  type Grant, type GrantSubject, type ResourceSet, type UserGrants,
} from './model.js';

/** What a grant request asks for. */
export interface GrantInput {
  type: string;
  /** A resource id as text, or `*`. */
  id: string;
  /** The type's default (`read`, or its first action) when absent. */
  actions?: readonly string[];
}

interface Held {
  readonly grants: readonly Grant[];
  readonly compiled: UserGrants;
}

const EMPTY: Held = { grants: [], compiled: NO_GRANTS };
const keyOf = (type: string, id: string) => `${type}\u0000${id}`;
const sameActions = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');

/**
 * Access grants to the host app's resources (config `resources:`). Every user's grants are held in memory,
 * compiled, so `can()` and `resources()` are synchronous lookups on the request path. A change made through
 * this instance is written with its audit event in one transaction, and the user's grants are read again
 * before the change answers. Each change also notes the user in grant_changes: another instance sharing the
 * database reads that user's grants again at its next `sync()` (the `cluster.pollInterval` poll).
 */
export class GrantService {
  private held = new Map<number, Held>();
  private reloading: Promise<void> = Promise.resolve();
  /** grant_changes rows sync() has acted on (seq → when), within the window it looks back over. */
  private seen = new Map<number, number>();
  private guard: UserGuard | undefined;
  private prunedAt = 0;
  readonly types: ReadonlyMap<string, ResourceConfig>;

  private constructor(
    private readonly db: Db,
    private readonly events: EventStream,
    resources: readonly ResourceConfig[],
    /** The IdP group rules (config groupGrants). */
    readonly groupRules: readonly GroupGrantConfig[],
  ) {
    this.types = new Map(resources.map((r) => [r.type, r]));
  }

  /** Reads every user's grants. */
  static async open(db: Db, events: EventStream, resources: readonly ResourceConfig[], groupRules: readonly GroupGrantConfig[] = []): Promise<GrantService> {
    const service = new GrantService(db, events, resources, groupRules);
    const byUser = new Map<number, Grant[]>();
    for (const g of await grantsRepo.all(db)) byUser.set(g.userId, [...(byUser.get(g.userId) ?? []), g]);
    for (const [userId, grants] of byUser) service.held.set(userId, { grants, compiled: compileGrants(grants) });
    // A deleted user's grants go with their row (ON DELETE CASCADE).
    events.on((e) => void (e.targetUserId !== null && service.held.delete(e.targetUserId)), { types: ['user.deleted'] });
    return service;
  }

  // ---- decisions (synchronous) ----

  /** May `user` do `action` on resource `id` of `type`? Admins may on every declared resource; an undeclared type or action: no. */
  can(user: GrantSubject, type: string, id: string, action: string): boolean {
    if (!this.types.get(type)?.actions.includes(action)) return false;
    if (implicitAll(user, ADMIN_ROLE)) return true;
    return grantAllows(this.compiledOf(user.id), type, id, action);
  }

  /** The resources of `type` `user` may `action` on: `{ all: true }`, or their ids (text). */
  resources(user: GrantSubject, type: string, action: string): ResourceSet {
    if (!this.types.get(type)?.actions.includes(action)) return { ids: [] };
    if (implicitAll(user, ADMIN_ROLE)) return { all: true };
    return grantedResources(this.compiledOf(user.id), type, action);
  }

  /** Is `type` declared, with `action` one of its actions? */
  declares(type: string, action: string): boolean {
    return this.types.get(type)?.actions.includes(action) ?? false;
  }

  /** A user's grants as this instance holds them (no read: the request path's view). */
  grantsOf(userId: number): readonly Grant[] {
    return (this.held.get(userId) ?? EMPTY).grants;
  }

  compiledOf(userId: number): UserGrants {
    return (this.held.get(userId) ?? EMPTY).compiled;
  }

  // ---- reads and changes ----

  /** Who may reach whom (src/authz/targets.ts): an org admin only their organisation's members. */
  guardTargets(guard: UserGuard): void {
    this.guard = guard;
  }

  /** A user's grants, as this instance holds them; with `origin`, only when it may read them (404 out of its reach). */
  async list(userId: number, origin?: Origin): Promise<Grant[]> {
    if (origin) await this.db.transaction((trx) => this.target(trx, userId, origin, 'grants.read'));
    else await this.target(this.db, userId);
    return [...(this.held.get(userId) ?? EMPTY).grants];
  }

  /** Checks a request's type, id and actions against the declared resources; 400 naming the field. */
  validate(input: GrantInput): Required<GrantInput> {
    const type = this.types.get(input.type);
    if (!type) throw invalidField('type', this.types.size === 0 ? 'no resource type is declared (config resources:)' : `must be one of ${[...this.types.keys()].join(', ')}`);
    const actions = input.actions ?? [defaultAction(type)];
    const unknown = actions.filter((a) => !type.actions.includes(a));
    if (unknown.length > 0) throw invalidField('actions', `${unknown.join(', ')} is not an action of ${type.type} (${type.actions.join(', ')})`);
    return { type: type.type, id: input.id, actions: [...new Set(actions)].sort() };
  }

  /** Grants `input` to the user; 409 grant.exists when they have a grant on that resource already. */
  async create(userId: number, input: GrantInput, origin: Origin): Promise<Grant> {
    const wanted = this.validate(input);
    const { grant, events } = await this.db.transaction(async (trx) => {
      await usersRepo.lock(trx);
      await this.target(trx, userId, origin, 'grants.manage');
      await this.checkHolds(trx, origin, wanted);
      let grant: Grant;
      try {
        grant = await grantsRepo.insert(trx, { userId, type: wanted.type, resourceId: wanted.id, actions: wanted.actions, source: 'api', createdBy: actorId(origin) }, Date.now());
      } catch (err) {
        throw uniqueViolation(err) === null ? err : Errors.grantExists();
      }
      const events = [grantEvent(origin, 'grant.created', grant)];
      await grantsRepo.noteChange(trx, userId, Date.now());
      await this.events.record(trx, events);
      return { grant, events };
    });
    await this.reload(userId);
    await this.events.publish(events);
    return grant;
  }

  /** Revokes one grant of the user (whatever made it); only one on resources and actions the actor holds. */
  async revoke(userId: number, grantId: number, origin: Origin): Promise<void> {
    const events = await this.db.transaction(async (trx) => {
      await usersRepo.lock(trx);
      await this.target(trx, userId, origin, 'grants.manage');
      const grant = await grantsRepo.find(trx, userId, grantId);
      if (!grant) throw Errors.grantNotFound();
      await this.checkHolds(trx, origin, { type: grant.type, id: grant.resourceId, actions: grant.actions });
      await grantsRepo.remove(trx, grant.id);
      await grantsRepo.noteChange(trx, userId, Date.now());
      const events = [grantEvent(origin, 'grant.revoked', grant)];
      await this.events.record(trx, events);
      return events;
    });
    await this.reload(userId);
    await this.events.publish(events);
  }

  /**
   * Gives a new account the grants configuration marks `defaultForNewUsers` (the type's default action), inside its creating
   * transaction; answers their events, recorded there. The caller reloads once committed (`created`).
   */
  async giveDefaults(trx: Knex.Transaction, user: UserRecord, origin: Origin): Promise<UsherEvent[]> {
    const events: UsherEvent[] = [];
    for (const type of this.types.values()) {
      for (const id of type.defaultForNewUsers) {
        const grant = await grantsRepo.insert(trx, { userId: user.id, type: type.type, resourceId: id, actions: [defaultAction(type)], source: 'default', createdBy: null }, Date.now());
        events.push(grantEvent(origin, 'grant.created', grant));
      }
    }
    if (events.length > 0) await grantsRepo.noteChange(trx, user.id, Date.now());
    return events;
  }

  /** After an account's creation is committed: its default grants are read in (none configured: nothing to read). */
  created(userId: number): Promise<void> {
    if (![...this.types.values()].some((t) => t.defaultForNewUsers.length > 0)) return Promise.resolve();
    return this.reload(userId);
  }

  /**
   * Sign-in at `provider` with `groups` (a present claim): the grants group rules give are added, changed
   * or removed so the user's grants from this provider's groups are exactly those. Grants made otherwise
   * (the API, the defaults, another provider's groups) are left alone, and a rule never replaces one.
   */
  async syncGroups(userId: number, provider: string, groups: readonly string[], origin: Origin): Promise<void> {
    if (this.plan(userId, this.held.get(userId)?.grants ?? [], provider, groups).length === 0) return;
    const events = await this.db.transaction(async (trx) => {
      await usersRepo.lock(trx);
      if (!(await usersRepo.findById(trx, userId))) return [];
      const events: UsherEvent[] = [];
      for (const step of this.plan(userId, await grantsRepo.ofUser(trx, userId), provider, groups)) {
        if (step.kind === 'remove') {
          await grantsRepo.remove(trx, step.grant.id);
          events.push(grantEvent(origin, 'grant.revoked', step.grant));
        } else if (step.kind === 'update') {
          await grantsRepo.setActions(trx, step.grant.id, step.actions);
          events.push(grantEvent(origin, 'grant.created', { ...step.grant, actions: step.actions }));
        } else {
          events.push(grantEvent(origin, 'grant.created', await grantsRepo.insert(trx, step.grant, Date.now())));
        }
      }
      if (events.length > 0) await grantsRepo.noteChange(trx, userId, Date.now());
      await this.events.record(trx, events);
      return events;
    });
    await this.reload(userId);
    await this.events.publish(events);
  }

  /**
   * Reads again the grants of every user whose grants changed through another instance; answers whether
   * any did. It looks back over a window rather than past the last change seen: a transaction that took
   * its number earlier may commit later. Its own changes come back too, and are read again harmlessly.
   */
  async sync(now = Date.now()): Promise<boolean> {
    const users = new Set<number>();
    for (const change of await grantsRepo.changesSince(this.db, now - CHANGE_WINDOW_MS)) {
      if (this.seen.has(change.seq)) continue;
      this.seen.set(change.seq, now);
      users.add(change.userId);
    }
    for (const [seq, at] of this.seen) if (at < now - CHANGE_WINDOW_MS) this.seen.delete(seq);
    for (const userId of users) await this.reload(userId);
    if (now - this.prunedAt > CHANGE_WINDOW_MS) {
      this.prunedAt = now;
      await grantsRepo.pruneChanges(this.db, now - 10 * CHANGE_WINDOW_MS);
    }
    return users.size > 0;
  }

  // ---- internals ----

  private plan(userId: number, current: readonly Grant[], provider: string, groups: readonly string[]) {
    const prefix = `group:${provider}:`;
    const wanted = new Map<string, NewGrant>();
    for (const rule of this.groupRules) {
      if ((rule.provider !== '*' && rule.provider !== provider) || !groups.includes(rule.group)) continue;
      const key = keyOf(rule.type, rule.id);
      const had = wanted.get(key);
      if (had) had.actions = [...new Set([...had.actions, ...rule.actions])].sort();
      else wanted.set(key, { userId, type: rule.type, resourceId: rule.id, actions: [...rule.actions].sort(), source: groupSource(provider, rule.group), createdBy: null });
    }
    const steps: ({ kind: 'remove'; grant: Grant } | { kind: 'update'; grant: Grant; actions: string[] } | { kind: 'add'; grant: NewGrant })[] = [];
    const present = new Map(current.map((g) => [keyOf(g.type, g.resourceId), g]));
    for (const g of current) {
      if (!g.source.startsWith(prefix)) continue;
      const want = wanted.get(keyOf(g.type, g.resourceId));
      if (!want) steps.push({ kind: 'remove', grant: g });
      else if (!sameActions(want.actions, g.actions)) steps.push({ kind: 'update', grant: g, actions: [...want.actions] });
    }
    for (const [key, want] of wanted) {
      if (!present.has(key)) steps.push({ kind: 'add', grant: want });
    }
    return steps;
  }

  /**
   * The user acted on, once the guard let `origin` reach them with `permission` (inside the transaction): an
   * org admin reaches only their organisation (404 outside it), and nobody acts on someone holding more.
   */
  private async target(q: Knex | Knex.Transaction, userId: number, origin?: Origin, permission?: string): Promise<UserRecord> {
    const user = await usersRepo.findById(q, userId);
    if (!user) throw Errors.userNotFound();
    const self = origin?.actor.kind === 'user' && origin.actor.userId === userId;
    if (origin && permission && !self && this.guard) {
      const trx = q as Knex.Transaction;
      if (permission === 'grants.read') await this.guard.read(trx, origin, user, permission);
      else await this.guard.target(trx, origin, user, permission);
    }
    return user;
  }

  /** Nobody grants or revokes what they do not hold: a user actor must hold every action on the resource. */
  private async checkHolds(trx: Knex.Transaction, origin: Origin, wanted: { type: string; id: string; actions: readonly string[] }): Promise<void> {
    if (origin.actor.kind !== 'user') return;
    const actor = await usersRepo.findById(trx, origin.actor.userId);
    if (actor?.active && implicitAll({ ...actor, scope: origin.limits?.scope }, ADMIN_ROLE)) return;
    const theirs = actor?.active ? compileGrants(await grantsRepo.ofUser(trx, actor.id)) : NO_GRANTS;
    if (!holdsAll(theirs, wanted.type, wanted.id, wanted.actions)) {
      const what = wanted.id === ALL ? `every ${wanted.type}` : `${wanted.type} ${wanted.id}`;
      throw Errors.escalation(`You do not hold ${wanted.actions.join(', ')} on ${what}, so you cannot grant or revoke it.`);
    }
  }

  /** Reads a user's grants again, after a committed change; reloads run one after another. */
  private reload(userId: number): Promise<void> {
    const next = this.reloading.then(async () => {
      const grants = await grantsRepo.ofUser(this.db, userId);
      if (grants.length === 0) this.held.delete(userId);
      else this.held.set(userId, { grants, compiled: compileGrants(grants) });
    });
    this.reloading = next.catch(() => undefined);
    return next;
  }
}

/** How far back sync() looks for changes: far longer than any transaction stays open. */
const CHANGE_WINDOW_MS = 60_000;

/** What a grant gives when it names no action: `read`, or the type's first action when it has no `read`. */
const defaultAction = (type: ResourceConfig) => (type.actions.includes('read') ? 'read' : type.actions[0]!);

const actorId = (origin: Origin) => (origin.actor.kind === 'user' ? origin.actor.userId : null);

function grantEvent(origin: Origin, type: 'grant.created' | 'grant.revoked', g: Pick<Grant, 'id' | 'userId' | 'type' | 'resourceId' | 'actions' | 'source'>): UsherEvent {
  return eventOf(origin, type, g.userId, { grant: g.id, type: g.type, resource: g.resourceId, actions: [...g.actions].join(','), source: g.source });
}
