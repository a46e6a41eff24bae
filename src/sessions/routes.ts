import type { Router } from 'express';
import type { Authorizer } from '../authz/enforcer.js';
import { callerOf, ensurePermission } from '../authz/guards.js';
import { Errors } from '../errors.js';
import { pathId } from '../http/validate.js';
import type { UserService } from '../users/service.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { originOf } from '../http/origin.js';
import { eventOf } from '../events/stream.js';
import { sessionOf, type SessionManager } from './manager.js';

/** GET /me/sessions, DELETE /me/sessions/{id}, DELETE /users/{id}/sessions. */
export function registerSessionRoutes(router: Router, base: string, users: UserService, sessions: SessionManager, authz: Authorizer): void {
  router
    .route(`${base}/me/sessions`)
    .get(async (req, res) => {
      const caller = callerOf(req);
      ensurePermission(authz, caller, 'self', 'sessions');
      res.json(await sessions.list(caller.id, sessionOf(req)?.userId === caller.id ? req.sessionID : undefined));
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/me/sessions/:sessionId`)
    .delete(async (req, res) => {
      const caller = callerOf(req);
      ensurePermission(authz, caller, 'self', 'sessions');
      const id = req.params.sessionId;
      if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(id)) throw Errors.sessionNotFound();
      await sessions.end(caller.id, id);
      await users.events.publish([eventOf(originOf(req), 'session.ended', caller.id, { reason: 'revoked' })]);
      res.status(204).end();
    })
    .all(methodNotAllowed);

  router
    .route(`${base}/users/:id/sessions`)
    .delete(async (req, res) => {
      ensurePermission(authz, callerOf(req), 'users', 'end-sessions');
      const id = pathId(req.params.id);
      await users.require(id);
      await sessions.endAll(id);
      await users.events.publish([eventOf(originOf(req), 'session.ended', id, { reason: 'ended_by_admin', all: true })]);
      res.status(204).end();
    })
    .all(methodNotAllowed);
}
