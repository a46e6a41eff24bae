import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Errors } from '../errors.js';
import { holdsApiKey } from '../crypto/api-keys.js';
import { withoutSecrets } from '../users/model.js';
import type { AuthMethod, Identity, PostAuthHook } from './types.js';

/** A parameter name that says it carries a key, however spelled: api_key, api_key[], X-Api-Key, apiKey, my.api.key... */
const isKeyName = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, '').includes('apikey');


/**
 * Marks a request already checked: the API router checks before every route, and the chain again for host
 * apps. A symbol property rather than a WeakSet: no entry for the garbage collector to track per request.
 */
const CHECKED = Symbol('usher.keyInUrlChecked');
type Checked = Request & { [CHECKED]?: true };

/**
 * Refuses a key in the URL, where logs, browser history and Referer headers keep it: a key-shaped value
 * anywhere in the path or the query (percent-encoded or not), or a parameter named like a key.
 */
export function refuseKeyInUrl(req: Request): void {
  if ((req as Checked)[CHECKED]) return;
  (req as Checked)[CHECKED] = true;
  const url = req.url;
  if (holdsApiKey(url)) throw Errors.keyInUrl();
  if (!url.includes('?')) return;
  // Nested too: a host app may use Express's extended query parser (a[b]=usk_...).
  const visit = (value: unknown, depth: number): void => {
    if (value && typeof value === 'object' && depth < 8) {
      for (const [name, inner] of Object.entries(value)) {
        if (isKeyName(name)) throw Errors.keyInUrl();
        visit(inner, depth + 1);
      }
    }
  };
  visit(req.query, 0);
}

/** For a request whose query string is not Usher's (forward auth: a trusted proxy passing the app's URL on). */
export function ignoreQueryKeys(req: Request): void {
  (req as Checked)[CHECKED] = true;
}

const isPromise = <T>(value: T | Promise<T>): value is Promise<T> => typeof (value as Promise<T>)?.then === 'function';

/**
 * Tries each method in order; the first that recognises the request decides it.
 * No method recognising it leaves the request anonymous (req.user undefined).
 * Runs synchronously while every step answers synchronously (a cached API key), so the
 * common case costs no promise; any step may return a promise instead.
 */
export function authenticateWith(methods: AuthMethod[], hooks: PostAuthHook[]): RequestHandler {
  const accept = (identity: Identity, req: Request) => {
    // Never hand the host app the password hash or key material.
    const user = Object.assign(withoutSecrets(identity.user), { authMethod: identity.method });
    if (identity.scope !== undefined) Object.assign(user, { scope: identity.scope });
    if (identity.withhold !== undefined) Object.assign(user, { withhold: identity.withhold });
    req.user = user;
  };

  /** Runs hooks from index i; returns a promise only if some hook is asynchronous. */
  const runHooks = (identity: Identity, req: Request, i: number): void | Promise<void> => {
    for (; i < hooks.length; i++) {
      const result = hooks[i]!(identity, req);
      if (isPromise(result)) {
        const next = i + 1;
        return result.then(() => runHooks(identity, req, next));
      }
    }
  };

  /**
   * Checks that no later method that also applies names someone else: a key of one user with the cookie
   * of another, or a trusted proxy's `Remote-User` with a session cookie, is refused whatever the pair.
   * Usually no other method applies, and this costs one `applies()` each.
   */
  const confirm = (identity: Identity, req: Request, i: number): void | Promise<void> => {
    for (; i < methods.length; i++) {
      const method = methods[i]!;
      if (!method.applies(req)) continue;
      const next = i + 1;
      const other = method.authenticate(req);
      const check = (found: Identity | null): void | Promise<void> => {
        if (found && found.user.id !== identity.user.id) throw Errors.conflictingCredentials();
        return confirm(identity, req, next);
      };
      return isPromise(other) ? other.then(check) : check(other);
    }
  };

  /** Tries methods from index i; resolves true when one authenticated the request. */
  const tryMethods = (req: Request, i: number): boolean | Promise<boolean> => {
    for (; i < methods.length; i++) {
      const method = methods[i]!;
      if (!method.applies(req)) continue;
      const result = method.authenticate(req);
      const next = i + 1;
      if (!isPromise(result)) return decide(result, req, next);
      return result.then((identity) => decide(identity, req, next));
    }
    return false;
  };

  /** With an identity: the other credentials must agree, then the hooks run. No closure on the sync path. */
  const decide = (identity: Identity | null, req: Request, next: number): boolean | Promise<boolean> => {
    if (!identity) return tryMethods(req, next);
    const confirmed = confirm(identity, req, next);
    return isPromise(confirmed) ? confirmed.then(() => finish(identity, req)) : finish(identity, req);
  };

  const finish = (identity: Identity, req: Request): boolean | Promise<boolean> => {
    const done = runHooks(identity, req, 0);
    if (isPromise(done)) return done.then(() => (accept(identity, req), true));
    accept(identity, req);
    return true;
  };

  return (req: Request, _res: Response, next: NextFunction) => {
    try {
      refuseKeyInUrl(req);
      const done = tryMethods(req, 0);
      if (isPromise(done)) done.then(() => next(), next);
      else next();
    } catch (err) {
      next(err);
    }
  };
}
