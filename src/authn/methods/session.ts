import type { Request } from 'express';
import { SEEN_EVERY_MS, sessionOf, type SessionManager } from '../../sessions/manager.js';
import type { UserService } from '../../users/service.js';
import type { UserRecord } from '../../users/model.js';
import { UserCache } from '../user-cache.js';
import type { AuthMethod, Identity } from '../types.js';

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
    this.cache = new UserCache(users.events, ttlMs, (id) => users.get(id));
  }

  applies(req: Request): boolean {
    return sessionOf(req)?.userId !== undefined;
  }

  authenticate(req: Request): Identity | null | Promise<Identity | null> {
    const s = sessionOf(req)!;
    const now = Date.now();
    if (this.sessions.expired(s, now)) return this.sessions.discard(req).then(() => null);
    const found = this.cache.get(s.userId!);
    return found instanceof Promise ? found.then((user) => this.check(req, user, now)) : this.check(req, found, now);
  }

  private check(req: Request, user: UserRecord | null, now: number): Identity | null | Promise<null> {
    const s = sessionOf(req)!;
    if (!user || user.sessionEpoch !== s.epoch) return this.sessions.discard(req).then(() => null);
    // Only a session loaded into express-session is written; SessionManager.load reads the others because
    // they were seen lately.
    if (req.session && now - (s.lastSeenAt ?? 0) > SEEN_EVERY_MS) {
      // Changing the session makes express-session save it with a fresh cookie expiry: a rolling idle timeout.
      req.session.lastSeenAt = now;
      req.session.ip = req.ip;
    }
    return { user, method: this.name };
  }
}
