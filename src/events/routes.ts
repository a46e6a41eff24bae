import type { Router } from 'express';
import type { Authorizer } from '../authz/enforcer.js';
import { callerOf, ensurePermission } from '../authz/guards.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { parseAuditQuery, type AuditLog } from './audit.js';

/** GET /audit: who did what, newest first, paged and filtered like the users list (capability audit:read). */
export function registerAuditRoutes(router: Router, base: string, audit: AuditLog, authz: Authorizer): void {
  router
    .route(`${base}/audit`)
    .get(async (req, res) => {
      ensurePermission(authz, callerOf(req), 'audit', 'read');
      const { entries, total } = await audit.list(parseAuditQuery(req.query as Record<string, unknown>));
      res.set('X-Total-Count', String(total)).json(entries);
    })
    .all(methodNotAllowed);
}
