import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * helmet's response headers, decided once. With its default options, which hold no per-request functions,
 * helmet sets the same headers on every response, through a chain of a dozen middlewares that rebuild
 * the policy strings each time; a profile of the hot path found that chain among its larger costs.
 * Running helmet once against a recording response gives the same headers, in the same order, for one
 * loop of setHeader per request.
 */
export function securityHeaders(): RequestHandler {
  const set: [string, string | number | readonly string[]][] = [];
  const removed: string[] = [];
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      set.push([name, value]);
      return recorder;
    },
    removeHeader(name: string) {
      removed.push(name);
    },
  };
  let called = false;
  // Default options only: a per-request policy (a CSP nonce, say) cannot be decided once.
  helmet()({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err instanceof Error ? err : new Error(String(err));
    called = true;
  });
  // helmet's middleware is synchronous; if a future version were not, fail at start rather than go without headers.
  if (!called) throw new Error('helmet did not finish synchronously; its headers cannot be decided once');
  return (_req, res, next) => {
    for (const name of removed) res.removeHeader(name);
    for (const [name, value] of set) res.setHeader(name, value);
    next();
  };
}
