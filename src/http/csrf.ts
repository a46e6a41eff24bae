import type { Request } from 'express';
import { hasBody } from './body.js';
import { Errors } from '../errors.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const JSON_TYPE = /^application\/json\s*(;|$)/i;

/**
 * For a request that a browser's cookie may have authenticated. A state-changing one is refused with 403
 * when its `Origin` is not Usher's own. Otherwise it must say `Content-Type: application/json` (which no
 * plain HTML form, and no cross-site fetch without a CORS preflight, can send) or get 415, unless it has
 * no body and the browser vouches that it comes from Usher's own origin (`Origin` equal to it, or
 * `Sec-Fetch-Site: same-origin`): `fetch('/logout', {method: 'POST'})` sends no Content-Type.
 */
export function checkCsrf(req: Request, publicUrl: string | undefined): void {
  if (SAFE_METHODS.has(req.method)) return;
  const origin = req.headers.origin;
  const own = publicUrl ? new URL(publicUrl).origin : `${req.protocol}://${req.get('host') ?? ''}`;
  if (origin !== undefined && origin !== own) throw Errors.csrf(`Origin ${origin} is not ${own}.`);
  if (JSON_TYPE.test(req.headers['content-type'] ?? '')) return;
  const sameOrigin = origin === own || req.headers['sec-fetch-site'] === 'same-origin';
  if (sameOrigin && !hasBody(req)) return;
  throw Errors.unsupportedMediaType('A cookie-authenticated request that changes state must be application/json.');
}
