import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Errors } from '../errors.js';
import type { AuthUser } from '../authn/types.js';
import type { Authorizer } from './enforcer.js';

/** The authenticated caller, or a 401. */
export function callerOf(req: Request): AuthUser {
  if (!req.user) throw Errors.unauthenticated();
  return req.user;
}

/** 401 for an anonymous request. */
export const requireAuth: RequestHandler = (req, _res, next) => {
  next(req.user ? undefined : Errors.unauthenticated());
};

/**
 * 401 when anonymous, 403 unless the caller's role holds one of `roles` (directly). A scoped API key never
 * passes: its rights are its permissions, which a role check cannot narrow (guard with requirePermission).
 */
export function requireRole(...roles: string[]): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!req.user) return next(Errors.unauthenticated());
    if (req.user.scope) return next(Errors.forbidden('A scoped API key cannot pass a role check.'));
    next(roles.includes(req.user.role) ? undefined : Errors.forbidden());
  };
}

/** 401 when anonymous, 403 unless the policy grants (object, action) to the caller: through their role or directly. */
export function requirePermission(authz: Authorizer, object: string, action: string): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    try {
      ensurePermission(authz, callerOf(req), object, action);
      next();
    } catch (err) {
      next(err);
    }
  };
}

export function ensurePermission(authz: Authorizer, user: AuthUser, object: string, action: string): void {
  if (!authz.can(user, object, action)) throw Errors.forbidden();
}
