import type { Request, RequestHandler, Response } from 'express';
import { Errors, type AppError } from '../errors.js';
import { resourceId } from '../config/parsers.js';
import type { Authorizer, Subject, UserSubject } from '../authz/enforcer.js';
import { parsePermission } from '../authz/permissions.js';
import type { GrantSubject, ResourceSet } from './model.js';
import type { GrantService } from './service.js';

/** A question about one of the host app's resources: `{ type: 'library', id: 3, action: 'read' }`. */
export interface ResourceCheck {
  readonly type: string;
  readonly id: string | number;
  /** `read` when absent. */
  readonly action?: string;
}

/** Answers with Usher's JSON error shape, whatever error handler the host app has. */
function refuse(res: Response, err: AppError): void {
  res.status(err.status).json({ error: { code: err.code, message: err.message } });
}

/**
 * Asking Usher in library mode (`usher.authz`): permissions (`can(user, 'cert.create')`), grants
 * (`can(user, { type: 'library', id: 3 })`, `resources(user, 'library')`) and their middlewares. Every
 * answer is a synchronous lookup in what this instance compiled. The policy's own members (roles, digest,
 * policy...) are answered as before, from the Authorizer (`authorizer`).
 */
export class UsherAuthz {
  constructor(
    readonly authorizer: Authorizer,
    readonly grants: GrantService,
  ) {}

  /**
   * `can(user, 'cert.create')`: a permission (through the role or directly); `can(user, { type, id, action })`:
   * a grant (admins: every declared resource); `can(roleOrUser, 'cert', 'create')`: the Authorizer's form.
   * An unknown permission, type or action is no.
   */
  can(who: Subject, what: string | ResourceCheck, action?: string): boolean {
    if (typeof what === 'string') {
      if (action !== undefined) return this.authorizer.can(who, what, action);
      const pair = parsePermission(what);
      return pair !== null && this.authorizer.can(who, pair[0], pair[1]);
    }
    const id = resourceId(what.id);
    if (id === undefined) return false;
    const user = typeof who === 'string' ? { id: 0, role: who } : who;
    return this.grants.can(user, what.type, id, what.action ?? 'read');
  }

  /**
   * May the user do `action` on `object` inside organisation `orgId` (null: outside every one)? Their global
   * role and grants hold everywhere; their organisation role only in their own organisation (docs/permissions.md).
   */
  canIn(who: UserSubject, orgId: number | null, object: string, action: string): boolean {
    return this.authorizer.canIn(who, orgId, object, action);
  }

  /**
   * The resources of `type` the user may `action` on: `{ all: true }` (admins, a `*` grant) or `{ ids }`,
   * the ids as text: `WHERE id IN (...)` with them as bound parameters (`ids: []`: nothing; skip the query).
   */
  resources(user: GrantSubject, type: string, action = 'read'): ResourceSet {
    return this.grants.resources(user, type, action);
  }

  /** 401 when anonymous, 403 unless the caller holds `permission` (`cert.create`; or `'cert', 'create'`). */
  requirePermission(permission: string, action?: string): RequestHandler {
    const pair = action === undefined ? parsePermission(permission) : [permission, action];
    if (!pair) throw new TypeError(`requirePermission: ${permission} is not a permission name (object.action)`);
    const [object, act] = pair as [string, string];
    return (req, res, next) => {
      if (!req.user) return refuse(res, Errors.unauthenticated());
      if (!this.authorizer.can(req.user, object, act)) return refuse(res, Errors.forbidden());
      next();
    };
  }

  /** 401 when anonymous, 403 unless the caller may `action` on the resource `idOf(req)` of `type`. */
  requireGrant(type: string, idOf: (req: Request) => unknown, action = 'read'): RequestHandler {
    const declared = this.grants.types.get(type);
    if (!declared) throw new TypeError(`requireGrant: ${type} is not a resource type (config resources:)`);
    if (!declared.actions.includes(action)) throw new TypeError(`requireGrant: ${action} is not an action of ${type} (${declared.actions.join(', ')})`);
    return (req, res, next) => {
      if (!req.user) return refuse(res, Errors.unauthenticated());
      const id = resourceId(idOf(req));
      if (id === undefined || !this.grants.can(req.user, type, id, action)) return refuse(res, Errors.forbidden());
      next();
    };
  }

  // The Authorizer's members, as `usher.authz` answered them before.
  get roles() {
    return this.authorizer.roles;
  }
  get digest() {
    return this.authorizer.digest;
  }
  get policy() {
    return this.authorizer.policy;
  }
  get permissions() {
    return this.authorizer.permissions;
  }
  get groupRoles() {
    return this.authorizer.groupRoles;
  }
  impliedRoles(role: string) {
    return this.authorizer.impliedRoles(role);
  }
  isDeclared(name: string) {
    return this.authorizer.isDeclared(name);
  }
  refresh() {
    return this.authorizer.refresh();
  }
}
