import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import { createRemoteJWKSet, customFetch, jwtVerify, type JWTPayload } from 'jose';
import type { Logger } from 'pino';
import type { OidcProviderConfig } from '../../config/oidc.js';
import { Errors } from '../../errors.js';
import { observedFetch, type OidcOperation, type OidcRequestObserver, type ProviderFetch } from './observed-fetch.js';

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/**
 * One configured provider. Discovery is lazy and retried: Usher starts without the IdP, a failed
 * discovery is forgotten so the next login tries again, and every request to the IdP is bounded by the
 * configured timeout (a login then answers 502 oidc.provider_unavailable).
 */
export class OidcClient {
  private discovered: Promise<client.Configuration> | undefined;
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  /** Logout tokens already used (jti), kept for their short lifetime, so one cannot be replayed. */
  private readonly seenJti = new Map<string, number>();
  /** The discovered endpoints, by URL without query: what each request to the provider is for. */
  private readonly endpoints = new Map<string, OidcOperation>();
  /** openid-client's and jose's requests, timed for `observe` when it is given. */
  private readonly fetch: ProviderFetch | undefined;
  private readonly fetchJwks: ProviderFetch | undefined;

  constructor(
    readonly settings: OidcProviderConfig,
    readonly redirectUri: string,
    private readonly timeoutMs: number,
    private readonly log: Logger,
    /** Told of every request to the provider (metrics). */
    observe?: OidcRequestObserver,
  ) {
    this.fetch = observe && observedFetch(settings.id, (url) => this.operationOf(url), observe);
    this.fetchJwks = observe && observedFetch(settings.id, () => 'jwks', observe);
  }

  /** The provider as policy rules (g2) name it: `oidc:<id>`. */
  get provider(): string {
    return `oidc:${this.settings.id}`;
  }

  /** Who vouches for a `sub`: accounts are found by (issuer, sub), whatever the provider's id. */
  get authority(): string {
    const issuer = this.settings.issuer;
    // The identities column holds 128 characters; a longer issuer is kept as its digest.
    return issuer.length <= 120 ? `oidc:${issuer}` : `oidc:sha256:${createHash('sha256').update(issuer).digest('hex')}`;
  }

  /** The provider's configuration; 502 while it cannot be discovered. */
  async configuration(): Promise<client.Configuration> {
    if (!this.discovered) {
      const { issuer, clientId, clientSecret, insecureLoopback } = this.settings;
      const attempt = client
        .discovery(new URL(issuer), clientId, { redirect_uris: [this.redirectUri], response_types: ['code'] }, clientSecret ? client.ClientSecretBasic(clientSecret) : client.None(), {
          execute: insecureLoopback ? [client.allowInsecureRequests] : [],
          timeout: Math.ceil(this.timeoutMs / 1000),
          ...(this.fetch ? { [client.customFetch]: this.fetch } : {}),
        })
        .then((config) => {
          // Check the ID token's signature too, not only its claims (TLS alone would allow skipping it).
          client.enableNonRepudiationChecks(config);
          const meta = config.serverMetadata();
          const known: [string | undefined, OidcOperation][] = [
            [meta.token_endpoint, 'token'],
            [meta.userinfo_endpoint, 'userinfo'],
            [meta.jwks_uri, 'jwks'],
          ];
          for (const [url, operation] of known) if (url) this.endpoints.set(withoutQuery(url), operation);
          return config;
        });
      this.discovered = attempt;
      attempt.catch((err: unknown) => {
        if (this.discovered === attempt) this.discovered = undefined;
        this.log.warn({ provider: this.settings.id, err: (err as Error)?.message }, 'OIDC discovery failed; will retry');
      });
    }
    try {
      return await this.discovered;
    } catch {
      throw Errors.oidcProviderUnavailable();
    }
  }

  /** Verifies a back-channel logout token fully (OpenID Connect Back-Channel Logout 1.0, section 2.6). */
  async verifyLogoutToken(token: string): Promise<{ sub?: string; sid?: string; jti: string }> {
    const config = await this.configuration();
    const meta = config.serverMetadata();
    if (!meta.jwks_uri) throw Errors.oidcInvalidLogoutToken('The provider publishes no keys.');
    this.jwks ??= createRemoteJWKSet(new URL(meta.jwks_uri), { timeoutDuration: this.timeoutMs, ...(this.fetchJwks ? { [customFetch]: this.fetchJwks } : {}) });
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        issuer: meta.issuer,
        audience: this.settings.clientId,
        algorithms: meta.id_token_signing_alg_values_supported?.filter((a) => a !== 'none') ?? ['RS256'],
        maxTokenAge: '10m',
        clockTolerance: 30,
      }));
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (/ERR_JWKS_TIMEOUT|ERR_JOSE_GENERIC/.test(code) || (err as Error).name === 'TypeError') throw Errors.oidcProviderUnavailable();
      throw Errors.oidcInvalidLogoutToken(`The logout token is not valid: ${(err as Error).message}`);
    }
    const events = payload.events as Record<string, unknown> | undefined;
    if (!events || typeof events[BACKCHANNEL_EVENT] !== 'object') throw Errors.oidcInvalidLogoutToken('The token is not a logout token (events).');
    if (payload.nonce !== undefined) throw Errors.oidcInvalidLogoutToken('A logout token must not hold a nonce.');
    if (typeof payload.jti !== 'string' || typeof payload.iat !== 'number') throw Errors.oidcInvalidLogoutToken('The logout token lacks jti or iat.');
    const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
    const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
    if (!sub && !sid) throw Errors.oidcInvalidLogoutToken('The logout token names neither sub nor sid.');
    const now = Date.now();
    for (const [jti, until] of this.seenJti) if (until < now) this.seenJti.delete(jti);
    if (this.seenJti.has(payload.jti)) throw Errors.oidcInvalidLogoutToken('This logout token was used already.');
    this.seenJti.set(payload.jti, now + 15 * 60_000);
    return { sub, sid, jti: payload.jti };
  }

  /** What a request to the provider is for, by its URL (discovery's is the only one before the endpoints are known). */
  private operationOf(url: string): OidcOperation {
    const bare = withoutQuery(url);
    if (bare.includes('/.well-known/')) return 'discovery';
    return this.endpoints.get(bare) ?? 'other';
  }

  /** Takes back a logout token's use when nothing was ended (the session store failed), so the provider may send it again. */
  forgetLogoutToken(jti: string): void {
    this.seenJti.delete(jti);
  }
}

function withoutQuery(raw: string): string {
  try {
    const url = new URL(raw);
    url.search = '';
    url.hash = '';
    return url.href;
  } catch {
    return raw;
  }
}

/** A returnTo that can only stay on this site: a path; `//evil`, `/\evil`, absolute URLs and the like become `/`. */
export function safeReturnTo(raw: unknown): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must be refused
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.startsWith('//') || /[\\\u0000-\u001f\u007f]/.test(raw)) return '/';
  try {
    const base = 'http://usher.invalid';
    const url = new URL(raw, base);
    const path = url.pathname + url.search + url.hash;
    // Checked again after the URL parser resolved dot segments: "/.//evil" becomes "//evil".
    return url.origin === base && !path.startsWith('//') && !path.startsWith('/\\') ? path : '/';
  } catch {
    return '/';
  }
}
