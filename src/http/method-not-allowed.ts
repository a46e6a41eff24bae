import type { RequestHandler } from 'express';
import { Errors } from '../errors.js';

/** Answers 405, with the Allow header, for a method a path does not offer. Use as a route's last `.all()`. */
export const methodNotAllowed: RequestHandler = (req, _res, next) => {
  const methods = Object.keys((req.route as { methods?: Record<string, boolean> } | undefined)?.methods ?? {})
    .filter((m) => m !== '_all')
    .map((m) => m.toUpperCase());
  if (methods.includes('GET')) methods.push('HEAD');
  const err = Errors.methodNotAllowed();
  Object.assign(err.headers, { Allow: methods.join(', ') });
  next(err);
};
