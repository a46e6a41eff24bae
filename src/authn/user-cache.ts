import type { UserService } from '../users/service.js';
import type { UserRecord } from '../users/model.js';

/**
 * Recently authenticated users by credential (API key, user id), for `ttlMs`.
 * Emptied whenever any user changes through this process; a lookup that started before a change is
 * never cached; concurrent lookups of one key share one query. A hit answers synchronously.
 */
export class UserCache<K> {
  private readonly cache = new Map<K, { user: UserRecord; expires: number }>();
  private readonly pending = new Map<K, Promise<UserRecord | null>>();
  private generation = 0;

  constructor(
    users: UserService,
    private readonly ttlMs: number,
    private readonly load: (key: K) => Promise<UserRecord | null>,
  ) {
    users.changeListeners.add(() => {
      this.generation++;
      this.cache.clear();
      this.pending.clear();
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
