import type { Request } from 'express';
import { DEVICE_TOKEN_PREFIX } from '../../crypto/device-tokens.js';
import { SCOPED_KEY_PREFIX } from '../../crypto/api-keys.js';
import type { ScopedKeyRecord } from '../../api-keys/model.js';
import type { ScopedKeyService } from '../../api-keys/service.js';
import type { UserRecord } from '../../users/model.js';
import { Errors } from '../../errors.js';
import { isDeviceBearer } from './device-token.js';
import type { UserService } from '../../users/service.js';
import { UserCache } from '../user-cache.js';
import type { AuthMethod, Identity } from '../types.js';

/** The key a request carries in X-Api-Key or Authorization: Bearer; both with different values is an error. */
export function apiKeyOf(req: Request): string | undefined {
  let header = req.headers['x-api-key'] as string | undefined;
  // Node joins a repeated header with ", "; only then look at each occurrence.
  if (header?.includes(',')) {
    const all = req.headersDistinct['x-api-key'] ?? [];
    if (all.length > 1) throw Errors.invalidInput('X-Api-Key: send the header once');
    header = all[0];
  }
  const auth = req.headers.authorization;
  // A device token in Authorization is the device method's: beside X-Api-Key it is another credential.
  const bearer = auth && /^bearer\s+/i.test(auth) && !isDeviceBearer(auth) ? auth.replace(/^bearer\s+/i, '').trim() : undefined;
  if (header !== undefined && bearer !== undefined && header !== bearer) {
    throw Errors.invalidInput('X-Api-Key and Authorization carry different keys');
  }
  const key = header ?? bearer;
  return key === undefined ? undefined : key.trim();
}

/** A scoped key found with its owner; `scope` is made once per load and shared by the requests it serves (never mutated). */
interface ScopedHit {
  readonly user: UserRecord;
  readonly key: ScopedKeyRecord;
  readonly scope: ReadonlySet<string>;
}

/** The scoped key the request's key named, once this method has checked it. */
const scopedKeys = new WeakMap<Request, ScopedKeyRecord>();

/** The scoped API key the request came with, if it came with one. */
export function scopedKeyOf(req: Request): ScopedKeyRecord | undefined {
  return scopedKeys.get(req);
}

/**
 * API keys, found by their HMAC digest (no slow hash per request), through a short cache: a user's own key
 * (`usk_`, or the bootstrap's), or a scoped key (`usa_`), looked up in its own table only. Both are the
 * 'api-key' method; a scoped key's identity carries its `scope`. A change to the owner or to their keys
 * (an event naming the owner) drops the owner's entries, so it applies on this instance's next request.
 */
export class ApiKeyMethod implements AuthMethod {
  readonly name = 'api-key';
  private readonly cache: UserCache<string>;
  private readonly scopedCache: UserCache<string, ScopedHit> | undefined;

  constructor(users: UserService, ttlMs: number, scoped?: ScopedKeyService) {
    this.cache = new UserCache(users.events, ttlMs, (key) => users.findByApiKey(key));
    this.scopedCache =
      scoped &&
      new UserCache<string, ScopedHit>(users.events, ttlMs, async (key) => {
        const found = await scoped.find(key);
        const user = found && (await users.get(found.userId));
        return found && user ? { user, key: found, scope: new Set(found.permissions) } : null;
      });
  }

  applies(req: Request): boolean {
    const auth = req.headers.authorization;
    return req.headers['x-api-key'] !== undefined || (auth !== undefined && /^bearer\s/i.test(auth) && !isDeviceBearer(auth));
  }

  authenticate(req: Request): Identity | Promise<Identity> {
    const key = apiKeyOf(req);
    if (!key || key.length > 512) throw Errors.invalidApiKey();
    // Never looked up as a key: a device token is only good as `Authorization: Bearer`.
    if (key.startsWith(DEVICE_TOKEN_PREFIX)) throw Errors.invalidApiKey('A device token is not an API key; send it as Authorization: Bearer.');
    if (key.startsWith(SCOPED_KEY_PREFIX)) return this.scoped(req, key);
    const found = this.cache.get(key);
    if (!(found instanceof Promise)) return { user: found, method: this.name };
    return found.then((user) => {
      if (!user) throw Errors.invalidApiKey();
      return { user, method: this.name };
    });
  }

  private scoped(req: Request, key: string): Identity | Promise<Identity> {
    if (!this.scopedCache) throw Errors.invalidApiKey();
    const found = this.scopedCache.get(key);
    return found instanceof Promise ? found.then((hit) => this.accept(req, hit)) : this.accept(req, found);
  }

  private accept(req: Request, hit: ScopedHit | null): Identity {
    // Checked at each request, so a cached key stops at its expiry.
    if (!hit || (hit.key.expiresAt !== null && hit.key.expiresAt <= Date.now())) throw Errors.invalidApiKey();
    scopedKeys.set(req, hit.key);
    return { user: hit.user, method: this.name, scope: hit.scope };
  }
}
