import type { Request } from 'express';
import type { SessionManager } from '../../sessions/manager.js';
import type { UserService } from '../../users/service.js';
import type { UserRecord } from '../../users/model.js';
import { UserCache } from '../user-cache.js';
import type { AuthMethod, Identity } from '../types.js';

/** How often a live session's lastSeenAt (and so its idle expiry) is written back. */
const SEEN_EVERY_MS = 60_000;

/**
 * The session cookie, after express-session has loaded the session. The idle timeout and the absolute
 * lifetime are enforced here, on the server, not only by the cookie's expiry; so is the session epoch
 * (a session made before the user was disabled, demoted or had a password reset is dead).
 */
export class SessionMethod implements AuthMethod {
  readonly name = 'session';
  private readonly cache: UserCache<number>;

  constructor(
    users: UserService,
    private readonly sessions: SessionManager,
    ttlMs: number,
  ) {
    this.cache = new UserCache(users, ttlMs, (id) => users.get(id));
  }

  applies(req: Request): boolean {
    return req.session?.userId !== undefined;
  }

  authenticate(req: Request): Identity | null | Promise<Identity | null> {
    const s = req.session;
    const now = Date.now();
    const { idleTimeoutMs, maxAgeMs } = this.sessions.config.session;
    if (now - (s.createdAt ?? 0) > maxAgeMs || now - (s.lastSeenAt ?? 0) > idleTimeoutMs) return this.sessions.discard(req).then(() => null);
    const found = this.cache.get(s.userId!);
    return found instanceof Promise ? found.then((user) => this.check(req, user, now)) : this.check(req, found, now);
  }

  private check(req: Request, user: UserRecord | null, now: number): Identity | null | Promise<null> {
    const s = req.session;
    if (!user || user.sessionEpoch !== s.epoch) return this.sessions.discard(req).then(() => null);
    if (now - (s.lastSeenAt ?? 0) > SEEN_EVERY_MS) {
      // Changing the session makes express-session save it with a fresh cookie expiry: a rolling idle timeout.
      s.lastSeenAt = now;
      s.ip = req.ip;
    }
    return { user, method: this.name };
  }
}
