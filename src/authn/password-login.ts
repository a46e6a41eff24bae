import { AppError, Errors } from '../errors.js';
import { checkPassword, needsRehash, verifyDummy } from '../crypto/passwords.js';
import { ANONYMOUS, eventOf, type Origin } from '../events/stream.js';
import { OncePerWindow } from '../events/once.js';
import { usernameKey } from '../names.js';
import type { UserRecord } from '../users/model.js';
import type { UserService } from '../users/service.js';
import { clientKey, type LoginLimiter } from './login-limiter.js';

/**
 * The password sign-in flow, without HTTP: the login limits, the check (the same work for an unknown,
 * password-less, disabled or wrong account), and the events. The route parses, starts the session and
 * calls `recordLogin`.
 */
export class PasswordLogin {
  /** One `login.rate_limited` entry per client address and minute, however many refusals. */
  private readonly refusals = new OncePerWindow(60_000);

  constructor(
    private readonly users: UserService,
    private readonly limiter: LoginLimiter,
  ) {}

  /**
   * The account these credentials sign in to, or 401 auth.invalid_credentials (429 past the limits, 503 when
   * too busy to check). `rehash`: the stored hash is to be replaced by one of the password as it is now.
   */
  async verify(username: string, password: string, ip: string | undefined): Promise<{ user: UserRecord; rehash: boolean }> {
    const anonymous: Origin = { actor: ANONYMOUS, ip: ip ?? null };
    const attempt = await this.limiter.attempt(ip, usernameKey(username)).catch(async (err: unknown) => {
      if (err instanceof AppError && err.code === 'auth.too_many_attempts' && this.refusals.first(clientKey(ip))) {
        await this.users.events.publish([eventOf(anonymous, 'login.rate_limited', null)]);
      }
      throw err;
    });
    const user = await this.users.findByUsername(username);
    const ok = await (user?.passwordHash ? checkPassword(user.passwordHash, password) : verifyDummy(password)).catch(async (err: unknown) => {
      await attempt.unchecked();
      throw err;
    });
    // An external account signs in through its provider unless an admin allowed a local password.
    if (!user || !ok || !user.active || !user.passwordLogin) {
      // The name only when it is an account's: a password typed into the username field is never kept.
      const reason = !user ? 'unknown' : !ok ? 'password' : !user.active ? 'disabled' : 'password_login_off';
      await this.users.events.publish([eventOf(anonymous, 'login.failed', user?.id ?? null, { method: 'password', reason })]);
      throw Errors.invalidCredentials();
    }
    await attempt.succeeded();
    return { user, rehash: ok === 'rehash' || needsRehash(user.passwordHash!) };
  }

  /** After the session is started: lastLoginAt, a stronger hash when due, and the sign-in's events. */
  recordLogin(user: UserRecord, password: string, rehash: boolean, ip: string | undefined): Promise<UserRecord | null> {
    return this.users.recordLogin(user.id, { actor: { kind: 'user', userId: user.id, method: 'password' }, ip: ip ?? null }, 'password', rehash ? password : undefined);
  }
}
