import type { Request } from 'express';
import type { User, UserRecord } from '../users/model.js';

/** Who a request is, once a method has proved it. */
export interface Identity {
  user: UserRecord;
  /** The method that proved it: 'api-key', 'session', 'proxy', `oidc:${id}`. */
  method: string;
  /** A scoped API key's permissions: the request may do only what both they and the user hold. */
  scope?: ReadonlySet<string>;
  /** Permissions the credential never carries, whatever the user holds (a device token's: see DEVICE_WITHHELD). */
  withhold?: ReadonlySet<string>;
}

/** One way of proving who a request is (see STYLE.md). */
export interface AuthMethod {
  readonly name: string;
  /** Does this request carry my kind of credential? Cheap, no I/O. */
  applies(req: Request): boolean;
  /**
   * Resolve null when it is not mine; throw (or reject with) an AppError when it is mine but invalid.
   * May answer synchronously when no I/O is needed (a cached credential).
   */
  authenticate(req: Request): Identity | null | Promise<Identity | null>;
}

/** Runs, in order, once an identity is known; throws to refuse it. */
export type PostAuthHook = (identity: Identity, req: Request) => Promise<void> | void;

/**
 * What `req.user` holds on an authenticated request: the user without any secret, and how they proved it.
 * `scope` is set when a scoped API key proved it: `authz.can(req.user, ...)` then also needs it to allow.
 */
export type AuthUser = User & { readonly authMethod: string; readonly scope?: ReadonlySet<string>; readonly withhold?: ReadonlySet<string> };

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by Usher's `authenticate` middleware; undefined for an anonymous request. */
    user?: AuthUser;
  }
}
