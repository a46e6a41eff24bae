import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { AppError, Errors, invalidField } from '../errors.js';
import { uniqueViolation, type Db } from '../db/connect.js';
import { decryptApiKey, digestApiKey, encryptApiKey, generateApiKey } from '../crypto/api-keys.js';
import { fingerprintCode, generateCode, parseCode } from '../crypto/codes.js';
import { hashPassword, verifyPassword } from '../crypto/passwords.js';
import type { ServerKeys } from '../crypto/secret.js';
import { ADMIN_ROLE, DEFAULT_ROLE, withoutSecrets, type UserRecord } from './model.js';
import { eventOf, SYSTEM_ORIGIN, type EventDetail, type EventStream, type EventType, type Origin, type UsherEvent } from '../events/stream.js';
import { normalizeUsername, usernameKey } from '../names.js';
import { usersRepo, type ListQuery, type UserChanges } from './repository.js';
import { identitiesRepo } from './identity-repository.js';
import { Batches, type Waiting } from './batches.js';
import { orgsRepo } from '../orgs/repository.js';

/** The actor is the user acted on (their own account: no target check). */
const isSelf = (origin: Origin, id: number) => origin.actor.kind === 'user' && origin.actor.userId === id;

/** The columns of a user without a recovery code. */
const NO_RECOVERY_CODE = { recovery_code_fingerprint: null, recovery_code_created_at: null } as const;

/** The stored email and its case-insensitive uniqueness key. */
function emailColumns(email: string | null): { email: string | null; email_key: string | null } {
  return { email, email_key: email === null ? null : email.toLowerCase() };
}

export interface NewUser {
  username: string;
  password?: string | null;
  role?: string;
  name?: string | null;
  email?: string | null;
  authSource?: string;
  /** A chosen API key (bootstrap automation); otherwise one is generated. */
  apiKey?: string;
  /** The organisation the user belongs to (null or absent: none). */
  organizationId?: number | null;
  /** The role held inside that organisation. */
  orgRole?: string | null;
}

/** The account an external identity asks for (see authn/provisioning.ts). */
export interface ExternalAccount {
  /** 'proxy', or `oidc:${id}`. */
  provider: string;
  subject: string;
  username: string;
  name: string | null;
  email: string | null;
  /** The role of a new account. */
  role: string;
  authSource: string;
  /** The username belongs to an account not linked to this identity: 'link' that account, or create this one as name-2, name-3... */
  usernameTaken: 'link' | 'suffix';
  /** Link the account that holds this email (the provider verified it). */
  linkEmail: boolean;
  /** Create the account when there is none to link; else answer null. */
  create: boolean;
}

export interface UserPatch {
  role?: string;
  name?: string | null;
  email?: string | null;
  /** null clears the password (a password-less, invite-only account). */
  password?: string | null;
  /** An external account may also sign in with a local password (admins only; always true for local accounts). */
  passwordLogin?: boolean;
  /** Another organisation (null: none); global admins only (`users.set-org`). */
  organizationId?: number | null;
  orgRole?: string | null;
}

/** A typed recovery code: a typo (its check fails), no such code, or the user whose code it is. */
export type RecoveryCodeLookup = { kind: 'typo' } | { kind: 'invalid' } | { kind: 'found'; user: UserRecord };

/** Refuses, inside a change's transaction, giving `role` to a user on behalf of `origin`. */
export type RoleCheck = (trx: Knex.Transaction, role: string, origin: Origin) => Promise<void>;

/**
 * Runs for every new account: `inside` in its creating transaction (answering the events it recorded there),
 * `after` once that is committed, before the creation answers.
 */
export interface CreationStep {
  inside(trx: Knex.Transaction, user: UserRecord, origin: Origin): Promise<UsherEvent[]>;
  after(userId: number): Promise<void>;
}

/**
 * Checks, inside a change's transaction, who may act on whom (src/authz/targets.ts): `target` refuses
 * acting on a user outside the actor's reach (404 user.not_found) or holding more than they do (403);
 * `placement` refuses putting a user in an organisation, with an organisation role, the actor may not give.
 * Both pass for Usher itself, the CLI and identity providers.
 */
export interface UserGuard {
  target(trx: Knex.Transaction, origin: Origin, target: UserRecord, permission: string): Promise<void>;
  /** The same for a read: the reach alone (404 out of it), no holds-more rail. */
  read(trx: Knex.Transaction, origin: Origin, target: UserRecord, permission: string): Promise<void>;
  placement(trx: Knex.Transaction, origin: Origin, place: { orgId: number | null; orgRole: string | null }, permission: string): Promise<void>;
}

/** At most this many new external accounts are written in one transaction. */
const MAX_BATCH = 100;
/** At most this many identities are looked up in one query. */
const MAX_LOOKUPS = 500;
/**
 * A batch's events are recorded this many at a time: each recorder writes one multi-row INSERT per call, and
 * SQLite takes at most 500 rows in one (a compound SELECT of 500 terms); a batch has an event per account and
 * per default grant.
 */
const RECORD_CHUNK = 250;

/**
 * An error one row of a batch may cause: PostgreSQL's data exceptions, integrity violations and rollbacks
 * (deadlock, serialization), SQLite's constraint, type and size errors. Not a lost connection nor a timeout.
 */
function rowAtFault(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (/^(22|23|40)[0-9A-Z]{3}$/.test(code) || ['SQLITE_CONSTRAINT', 'SQLITE_MISMATCH', 'SQLITE_TOOBIG', 'SQLITE_RANGE'].includes(code));
}

/** A change's events, before the actor, the target and the time are added. */
type Planned = readonly [EventType, EventDetail?][];

/**
 * The users' rules: uniqueness, safety rails, keys. Routes call this; SQL lives in the repository. Every
 * change takes the `Origin` of whoever asks (a user and how they signed in, the CLI, an identity provider,
 * Usher itself), records its events in its own transaction and publishes them once committed.
 */
export class UserService {
  /** Checks, inside the change's transaction, a role given to a user (see guardRoles). */
  private roleCheck: RoleCheck | undefined;
  /** Default access grants of new accounts (src/grants/service.ts). */
  private creationSteps: CreationStep[] = [];
  private guard: UserGuard | undefined;
  /** New external accounts waiting for the batch being written to end (createFree). */
  private readonly creations = new Batches<NewAccount, UserRecord | null>(MAX_BATCH, (batch) => this.createBatch(batch));
  /** Identity lookups waiting for the one running to end (findByIdentity). */
  private readonly lookups = new Batches<{ provider: string; subject: string }, UserRecord | null>(MAX_LOOKUPS, (batch) => this.lookUp(batch));

  constructor(
    private readonly db: Db,
    private readonly keys: ServerKeys,
    private readonly log: Logger,
    readonly events: EventStream,
    /** Where lists and counts read (src/db/connect.ts openReads); never reads a change must see. */
    private readonly reads: Db = db,
  ) {}

  /**
   * Every role given to a user (creation, role change) is checked by `check` in the change's transaction,
   * under the users lock: the role exists, and the actor holds everything it gives (src/authz/policy-service.ts).
   */
  guardRoles(check: RoleCheck): void {
    this.roleCheck = check;
  }

  /** `step` runs for every account created from now on, whatever creates it (API, setup, CLI, an identity provider). */
  onCreate(step: CreationStep): void {
    this.creationSteps.push(step);
  }

  /** Who may act on whom, and place users where (see UserGuard); checked in every change's transaction. */
  guardTargets(guard: UserGuard): void {
    this.guard = guard;
  }

  /**
   * Runs `fn` in a transaction with the user locked, once the guard let `origin` act on them with
   * `permission` (routes whose change lives elsewhere: sessions, invites, reads).
   */
  async withTarget<T>(id: number, origin: Origin, permission: string, fn: (trx: Knex.Transaction, user: UserRecord) => Promise<T>): Promise<T> {
    return this.transaction(async (trx) => {
      const user = await usersRepo.findForUpdate(trx, id);
      if (!user) throw Errors.userNotFound();
      if (!isSelf(origin, id)) await this.guard?.target(trx, origin, user, permission);
      return fn(trx, user);
    });
  }

  /** Refuses, as withTarget does, unless `origin` may act on the user with `permission` (routes whose change lives elsewhere). */
  async reach(id: number, origin: Origin, permission: string): Promise<void> {
    await this.withTarget(id, origin, permission, async () => undefined);
  }

  /** The user, when `origin` may read them with `permission` (404 out of an org admin's reach). */
  async requireFor(id: number, origin: Origin, permission: string): Promise<UserRecord> {
    return this.transaction(async (trx) => {
      const user = await usersRepo.findById(trx, id);
      if (!user) throw Errors.userNotFound();
      if (!isSelf(origin, id)) await this.guard?.read(trx, origin, user, permission);
      return user;
    });
  }

  get(id: number): Promise<UserRecord | null> {
    return usersRepo.findById(this.db, id);
  }

  async require(id: number): Promise<UserRecord> {
    const user = await usersRepo.findById(this.db, id);
    if (!user) throw Errors.userNotFound();
    return user;
  }

  findByUsername(username: string): Promise<UserRecord | null> {
    return usersRepo.findByUsername(this.db, usernameKey(username));
  }

  findByApiKey(apiKey: string): Promise<UserRecord | null> {
    return usersRepo.findByApiKeyDigest(this.db, digestApiKey(this.keys, apiKey));
  }

  list(query: ListQuery) {
    return usersRepo.list(this.reads, query);
  }

  async count(): Promise<number> {
    return usersRepo.count(this.reads);
  }

  /** Creates a user with a fresh API key (returned once, to be shown to its owner). */
  async create(input: NewUser, origin: Origin = SYSTEM_ORIGIN): Promise<{ user: UserRecord; apiKey: string }> {
    const prepared = await this.prepareNew(input);
    const { result, events } = await this.transaction(async (trx) => {
      if (this.roleCheck) {
        await usersRepo.lock(trx);
        await this.roleCheck(trx, prepared.row.role, origin);
      }
      await this.guard?.placement(trx, origin, { orgId: prepared.row.org_id, orgRole: prepared.row.org_role }, 'users.create');
      const made = await this.insertPrepared(trx, prepared);
      return { result: made, events: await this.createdEvents(trx, origin, made.user) };
    });
    await this.afterCreation(result.user.id);
    await this.events.publish(events);
    return result;
  }

  /**
   * Creates the first account, always an admin, only while no user exists.
   * Concurrent calls serialise on the users lock: exactly one succeeds.
   */
  async setupFirst(input: NewUser, origin: Origin = SYSTEM_ORIGIN, onExisting: () => AppError = Errors.setupDone): Promise<{ user: UserRecord; apiKey: string }> {
    const prepared = await this.prepareNew({ ...input, role: ADMIN_ROLE });
    const { result, events } = await this.transaction(async (trx) => {
      await usersRepo.lock(trx);
      if ((await usersRepo.count(trx)) > 0) throw onExisting();
      const made = await this.insertPrepared(trx, prepared);
      return { result: made, events: await this.createdEvents(trx, origin, made.user) };
    });
    await this.afterCreation(result.user.id);
    await this.events.publish(events);
    return result;
  }

  /** Partial update; `self` means the caller edits their own account (password change then needs the current one). */
  async update(
    id: number,
    patch: UserPatch,
    opts: { currentPassword?: string; self?: boolean; keepSession?: string } = {},
    origin: Origin = SYSTEM_ORIGIN,
  ): Promise<UserRecord> {
    const changes: UserChanges = {};
    if (patch.name !== undefined) changes.name = patch.name;
    if (patch.email !== undefined) Object.assign(changes, emailColumns(patch.email));
    if (patch.role !== undefined) changes.role = patch.role;
    if (patch.passwordLogin !== undefined) changes.password_login = patch.passwordLogin;
    if (patch.organizationId !== undefined) changes.org_id = patch.organizationId;
    if (patch.orgRole !== undefined) changes.org_role = patch.orgRole;
    // Your own new password: the hash your current password was checked against (null: an invite-only
    // account, which sets its first password without one). It must still be the stored one under the lock.
    let checkedHash: string | null | undefined;
    if (patch.password !== undefined) {
      if (opts.self && patch.password !== null) {
        checkedHash = (await this.require(id)).passwordHash;
        if (checkedHash !== null) {
          if (opts.currentPassword === undefined) throw Errors.invalidInput('currentPassword: is required to change your own password');
          if (!(await verifyPassword(checkedHash, opts.currentPassword))) throw Errors.wrongCurrentPassword();
        }
      }
      changes.password_hash = patch.password === null ? null : await hashPassword(patch.password);
    }
    return this.change(
      id,
      (before) => {
        if (patch.passwordLogin === false && before.authSource === 'local') throw invalidField('passwordLogin', 'a local account always signs in with its password');
        // A password an external user sets themselves would bypass their provider's MFA and group checks.
        const passwordLogin = patch.passwordLogin ?? before.passwordLogin;
        if (opts.self && typeof patch.password === 'string' && !passwordLogin) throw Errors.passwordLoginOff();
        // Set or changed meanwhile (two first passwords at once): the current-password rule applies to this one.
        if (checkedHash !== undefined && before.passwordHash !== checkedHash) {
          throw checkedHash === null ? Errors.invalidInput('currentPassword: is required to change your own password') : Errors.wrongCurrentPassword();
        }
        const after = {
          role: changes.role ?? before.role,
          hasPassword: changes.password_hash !== undefined ? changes.password_hash !== null : before.hasPassword,
        };
        const demoted = before.role === ADMIN_ROLE && after.role !== ADMIN_ROLE;
        // Turning password login off ends the sessions a password may have started.
        const passwordLoginEnded = before.passwordLogin && patch.passwordLogin === false;
        const events: [EventType, EventDetail?][] = [];
        const fields = (['name', 'email'] as const).filter((f) => patch[f] !== undefined && patch[f] !== before[f]);
        if (fields.length > 0) events.push(['user.updated', { fields: fields.join(',') }]);
        if (patch.role !== undefined && patch.role !== before.role) events.push(['user.role_changed', { from: before.role, to: patch.role }]);
        const orgId = patch.organizationId !== undefined ? patch.organizationId : before.orgId;
        const orgRole = patch.orgRole !== undefined ? patch.orgRole : orgId === before.orgId ? before.orgRole : null;
        // Out of an organisation, or into another: the old organisation's role does not follow.
        if (orgId !== before.orgId && patch.orgRole === undefined) changes.org_role = null;
        if (orgId !== before.orgId || orgRole !== before.orgRole) {
          events.push(['user.org_changed', { from: before.orgId, to: orgId, orgRoleFrom: before.orgRole, orgRoleTo: orgRole }]);
        }
        if (patch.password === null) events.push(['user.password_cleared']);
        else if (patch.password !== undefined) events.push([opts.self ? 'user.password_changed' : 'user.password_reset']);
        if (patch.passwordLogin !== undefined && patch.passwordLogin !== before.passwordLogin) {
          events.push(['user.password_login_changed', { enabled: patch.passwordLogin }]);
        }
        // A recovery code, like a password, would sign an external account in around its provider.
        const dropCode = passwordLoginEnded && before.recoveryCodeCreatedAt !== null;
        if (dropCode) events.push(['recovery_code.revoked', { reason: 'password_login_off' }]);
        return {
          changes: dropCode ? { ...changes, ...NO_RECOVERY_CODE } : changes,
          after,
          endSessions: demoted || changes.password_hash !== undefined || passwordLoginEnded,
          events,
          place: orgId !== before.orgId || orgRole !== before.orgRole ? { orgId, orgRole } : undefined,
        };
      },
      origin,
      // Only a self-service password change keeps the session that made it; a demotion ends them all.
      opts.self && patch.role === undefined ? opts.keepSession : undefined,
      'users.update',
    );
  }

  async setActive(id: number, active: boolean, origin: Origin = SYSTEM_ORIGIN): Promise<UserRecord> {
    return this.change(
      id,
      (before) => ({
        changes: { active },
        after: { role: before.role, active, hasPassword: before.hasPassword },
        endSessions: !active,
        events: before.active === active ? [] : [[active ? 'user.enabled' : 'user.disabled']],
      }),
      origin,
      undefined,
      'users.set-status',
    );
  }

  async resetPassword(id: number, password: string, origin: Origin = SYSTEM_ORIGIN): Promise<void> {
    const password_hash = await hashPassword(password);
    await this.change(
      id,
      (before) => ({ changes: { password_hash }, after: { role: before.role, hasPassword: true }, endSessions: true, events: [['user.password_reset']] }),
      origin,
      undefined,
      'users.reset-password',
    );
  }

  /** Replaces the user's key; the old one stops working at once. */
  async rotateApiKey(id: number, origin: Origin = SYSTEM_ORIGIN): Promise<string> {
    const apiKey = generateApiKey();
    const digest = digestApiKey(this.keys, apiKey);
    await this.change(
      id,
      (before) => ({
        changes: { api_key_digest: digest, api_key_cipher: encryptApiKey(this.keys, apiKey, id) },
        after: { role: before.role, hasPassword: before.hasPassword },
        events: [['apikey.rotated']],
      }),
      origin,
      undefined,
      'users.rotate-api-key',
    );
    return apiKey;
  }

  /**
   * Mints the user's recovery code, answered this once: only its fingerprint is kept, and the code the
   * user had stops at once (it is replaced in the same row). It never expires and has no use limit. An
   * external account may have one only while it may sign in with a local password: a code, like a
   * password, would go around its provider's MFA and group checks (turning `passwordLogin` off drops it).
   */
  async mintRecoveryCode(id: number, origin: Origin): Promise<{ code: string; user: UserRecord }> {
    const code = generateCode();
    const fingerprint = fingerprintCode(this.keys, code.replaceAll('-', ''));
    const user = await this.change(
      id,
      (before) => {
        if (!before.passwordLogin) {
          throw Errors.passwordLoginOff('This account signs in through its identity provider; an admin must allow password login (passwordLogin) before it can have a recovery code.');
        }
        return {
          changes: { recovery_code_fingerprint: fingerprint, recovery_code_created_at: Date.now() },
          after: { role: before.role, hasPassword: before.hasPassword },
          events: [['recovery_code.created', { replaced: before.recoveryCodeCreatedAt !== null }]],
        };
      },
      origin,
    );
    return { code, user };
  }

  /** Removes the user's recovery code, if they have one (by its owner or an admin); it stops at once. */
  async revokeRecoveryCode(id: number, origin: Origin): Promise<UserRecord> {
    return this.change(
      id,
      (before) => ({
        changes: before.recoveryCodeCreatedAt === null ? {} : NO_RECOVERY_CODE,
        after: { role: before.role, hasPassword: before.hasPassword },
        events: before.recoveryCodeCreatedAt === null ? [] : [['recovery_code.revoked', { reason: 'revoked' }]],
      }),
      origin,
      undefined,
      'users.revoke-recovery-code',
    );
  }

  /**
   * The user a typed recovery code belongs to, looked up by its fingerprint; a failed check is a typo, not a
   * wrong code (as `InviteService.findByCode`). `found` says nothing about whether the user may sign in: the
   * redeem flow must refuse a disabled account (`active` false) itself (its code is kept, for when it is
   * enabled again; an external account's is removed when `passwordLogin` goes off), and should confirm, in the
   * transaction that signs the device in (the row read with `usersRepo.findForUpdate`), that
   * `recoveryCodeFingerprint` is still the one found, so a code replaced or revoked meanwhile never wins.
   */
  async findByRecoveryCode(typed: string): Promise<RecoveryCodeLookup> {
    const parsed = parseCode(typed);
    if (!parsed.ok) return { kind: 'typo' };
    const user = await usersRepo.findByRecoveryCodeFingerprint(this.db, fingerprintCode(this.keys, parsed.normalized));
    return user ? { kind: 'found', user } : { kind: 'invalid' };
  }

  /**
   * Signs a device in with the user's recovery code: in one transaction, with the user's row locked, the
   * code must still be theirs (a replace or revoke that committed first wins) and the account enabled.
   * `inside` runs in that transaction (issuing an app's token). Throws invite.typo, invite.invalid or
   * auth.account_disabled; no use is spent, a recovery code has no limit.
   */
  async redeemRecoveryCode<T>(
    typed: string,
    origin: Origin,
    detail: EventDetail,
    inside: (trx: Knex.Transaction, user: UserRecord) => Promise<{ result: T; events: UsherEvent[] }>,
  ): Promise<{ user: UserRecord; result: T }> {
    const found = await this.findByRecoveryCode(typed);
    if (found.kind === 'typo') throw Errors.inviteTypo();
    if (found.kind === 'invalid') throw Errors.inviteInvalid();
    const { user, result, events } = await this.transaction(async (trx) => {
      const user = await usersRepo.findForUpdate(trx, found.user.id);
      if (!user || user.recoveryCodeFingerprint === null || user.recoveryCodeFingerprint !== found.user.recoveryCodeFingerprint) throw Errors.inviteInvalid();
      if (!user.active) throw Errors.accountDisabled();
      if (user.authSource !== 'local' && !user.passwordLogin) throw Errors.passwordLoginOff();
      const then = await inside(trx, user);
      const events = [eventOf(origin, 'recovery_code.redeemed', user.id, detail), ...then.events];
      await this.events.record(trx, events);
      return { user, result: then.result, events };
    });
    await this.events.publish(events);
    return { user, result };
  }

  /** The owner's key, decrypted; null when it cannot be read (rotate it then). */
  readApiKey(user: UserRecord): string | null {
    return user.apiKeyCipher ? decryptApiKey(this.keys, user.apiKeyCipher, user.id) : null;
  }

  async remove(id: number, origin: Origin): Promise<void> {
    if (origin.actor.kind === 'user' && origin.actor.userId === id) throw Errors.cannotDeleteSelf();
    const events = await this.transaction(async (trx) => {
      await usersRepo.lock(trx);
      const before = await usersRepo.findById(trx, id);
      if (!before) throw Errors.userNotFound();
      await this.guard?.target(trx, origin, before, 'users.delete');
      await this.checkAdminRemains(trx, before, { role: undefined, active: false });
      await usersRepo.remove(trx, id);
      const detail = { username: before.username, role: before.role };
      return this.recorded(trx, [eventOf(origin, 'user.deleted', id, detail, { user: withoutSecrets(before), endsSessions: true })]);
    });
    // The user is gone whether or not their sessions can be removed now: every listener hears of it.
    await this.events.publish(events);
  }

  touchLastActive(id: number, now: number): Promise<void> {
    return usersRepo.touchLastActive(this.db, id, now);
  }

  /**
   * The user linked to the external identity (provider, subject), or null. Lookups asked while one runs
   * wait for it and are answered together by the next query (a burst of sign-ins: one query, not hundreds
   * queued for the pool ahead of the creations they lead to).
   */
  findByIdentity(provider: string, subject: string): Promise<UserRecord | null> {
    return this.lookups.add({ provider, subject });
  }

  private async lookUp(batch: Waiting<{ provider: string; subject: string }, UserRecord | null>[]): Promise<void> {
    for (const provider of new Set(batch.map((l) => l.provider))) {
      const mine = batch.filter((l) => l.provider === provider);
      try {
        const found = await usersRepo.findBySubjects(this.db, provider, [...new Set(mine.map((l) => l.subject))]);
        for (const l of mine) l.resolve(found.get(l.subject) ?? null);
      } catch (err) {
        for (const l of mine) l.reject(err);
      }
    }
  }

  /**
   * Finds, links or creates the account of an external identity. Never a bootstrap admin: the role is the
   * one asked for. An email another account holds is linked (`linkEmail`) or left out. Null when there is no
   * account to link and `create` is off.
   *
   * The common case, a new identity whose username and email are free, is created without the users lock
   * (createFree); anything else is decided under it, so that concurrent first requests of one identity give
   * one account whichever path they take: the unique constraints on usernames and identities send the
   * losers of a race to the locked path, which finds the winner's account.
   */
  async provisionExternal(input: ExternalAccount, origin: Origin): Promise<{ user: UserRecord; created: boolean } | null> {
    const { username, role, name, email, authSource } = input;
    const prepared = await this.prepareNew({ username, role, name, email, authSource });
    const made = input.create ? await this.createFree(input, prepared, origin) : null;
    if (made) return { user: made, created: true };
    let result: Awaited<ReturnType<UserService['provisionLocked']>>;
    try {
      result = await this.provisionLocked(input, prepared, origin);
    } catch (err) {
      // The same name, email or identity committed by the lock-free path after this one looked: look again.
      const raced = uniqueViolation(err) !== null || (err instanceof AppError && (err.code === 'user.username_taken' || err.code === 'user.email_taken'));
      if (!raced) throw err;
      result = await this.provisionLocked(input, prepared, origin);
    }
    if (!result) return null;
    if (result.created) await this.afterCreation(result.user.id);
    await this.events.publish(result.events);
    return { user: result.user, created: result.created };
  }

  /** provisionExternal's decisions under the users lock: link, suffix, leave the email out, or create. */
  private provisionLocked(input: ExternalAccount, original: Prepared, origin: Origin) {
    // Its own copy of the row: it may leave the email out or change the name, and may be tried twice.
    const prepared = { ...original, row: { ...original.row } };
    return this.transaction(async (trx) => {
      await usersRepo.lock(trx);
      const now = Date.now();
      const linkedId = await identitiesRepo.findUserId(trx, input.provider, input.subject);
      if (linkedId !== null) return { user: (await usersRepo.findById(trx, linkedId))!, created: false, events: [] };
      const link = async (user: UserRecord, by: 'email' | 'username') => {
        await identitiesRepo.insert(trx, user.id, input.provider, input.subject, now);
        this.log.info({ userId: user.id, provider: input.provider, by }, 'external identity linked to an existing account');
        const events = await this.recorded(trx, [eventOf(origin, 'identity.linked', user.id, { provider: input.provider, by }, { user: withoutSecrets(user) })]);
        return { user, created: false, events };
      };
      const row = prepared.row;
      const byEmail = row.email_key === null ? null : await usersRepo.findByEmailKey(trx, row.email_key);
      if (byEmail && input.linkEmail) return link(byEmail, 'email');
      if (byEmail) {
        this.log.warn({ provider: input.provider, otherUserId: byEmail.id }, 'provisioning: the email belongs to another account; left out');
        row.email = null;
        row.email_key = null;
      }
      const base = row.username;
      for (let n = 2; ; n++) {
        const taken = await usersRepo.findByUsername(trx, row.username_key);
        if (!taken) break;
        if (input.usernameTaken === 'link') return link(taken, 'username');
        if (!input.create) return null;
        if (n > 100) throw Errors.usernameTaken();
        const suffix = `-${n}`;
        row.username = [...base].slice(0, 64 - suffix.length).join('') + suffix;
        row.username_key = usernameKey(row.username);
      }
      if (!input.create) return null;
      const { user } = await this.insertPrepared(trx, prepared);
      await identitiesRepo.insert(trx, user.id, input.provider, input.subject, now);
      return { user, created: true, events: await this.createdEvents(trx, origin, user) };
    });
  }

  /**
   * Creates the account of a new external identity without the users lock: creating an account never
   * lowers the admin count (the last-admin rail), and usernames, emails and identities are unique in the
   * database. Null, having changed nothing, when any of them is taken (a race, or a name or an email to link):
   * the locked path decides then. Creations that come while a batch is written wait for the next one, all
   * written in one transaction: a few statements for the lot (createBatch).
   */
  private createFree(input: ExternalAccount, prepared: Prepared, origin: Origin): Promise<UserRecord | null> {
    return this.creations.add({ input, prepared, origin });
  }

  /**
   * One transaction for a batch of new external accounts: their rows, key copies, identities, default grants
   * and audit rows, each kind in one statement (grants one by one); announced once committed. A row whose
   * username, email or identity is taken is left out (answered null, for the locked path), and so is its user.
   * If the transaction fails, each account is tried alone, so that only the one at fault fails.
   */
  private async createBatch(batch: Creation[]): Promise<void> {
    // Two of one batch with the same name, email or identity: the second waits for the next batch, where
    // the first is committed (the locked path it then takes finds it, rather than racing it).
    const claimed = new Set<string>();
    const now: Creation[] = [];
    const later: Creation[] = [];
    for (const c of batch) {
      const claims = [`u\n${c.prepared.row.username_key}`, `i\n${c.input.provider}\n${c.input.subject}`, ...(c.prepared.row.email_key === null ? [] : [`e\n${c.prepared.row.email_key}`])];
      if (claims.some((k) => claimed.has(k))) later.push(c);
      else {
        for (const k of claims) claimed.add(k);
        now.push(c);
      }
    }
    this.creations.putBack(later);
    // One order for every batch (instances sharing a database included): two batches never wait on each other's names crosswise.
    now.sort((a, b) => (a.prepared.row.username_key < b.prepared.row.username_key ? -1 : 1));
    let made: Map<Creation, { user: UserRecord; events: UsherEvent[] }>;
    try {
      made = await this.transaction((trx) => this.insertBatch(trx, now));
    } catch (err) {
      // A row at fault (too long, a deadlock with another instance's batch): each alone. The database at fault: all fail now.
      if (now.length > 1 && rowAtFault(err)) for (const c of now) await this.createBatch([c]);
      // Alone and still crossed by another transaction (a deadlock, a serialization failure): the locked path decides.
      else if (now.length === 1 && /^40/.test(String((err as { code?: unknown } | null)?.code))) now[0]!.resolve(null);
      else for (const c of now) c.reject(err);
      return;
    }
    // The next batch need not wait for this one's listeners.
    void this.announce(now, made);
  }

  /** After a batch's commit: each account's creation steps and events, then its answer. */
  private async announce(batch: readonly Creation[], made: ReadonlyMap<Creation, { user: UserRecord; events: UsherEvent[] }>): Promise<void> {
    for (const c of batch) {
      const done = made.get(c);
      if (!done) {
        c.resolve(null);
        continue;
      }
      try {
        await this.afterCreation(done.user.id);
        await this.events.publish(done.events);
        c.resolve(done.user);
      } catch (err) {
        c.reject(err);
      }
    }
  }

  private async insertBatch(trx: Knex.Transaction, batch: readonly Creation[]): Promise<Map<Creation, { user: UserRecord; events: UsherEvent[] }>> {
    const now = Date.now();
    const ids = await usersRepo.insertIfFree(trx, batch.map((c) => c.prepared.row), now);
    const placed = batch.filter((c) => ids.has(c.prepared.row.username_key));
    const made = new Map<Creation, { user: UserRecord; events: UsherEvent[] }>();
    if (placed.length === 0) return made;
    const idOf = (c: Creation) => ids.get(c.prepared.row.username_key)!;
    const users = new Map((await usersRepo.setKeyCiphers(trx, new Map(placed.map((c) => [idOf(c), encryptApiKey(this.keys, c.prepared.apiKey, idOf(c))])), now)).map((u) => [u.id, u]));
    const linked = await identitiesRepo.insertIfFree(trx, placed.map((c) => ({ userId: idOf(c), provider: c.input.provider, subject: c.input.subject })), now);
    // An identity linked meanwhile (the same person under another name): this account is not theirs to make.
    const unlinked = placed.filter((c) => !linked.has(idOf(c))).map(idOf);
    if (unlinked.length > 0) await usersRepo.removeAll(trx, unlinked);
    const events: UsherEvent[] = [];
    for (const c of placed) {
      if (!linked.has(idOf(c))) continue;
      const user = users.get(idOf(c))!;
      const own = await this.creationEvents(trx, c.origin, user);
      made.set(c, { user, events: own });
      events.push(...own);
    }
    for (let i = 0; i < events.length; i += RECORD_CHUNK) await this.events.record(trx, events.slice(i, i + RECORD_CHUNK));
    return made;
  }

  /**
   * Sets the role an external provider's groups give. When that would leave no enabled admin (or make a
   * password-less local account admin) the role is kept and a warning logged. A demotion ends sessions.
   */
  async syncRole(id: number, role: string, origin: Origin): Promise<UserRecord> {
    try {
      return await this.change(
        id,
        (before) => ({
          changes: { role },
          after: { role, hasPassword: before.hasPassword },
          endSessions: before.role === ADMIN_ROLE && role !== ADMIN_ROLE,
          events: before.role === role ? [] : [['idp.role_synced', { from: before.role, to: role }]],
        }),
        origin,
      );
    } catch (err) {
      if (!(err instanceof AppError) || (err.code !== 'user.last_admin' && err.code !== 'user.admin_needs_password')) throw err;
      const user = await this.require(id);
      this.log.warn({ userId: id, role: user.role, groupsRole: role, rail: err.code }, 'role sync: role kept, the change would break a safety rail');
      return user;
    }
  }

  /**
   * Sets the organisation and organisation role an identity provider's groups give (`place`, the
   * organisation by name), or takes the organisation role away (null). An organisation that does not exist
   * is logged and skipped: configuration names it, an admin creates it.
   */
  async syncOrgRole(id: number, place: { org: string; role: string } | null, origin: Origin): Promise<UserRecord> {
    const org = place === null ? null : await orgsRepo.findByName(this.db, place.org);
    if (place !== null && org === null) {
      this.log.warn({ userId: id, org: place.org }, 'organisation role sync: no organisation of that name; left unchanged');
      return this.require(id);
    }
    return this.change(
      id,
      (before) => {
        const orgId = org === null ? before.orgId : org.id;
        const orgRole = place === null ? null : place.role;
        const same = orgId === before.orgId && orgRole === before.orgRole;
        return {
          changes: same ? {} : { org_id: orgId, org_role: orgRole },
          after: { role: before.role, hasPassword: before.hasPassword },
          events: same ? [] : [['idp.org_role_synced', { from: before.orgId, to: orgId, orgRoleFrom: before.orgRole, orgRoleTo: orgRole }]],
          place: same ? undefined : { orgId, orgRole },
        };
      },
      origin,
    );
  }

  /** Updates the name and email a provider gives (undefined: unchanged); an email another account holds is left out. */
  async syncProfile(id: number, profile: { name?: string | null; email?: string | null }, origin: Origin): Promise<UserRecord> {
    const changes: UserChanges = {};
    if (profile.name !== undefined) changes.name = profile.name;
    if (profile.email !== undefined) Object.assign(changes, emailColumns(profile.email));
    const apply = (c: UserChanges) =>
      this.change(
        id,
        (before) => ({
          changes: c,
          after: { role: before.role, hasPassword: before.hasPassword },
          events: [['user.updated', { fields: Object.keys(c).filter((k) => k !== 'email_key').join(',') }]],
        }),
        origin,
      );
    try {
      return await apply(changes);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'user.email_taken') throw err;
      this.log.warn({ userId: id }, 'profile sync: the email belongs to another account; left unchanged');
      const { email: _email, email_key: _emailKey, ...rest } = changes;
      return apply(rest);
    }
  }

  // ---- internals ----

  private transaction<T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  /** Applies a change under the users lock after checking the rails against the row as it is now. */
  /**
   * Applies a change under the users lock after checking the rails against the row as it is now, records
   * its events in the same transaction, and publishes them once it is committed. A change that ends
   * sessions moves the epoch on (they are refused from then on, wherever they are read); removing them from
   * the store is a listener's work, and its failure (503 session.store_unavailable) reaches the caller:
   * the request must not report success while the sessions are still in the store.
   */
  private async change(
    id: number,
    plan: (before: UserRecord) => {
      changes: UserChanges;
      after: { role: string; active?: boolean; hasPassword: boolean };
      endSessions?: boolean;
      events?: Planned;
      place?: { orgId: number | null; orgRole: string | null };
    },
    origin: Origin,
    keepSession?: string,
    /** The permission an actor other than the user acts with: the guard checks they may, on this user. */
    permission?: string,
  ): Promise<UserRecord> {
    const { updated, events } = await this.transaction(async (trx) => {
      await usersRepo.lock(trx);
      const before = await usersRepo.findById(trx, id);
      if (!before) throw Errors.userNotFound();
      if (permission !== undefined && !isSelf(origin, id)) await this.guard?.target(trx, origin, before, permission);
      const { changes, after, endSessions, events: planned = [], place } = plan(before);
      // Another organisation needs users.set-org (global-only); another role inside the same one, users.update there.
      if (place) await this.guard?.placement(trx, origin, place, place.orgId !== before.orgId ? 'users.set-org' : 'users.update');
      if (after.role !== before.role) await this.roleCheck?.(trx, after.role, origin);
      // An external account (proxy, OIDC) signs in through its provider, never with a password.
      if (after.role === ADMIN_ROLE && !after.hasPassword && before.authSource === 'local') throw Errors.adminNeedsPassword();
      await this.checkAdminRemains(trx, before, { role: after.role, active: after.active ?? before.active });
      try {
        await usersRepo.update(trx, id, endSessions ? { ...changes, session_epoch: before.sessionEpoch + 1 } : changes, Date.now());
      } catch (err) {
        throw this.conflict(err);
      }
      const now = (await usersRepo.findById(trx, id))!;
      const context = { user: withoutSecrets(now), endsSessions: endSessions === true, keepSession, sessionEpoch: now.sessionEpoch };
      const recorded = await this.recorded(trx, planned.map(([type, detail]) => eventOf(origin, type, id, detail, context)));
      // A repeated change (disabling a disabled user) is nothing to audit, but its listeners still run:
      // caches drop the row, sessions a stale epoch left in the store go.
      return { updated: now, events: recorded.length > 0 ? recorded : [eventOf(origin, 'user.updated', id, { fields: '' }, context)] };
    });
    await this.events.publish(events);
    return updated;
  }

  /** Records events in the change's transaction; answers them, for publishing after the commit. */
  private async recorded(trx: Knex.Transaction, events: UsherEvent[]): Promise<UsherEvent[]> {
    await this.events.record(trx, events);
    return events;
  }

  /** A new account's events: its creation, then what the creation steps did (default grants), recorded in `trx`. */
  private async createdEvents(trx: Knex.Transaction, origin: Origin, user: UserRecord): Promise<UsherEvent[]> {
    return this.recorded(trx, await this.creationEvents(trx, origin, user));
  }

  /** The same, not recorded yet (a batch records its accounts' events together). */
  private async creationEvents(trx: Knex.Transaction, origin: Origin, user: UserRecord): Promise<UsherEvent[]> {
    const events = [this.created(origin, user)];
    for (const step of this.creationSteps) events.push(...(await step.inside(trx, user, origin)));
    return events;
  }

  private async afterCreation(userId: number): Promise<void> {
    for (const step of this.creationSteps) await step.after(userId);
  }

  private created(origin: Origin, user: UserRecord): UsherEvent {
    return eventOf(origin, 'user.created', user.id, { username: user.username, role: user.role, authSource: user.authSource }, { user: withoutSecrets(user) });
  }

  /** Records a successful login, and replaces a hash made with weaker parameters than today's. */
  /** Sets lastLoginAt (and a stronger hash of the password, when given); answers the user as it now is. */
  async recordLogin(id: number, origin: Origin, method: string, rehash?: string): Promise<UserRecord | null> {
    const changes: UserChanges = { last_login_at: Date.now() };
    if (rehash !== undefined) changes.password_hash = await hashPassword(rehash);
    const user = await usersRepo.updateReturning(this.db, id, changes, Date.now());
    const context = user ? { user: withoutSecrets(user) } : undefined;
    await this.events.publish([eventOf(origin, 'login.succeeded', id, { method }, context), eventOf(origin, 'session.created', id, { method }, context)]);
    return user;
  }



  /** Refuses a change that would leave no enabled admin. Must run under the users lock. */
  private async checkAdminRemains(trx: Knex.Transaction, before: UserRecord, after: { role: string | undefined; active: boolean }) {
    const wasEnabledAdmin = before.role === ADMIN_ROLE && before.active;
    const staysEnabledAdmin = after.role === ADMIN_ROLE && after.active;
    if (wasEnabledAdmin && !staysEnabledAdmin && (await usersRepo.countEnabledAdmins(trx, ADMIN_ROLE, before.id)) === 0) {
      throw Errors.lastAdmin();
    }
  }

  private async prepareNew(input: NewUser) {
    const role = input.role ?? DEFAULT_ROLE;
    const password = input.password ?? null;
    if (input.orgRole && !input.organizationId) throw invalidField('orgRole', 'needs an organizationId');
    if (role === ADMIN_ROLE && password === null && (input.authSource ?? 'local') === 'local') throw Errors.adminNeedsPassword();
    const username = normalizeUsername(input.username);
    const apiKey = input.apiKey ?? generateApiKey();
    return {
      apiKey,
      row: {
        username,
        username_key: usernameKey(username),
        name: input.name ?? null,
        ...emailColumns(input.email || null),
        role,
        org_id: input.organizationId ?? null,
        org_role: input.orgRole ?? null,
        active: true,
        password_hash: password === null ? null : await hashPassword(password),
        auth_source: input.authSource ?? 'local',
        api_key_digest: digestApiKey(this.keys, apiKey),
      },
    };
  }

  private async insertPrepared(trx: Knex.Transaction, prepared: Prepared) {
    let id: number;
    try {
      id = await usersRepo.insert(trx, prepared.row, Date.now());
    } catch (err) {
      throw this.conflict(err);
    }
    // The copy is bound to the id, which exists only after the insert.
    await trx('users').where({ id }).update({ api_key_cipher: encryptApiKey(this.keys, prepared.apiKey, id) });
    const user = (await usersRepo.findById(trx, id))!;
    return { user, apiKey: prepared.apiKey };
  }

  private conflict(err: unknown): unknown {
    const constraint = uniqueViolation(err);
    if (constraint === null) return err;
    if (constraint.includes('email')) return Errors.emailTaken();
    if (constraint.includes('api_key')) return Errors.invalidInput('apiKey: that key is already in use');
    // Two 95-bit codes alike: never in practice, and nothing the caller did.
    if (constraint.includes('recovery_code')) return err;
    return Errors.usernameTaken();
  }

}

type Prepared = Awaited<ReturnType<UserService['prepareNew']>>;

/** A new external account for a batch (createFree). */
interface NewAccount {
  readonly input: ExternalAccount;
  readonly prepared: Prepared;
  readonly origin: Origin;
}
/** A new external account waiting for its batch. */
type Creation = Waiting<NewAccount, UserRecord | null>;
