import { AppError } from '../errors.js';
import type { Knex } from 'knex';
import { ANONYMOUS, SYSTEM, eventOf, type Origin, type UsherEvent } from '../events/stream.js';
import { OncePerWindow } from '../events/once.js';
import type { InviteService } from '../invites/service.js';
import type { DeviceTokens } from '../sessions/devices.js';
import type { UserRecord } from '../users/model.js';
import type { UserService } from '../users/service.js';
import { clientKey, type LoginLimiter } from './login-limiter.js';

export type DeviceKind = 'browser' | 'app';

export interface Device {
  name: string;
  kind: DeviceKind;
  userAgent?: string;
}

export interface Redeemed {
  user: UserRecord;
  via: 'invite' | 'recovery_code';
  /** For an app: its device token, shown this once. */
  token?: string;
}

/** Answers that come from holding a real code: they say nothing to a guesser, so they are not failures. */
const REAL_CODE = new Set(['invite.expired', 'invite.used_up', 'invite.revoked', 'invite.replaced', 'auth.account_disabled', 'user.password_login_off']);

/**
 * Signing one device in with a code (an invite or a recovery code), without HTTP: the address limits of
 * password login, the redemption (one use of an invite, atomically with an app's device token), and the
 * events. The route parses, starts a browser's session and calls `recordLogin`.
 */
export class CodeSignIn {
  /** One rate-limited entry per client address and minute, however many refusals. */
  private readonly refusals = new OncePerWindow(60_000);
  /** Typos and real codes' states cost no limiter point: one entry per client, reason and minute, so they cannot flood the log. */
  private readonly uncounted = new OncePerWindow(60_000);

  constructor(
    private readonly users: UserService,
    private readonly invites: InviteService,
    private readonly devices: DeviceTokens,
    private readonly limiter: LoginLimiter,
  ) {}

  async redeem(code: string, device: Device, ip: string | undefined): Promise<Redeemed> {
    const anonymous: Origin = { actor: ANONYMOUS, ip: ip ?? null };
    const attempt = await this.limiter.attemptWithoutAccount(ip).catch(async (err: unknown) => {
      if (err instanceof AppError && err.code === 'auth.too_many_attempts' && this.refusals.first(clientKey(ip))) {
        await this.users.events.publish([eventOf(anonymous, 'invite.redeem_failed', null, { reason: 'rate_limited' })]);
      }
      throw err;
    });
    try {
      const redeemed = await this.redeemChecked(code, device, ip);
      await attempt.succeeded();
      return redeemed;
    } catch (err) {
      const code = err instanceof AppError ? err.code : undefined;
      // A typo is caught before any lookup, and a real code's state tells a guesser nothing: neither counts.
      const uncounted = code === 'invite.typo' || (code !== undefined && REAL_CODE.has(code));
      if (uncounted || !(err instanceof AppError) || err.status >= 500) await attempt.unchecked();
      if (code !== undefined && (code === 'invite.invalid' || (uncounted && this.uncounted.first(`${clientKey(ip)} ${code}`)))) {
        await this.users.events.publish([eventOf(anonymous, 'invite.redeem_failed', null, { reason: code.replace(/^(invite|auth|user)\./, '') })]);
      }
      throw err;
    }
  }

  private async redeemChecked(code: string, device: Device, ip: string | undefined): Promise<Redeemed> {
    // A redemption is nobody's act but the code's: the system acts, as for a login.
    const origin: Origin = { actor: SYSTEM, ip: ip ?? null };
    // Inside the redemption's transaction: an app's token, so a use is spent only if the device is signed in.
    const signIn = async (trx: Knex.Transaction, owner: UserRecord): Promise<{ result: string | undefined; events: UsherEvent[] }> => {
      if (device.kind !== 'app') return { result: undefined, events: [] };
      const issued = await this.devices.issueIn(trx, owner.id, device, origin);
      return { result: issued.token, events: [issued.event] };
    };
    try {
      const { user, result } = await this.invites.redeem(code, device, origin, signIn);
      return { user, via: 'invite', token: result };
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'invite.invalid') throw err;
    }
    // No invite has this code: it may be a user's recovery code.
    const { user, result } = await this.users.redeemRecoveryCode(code, origin, { device: device.name, kind: device.kind }, signIn);
    return { user, via: 'recovery_code', token: result };
  }

  /** After a browser's session is started (or an app's token issued): lastLoginAt and the login's events. */
  recordLogin(user: UserRecord, via: Redeemed['via'], ip: string | undefined): Promise<UserRecord | null> {
    const method = via === 'invite' ? 'invite' : 'recovery_code';
    return this.users.recordLogin(user.id, { actor: { kind: 'user', userId: user.id, method }, ip: ip ?? null }, method);
  }
}
