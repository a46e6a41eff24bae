import type { Logger } from 'pino';
import { Errors } from '../errors.js';
import { checkCsrf } from '../http/csrf.js';
import type { UserService } from '../users/service.js';
import { sessionOf } from '../sessions/manager.js';
import type { DeviceTokens } from '../sessions/devices.js';
import { deviceOf } from './methods/device-token.js';
import { scopedKeyOf } from './methods/api-key.js';
import type { ScopedKeyService } from '../api-keys/service.js';
import type { PostAuthHook } from './types.js';

/** A disabled account is refused, whatever proved it. */
export const rejectDisabled: PostAuthHook = ({ user, method }) => {
  if (user.active) return;
  const message = 'This account is disabled.';
  throw method === 'api-key' ? Errors.invalidApiKey(message) : method === 'device' ? Errors.invalidDeviceToken(message) : Errors.unauthenticated(message);
};

const LAST_ACTIVE_EVERY_MS = 60_000;

/**
 * A last-use writer: for one id at most once a minute (counting from the stored time too), off the request's
 * critical path; a failed write is logged, never the request's failure. Answers the time written, if it wrote.
 */
function onceAMinute(log: Logger, what: string, write: (id: number, now: number) => Promise<unknown>) {
  const written = new Map<number, number>();
  return (id: number, stored: number | null): number | undefined => {
    const now = Date.now();
    if (now - Math.max(written.get(id) ?? 0, stored ?? 0) < LAST_ACTIVE_EVERY_MS) return undefined;
    // Forgetting only costs one more write per id.
    if (written.size >= 10_000) written.clear();
    written.set(id, now);
    write(id, now).catch((err: unknown) => log.warn({ err, id }, `could not record ${what}`));
    return now;
  };
}

/** Records lastActiveAt, written at most once a minute per user and never on the request's critical path. */
export function trackLastActive(users: UserService, log: Logger): PostAuthHook {
  const touch = onceAMinute(log, 'lastActiveAt', (id, now) => users.touchLastActive(id, now));
  return ({ user }) => {
    const now = touch(user.id, user.lastActiveAt);
    if (now !== undefined) user.lastActiveAt = now;
  };
}

/** Records a device token's last use (throttled by DeviceTokens.touch, never on the critical path). */
export function trackDeviceUse(tokens: Pick<DeviceTokens, 'touch'>): PostAuthHook {
  return (_identity, req) => {
    const device = deviceOf(req);
    if (device) tokens.touch(device, req.ip);
  };
}

/** Records a scoped key's lastUsedAt, at most once a minute per key, never on the critical path nor failing the request. */
export function trackScopedKeyUse(keys: Pick<ScopedKeyService, 'touch'>, log: Logger): PostAuthHook {
  const touch = onceAMinute(log, 'a scoped key’s lastUsedAt', (id, now) => keys.touch(id, now));
  return (_identity, req) => {
    const key = scopedKeyOf(req);
    if (key) touch(key.id, key.lastUsedAt);
  };
}

/** A request carrying an API key of one user and the session cookie of another is refused. */
export const rejectMixedCredentials: PostAuthHook = ({ user, method }, req) => {
  const sessionUser = sessionOf(req)?.userId;
  if (method !== 'session' && sessionUser !== undefined && sessionUser !== user.id) throw Errors.conflictingCredentials();
};

/** Methods a browser's ambient credentials can satisfy: our cookie, or the auth proxy's own cookie. */
const AMBIENT_METHODS = new Set(['session', 'proxy']);

/** Requests authenticated by ambient browser credentials that change state must be JSON and same-origin (see http/csrf.ts). */
export function csrfForCookies(publicUrl: string | undefined): PostAuthHook {
  return ({ method }, req) => {
    if (AMBIENT_METHODS.has(method)) checkCsrf(req, publicUrl);
  };
}
