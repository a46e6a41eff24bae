import type { Request, Response } from 'express';
import * as client from 'openid-client';
import type { Logger } from 'pino';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { claimAt } from '../../config/oidc.js';
import { AppError, Errors } from '../../errors.js';
import { eventOf } from '../../events/stream.js';
import type { OidcPending, SessionManager } from '../../sessions/manager.js';
import type { UserService } from '../../users/service.js';
import { clientKey } from '../login-limiter.js';
import type { ExternalIdentity, Provisioner } from '../provisioning.js';
import { safeReturnTo, type OidcClient } from './client.js';

/** A login not finished within this long is forgotten. */
const PENDING_FOR_MS = 10 * 60_000;
/** At most this many logins under way per browser session (one per open tab). */
const MAX_PENDING = 5;

const sidTag = (provider: string, sid: string) => `${provider}:sid:${sid}`;
const subTag = (provider: string, sub: string) => `${provider}:sub:${sub}`;

/** The groups a claim holds: a list of strings, one string, or undefined when the claim is absent ("unknown"). */
function groupsOf(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === 'string');
  return undefined;
}

/** Turns the provider's claims into the identity the shared provisioning steps take. */
export function identityFrom(oidc: OidcClient, claims: Record<string, unknown>): ExternalIdentity {
  const { usernameClaims, groupsClaim } = oidc.settings;
  const sub = String(claims.sub);
  const username = usernameClaims.map((c) => claims[c]).find((v): v is string => typeof v === 'string' && v.trim() !== '') ?? sub;
  return {
    provider: oidc.provider,
    authority: oidc.authority,
    subject: sub,
    username,
    email: typeof claims.email === 'string' && claims.email.includes('@') ? claims.email : undefined,
    emailVerified: claims.email_verified === true,
    name: typeof claims.name === 'string' ? claims.name : undefined,
    groups: groupsOf(claimAt(claims, groupsClaim)),
  };
}

/** Failures talking to the provider are 502; a response that fails openid-client's checks is 401. */
function providerFailure(err: unknown, log: Logger, provider: string): AppError {
  if (err instanceof AppError) return err;
  const e = err as { name?: string; code?: string; message?: string; cause?: unknown };
  const network = e.name === 'TimeoutError' || e.name === 'AbortError' || e.name === 'TypeError' || e.code === 'OAUTH_TIMEOUT';
  log.warn({ provider, err: e.message, code: e.code }, network ? 'OIDC provider unreachable' : 'OIDC callback refused');
  return network ? Errors.oidcProviderUnavailable() : Errors.oidcLoginFailed();
}

/** Why a callback's sign-in failed, from the error it ended with; undefined for failures of Usher's own (a 5xx). */
function failureReason(err: unknown): { userId: null; reason: string } | undefined {
  if (!(err instanceof AppError)) return undefined;
  const reason: Record<string, string> = {
    'oidc.login_failed': 'provider_refused',
    'oidc.provider_unavailable': 'provider_unavailable',
    'auth.forbidden': 'not_allowed',
    'auth.not_provisioned': 'not_provisioned',
  };
  return reason[err.code] ? { userId: null, reason: reason[err.code]! } : undefined;
}

export interface OidcLoginDeps {
  clients: ReadonlyMap<string, OidcClient>;
  sessions: SessionManager;
  users: UserService;
  provisioner: Provisioner;
  log: Logger;
  /** Bounds how many logins one client address may start (each stores a short pre-login session). */
  starts: RateLimiterAbstract;
}

/** The provider's redirect back to the callback, as the route read it. */
export interface OidcCallback {
  /** The `state` and `error` query values as parsed; anything but one string counts as absent. */
  state: unknown;
  error: unknown;
  /** The callback's whole query string (`?code=...&state=...`): openid-client checks all of it. */
  search: string;
}

/**
 * The OpenID Connect flows without routing: the authorization code flow with PKCE (start, then finish at the
 * callback), and back-channel logout. The login under way lives in the browser's session (a short pre-login
 * one for a visitor), which is why start and finish take the request and response: the session manager loads,
 * saves and starts sessions on them.
 */
export class OidcLogin {
  constructor(private readonly deps: OidcLoginDeps) {}

  /** The providers a login page offers, in configuration order. */
  providers(): { id: string; name: string }[] {
    return [...this.deps.clients.values()].map((c) => ({ id: c.settings.id, name: c.settings.name }));
  }

  /**
   * Begins a sign-in: remembers the login in the browser's session and answers the provider's authorization
   * URL to send the browser to. 404 unknown provider, 429 too many starts from this address, 502 provider down.
   */
  async start(req: Request, res: Response, providerId: string, returnTo: unknown): Promise<string> {
    const oidc = this.provider(providerId);
    await this.countStart(req.ip);
    const config = await oidc.configuration();
    const { sessions } = this.deps;
    await sessions.ensure(req, res);
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const now = Date.now();
    const pending = Object.entries(req.session.oidcPending ?? {}).filter(([, p]) => now - p.startedAt < PENDING_FOR_MS).slice(-(MAX_PENDING - 1));
    const login: OidcPending = { provider: oidc.settings.id, codeVerifier, nonce, returnTo: safeReturnTo(returnTo), startedAt: now };
    req.session.oidcPending = Object.fromEntries([...pending, [state, login]]);
    // A visitor's session that only holds a login under way lives minutes, not the full idle timeout.
    if (req.session.userId === undefined) req.session.cookie.maxAge = PENDING_FOR_MS;
    await sessions.save(req, true);
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: oidc.redirectUri,
      scope: oidc.settings.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return url.href;
  }

  /**
   * Finishes a sign-in at the callback: checks the state (one use only), exchanges the code, provisions or
   * updates the account, starts the session and records the login. Answers where the browser goes next.
   */
  async finish(req: Request, res: Response, providerId: string, callback: OidcCallback): Promise<string> {
    const oidc = this.provider(providerId);
    const { sessions, users } = this.deps;
    await sessions.ensure(req, res);
    const state = typeof callback.state === 'string' ? callback.state : '';
    const pending = req.session.oidcPending?.[state];
    if (!pending || pending.provider !== oidc.settings.id || Date.now() - pending.startedAt > PENDING_FOR_MS) throw Errors.oidcInvalidState();
    // One use only: a replayed callback finds nothing.
    delete req.session.oidcPending![state];
    await sessions.save(req);
    // From here on the callback is a real attempt at signing in: a refusal is a failed login, audited and counted.
    let refused: { userId: number | null; reason: string } | undefined;
    try {
      return await this.signIn(req, res, oidc, pending, state, callback, (r) => (refused = r));
    } catch (err) {
      const reason = refused ?? failureReason(err);
      if (reason) {
        const anonymous = { actor: { kind: 'anonymous' as const }, ip: req.ip ?? null };
        await users.events.publish([eventOf(anonymous, 'login.failed', reason.userId, { method: `oidc:${oidc.settings.id}`, reason: reason.reason })]);
      }
      throw err;
    }
  }

  private async signIn(
    req: Request,
    res: Response,
    oidc: OidcClient,
    pending: OidcPending,
    state: string,
    callback: OidcCallback,
    refuse: (r: { userId: number | null; reason: string }) => void,
  ): Promise<string> {
    const { sessions, users, provisioner } = this.deps;
    if (typeof callback.error === 'string') throw Errors.oidcLoginFailed(`The provider refused the sign-in: ${callback.error}.`);

    const { claims, idToken } = await this.claims(oidc, pending, state, callback.search);
    const s = oidc.settings;
    const user = await provisioner.resolve(identityFrom(oidc, claims), {
      autoProvision: s.autoProvision,
      roleSync: s.roleSync,
      defaultRole: s.defaultRole,
      usernameTaken: 'suffix',
      linkVerifiedEmail: s.emailLinking,
      allowedGroups: s.allowedGroups,
    });
    // Refused like a disabled local user's login.
    if (!user.active) {
      refuse({ userId: user.id, reason: 'disabled' });
      throw Errors.invalidCredentials('This account is disabled.');
    }
    const sub = String(claims.sub);
    const tags = [subTag(oidc.provider, sub), ...(typeof claims.sid === 'string' ? [sidTag(oidc.provider, claims.sid)] : [])];
    await sessions.start(req, res, user, { oidc: { provider: s.id, idToken }, tags });
    await users.recordLogin(user.id, { actor: { kind: 'user', userId: user.id, method: `oidc:${s.id}` }, ip: req.ip ?? null }, `oidc:${s.id}`);
    return pending.returnTo;
  }

  /**
   * OpenID Connect Back-Channel Logout: verifies the provider's logout token and ends the sessions it names
   * (by the provider's session id, else by subject). 400 for a missing or invalid token.
   */
  async backchannelLogout(providerId: string, logoutToken: unknown): Promise<void> {
    const oidc = this.provider(providerId);
    if (typeof logoutToken !== 'string' || logoutToken.length === 0 || logoutToken.length > 16_384) throw Errors.oidcInvalidLogoutToken('logout_token is required.');
    const { sub, sid, jti } = await oidc.verifyLogoutToken(logoutToken);
    let ended: number;
    try {
      ended = await this.deps.sessions.endTagged(sid ? sidTag(oidc.provider, sid) : subTag(oidc.provider, sub!));
    } catch (err) {
      // 503 session.store_unavailable: the sessions may live on, so the same token must work when sent again.
      oidc.forgetLogoutToken(jti);
      throw err;
    }
    this.deps.log.info({ provider: oidc.settings.id, ended }, 'back-channel logout');
    if (ended > 0) await this.deps.users.events.publish([eventOf({ actor: { kind: 'idp', provider: oidc.provider } }, 'session.ended', null, { reason: 'idp_logout', count: ended })]);
  }

  private provider(id: string): OidcClient {
    const found = this.deps.clients.get(id);
    if (!found) throw Errors.oidcUnknownProvider();
    return found;
  }

  /** Each start stores a pre-login session: one address may only start so many (429 with Retry-After). */
  private async countStart(ip: string | undefined): Promise<void> {
    try {
      await this.deps.starts.consume(clientKey(ip));
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw Errors.sessionStoreUnavailable();
      const limited = Errors.tooManyAttempts('Too many sign-ins started from this address; try again shortly.');
      Object.assign(limited.headers, { 'Retry-After': String(Math.max(1, Math.ceil(err.msBeforeNext / 1000))) });
      throw limited;
    }
  }

  /** The code exchanged for tokens, and the claims of the ID token with what userinfo adds. */
  private async claims(oidc: OidcClient, pending: OidcPending, state: string, search: string): Promise<{ claims: Record<string, unknown>; idToken: string | undefined }> {
    const config = await oidc.configuration();
    const currentUrl = new URL(oidc.redirectUri);
    currentUrl.search = search;
    let claims: Record<string, unknown>;
    let idToken: string | undefined;
    let accessToken: string | undefined;
    try {
      const tokens = await client.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      claims = { ...(tokens.claims() as Record<string, unknown>) };
      idToken = tokens.id_token;
      accessToken = tokens.access_token;
    } catch (err) {
      throw providerFailure(err, this.deps.log, oidc.settings.id);
    }
    // Some providers put groups, the username or the email only in userinfo. Best effort: the ID token's
    // claims win, and a userinfo failure only leaves out what the ID token lacks (absent groups change nothing).
    if (config.serverMetadata().userinfo_endpoint && accessToken) {
      try {
        claims = { ...(await client.fetchUserInfo(config, accessToken, String(claims.sub))), ...claims };
      } catch (err) {
        this.deps.log.warn({ provider: oidc.settings.id, err: (err as Error).message }, 'OIDC userinfo failed; using the ID token alone');
      }
    }
    return { claims, idToken };
  }
}

/** The IdP's logout URL for a session made by an OIDC login, when the provider has an end_session_endpoint. */
export async function idpLogoutUrl(
  clients: ReadonlyMap<string, OidcClient>,
  made: { provider: string; idToken?: string } | undefined,
  postLogoutRedirectUri: string,
): Promise<string | undefined> {
  const oidc = made && clients.get(made.provider);
  if (!oidc) return undefined;
  try {
    const config = await oidc.configuration();
    if (!config.serverMetadata().end_session_endpoint) return undefined;
    const params: Record<string, string> = { post_logout_redirect_uri: postLogoutRedirectUri, client_id: oidc.settings.clientId };
    if (made.idToken) params.id_token_hint = made.idToken;
    return client.buildEndSessionUrl(config, params).href;
  } catch {
    // The IdP is down: the local session still ends.
    return undefined;
  }
}
