import type { Knex } from 'knex';
import { Errors } from '../errors.js';
import type { Db } from '../db/connect.js';
import { fingerprintCode, generateCode, parseCode } from '../crypto/codes.js';
import type { ServerKeys } from '../crypto/secret.js';
import { eventOf, type EventStream, type Origin, type UsherEvent } from '../events/stream.js';
import { usersRepo } from '../users/repository.js';
import type { UserRecord } from '../users/model.js';
import type { UserGuard } from '../users/service.js';
import { expiryFrom, stateOf, type InviteRecord, type RedemptionSummary } from './model.js';
import { invitesRepo } from './repository.js';

export interface InviteLimits {
  /** 1 to 1000, or null for unlimited. */
  uses: number | null;
  /** 1 to 365, or null for never. */
  expiresInDays: number | null;
}

/** An invite with what its redemptions say. */
export interface InviteView {
  invite: InviteRecord;
  redemptions: RedemptionSummary;
}

/** A freshly minted secret: `code` is shown this once and stored nowhere. */
export interface Minted {
  view: InviteView;
  code: string;
}

export type CodeLookup = { kind: 'typo' } | { kind: 'invalid' } | { kind: 'found'; invite: InviteRecord };

/**
 * Invites belong to an existing user; an admin mints, resends and revokes them. Every change runs with the
 * user's row locked (so concurrent changes for one user queue, and a user has one current invite), records
 * its event in its transaction and publishes it once committed.
 */
export class InviteService {
  private guard: UserGuard | undefined;

  constructor(
    private readonly db: Db,
    private readonly keys: ServerKeys,
    private readonly events: EventStream,
  ) {}

  /** Who may act on whose invites (src/authz/targets.ts), checked with the user's row locked. */
  guardTargets(guard: UserGuard): void {
    this.guard = guard;
  }

  /** Mints the user's invite; the one they had, if it could still be redeemed, is `replaced`. */
  async create(userId: number, limits: InviteLimits, origin: Origin): Promise<Minted> {
    const { code, fingerprint } = this.newCode();
    const view = await this.change(async (trx, now) => {
      const user = await usersRepo.findForUpdate(trx, userId);
      if (!user) throw Errors.userNotFound();
      await this.guard?.target(trx, origin, user, 'invites.create');
      // As with a password it would set itself: a code would go around its provider's MFA and group checks.
      if (user.authSource !== 'local' && !user.passwordLogin) {
        throw Errors.passwordLoginOff('This account signs in through its identity provider; allow password login (passwordLogin) before inviting it.');
      }
      const before = await invitesRepo.findCurrent(trx, userId);
      const replaced = before !== null && stateOf(before, now) === 'pending';
      if (before) await invitesRepo.retire(trx, before.id, replaced ? 'replaced' : null, now);
      const id = await invitesRepo.insert(
        trx,
        { userId, fingerprint, uses: limits.uses, expiresInDays: limits.expiresInDays, expiresAt: expiryFrom(now, limits.expiresInDays), createdBy: createdBy(origin) },
        now,
      );
      const detail = { inviteId: id, uses: limits.uses, expiresInDays: limits.expiresInDays, replaced: replaced ? before.id : null };
      return { id, events: [eventOf(origin, 'invite.created', userId, detail)] };
    });
    return { view, code };
  }

  /**
   * A new secret for a pending invite, in place: the old code stops at once; the uses left stay, and the
   * expiry restarts for the window first given (never stays never).
   */
  async resend(userId: number, inviteId: number, origin: Origin): Promise<Minted> {
    const { code, fingerprint } = this.newCode();
    const view = await this.change(async (trx, now) => {
      const invite = await this.pending(trx, userId, inviteId, now, origin, 'invites.create');
      await invitesRepo.resend(trx, invite.id, fingerprint, expiryFrom(now, invite.expiresInDays), now);
      return { id: invite.id, events: [eventOf(origin, 'invite.resent', userId, { inviteId })] };
    });
    return { view, code };
  }

  /** Revokes a pending invite; it stays in the history. */
  async revoke(userId: number, inviteId: number, origin: Origin): Promise<InviteView> {
    return this.change(async (trx, now) => {
      const invite = await this.pending(trx, userId, inviteId, now, origin, 'invites.revoke');
      await invitesRepo.retire(trx, invite.id, 'revoked', now);
      return { id: invite.id, events: [eventOf(origin, 'invite.revoked', userId, { inviteId })] };
    });
  }

  /** The user's pending invite (or null), and every other one, newest first. */
  async list(userId: number, now = Date.now()): Promise<{ active: InviteView | null; history: InviteView[] }> {
    if (!(await usersRepo.findById(this.db, userId))) throw Errors.userNotFound();
    const invites = await invitesRepo.listForUser(this.db, userId);
    const redemptions = await invitesRepo.redemptions(this.db, invites.map((i) => i.id));
    const views = invites.map((invite) => ({ invite, redemptions: redemptions.get(invite.id)! }));
    const active = views.find((v) => v.invite.current && stateOf(v.invite, now) === 'pending') ?? null;
    return { active, history: views.filter((v) => v !== active) };
  }

  /** The invite a typed code names, looked up by its fingerprint; a failed check is a typo, not a wrong code. */
  async findByCode(typed: string): Promise<CodeLookup> {
    const parsed = parseCode(typed);
    if (!parsed.ok) return { kind: 'typo' };
    const invite = await invitesRepo.findByFingerprint(this.db, fingerprintCode(this.keys, parsed.normalized));
    return invite ? { kind: 'found', invite } : { kind: 'invalid' };
  }

  /**
   * Uses one use of the invite a typed code names, for one device. Answers the invite used, or throws what
   * is wrong, using no use: a typo, no such code, an invite no longer redeemable, a disabled account.
   * Concurrent redemptions, revokes and resends are decided by the one conditional update.
   */
  async redeem<T>(
    typed: string,
    device: { name: string; kind: string },
    origin: Origin,
    /** Runs in the same transaction once the use is taken (issuing the device's token): its failure gives the use back. */
    inside: (trx: Knex.Transaction, user: UserRecord) => Promise<{ result: T; events: UsherEvent[] }>,
  ): Promise<{ invite: InviteRecord; user: UserRecord; result: T }> {
    const parsed = parseCode(typed);
    if (!parsed.ok) throw Errors.inviteTypo();
    const fingerprint = fingerprintCode(this.keys, parsed.normalized);
    const { invite, user, events, result } = await this.db.transaction(async (trx) => {
      const now = Date.now();
      const found = await invitesRepo.findByFingerprint(trx, fingerprint);
      if (!found) throw Errors.inviteInvalid();
      // The owner's row locked first (as every invite change does): a disable, reset or delete waits for
      // this redemption, or this one sees it, so a device token issued here is never born after its end.
      const owner = await usersRepo.findForUpdate(trx, found.userId);
      if (!owner) throw Errors.inviteInvalid();
      refuseState(found, now);
      if (!owner.active) throw Errors.accountDisabled();
      // An external account whose password login was turned off since: the code would go around its provider.
      if (owner.authSource !== 'local' && !owner.passwordLogin) throw Errors.passwordLoginOff();
      if (!(await invitesRepo.redeem(trx, found.id, fingerprint, device, now))) {
        // Another redemption, a revoke or a resend committed first: answer what the invite is now (after a
        // resend it is still pending, but this code no longer names it).
        const current = await invitesRepo.findById(trx, found.id);
        if (current) refuseState(current, Date.now());
        throw Errors.inviteInvalid();
      }
      const then = await inside(trx, owner);
      const events = [eventOf(origin, 'invite.redeemed', owner.id, { inviteId: found.id, device: device.name, kind: device.kind }), ...then.events];
      await this.events.record(trx, events);
      return { invite: found, user: owner, events, result: then.result };
    });
    await this.events.publish(events);
    return { invite, user, result };
  }

  // ---- internals ----

  private newCode(): { code: string; fingerprint: string } {
    const code = generateCode();
    return { code, fingerprint: fingerprintCode(this.keys, code.replaceAll('-', '')) };
  }

  /** The invite, the user's row locked, when it is this user's and pending. */
  private async pending(trx: Knex.Transaction, userId: number, inviteId: number, now: number, origin: Origin, permission: string): Promise<InviteRecord> {
    const user = await usersRepo.findForUpdate(trx, userId);
    if (!user) throw Errors.userNotFound();
    await this.guard?.target(trx, origin, user, permission);
    const invite = await invitesRepo.findById(trx, inviteId);
    if (!invite || invite.userId !== userId) throw Errors.inviteNotFound();
    const state = stateOf(invite, now);
    if (state !== 'pending') throw Errors.inviteNotActive(`This invite is ${state.replace('_', ' ')}: only a pending invite can be resent or revoked; create a new one.`);
    return invite;
  }

  /** Runs a change in a transaction with its events recorded, publishes them, answers the invite as it now is. */
  private async change(apply: (trx: Knex.Transaction, now: number) => Promise<{ id: number; events: UsherEvent[] }>): Promise<InviteView> {
    const { view, events } = await this.db.transaction(async (trx) => {
      const { id, events } = await apply(trx, Date.now());
      await this.events.record(trx, events);
      const invite = (await invitesRepo.findById(trx, id))!;
      const redemptions = (await invitesRepo.redemptions(trx, [id])).get(id)!;
      return { view: { invite, redemptions }, events };
    });
    await this.events.publish(events);
    return view;
  }
}

/** Throws the answer for an invite that is not redeemable now. */
function refuseState(invite: InviteRecord, now: number): void {
  switch (stateOf(invite, now)) {
    case 'pending':
      return;
    case 'expired':
      throw Errors.inviteExpired();
    case 'used_up':
      throw Errors.inviteUsedUp();
    case 'revoked':
      throw Errors.inviteRevoked();
    case 'replaced':
      throw Errors.inviteReplaced();
  }
}

const createdBy = (origin: Origin): number | null => (origin.actor.kind === 'user' ? origin.actor.userId : null);
