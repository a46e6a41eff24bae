import type { Request } from 'express';
import { DEVICE_TOKEN_PREFIX } from '../../crypto/device-tokens.js';
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

/** Per-user API keys, found by their HMAC digest (no slow hash per request), through a short cache. */
export class ApiKeyMethod implements AuthMethod {
  readonly name = 'api-key';
  private readonly cache: UserCache<string>;

  constructor(users: UserService, ttlMs: number) {
    this.cache = new UserCache(users.events, ttlMs, (key) => users.findByApiKey(key));
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
    const found = this.cache.get(key);
    if (!(found instanceof Promise)) return { user: found, method: this.name };
    return found.then((user) => {
      if (!user) throw Errors.invalidApiKey();
      return { user, method: this.name };
    });
  }
}
