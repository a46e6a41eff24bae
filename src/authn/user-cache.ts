import type { EventStream } from '../events/stream.js';
import { setBounded } from '../bounded-map.js';
import type { UserRecord } from '../users/model.js';

/** What a cache holds: a user, or something of one user's (a scoped key with its owner). */
type Entry = UserRecord | { readonly user: UserRecord };
const MAX_ENTRIES = 10_000;
const ownerOf = (value: Entry): number => ('user' in value ? value.user.id : value.id);

/**
 * Recently authenticated users by credential (API key, user id), for `ttlMs`.
 * A user's entries go whenever that user changes through this process; a lookup that started before a change is
 * never cached; concurrent lookups of one key share one query. A hit answers synchronously.
 */
export class UserCache<K, V extends Entry = UserRecord> {
  private readonly cache = new Map<K, { value: V; expires: number }>();
  private readonly pending = new Map<K, Promise<V | null>>();
  private generation = 0;

  constructor(
    events: EventStream,
    private readonly ttlMs: number,
    private readonly load: (key: K) => Promise<V | null>,
    /**
     * A change drops its user's entries, and those this says depend on other users too (a proxy login whose
     * role sync the last-admin rail held back): every user's change drops them.
     */
    private readonly dependsOnOthers: (value: V) => boolean = () => false,
  ) {
    events.on(({ type, targetUserId }) => {
      // A failed or refused login changes nothing: an attacker must not be able to empty the cache.
      if (targetUserId === null || type === 'login.failed' || type === 'login.rate_limited') return;
      this.forgetUser(targetUserId);
    });
    // A change made through another instance (src/cluster) goes the same way.
    events.onChangedElsewhere((userId) => (userId === null ? this.forgetAll() : this.forgetUser(userId)));
  }

  /**
   * Drops the user's entries and those that depend on other users; lookups under way, whoever they are for,
   * are never cached.
   */
  forgetUser(userId: number): void {
    this.generation++;
    this.pending.clear();
    for (const [key, entry] of this.cache) if (ownerOf(entry.value) === userId || this.dependsOnOthers(entry.value)) this.cache.delete(key);
  }

  /** Drops every entry, and never caches a lookup under way. */
  forgetAll(): void {
    this.generation++;
    this.pending.clear();
    this.cache.clear();
  }

  get(key: K): V | Promise<V | null> {
    const hit = this.cache.get(key);
    if (hit && hit.expires > Date.now()) return hit.value;
    const shared = this.pending.get(key);
    if (shared) return shared;
    const generation = this.generation;
    const forget = () => {
      if (this.pending.get(key) === lookup) this.pending.delete(key);
    };
    const lookup = this.load(key).then(
      (value) => {
        forget();
        if (value && this.ttlMs > 0 && generation === this.generation) {
          setBounded(this.cache, key, { value, expires: Date.now() + this.ttlMs }, MAX_ENTRIES);
        }
        return value;
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
