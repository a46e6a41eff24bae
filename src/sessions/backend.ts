import session from 'express-session';
import { setBounded } from '../bounded-map.js';
import { ConnectSessionKnexStore } from 'connect-session-knex';
import { RedisStore } from 'connect-redis';
import { createClient, type RedisClientType } from 'redis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from 'pino';
import type { Db } from '../db/connect.js';
import type { UsherConfig } from '../config/schema.js';
import { AppError, Errors } from '../errors.js';

/** Which sessions belong to whom, so that they can be listed and ended. */
export interface SessionIndex {
  add(userId: number, sid: string): Promise<void>;
  list(userId: number): Promise<string[]>;
  remove(userId: number, sids: string[]): Promise<void>;
  /** Labels a session (e.g. `oidc:<provider>:sid:<idp session>`), for finding it without its owner. */
  tag(sid: string, tags: string[], ttlMs: number): Promise<void>;
  /** The sessions carrying a label (some may have ended since). */
  tagged(tag: string): Promise<string[]>;
}

/**
 * Where sessions and login counters live: the SQL database (and memory), or Redis. Every failure of the
 * store itself (Redis gone, a connection reset mid-command, the database away), through the store, the
 * index or a limiter, rejects with 503 session.store_unavailable (an AppError) and nothing else, so no
 * caller has to know what a Redis client error looks like.
 */
export interface SessionBackend {
  readonly kind: 'sql' | 'redis';
  /** express-session's store. */
  readonly store: SessionStore;
  readonly index: SessionIndex;
  /**
   * A counter of `points` per `windowMs`, shared by every instance when Redis is configured. Over the limit
   * it rejects with a RateLimiterRes, as rate-limiter-flexible does; any other rejection is the 503.
   */
  limiter(name: string, points: number, windowMs: number): RateLimiterAbstract;
  /**
   * The signed-in sessions alive in the store (every instance sharing it sees the same number); a session of
   * a login under way, before sign-in, is not one. Costs one indexed count (see each backend).
   */
  countActive(): Promise<number>;
  /**
   * Drops what this instance caches of the user's sessions (null: of everyone's), told by src/cluster that
   * another instance changed them. Only the SQL store caches; Redis is read on every request.
   */
  forget(userId: number | null): void;
  close(): Promise<void>;
}

/** express-session's store, plus the read-only lookup authentication uses (SessionManager.load). */
export interface SessionStore extends session.Store {
  /**
   * A session as authentication reads it, never written back (so it may be shared and is frozen); null when
   * there is none. Answers at once when the SQL store's cache holds it. Failures are 503 session.store_unavailable.
   */
  read(sid: string): Readonly<session.SessionData> | null | Promise<Readonly<session.SessionData> | null>;
}

/** Thrown at start when Redis is configured but does not answer; the server refuses to start. */
export class RedisUnavailableError extends Error {}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- express-session's own callback types
type Callback = (err?: any, value?: any) => void;

/**
 * The one translation of a store failure (a redis client error such as ClientOfflineError or
 * SocketClosedUnexpectedlyError, ECONNRESET, a database error) into 503 session.store_unavailable.
 * An AppError passes unchanged: it was translated already, or is an answer of its own.
 */
function storeFailure(log: Logger, err: unknown): AppError {
  if (err instanceof AppError) return err;
  log.warn({ err: (err as Error)?.message ?? String(err) }, 'session store failed');
  return Errors.sessionStoreUnavailable();
}

/** The index, each of its failures the 503. */
function guardIndex(index: SessionIndex, log: Logger): SessionIndex {
  const guard =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (err) {
        throw storeFailure(log, err);
      }
    };
  return { add: guard(index.add), list: guard(index.list), remove: guard(index.remove), tag: guard(index.tag), tagged: guard(index.tagged) };
}

/**
 * A limiter whose every promise rejects with either its RateLimiterRes (over the limit) or the 503. A proxy
 * rather than a list of methods, so that whichever of rate-limiter-flexible's methods a caller uses is covered.
 */
function guardLimiter(limiter: RateLimiterAbstract, log: Logger): RateLimiterAbstract {
  return new Proxy(limiter, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!(result instanceof Promise)) return result;
        return result.catch((err: unknown) => {
          throw err instanceof RateLimiterRes ? err : storeFailure(log, err);
        });
      };
    },
  });
}

/** Longer than any request may take: how long an ended session id is refused by set(). */
const ENDED_REMEMBERED_MS = 10 * 60_000;

/**
 * Wraps a store so that a failing backend (Redis down, database gone) is a 503 with a stable code,
 * never a 500 and never an anonymous-but-allowed request. It has no `touch`: expiry is extended by
 * the session method's once-a-minute save instead of a write on every request.
 */
class GuardedStore extends session.Store implements SessionStore {
  /** Sessions ended here lately: a request still in flight must not write one back when it finishes. */
  private readonly ended = new Map<string, number>();

  /** The inner store's cache, when it has one (the SQL store): read() answers from it without a promise. */
  private readonly cached: CachedStore | undefined;

  constructor(
    private readonly inner: session.Store,
    private readonly log: Logger,
  ) {
    super();
    this.cached = inner instanceof CachedStore ? inner : undefined;
  }

  private guard(cb: Callback | undefined) {
    return (err?: unknown, value?: unknown) => {
      if (err) return cb?.(storeFailure(this.log, err));
      cb?.(undefined, value);
    };
  }

  override get(sid: string, cb: (err: unknown, data?: session.SessionData | null) => void): void {
    // A read that began before a destroy may answer after it (and refill the cache): ended is ended.
    if (this.wasEnded(sid)) return cb(undefined, null);
    this.call(
      () => this.inner.get(sid, this.guard((err?: unknown, data?: unknown) => cb(err, this.wasEnded(sid) ? null : (data as session.SessionData | null)))),
      cb,
    );
  }
  /**
   * Creates a session only when SessionManager marks it `fresh` (a login, an OIDC login under way);
   * otherwise updates one that still exists. So a request that was in flight while its session was
   * ended (logout elsewhere, back-channel logout, an admin ending it) cannot bring it back on save.
   */
  override set(sid: string, data: session.SessionData, cb?: Callback): void {
    if (this.wasEnded(sid)) return cb?.();
    if (data.fresh) {
      const { fresh: _fresh, ...stored } = data;
      return this.call(() => this.inner.set(sid, stored as session.SessionData, this.guard(cb)), cb);
    }
    this.call(
      () =>
        // The store's answer, not the cache's: a session another instance ended may still be cached here.
        (this.cached ? this.cached.getStored.bind(this.cached) : this.inner.get.bind(this.inner))(sid, (err, existing) => {
          if (err) return this.guard(cb)(err);
          if (!existing || this.wasEnded(sid)) return cb?.();
          this.call(() => this.inner.set(sid, data, this.guard(cb)), cb);
        }),
      cb,
    );
  }
  override destroy(sid: string, cb?: Callback): void {
    const now = Date.now();
    // Oldest first (a re-ended id moves to the end): stop at the first one still remembered.
    for (const [old, at] of this.ended) {
      if (now - at <= ENDED_REMEMBERED_MS) break;
      this.ended.delete(old);
    }
    this.ended.delete(sid);
    this.ended.set(sid, now);
    this.call(() => this.inner.destroy(sid, this.guard(cb)), cb);
  }

  /** The read-only form of get(): from the cache when the inner store has one, else a copy of get()'s answer. */
  read(sid: string): Readonly<session.SessionData> | null | Promise<Readonly<session.SessionData> | null> {
    if (this.wasEnded(sid)) return null;
    const hit = this.cached?.peek(sid);
    if (hit !== undefined) return hit;
    return new Promise((resolve, reject) => this.get(sid, (err, data) => (err ? reject(err as Error) : resolve(data ?? null))));
  }

  private wasEnded(sid: string): boolean {
    const at = this.ended.get(sid);
    return at !== undefined && Date.now() - at <= ENDED_REMEMBERED_MS;
  }

  /** Stores that also return promises must not leave an unhandled rejection behind. */
  private call(fn: () => unknown, cb: Callback | undefined) {
    try {
      const result = fn() as unknown;
      if (result && typeof (result as Promise<unknown>).catch === 'function') (result as Promise<unknown>).catch(() => {});
    } catch (err) {
      this.guard(cb)(err);
    }
  }
}

/**
 * Keeps recently read sessions of the SQL store in memory for `ttlMs`, so a cookie request costs no query.
 * Writes and destroys through this process update it at once; another instance sharing the database
 * sees a logout made here when src/cluster tells it (forget()), at worst after `ttlMs` (the user-level kill switch, the session epoch, is
 * checked against the user record, whose cache is invalidated the same way).
 */
class CachedStore extends session.Store {
  /** `json` for get(), whose caller (express-session) changes what it gets; `frozen` for read(), parsed once. */
  private readonly cache = new Map<string, { json: string; frozen?: Readonly<session.SessionData>; expires: number; userId: number | undefined }>();
  /** Moves on at each forget(): a read that began before it answers, but is not cached (it may predate the change). */
  private generation = 0;

  constructor(
    private readonly inner: session.Store,
    private readonly ttlMs: number,
  ) {
    super();
  }

  override get(sid: string, cb: (err: unknown, data?: session.SessionData | null) => void): void {
    const hit = this.cache.get(sid);
    if (hit && hit.expires > Date.now()) return cb(undefined, JSON.parse(hit.json) as session.SessionData);
    const generation = this.generation;
    this.inner.get(sid, (err, data) => {
      if (!err && data && generation === this.generation) this.remember(sid, data);
      cb(err, data);
    });
  }
  /** What the store holds now, never the cache's copy (nor cached); answers what the store's get() returns. */
  getStored(sid: string, cb: (err: unknown, data?: session.SessionData | null) => void): unknown {
    return this.inner.get(sid, cb) as unknown;
  }

  /** The cached session, parsed and frozen; undefined when it is not cached (ask get()). */
  peek(sid: string): Readonly<session.SessionData> | undefined {
    const hit = this.cache.get(sid);
    if (!hit || hit.expires <= Date.now()) return undefined;
    return (hit.frozen ??= deepFreeze(JSON.parse(hit.json) as session.SessionData));
  }

  override set(sid: string, data: session.SessionData, cb?: Callback): void {
    this.cache.delete(sid);
    this.inner.set(sid, data, (err?: unknown) => {
      if (!err) this.remember(sid, data);
      cb?.(err);
    });
  }
  override destroy(sid: string, cb?: Callback): void {
    this.cache.delete(sid);
    this.inner.destroy(sid, (err?: unknown) => {
      this.cache.delete(sid);
      cb?.(err);
    });
  }

  /** Drops the cached sessions of a user (every one for null): another instance ended or changed them. */
  forget(userId: number | null): void {
    this.generation++;
    if (userId === null) this.cache.clear();
    else for (const [sid, entry] of this.cache) if (entry.userId === userId) this.cache.delete(sid);
  }

  private remember(sid: string, data: session.SessionData) {
    if (this.ttlMs <= 0) return;
    setBounded(this.cache, sid, { json: JSON.stringify(data), expires: Date.now() + this.ttlMs, userId: data.userId }, 10_000);
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Promise forms of the store calls the session code needs outside express-session. */
export function storeGet(store: session.Store, sid: string): Promise<session.SessionData | null> {
  return new Promise((resolve, reject) => store.get(sid, (err, data) => (err ? reject(err) : resolve(data ?? null))));
}
export function storeDestroy(store: session.Store, sid: string): Promise<void> {
  return new Promise((resolve, reject) => store.destroy(sid, (err) => (err ? reject(err) : resolve())));
}

/** The instant a session's stored copy expires, as connect-redis computes its TTL (a day when the cookie has no expiry). */
function expiresAt(data: session.SessionData, now: number): number {
  return data.cookie?.expires ? new Date(data.cookie.expires).getTime() : now + 86_400_000;
}

/**
 * connect-redis's store, plus a sorted set of the signed-in sessions scored by expiry, so they can be counted
 * with one ZCOUNT (O(log n)) rather than a scan of the keys. The set is kept beside the sessions, not with them:
 * a failed ZADD or ZREM only skews the count, and never for longer than that session's own expiry. Each write
 * also drops the entries already expired, so the set holds little more than the live sessions.
 */
class CountedRedisStore extends session.Store {
  constructor(
    private readonly inner: RedisStore,
    private readonly client: RedisClientType,
    private readonly key: string,
  ) {
    super();
  }

  // Each returns connect-redis's promise, as connect-redis itself does: GuardedStore catches its rejections.
  override get(sid: string, cb: (err: unknown, data?: session.SessionData | null) => void): Promise<unknown> {
    return this.inner.get(sid, cb);
  }
  override set(sid: string, data: session.SessionData, cb?: Callback): Promise<unknown> {
    return this.inner.set(sid, data, (err?: unknown) => {
      if (err || data.userId === undefined) return cb?.(err);
      const now = Date.now();
      this.client
        .multi()
        .zAdd(this.key, { score: expiresAt(data, now), value: sid })
        .zRemRangeByScore(this.key, '-inf', now)
        .exec()
        .then(
          () => cb?.(),
          () => cb?.(),
        );
    });
  }
  override destroy(sid: string, cb?: Callback): Promise<unknown> {
    return this.inner.destroy(sid, (err?: unknown) => {
      if (err) return cb?.(err);
      this.client.zRem(this.key, sid).then(
        () => cb?.(),
        () => cb?.(),
      );
    });
  }

  count(): Promise<number> {
    return this.client.zCount(this.key, Date.now(), '+inf');
  }
}

function sqlBackend(db: Db, log: Logger, cacheTtlMs: number): SessionBackend {
  const knexStore = new ConnectSessionKnexStore({ knex: db, tableName: 'sessions', createTable: false, cleanupInterval: 60_000, onDbCleanupError: (err) => log.warn({ err }, 'session cleanup failed') });
  const cached = new CachedStore(knexStore, cacheTtlMs);
  const store = new GuardedStore(cached, log);
  return {
    kind: 'sql',
    store,
    index: {
      async add(userId, sid) {
        await db('session_index').insert({ sid, user_id: userId, created_at: Date.now() }).onConflict('sid').merge();
      },
      async list(userId) {
        const rows = (await db('session_index').where({ user_id: userId }).orderBy('created_at').select('sid')) as { sid: string }[];
        return rows.map((r) => r.sid);
      },
      async remove(userId, sids) {
        if (sids.length === 0) return;
        await db('session_index').where({ user_id: userId }).whereIn('sid', sids).delete();
        await db('session_tags').whereIn('sid', sids).delete();
      },
      async tag(sid, tags) {
        const now = Date.now();
        if (tags.length > 0) await db('session_tags').insert(tags.map((tag) => ({ tag, sid, created_at: now }))).onConflict(['tag', 'sid']).ignore();
      },
      async tagged(tag) {
        return ((await db('session_tags').where({ tag }).select('sid')) as { sid: string }[]).map((r) => r.sid);
      },
    },
    limiter: (name, points, windowMs) => new RateLimiterMemory({ keyPrefix: name, points, duration: Math.ceil(windowMs / 1000) }),
    // The index names the signed-in sessions; the join keeps those the store holds unexpired (as its own
    // get() decides). One count over the index, which holds the live sessions plus those not pruned yet.
    async countActive() {
      const alive = db.client.dialect === 'sqlite3' ? 'datetime(?) <= datetime(s.expired)' : 'CAST(? AS timestamp with time zone) <= s.expired';
      const row = (await db('session_index as i').join('sessions as s', 's.sid', 'i.sid').whereRaw(alive, [new Date().toISOString()]).count({ n: '*' }).first()) as
        | { n: number | string }
        | undefined;
      return Number(row?.n ?? 0);
    },
    forget: (userId) => cached.forget(userId),
    async close() {
      clearTimeout(knexStore.nextDbCleanup);
    },
  };
}

/** Connects to Redis, failing fast at start; once connected it reconnects for ever in the background. */
async function connectRedis(url: string, log: Logger): Promise<RedisClientType> {
  let connected = false;
  let lastWarn = 0;
  const client: RedisClientType = createClient({
    url,
    // While Redis is away, commands fail at once (a 503) instead of queueing until it returns.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 5_000,
      reconnectStrategy: (retries: number, cause: Error) => (connected ? Math.min(100 * 2 ** retries, 2_000) : cause),
    },
  });
  client.on('error', (err: Error) => {
    const now = Date.now();
    if (connected && now - lastWarn > 10_000) {
      lastWarn = now;
      log.warn({ err: err.message }, 'redis connection lost; retrying');
    }
  });
  client.on('ready', () => {
    if (connected) log.info('redis connection restored');
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    try {
      client.destroy();
    } catch {
      // already closed by the failed connect
    }
    const redacted = new URL(url);
    if (redacted.password) redacted.password = '***';
    throw new RedisUnavailableError(`redis: cannot connect to USHER_REDIS_URL (${redacted.href}): ${(err as Error).message || (err as NodeJS.ErrnoException).code || 'no answer'}`);
  }
  connected = true;
  return client;
}

function redisBackend(client: RedisClientType, prefix: string, log: Logger): SessionBackend {
  const indexKey = (userId: number) => `${prefix}user-sessions:${userId}`;
  const counted = new CountedRedisStore(new RedisStore({ client, prefix: `${prefix}sess:`, disableTouch: true }), client, `${prefix}sessions-by-expiry`);
  const store = new GuardedStore(counted, log);
  return {
    kind: 'redis',
    store,
    index: {
      async add(userId, sid) {
        await client.sAdd(indexKey(userId), sid);
      },
      async list(userId) {
        return client.sMembers(indexKey(userId));
      },
      async remove(userId, sids) {
        if (sids.length > 0) await client.sRem(indexKey(userId), sids);
      },
      async tag(sid, tags, ttlMs) {
        for (const tag of tags) {
          await client.sAdd(`${prefix}session-tag:${tag}`, sid);
          await client.pExpire(`${prefix}session-tag:${tag}`, ttlMs);
        }
      },
      async tagged(tag) {
        return client.sMembers(`${prefix}session-tag:${tag}`);
      },
    },
    limiter: (name, points, windowMs) =>
      new RateLimiterRedis({ storeClient: client, useRedisPackage: true, keyPrefix: `${prefix}${name}`, points, duration: Math.ceil(windowMs / 1000) }),
    countActive: () => counted.count(),
    forget() {},
    async close() {
      client.destroy();
    },
  };
}

/** Redis when configured (refusing to start if it does not answer), else the SQL database. */
export async function openSessionBackend(config: UsherConfig, db: Db, log: Logger): Promise<SessionBackend> {
  const backend = config.redisUrl ? redisBackend(await connectRedis(config.redisUrl, log), config.redisPrefix, log) : sqlBackend(db, log, config.apiKeyCacheTtlMs);
  // The store guards itself (GuardedStore); the index and the limiters are guarded here, in one place.
  return {
    kind: backend.kind,
    store: backend.store,
    index: guardIndex(backend.index, log),
    limiter: (name, points, windowMs) => guardLimiter(backend.limiter(name, points, windowMs), log),
    countActive: () => backend.countActive().catch((err: unknown) => Promise.reject(storeFailure(log, err))),
    forget: (userId) => backend.forget(userId),
    close: () => backend.close(),
  };
}
