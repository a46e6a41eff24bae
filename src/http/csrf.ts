import type { Request } from 'express';
import { Errors } from './errors.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const JSON_TYPE = /^application\/json\s*(;|$)/i;

/**
 * For a request that a browser's cookie may have authenticated: a state-changing one must say
 * `Content-Type: application/json` (which no plain HTML form, and no cross-site fetch without a CORS
 * preflight, can send) or get 415; and an `Origin` header, when present, must be Usher's own or 403.
 */
export function checkCsrf(req: Request, publicUrl: string | undefined): void {
  if (SAFE_METHODS.has(req.method)) return;
  if (!JSON_TYPE.test(req.headers['content-type'] ?? '')) {
    throw Errors.unsupportedMediaType('A cookie-authenticated request that changes state must be application/json.');
  }
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const own = publicUrl ? new URL(publicUrl).origin : `${req.protocol}://${req.get('host') ?? ''}`;
  if (origin !== own) throw Errors.csrf(`Origin ${origin} is not ${own}.`);
}
