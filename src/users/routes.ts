import type { Request, Response, Router } from 'express';
import { Errors, invalidField } from '../errors.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { originOf } from '../http/origin.js';
import { objectBody, parseWith, pathId } from '../http/validate.js';
import { callerOf, ensurePermission } from '../authz/guards.js';
import type { Authorizer } from '../authz/enforcer.js';
import { toPublicUser, type UserRecord } from './model.js';
import { parseListQuery } from './list-query.js';
import { dropUnchanged, mayHoldUnchanged } from './read-only.js';
import { SELF_FIELDS, type UserSchemas } from './schemas.js';
import type { UserService, UserPatch } from './service.js';

/**
 * HTTP only: parse, check the caller's capability, call the service, shape the answer.
 * Every handler starts with `can()`, which answers 401 to an anonymous caller.
 */
export function registerUserRoutes(
  router: Router,
  base: string,
  users: UserService,
  authz: Authorizer,
  schemas: UserSchemas,
  /** Makes a checked update: where a password change meets the login limits and the caller's session. */
  applyUpdate: (req: Request, res: Response, id: number, patch: UserPatch, currentPassword: string | undefined) => Promise<UserRecord>,
): void {
  const can = (req: Request, object: string, action: string) => ensurePermission(authz, callerOf(req), object, action);

  /** Reading a user: yourself needs (self, read); anyone else (users, read). */
  async function readable(req: Request, id: number) {
    const caller = callerOf(req);
    can(req, caller.id === id ? 'self' : 'users', 'read');
    return users.require(id);
  }

  const writable: ReadonlySet<string> = new Set(Object.keys(schemas.update.shape));
  /** react-admin's `<Edit>` sends the whole record back: what it holds as the server returned it is no change. */
  async function withoutUnchanged(body: Record<string, unknown>, id: number) {
    if (!mayHoldUnchanged(body, writable)) return { body };
    return dropUnchanged(body, toPublicUser(await users.require(id)), writable);
  }

  /** Partial update with field-level rules: without (users, update) only your own name, email and password. */
  async function update(req: Request, res: Response, id: number) {
    const caller = callerOf(req);
    const self = caller.id === id;
    const admin = authz.can(caller.role, 'users', 'update');
    if (!admin) {
      if (!self) throw Errors.forbidden();
      can(req, 'self', 'update');
    }
    const { body, readOnly } = await withoutUnchanged(objectBody(req.body), id);
    if (!admin) {
      const refused = Object.keys(body).filter((k) => !SELF_FIELDS.has(k));
      if (refused.length > 0) throw Errors.forbidden(`${refused.join(', ')}: you may not change this`);
    }
    if (readOnly !== undefined) throw invalidField(readOnly, 'is read-only; send it as the server returned it, or leave it out');
    const { currentPassword, ...fields } = parseWith(schemas.update, body);
    if (fields.role !== undefined) can(req, 'users', 'set-role');
    // Letting an external account use a password goes around its provider's MFA and group checks.
    if (fields.passwordLogin !== undefined) can(req, 'users', 'set-password-login');
    if (fields.password === null && !admin) throw Errors.forbidden('password: only an admin can clear a password');
    return applyUpdate(req, res, id, fields as UserPatch, currentPassword);
  }

  // The caller's own routes first: they are the most frequent.
  router
    .route(`${base}/me`)
    .get((req, res) => {
      can(req, 'self', 'read');
      res.json(toPublicUser(callerOf(req)));
    })
    .put(async (req, res) => {
      res.json(toPublicUser(await update(req, res, callerOf(req).id)));
    })
    .patch(async (req, res) => {
      res.json(toPublicUser(await update(req, res, callerOf(req).id)));
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/me/api-key`)
    .get(async (req, res) => {
      can(req, 'self', 'api-key');
      const current = await users.require(callerOf(req).id);
      const apiKey = users.readApiKey(current);
      if (apiKey === null) throw Errors.apiKeyUnreadable();
      res.json({ apiKey });
    })
    .post(async (req, res) => {
      can(req, 'self', 'api-key');
      const apiKey = await users.rotateApiKey(callerOf(req).id, originOf(req));
      res.json({ apiKey });
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/users`)
    .get(async (req, res) => {
      can(req, 'users', 'list');
      const at = req.originalUrl.indexOf('?');
      const search = at === -1 ? '' : req.originalUrl.slice(at + 1);
      const { users: page, total } = await users.list(parseListQuery(req.query as Record<string, unknown>, search));
      res.set('X-Total-Count', String(total)).json(page.map(toPublicUser));
    })
    .post(async (req, res) => {
      can(req, 'users', 'create');
      const input = parseWith(schemas.create, objectBody(req.body));
      const { user } = await users.create(input, originOf(req));
      res.status(201).location(`${base}/users/${user.id}`).json(toPublicUser(user));
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/users/:id`)
    .get(async (req, res) => {
      res.json(toPublicUser(await readable(req, pathId(req.params.id))));
    })
    .put(async (req, res) => {
      res.json(toPublicUser(await update(req, res, pathId(req.params.id))));
    })
    .patch(async (req, res) => {
      res.json(toPublicUser(await update(req, res, pathId(req.params.id))));
    })
    .delete(async (req, res) => {
      can(req, 'users', 'delete');
      const id = pathId(req.params.id);
      await users.remove(id, originOf(req));
      // As seed 001 answers: react-admin's delete and deleteMany read the id from the body.
      res.json({ id });
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/users/:id/status`)
    .post(async (req, res) => {
      can(req, 'users', 'set-status');
      const id = pathId(req.params.id);
      const { active } = parseWith(schemas.status, objectBody(req.body));
      res.json(toPublicUser(await users.setActive(id, active, originOf(req))));
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/users/:id/reset-password`)
    .post(async (req, res) => {
      can(req, 'users', 'reset-password');
      const id = pathId(req.params.id);
      const { password } = parseWith(schemas.resetPassword, objectBody(req.body));
      await users.resetPassword(id, password, originOf(req));
      res.status(204).end();
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/users/:id/api-key`)
    .post(async (req, res) => {
      can(req, 'users', 'rotate-api-key');
      const id = pathId(req.params.id);
      await users.rotateApiKey(id, originOf(req));
      res.status(204).end();
    })
    .all(methodNotAllowed);

}
