import type { Request, Router } from 'express';
import { z } from 'zod';
import { AppError, Errors } from '../errors.js';
import { checkCsrf } from '../http/csrf.js';
import { objectBody, parseWith } from '../http/validate.js';
import { checkPassword, needsRehash, verifyDummy } from '../crypto/passwords.js';
import { toPublicUser } from '../users/model.js';
import { usernameKey } from '../names.js';
import type { UserService } from '../users/service.js';
import type { SessionManager } from '../sessions/manager.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { originOf } from '../http/origin.js';
import { sessionOf } from '../sessions/manager.js';
import { clientKey, type LoginLimiter } from './login-limiter.js';
import { ANONYMOUS, eventOf, type Origin } from '../events/stream.js';
import { OncePerWindow } from '../events/once.js';

const credentials = z.strictObject({
  username: z.string().max(256, 'must be at most 256 characters'),
  password: z.string().max(1024, 'must be at most 1024 characters'),
});

/** POST /login and /logout. */
export function registerLoginRoutes(
  router: Router,
  base: string,
  users: UserService,
  sessions: SessionManager,
  limiter: LoginLimiter,
  /** The identity provider's logout URL for a session an OIDC login made, if it has one. */
  idpLogout: (req: Request) => Promise<string | undefined>,
): void {
  const refusals = new OncePerWindow(60_000);
  router
    .route(`${base}/login`)
    .post(async (req, res) => {
      // Login CSRF (signing a victim into the attacker's account) is refused like any cookie request.
      checkCsrf(req, sessions.config.publicUrl);
      const { username, password } = parseWith(credentials, objectBody(req.body));
      const anonymous: Origin = { actor: ANONYMOUS, ip: req.ip ?? null };
      const attempt = await limiter.attempt(req.ip, usernameKey(username)).catch(async (err: unknown) => {
        if (err instanceof AppError && err.code === 'auth.too_many_attempts' && refusals.first(clientKey(req.ip))) {
          await users.events.publish([eventOf(anonymous, 'login.rate_limited', null)]);
        }
        throw err;
      });
      const user = await users.findByUsername(username);
      // Unknown, password-less, disabled or wrong: the same answer, after the same amount of work.
      const ok = await (user?.passwordHash ? checkPassword(user.passwordHash, password) : verifyDummy(password)).catch(async (err: unknown) => {
        await attempt.unchecked();
        throw err;
      });
      // An external account signs in through its provider unless an admin allowed a local password.
      if (!user || !ok || !user.active || !user.passwordLogin) {
        // The name only when it is an account's: a password typed into the username field is never kept.
        const why = !user ? 'unknown' : !ok ? 'password' : !user.active ? 'disabled' : 'password_login_off';
        await users.events.publish([eventOf(anonymous, 'login.failed', user?.id ?? null, { method: 'password', reason: why })]);
        throw Errors.invalidCredentials();
      }
      await attempt.succeeded();
      await sessions.start(req, res, user);
      const rehash = ok === 'rehash' || needsRehash(user.passwordHash!);
      const now = await users.recordLogin(user.id, { actor: { kind: 'user', userId: user.id, method: 'password' }, ip: req.ip ?? null }, 'password', rehash ? password : undefined);
      res.json({ user: toPublicUser(now ?? user) });
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/logout`)
    .post(async (req, res) => {
      const logoutUrl = await idpLogout(req);
      const userId = sessionOf(req)?.userId;
      await sessions.endCurrent(req, res);
      if (userId !== undefined) await users.events.publish([eventOf(originOf(req), 'session.ended', userId, { reason: 'logout' })]);
      // After an OIDC login, the browser should go on to the provider's logout (RP-initiated logout).
      if (logoutUrl) res.json({ logoutUrl });
      else res.status(204).end();
    })
    .all(methodNotAllowed);
}
