import type { EventStream } from '../events/stream.js';
import type { UserRecord } from '../users/model.js';

/**
 * Recently authenticated users by credential (API key, user id), for `ttlMs`.
 * A user's entries go whenever that user changes through this process; a lookup that started before a change is
 * never cached; concurrent lookups of one key share one query. A hit answers synchronously.
 */
export class UserCache<K> {
  private readonly cache = new Map<K, { user: UserRecord; expires: number }>();
  private readonly pending = new Map<K, Promise<UserRecord | null>>();
  private generation = 0;

  constructor(
    events: EventStream,
    private readonly ttlMs: number,
    private readonly load: (key: K) => Promise<UserRecord | null>,
    /**
     * 'user': a change drops only that user's entries (credential lookups). 'any': every change empties
     * the cache, for answers that depend on other users too (a role sync held back by the last-admin rail).
     */
    invalidate: 'user' | 'any' = 'user',
  ) {
    events.on(({ type, targetUserId }) => {
      // A failed or refused login changes nothing: an attacker must not be able to empty the cache.
      if (targetUserId === null || type === 'login.failed' || type === 'login.rate_limited') return;
      // Lookups under way (whoever they are for) are never cached after a change.
      this.generation++;
      this.pending.clear();
      if (invalidate === 'any') this.cache.clear();
      else for (const [key, entry] of this.cache) if (entry.user.id === targetUserId) this.cache.delete(key);
    });
  }

  get(key: K): UserRecord | Promise<UserRecord | null> {
    const hit = this.cache.get(key);
    if (hit && hit.expires > Date.now()) return hit.user;
    const shared = this.pending.get(key);
    if (shared) return shared;
    const generation = this.generation;
    const forget = () => {
      if (this.pending.get(key) === lookup) this.pending.delete(key);
    };
    const lookup = this.load(key).then(
      (user) => {
        forget();
        if (user && this.ttlMs > 0 && generation === this.generation) {
          if (this.cache.size >= 10_000) this.cache.clear();
          this.cache.set(key, { user, expires: Date.now() + this.ttlMs });
        }
        return user;
      },
      (err: unknown) => {
        forget();
        throw err;
      },
    );
    this.pending.set(key, lookup);
    return lookup;
  }
}
