import type { Request } from 'express';
import { Errors } from '../../http/errors.js';
import type { UserService } from '../../users/service.js';
import type { UserRecord } from '../../users/model.js';
import type { AuthMethod, Identity } from '../types.js';

/** The key a request carries in X-Api-Key or Authorization: Bearer; both with different values is an error. */
export function apiKeyOf(req: Request): string | undefined {
  const all = req.headersDistinct['x-api-key'];
  if (all && all.length > 1) throw Errors.invalidInput('X-Api-Key: send the header once');
  const header = all?.[0];
  const auth = req.headers.authorization;
  const bearer = auth && /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '').trim() : undefined;
  if (header !== undefined && bearer !== undefined && header !== bearer) {
    throw Errors.invalidInput('X-Api-Key and Authorization carry different keys');
  }
  const key = header ?? bearer;
  return key === undefined ? undefined : key.trim();
}

/**
 * Per-user API keys. A key is found by its HMAC digest (no slow hash per request); recent answers are
 * cached for a few seconds and the cache is emptied whenever any user changes through this process.
 */
export class ApiKeyMethod implements AuthMethod {
  readonly name = 'api-key';
  private readonly cache = new Map<string, { user: UserRecord; expires: number }>();

  constructor(
    private readonly users: UserService,
    private readonly ttlMs: number,
  ) {
    users.changeListeners.add(() => this.cache.clear());
  }

  applies(req: Request): boolean {
    return req.headers['x-api-key'] !== undefined || /^bearer\s/i.test(req.headers.authorization ?? '');
  }

  async authenticate(req: Request): Promise<Identity | null> {
    const key = apiKeyOf(req);
    if (!key || key.length > 512) throw Errors.invalidApiKey();
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) return { user: hit.user, method: this.name };
    const user = await this.users.findByApiKey(key);
    if (!user) throw Errors.invalidApiKey();
    if (this.ttlMs > 0) {
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(key, { user, expires: now + this.ttlMs });
    }
    return { user, method: this.name };
  }
}
