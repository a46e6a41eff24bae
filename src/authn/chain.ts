import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Errors } from '../http/errors.js';
import type { AuthMethod, PostAuthHook } from './types.js';

/** Query parameters that would carry a key in the URL, where logs and Referer headers keep it. */
const KEY_PARAMS = /^(x[-_]?)?api[-_]?key$|^apikey$/i;

/** A whole Usher key (prefix and 43 base64url characters), wherever in the query it stands. */
const KEY_VALUE = /^usk_[A-Za-z0-9_-]{43}$/;

function refuseKeyInUrl(req: Request) {
  for (const [name, value] of Object.entries(req.query)) {
    if (KEY_PARAMS.test(name)) throw Errors.keyInUrl();
    const values = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === 'string' && KEY_VALUE.test(v))) throw Errors.keyInUrl();
  }
}

/**
 * Tries each method in order; the first that recognises the request decides it.
 * No method recognising it leaves the request anonymous (req.user undefined).
 */
export function authenticateWith(methods: AuthMethod[], hooks: PostAuthHook[]): RequestHandler {
  return async (req: Request, _res: Response, next: NextFunction) => {
    try {
      refuseKeyInUrl(req);
      for (const method of methods) {
        if (!method.applies(req)) continue;
        const identity = await method.authenticate(req);
        if (!identity) continue;
        for (const hook of hooks) await hook(identity, req);
        req.user = { ...identity.user, authMethod: identity.method };
        break;
      }
      next();
    } catch (err) {
      next(err);
    }
  };
}
