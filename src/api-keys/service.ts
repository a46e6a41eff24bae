import type { Knex } from 'knex';
import { Errors, invalidField } from '../errors.js';
import { uniqueViolation, type Db } from '../db/connect.js';
import { digestApiKey, generateScopedKey } from '../crypto/api-keys.js';
import type { ServerKeys } from '../crypto/secret.js';
import { eventOf, type EventStream, type Origin, type UsherEvent } from '../events/stream.js';
import type { Authorizer, Subject } from '../authz/enforcer.js';
import { parsePermission, permissionName } from '../authz/permissions.js';
import { usersRepo } from '../users/repository.js';
import { MAX_KEYS_PER_USER, type ScopedKeyRecord } from './model.js';
import { apiKeysRepo } from './repository.js';

export interface NewScopedKey {
  name: string;
  /** Permission names, either spelling (`users.list`, `users:list`). */
  permissions: readonly string[];
  /** null or undefined: never expires. */
  expiresInDays?: number | null;
}

const DAY_MS = 86_400_000;

/**
 * Scoped API keys (app passwords): a user's keys for one client each, holding a subset of the owner's
 * permissions. A key acts with the intersection of its scope and what its owner holds at the time of the
 * request (the Authorizer reads `scope` on the caller). Each change runs with the owner's row locked, so a
 * user's count and names are checked against what is committed, and records its event in its transaction.
 */
export class ScopedKeyService {
  constructor(
    private readonly db: Db,
    private readonly keys: ServerKeys,
    private readonly authz: Authorizer,
    readonly events: EventStream,
  ) {}

  /**
   * Makes a key for `caller` (its owner) and answers it this once: only its digest is kept. Every permission
   * must be declared (400), and held by the caller as they now authenticate (403 authz.escalation): the
   * owner's role and direct grants, within the caller's own scope when a scoped key makes the request.
   */
  async create(caller: Subject & { id: number }, input: NewScopedKey, origin: Origin): Promise<{ key: string; record: ScopedKeyRecord }> {
    const permissions = this.checkedScope(caller, input.permissions);
    const { key, shown } = generateScopedKey();
    const digest = digestApiKey(this.keys, key);
    const { record, events } = await this.db.transaction(async (trx) => {
      const owner = await usersRepo.findForUpdate(trx, caller.id);
      if (!owner) throw Errors.userNotFound();
      if ((await apiKeysRepo.countOf(trx, owner.id)) >= MAX_KEYS_PER_USER) throw Errors.apiKeyLimit();
      if (await apiKeysRepo.nameTaken(trx, owner.id, input.name)) throw Errors.apiKeyNameTaken();
      const now = Date.now();
      const expiresAt = input.expiresInDays == null ? null : now + input.expiresInDays * DAY_MS;
      let record: ScopedKeyRecord;
      try {
        record = await apiKeysRepo.insert(trx, { userId: owner.id, name: input.name, digest, prefix: shown, permissions, createdAt: now, expiresAt });
      } catch (err) {
        if (uniqueViolation(err) !== null) throw Errors.apiKeyNameTaken();
        throw err;
      }
      const detail = { keyId: record.id, name: record.name, permissions: permissions.join(','), expiresAt };
      return { record, events: await this.recorded(trx, [eventOf(origin, 'api_key.created', owner.id, detail)]) };
    });
    await this.events.publish(events);
    return { key, record };
  }

  /** The user's keys, oldest first; 404 when there is no such user, 403 when `actor` holds less than them. */
  async list(userId: number, actor?: Subject & { id: number }): Promise<ScopedKeyRecord[]> {
    const owner = await usersRepo.findById(this.db, userId);
    if (!owner) throw Errors.userNotFound();
    this.checkReach(actor, owner);
    return apiKeysRepo.listOf(this.db, userId);
  }

  /** Deletes the user's key; it is refused from this instance's next request on. 404 for a key not theirs. */
  async revoke(userId: number, keyId: number, origin: Origin, actor?: Subject & { id: number }): Promise<void> {
    const events = await this.db.transaction(async (trx) => {
      const owner = await usersRepo.findForUpdate(trx, userId);
      if (!owner) throw Errors.userNotFound();
      this.checkReach(actor, owner);
      const removed = await apiKeysRepo.remove(trx, userId, keyId);
      if (!removed) throw Errors.apiKeyNotFound();
      // The owner as target: the authentication caches drop the owner's entries when they hear it.
      return this.recorded(trx, [eventOf(origin, 'api_key.revoked', userId, { keyId, name: removed.name })]);
    });
    await this.events.publish(events);
  }

  /** The key a request presents, by its digest; null when there is none (expiry is the caller's to check). */
  find(key: string): Promise<ScopedKeyRecord | null> {
    return apiKeysRepo.findByDigest(this.db, digestApiKey(this.keys, key));
  }

  touch(id: number, now: number): Promise<void> {
    return apiKeysRepo.touch(this.db, id, now);
  }

  /** The scope as dotted names, sorted and without repeats; 400 naming the field, or 403 for one the caller lacks. */
  private checkedScope(caller: Subject, names: readonly string[]): string[] {
    const out = new Set<string>();
    names.forEach((name, i) => {
      const pair = parsePermission(name);
      if (!pair || !this.authz.isDeclared(permissionName(...pair))) throw invalidField(`permissions.${i}`, `${name} is not a declared permission`);
      if (!this.authz.can(caller, pair[0], pair[1])) throw Errors.escalation(`permissions.${i}: you do not hold ${permissionName(...pair)}, so a key of yours cannot`);
      out.add(permissionName(...pair));
    });
    return [...out].sort();
  }

  /** Nobody acts on the keys of an account that holds more than they do (an admin's, for a non-admin). */
  private checkReach(actor: (Subject & { id: number }) | undefined, owner: { id: number; role: string }): void {
    if (typeof actor === 'object' && !this.authz.reaches(actor, owner)) throw Errors.escalation('This account holds permissions you lack: you cannot reach its keys.');
  }

  private async recorded(trx: Knex.Transaction, events: UsherEvent[]): Promise<UsherEvent[]> {
    await this.events.record(trx, events);
    return events;
  }
}
