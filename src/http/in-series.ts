import type { RequestHandler } from 'express';

/**
 * Several middlewares as one: each runs when the one before calls `next()`; an error (passed, thrown or
 * rejected) skips the rest. Every layer Express walks costs its router's bookkeeping on every request:
 * the hot path (GET /me, /verify) went through seven matched layers where the floor it is compared with
 * has three.
 * Not for middleware that calls `next('route')` or `next('router')`.
 */
export function inSeries(...handlers: readonly RequestHandler[]): RequestHandler {
  if (handlers.length === 1) return handlers[0]!;
  return (req, res, next) => {
    let i = 0;
    const step = (err?: unknown): void => {
      if (err !== undefined && err !== null) return next(err);
      const handler = handlers[i++];
      if (!handler) return next();
      try {
        const result: unknown = handler(req, res, step);
        // An async middleware's rejection is an error, as Express 5 treats it.
        if (result instanceof Promise) result.catch(next);
      } catch (thrown) {
        next(thrown);
      }
    };
    step();
  };
}
