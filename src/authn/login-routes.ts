import type { Request, Router } from 'express';
import { z } from 'zod';
import { checkCsrf } from '../http/csrf.js';
import { objectBody, parseWith } from '../http/validate.js';
import { toPublicUser } from '../users/model.js';
import type { UserService } from '../users/service.js';
import type { SessionManager } from '../sessions/manager.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { originOf } from '../http/origin.js';
import { sessionOf } from '../sessions/manager.js';
import type { PasswordLogin } from './password-login.js';
import { eventOf } from '../events/stream.js';

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
  login: PasswordLogin,
  /** The identity provider's logout URL for a session an OIDC login made, if it has one. */
  idpLogout: (req: Request) => Promise<string | undefined>,
): void {
  router
    .route(`${base}/login`)
    .post(async (req, res) => {
      // Login CSRF (signing a victim into the attacker's account) is refused like any cookie request.
      checkCsrf(req, sessions.config.publicUrl);
      const { username, password } = parseWith(credentials, objectBody(req.body));
      const { user, rehash } = await login.verify(username, password, req.ip);
      await sessions.start(req, res, user);
      const now = await login.recordLogin(user, password, rehash, req.ip);
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
