import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { parse as parseCookies } from 'cookie';
import { unsign } from 'cookie-signature';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import session from 'express-session';
import type { Logger } from 'pino';
import type { UsherConfig } from '../config/schema.js';
import type { ServerKeys } from '../crypto/secret.js';
import { AppError, Errors } from '../errors.js';
import type { UserRecord } from '../users/model.js';
import { storeDestroy, storeGet, type SessionBackend } from './backend.js';

declare module 'express-session' {
  interface SessionData {
    userId: number;
    /** The user's session epoch at login; a later epoch kills the session. */
    epoch: number;
    createdAt: number;
    lastSeenAt: number;
    ip: string | undefined;
    userAgent: string | undefined;
    /** The device name given when an invite or recovery code signed this browser in. */
    deviceName?: string;
    /** Set for a session made by an OIDC login: what RP-initiated logout needs. */
    oidc?: { provider: string; idToken?: string };
    /** OIDC logins under way, by state (a few at most: one per open login tab). */
    oidcPending?: Record<string, OidcPending>;
    /** Set only on the save that creates the session (the store otherwise updates existing ones only). */
    fresh?: boolean;
  }
}

/** What an OIDC login keeps server-side between the redirect to the provider and the callback. */
export interface OidcPending {
  provider: string;
  codeVerifier: string;
  nonce: string;
  returnTo: string;
  startedAt: number;
}

export const SESSION_COOKIE = 'usher.sid';
const COOKIE_PREFIX = `${SESSION_COOKIE}=`;

/** How often a live session's lastSeenAt (and so its idle expiry and the cookie's) is written back. */
export const SEEN_EVERY_MS = 60_000;

/** A signed-in session that authentication read without loading it into express-session (see SessionManager.load). */
const read = new WeakMap<Request, SessionFields>();
type SessionFields = Readonly<Partial<session.SessionData>>;

/**
 * The request's session data: express-session's when it is loaded, else the read-only copy authentication found.
 * `req.sessionID` names it either way.
 */
export function sessionOf(req: Request): SessionFields | undefined {
  return req.session ?? read.get(req);
}

/** One of the caller's sessions as GET /me/sessions shows it. */
export interface SessionView {
  id: string;
  kind: 'browser' | 'app';
  /** An app's device name; null for a browser. */
  name: string | null;
  createdAt: string;
  lastSeenAt: string;
  ip: string | null;
  userAgent: string | null;
  /** How it signed in: `password`, `oidc:<provider>`, or `code` (an invite or recovery code, through /connect). */
  method: string;
  current: boolean;
}

/** Starts, lists and ends sessions; the store and the per-user index come from the backend. */
export class SessionManager {
  /** express-session itself: loads the session named by the cookie, saves it when changed. */
  readonly middleware: RequestHandler;
  /** The cookie's signing key, as express-session signs it (the same secret, imported once). */
  private readonly cookieKey: KeyObject;

  constructor(
    /** Where sessions live; public so that tools and tests can look inside. */
    readonly backend: SessionBackend,
    private readonly keys: ServerKeys,
    readonly config: UsherConfig,
    private readonly log: Logger,
  ) {
    const domain = config.session.cookieDomain;
    const loadSession = session({
      name: SESSION_COOKIE,
      secret: keys.sessionCookie,
      store: backend.store,
      resave: false,
      saveUninitialized: false,
      rolling: false,
      // Secure when the request arrived over HTTPS (as `trust proxy` tells); Lax; Domain only when configured
      // (session.cookieDomain, for single sign-on across subdomains), else host-only.
      cookie: { httpOnly: true, sameSite: 'lax', secure: 'auto', path: '/', maxAge: config.session.idleTimeoutMs, domain },
    });
    // express-session re-sets the cookie with the options stored beside the session (when it is touched): a
    // session saved before cookieDomain changed would keep the old Domain. The configured one always applies.
    this.middleware = (req, res, next) =>
      void loadSession(req, res, (err?: unknown) => {
        if (!err && req.session) req.session.cookie.domain = domain;
        next(err);
      });
    this.cookieKey = createSecretKey(Buffer.from(keys.sessionCookie, 'utf8'));
    // express-session has just installed its generate() on our store: note the sessions it makes up.
    const store = backend.store as session.Store & { generate?: (req: Request) => void };
    if (typeof store.generate !== 'function') throw new Error('express-session did not install generate() on the store');
    const generate = store.generate.bind(store);
    store.generate = (req: Request) => {
      generate(req);
      this.madeUp.add(req);
    };
  }

  /** Requests whose session our express-session made up during the request, rather than loaded. */
  private readonly madeUp = new WeakSet<Request>();

  /** Whether the request carries our cookie at all: other requests never touch the store. */
  hasCookie(req: Request): boolean {
    return req.headers.cookie?.includes(COOKIE_PREFIX) === true;
  }

  /**
   * Loads the request's session for authentication. A signed-in session that needs no write on this request
   * (the common case: alive, seen within SEEN_EVERY_MS) is read from the store and kept read-only
   * (sessionOf()), skipping express-session's per-request work, which profiles showed costs more than the
   * rest of authentication together (two SHA-1 hashes of the session, a Session object, hooks on the
   * response). Everything else goes through express-session: a session to touch or to end. Routes that change
   * the session call ensure() first. Store failures reach `next` as 503 session.store_unavailable.
   */
  load(req: Request, res: Response, next: NextFunction): void {
    const sid = this.cookieSid(req);
    // No valid signed cookie: anonymous, as express-session would leave it (a fresh session never saved).
    if (sid === undefined) {
      next();
      return;
    }
    let found;
    try {
      found = this.backend.store.read(sid);
    } catch (err) {
      next(err);
      return;
    }
    if (found instanceof Promise) found.then((data) => this.use(req, res, next, sid, data), next);
    else this.use(req, res, next, sid, found);
  }

  /** load()'s second half, once the store has answered. */
  private use(req: Request, res: Response, next: NextFunction, sid: string, data: Readonly<session.SessionData> | null): void {
    if (!data) next();
    else if (data.userId === undefined || !this.quiet(data)) void this.middleware(req, res, next);
    else {
      req.sessionID = sid;
      read.set(req, data);
      next();
    }
  }

  /** Past its idle timeout or its absolute lifetime, whatever the cookie says. */
  expired(data: SessionFields, now: number): boolean {
    const { idleTimeoutMs, maxAgeMs } = this.config.session;
    return now - (data.createdAt ?? 0) > maxAgeMs || now - (data.lastSeenAt ?? 0) > idleTimeoutMs;
  }

  /** Alive and seen lately: nothing about it to write on this request. */
  private quiet(data: SessionFields): boolean {
    const now = Date.now();
    return now - (data.lastSeenAt ?? 0) <= SEEN_EVERY_MS && !this.expired(data, now);
  }

  /** The session id of a correctly signed cookie, chosen as express-session chooses it (the first of the name). */
  private cookieSid(req: Request): string | undefined {
    const header = req.headers.cookie;
    if (!header) return undefined;
    const raw = parseCookies(header)[SESSION_COOKIE];
    if (!raw?.startsWith('s:')) return undefined;
    const sid = unsign(raw.slice(2), this.cookieKey);
    return sid === false ? undefined : sid;
  }

  /** The id shown to users: a keyed hash of the session id, which itself never leaves the cookie. */
  publicId(sid: string): string {
    return createHmac('sha256', this.keys.sessionPublicId).update(sid).digest('base64url').slice(0, 22);
  }

  /** Signs the user in: a new session id (no fixation), recorded in the user's index, saved before answering. */
  async start(req: Request, res: Response, user: UserRecord, extra: { oidc?: { provider: string; idToken?: string }; tags?: string[]; deviceName?: string } = {}): Promise<void> {
    await this.ensure(req, res);
    // A session our express-session has just made up for this request already has a fresh id nobody else
    // knows, and nothing stored to drop. Any other (loaded from our store, or a host app's own session in
    // req.session) gets a new id: no fixation.
    const madeUpHere = this.madeUp.has(req) && (req.sessionStore as session.Store) === this.backend.store;
    if (!madeUpHere) {
      const old = req.session.userId !== undefined ? { userId: req.session.userId, sid: req.sessionID } : undefined;
      await new Promise<void>((resolve, reject) => req.session.regenerate((err: unknown) => (err ? reject(err) : resolve())));
      if (old) await this.backend.index.remove(old.userId, [old.sid]).catch(() => {});
    }
    this.clearHostOnlyCookie(req, res);
    const now = Date.now();
    Object.assign(req.session, { userId: user.id, epoch: user.sessionEpoch, createdAt: now, lastSeenAt: now, ip: req.ip, userAgent: userAgent(req) });
    if (extra.oidc) req.session.oidc = extra.oidc;
    if (extra.deviceName !== undefined) req.session.deviceName = extra.deviceName;
    await this.save(req, true);
    try {
      await this.backend.index.add(user.id, req.sessionID);
      if (extra.tags?.length) await this.backend.index.tag(req.sessionID, extra.tags, this.config.session.maxAgeMs);
    } catch (err) {
      // A session nobody could list or end must not live on: the login fails as a whole.
      await this.discard(req);
      throw err instanceof AppError ? err : Errors.sessionStoreUnavailable();
    }
  }

  /** Loads (or begins) the request's session even without a cookie: an OIDC login needs one before sign-in. */
  async ensure(req: Request, res: Response): Promise<void> {
    if (!req.session) await new Promise<void>((resolve, reject) => this.middleware(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
  }

  /** Saves now; `create` for a session the store does not hold yet. */
  async save(req: Request, create = false): Promise<void> {
    // Not enumerable: express-session's hash of the session (which decides whether the end of the
    // request saves it again) must not see it, or every created session would be written twice.
    if (create) Object.defineProperty(req.session, 'fresh', { value: true, configurable: true, enumerable: false, writable: true });
    try {
      await new Promise<void>((resolve, reject) => req.session.save((err: unknown) => (err ? reject(err) : resolve())));
    } finally {
      // Not part of the session: gone before express-session compares it at the end of the request.
      delete req.session.fresh;
    }
  }

  /** Ends every session carrying a label (back-channel logout); answers how many ended. */
  async endTagged(tag: string): Promise<number> {
    let ended = 0;
    for (const sid of await this.backend.index.tagged(tag)) {
      const data = await storeGet(this.backend.store, sid);
      await storeDestroy(this.backend.store, sid);
      if (data?.userId !== undefined) {
        await this.backend.index.remove(data.userId, [sid]);
        ended++;
      }
    }
    return ended;
  }

  /** Ends the request's own session. */
  async endCurrent(req: Request, res: Response): Promise<void> {
    await this.destroyCurrent(req, true);
    this.clearCookie(req, res, this.config.session.cookieDomain);
    this.clearHostOnlyCookie(req, res);
  }

  /** Tells the browser to drop the session cookie of this Domain (undefined: the host-only one). */
  private clearCookie(req: Request, res: Response, domain: string | undefined): void {
    res.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'lax', secure: req.secure, domain });
  }

  /**
   * With a cookie domain, a host-only cookie left from before it was set would be sent beside the new one,
   * first (browsers send older cookies first), and name a dead session: it is dropped at login and logout.
   */
  private clearHostOnlyCookie(req: Request, res: Response): void {
    if (this.config.session.cookieDomain !== undefined && this.hasCookie(req)) this.clearCookie(req, res, undefined);
  }

  /** The user's live sessions, oldest first; dead index entries are pruned on the way. */
  async list(userId: number, currentSid: string | undefined): Promise<SessionView[]> {
    const views: SessionView[] = [];
    const dead: string[] = [];
    for (const sid of await this.backend.index.list(userId)) {
      const data = await storeGet(this.backend.store, sid);
      if (!data || data.userId !== userId) {
        dead.push(sid);
        continue;
      }
      views.push({
        id: this.publicId(sid),
        kind: 'browser',
        name: data.deviceName ?? null,
        createdAt: new Date(data.createdAt).toISOString(),
        lastSeenAt: new Date(data.lastSeenAt).toISOString(),
        ip: data.ip ?? null,
        userAgent: data.userAgent ?? null,
        // The three ways a session starts (see start's callers): only /connect names the device.
        method: data.oidc ? `oidc:${data.oidc.provider}` : data.deviceName !== undefined ? 'code' : 'password',
        current: sid === currentSid,
      });
    }
    await this.backend.index.remove(userId, dead);
    return views.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Ends one of the user's sessions by its public id; 404 when there is none. */
  async end(userId: number, publicId: string): Promise<void> {
    const sid = (await this.backend.index.list(userId)).find((s) => this.publicId(s) === publicId);
    if (!sid) throw Errors.sessionNotFound();
    await storeDestroy(this.backend.store, sid);
    await this.backend.index.remove(userId, [sid]);
  }

  /** Ends every session of the user except `keep`. */
  async endAll(userId: number, keep?: string): Promise<void> {
    const sids = (await this.backend.index.list(userId)).filter((s) => s !== keep);
    for (const sid of sids) await storeDestroy(this.backend.store, sid);
    await this.backend.index.remove(userId, sids);
    if (sids.length > 0) this.log.info({ userId, ended: sids.length }, 'sessions ended');
  }

  /** Drops a session found dead on use (expired, or from an older epoch). */
  discard(req: Request): Promise<void> {
    return this.destroyCurrent(req, false);
  }

  /** Destroys the request's session and its index entry; `strict` reports a store failure (logout), else it is ignored. */
  private async destroyCurrent(req: Request, strict: boolean): Promise<void> {
    const data = sessionOf(req);
    if (!data) return;
    const { userId } = data;
    const sid = req.sessionID;
    const s = req.session;
    const destroyed = s
      ? new Promise<void>((resolve, reject) => s.destroy((err: unknown) => (err ? reject(err as Error) : resolve())))
      : storeDestroy(this.backend.store, sid);
    read.delete(req);
    try {
      await destroyed;
    } catch (err) {
      if (strict) throw err;
    }
    if (userId !== undefined) await this.backend.index.remove(userId, [sid]).catch(() => {});
  }

  /** After a self-service password change: the request's own session lives on, at the user's new epoch. */
  async moveToEpoch(req: Request, res: Response, epoch: number): Promise<void> {
    if (!sessionOf(req)) return;
    await this.ensure(req, res);
    if (req.session.userId === undefined) return;
    req.session.epoch = epoch;
    // Saved before answering, so that a store failure is the request's 503 rather than a session lost after a 200.
    await this.save(req);
  }
}

function userAgent(req: Request): string | undefined {
  const ua = req.headers['user-agent'];
  return ua ? ua.slice(0, 256) : undefined;
}
