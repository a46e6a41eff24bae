import type { Router } from 'express';
import { objectBody, parseWith } from '../http/validate.js';
import { toPublicUser } from '../users/model.js';
import type { UserSchemas } from '../users/schemas.js';
import type { UserService } from '../users/service.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { originOf } from '../http/origin.js';

/** Public routes a login page needs before anyone is signed in. */
export function registerPublicAuthRoutes(router: Router, base: string, users: UserService, schemas: UserSchemas): void {
  router
    .route(`${base}/status`)
    .get(async (_req, res) => {
      res.json({ setupRequired: (await users.count()) === 0 });
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/setup`)
    .post(async (req, res) => {
      const { username, password } = parseWith(schemas.credentials, objectBody(req.body));
      const { user, apiKey } = await users.setupFirst({ username, password }, originOf(req));
      res.status(201).json({ user: toPublicUser(user), apiKey });
    })
    .all(methodNotAllowed);
}
