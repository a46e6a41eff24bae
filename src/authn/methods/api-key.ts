import type { Request } from 'express';
import { Errors } from '../../http/errors.js';
import type { UserService } from '../../users/service.js';
import type { UserRecord } from '../../users/model.js';
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
  /** Lookups under way, shared so that a burst of requests with one key costs one query. */
  private readonly pending = new Map<string, Promise<UserRecord | null>>();
  /** Bumped on every user change: a lookup that started before a change is never cached. */
  private generation = 0;

  constructor(
    private readonly users: UserService,
    private readonly ttlMs: number,
  ) {
    users.changeListeners.add(() => {
      this.generation++;
      this.cache.clear();
      this.pending.clear();
    });
  }

  applies(req: Request): boolean {
    return req.headers['x-api-key'] !== undefined || /^bearer\s/i.test(req.headers.authorization ?? '');
  }

  authenticate(req: Request): Identity | Promise<Identity> {
    const key = apiKeyOf(req);
    if (!key || key.length > 512) throw Errors.invalidApiKey();
    const hit = this.cache.get(key);
    if (hit && hit.expires > Date.now()) return { user: hit.user, method: this.name };
    return this.lookup(key).then((user) => {
      if (!user) throw Errors.invalidApiKey();
      return { user, method: this.name };
    });
  }

  private lookup(key: string): Promise<UserRecord | null> {
    const shared = this.pending.get(key);
    if (shared) return shared;
    const generation = this.generation;
    const lookup = this.users.findByApiKey(key).then(
      (user) => {
        if (this.pending.get(key) === lookup) this.pending.delete(key);
        if (user && this.ttlMs > 0 && generation === this.generation) {
          if (this.cache.size >= 10_000) this.cache.clear();
          this.cache.set(key, { user, expires: Date.now() + this.ttlMs });
        }
        return user;
      },
      (err: unknown) => {
        if (this.pending.get(key) === lookup) this.pending.delete(key);
        throw err;
      },
    );
    this.pending.set(key, lookup);
    return lookup;
  }
}
