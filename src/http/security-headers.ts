import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * helmet's defaults but one: `upgrade-insecure-requests` makes a browser fetch the console's own files over
 * https when the page came over plain http from a host that is not loopback (http://nas.local:8787, a
 * self-hoster's first run), and the console stays blank. The console loads nothing but its own files; the
 * rest of the policy (no inline script or style, no eval) is helmet's.
 */
export const HELMET_OPTIONS = { contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } } as const satisfies HelmetOptions;

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
  // Static options only: a per-request policy (a CSP nonce, say) cannot be decided once.
  helmet(HELMET_OPTIONS)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
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
