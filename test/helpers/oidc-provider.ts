/**
 * A real OpenID provider (the `oidc-provider` package) in this process, on plain HTTP on loopback, for
 * the OIDC tests, and a fetch driver for its development login, consent and logout pages.
 *
 * Accounts: the login typed into the IdP's login form IS the account id and so the `sub` (oidc-provider
 * forces `sub` to the account id). Any login/password gets in; the claims come from the instance's
 * `accounts` table keyed by login (a login not in the table signs in with `sub` only).
 */
import { generateKeyPair, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';
import { SignJWT, type JWTPayload } from 'jose';
import Provider, { type ClientMetadata, type Configuration } from 'oidc-provider';
import { freePort } from './process.js';

export type Claims = Record<string, unknown>;

/** The claims each new TestIdp starts with, keyed by login (= sub). Each instance copies them. */
export const DEFAULT_ACCOUNTS: Readonly<Record<string, Claims>> = Object.freeze({
  alice: {
    name: 'Alice Liddell',
    preferred_username: 'alice',
    email: 'alice@example.com',
    email_verified: true,
    groups: ['staff'],
  },
  bob: {
    name: 'Bob Builder',
    preferred_username: 'bob',
    email: 'bob@example.com',
    email_verified: true,
    groups: [],
  },
  root: {
    name: 'Root Admin',
    preferred_username: 'root',
    email: 'root@example.com',
    email_verified: true,
    groups: ['usher-admins', 'staff'],
  },
  /** Keycloak-like: roles under realm_access.roles (and resource_access.<client>.roles), no `groups`. */
  'kc-admin': {
    name: 'Keycloak Admin',
    preferred_username: 'kc-admin',
    email: 'kc-admin@example.com',
    email_verified: true,
    realm_access: { roles: ['usher-admins', 'offline_access', 'default-roles-test'] },
    resource_access: { usher: { roles: ['admin'] } },
  },
  'kc-user': {
    name: 'Keycloak User',
    preferred_username: 'kc-user',
    email: 'kc-user@example.com',
    email_verified: true,
    realm_access: { roles: ['offline_access', 'default-roles-test'] },
  },
  /** Google-like: no groups claim at all, and no preferred_username. */
  gmail: {
    name: 'Gee Mail',
    given_name: 'Gee',
    family_name: 'Mail',
    email: 'gee.mail@gmail.com',
    email_verified: true,
  },
  unverified: {
    name: 'Un Verified',
    preferred_username: 'unverified',
    email: 'unverified@example.com',
    email_verified: false,
    groups: ['staff'],
  },
  /** Groups in claims whose own names contain dots, colons and slashes. */
  'url-claims': {
    name: 'Url Claims',
    preferred_username: 'url-claims',
    email: 'url-claims@example.com',
    email_verified: true,
    'https://example.com/groups': ['x', 'usher-admins'],
    'urn:example:groups': ['y'],
  },
});

/**
 * Claim names per scope. Only claims named here reach the ID token (with conformIdTokenClaims off,
 * every claim of every granted scope goes into the ID token). Extend with `startIdp({ claims })`.
 */
export const DEFAULT_SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  openid: ['sub'],
  profile: [
    'name',
    'given_name',
    'family_name',
    'nickname',
    'preferred_username',
    'groups',
    'roles',
    'realm_access',
    'resource_access',
    'https://example.com/groups',
    'urn:example:groups',
  ],
  email: ['email', 'email_verified'],
  groups: ['groups'],
});

export interface TestClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  backchannel_logout_uri?: string;
  backchannel_logout_session_required?: boolean;
  /** Default client_secret_post: what openid-client v6 uses when given a client secret string. */
  token_endpoint_auth_method?: string;
  /** Any other client metadata oidc-provider knows. */
  [key: string]: unknown;
}

/**
 * How the IdP misbehaves: false = normal; true or '503' = every request answered 503; 'reset' = every
 * connection and request destroyed (ECONNRESET / "other side closed"); 'hang' = requests accepted and
 * never answered (until setDown(false) or close(), which destroy them); 'refused' = not listening at all
 * (ECONNREFUSED), listening again on the same port at setDown(false).
 */
export type IdpOutage = boolean | '503' | 'reset' | 'hang' | 'refused';

/** One back-channel logout the provider sent (ok: the client answered 200/204). */
export interface BackchannelRecord {
  clientId: string;
  accountId: string;
  sid: string;
  ok: boolean;
  error?: string;
}

export interface TestIdp {
  /** http://127.0.0.1:<port>, no trailing slash; discovery at `${issuer}/.well-known/openid-configuration`. */
  issuer: string;
  port: number;
  provider: Provider;
  /** This instance's accounts by login (= sub); mutable at any time, read at every token issuance. */
  accounts: Map<string, Claims>;
  /** Replaces a login's claims (null removes it: it then signs in with `sub` only). */
  setAccount(login: string, claims: Claims | null): void;
  /** Every back-channel logout the provider sent, oldest first. */
  backchannel: BackchannelRecord[];
  /** Sends a back-channel logout for (sub, sid) to a client's backchannel_logout_uri, as the provider would; rejects unless it answers 200/204. */
  backchannelLogout(clientId: string, sub: string, sid?: string): Promise<void>;
  /** Signs any payload with the provider's own ID-token key (RS256, its kid), for forged/tampered tokens. */
  signJwt(payload: JWTPayload, header?: { typ?: string; kid?: string; alg?: string }): Promise<string>;
  /**
   * A valid logout token for a client (iss, aud, iat, exp +120 s, jti, events, sub and/or sid), typ
   * logout+jwt; `overrides` replace claims, a value of undefined removes that claim.
   */
  logoutToken(clientId: string, claims: { sub?: string; sid?: string }, overrides?: Record<string, unknown>): Promise<string>;
  /** Simulates an outage (see IdpOutage); await it ('refused' and back are asynchronous). */
  setDown(down: IdpOutage): Promise<void>;
  close(): Promise<void>;
}

export interface StartIdpOptions {
  clients: TestClient[];
  /** A fixed port (for example to start Usher first and the IdP later); a free one by default. */
  port?: number;
  /** Accounts added to (or replacing) DEFAULT_ACCOUNTS for this instance. */
  accounts?: Record<string, Claims>;
  /** Extra claim names per scope, appended to DEFAULT_SCOPE_CLAIMS (new scopes allowed). */
  claims?: Record<string, string[]>;
}

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A fresh RS256 signing key per IdP, so no two test IdPs ever accept each other's tokens. */
async function rsaKey(): Promise<{ jwk: Record<string, unknown>; privateKey: KeyObject; kid: string }> {
  // Off the event loop: a test's Usher may be serving in this same process.
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  const kid = randomBytes(8).toString('hex');
  return { jwk: { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }, privateKey, kid };
}

/** Starts an oidc-provider on http://127.0.0.1:<port> with the given clients. */
export async function startIdp(opts: StartIdpOptions): Promise<TestIdp> {
  const port = opts.port ?? (await freePort());
  const issuer = `http://127.0.0.1:${port}`;
  const accounts = new Map<string, Claims>(Object.entries({ ...DEFAULT_ACCOUNTS, ...opts.accounts }).map(([k, v]) => [k, structuredClone(v)]));
  const scopeClaims: Record<string, string[]> = {};
  for (const [scope, names] of Object.entries(DEFAULT_SCOPE_CLAIMS)) scopeClaims[scope] = [...names];
  for (const [scope, names] of Object.entries(opts.claims ?? {})) scopeClaims[scope] = [...new Set([...(scopeClaims[scope] ?? []), ...names])];
  const key = await rsaKey();

  const config: Configuration = {
    clients: opts.clients.map(
      (c) =>
        ({
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_post',
          ...c,
        }) as ClientMetadata,
    ),
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ ...structuredClone(accounts.get(id) ?? {}), sub: id }),
    }),
    claims: scopeClaims,
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      claimsParameter: { enabled: true },
    },
    pkce: { required: () => true },
    // oidc-provider's own defaults, given explicitly so it does not print a notice for each.
    ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 3600, Session: 14 * 86400, Grant: 14 * 86400 },
    // Per-port cookie names: browsers share cookies across ports of one host, so two IdPs on
    // 127.0.0.1 in one Chromium would otherwise overwrite each other's session.
    cookies: {
      keys: [randomBytes(32).toString('hex')],
      names: { session: `op${port}_session`, interaction: `op${port}_interaction`, resume: `op${port}_resume` },
    },
    jwks: { keys: [key.jwk as never] },
    // oidc-provider refuses loopback targets (SSRF guard); our back-channel logout URIs are on loopback.
    fetch: (input, init) => {
      const { dispatcher: _dispatcher, ...rest } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
      return fetch(input, rest);
    },
  };
  const provider = new Provider(issuer, config);
  const backchannel: BackchannelRecord[] = [];
  provider.on('backchannel.success', (_ctx, client, accountId, sid) => {
    backchannel.push({ clientId: client.clientId, accountId, sid, ok: true });
  });
  provider.on('backchannel.error', (_ctx, err, client, accountId, sid) => {
    backchannel.push({ clientId: client.clientId, accountId, sid, ok: false, error: err.message });
  });

  let mode: Exclude<IdpOutage, true> = false;
  let closed = false;
  const handler = provider.callback();
  const held = new Set<http.ServerResponse>();
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    if (mode === false) return void handler(req, res);
    if (mode === '503') {
      res.writeHead(503, { 'content-type': 'text/plain', connection: 'close' });
      res.end('IdP down (test outage)');
    } else if (mode === 'hang') {
      held.add(res);
      res.on('close', () => held.delete(res));
    } else {
      req.socket.destroy();
    }
  });
  server.on('connection', (socket: Socket) => {
    if (mode === 'reset') return void socket.destroy();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      for (const res of held) res.socket?.destroy();
      server.close(() => resolve());
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
    });
  await listen();

  const idp: TestIdp = {
    issuer,
    port,
    provider,
    accounts,
    backchannel,
    setAccount(login, claims) {
      if (claims === null) accounts.delete(login);
      else accounts.set(login, structuredClone(claims));
    },
    async backchannelLogout(clientId, sub, sid) {
      const client = (await provider.Client.find(clientId)) as unknown as { backchannelLogout(sub: string, sid?: string): Promise<void> } | undefined;
      if (!client) throw new Error(`no client ${clientId} at ${issuer}`);
      await client.backchannelLogout(sub, sid);
    },
    signJwt(payload, header = {}) {
      return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header }).sign(key.privateKey);
    },
    logoutToken(clientId, { sub, sid }, overrides = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        iss: issuer,
        aud: clientId,
        iat: now,
        exp: now + 120,
        jti: randomUUID(),
        events: { [BACKCHANNEL_EVENT]: {} },
        ...(sub !== undefined ? { sub } : {}),
        ...(sid !== undefined ? { sid } : {}),
      };
      for (const [k, v] of Object.entries(overrides)) {
        if (v === undefined) delete payload[k];
        else payload[k] = v;
      }
      return idp.signJwt(payload as JWTPayload, { typ: 'logout+jwt' });
    },
    async setDown(down) {
      if (closed) throw new Error('TestIdp is closed');
      const next: Exclude<IdpOutage, true> = down === true ? '503' : down;
      if (next === mode) return;
      const prev = mode;
      mode = next;
      if (prev === 'hang') for (const res of held) res.socket?.destroy();
      if (prev === 'refused') await listen();
      if (next === 'refused') await stopListening();
      // Kept-alive connections get the outage at their next request; 'reset' drops them at once.
      else if (next === 'reset') for (const s of sockets) s.destroy();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (mode === 'refused') return;
      await stopListening();
    },
  };
  return idp;
}

// ---------------------------------------------------------------------------------------------
// A fetch "browser" for the IdP's pages.

/** What the driver needs from a cookie jar. */
export interface CookieJarLike {
  /** The Cookie header to send to `url`, if any. */
  header(url: string | URL): string | undefined;
  /** Keeps the Set-Cookie lines of a reply from `url`. */
  store(url: string | URL, setCookie: string[]): void;
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
  expires?: number;
}

/**
 * A small cookie jar for the IdP side of one "browser": cookies are kept per origin (scheme, host and
 * port), honour Path, Max-Age and Expires, and are all sent regardless of Secure/SameSite.
 */
export class IdpJar implements CookieJarLike {
  private readonly cookies = new Map<string, StoredCookie>();

  header(url: string | URL): string | undefined {
    const u = new URL(url);
    const now = Date.now();
    const out: StoredCookie[] = [];
    for (const [k, c] of this.cookies) {
      if (!k.startsWith(`${u.origin} `)) continue;
      if (c.expires !== undefined && c.expires <= now) {
        this.cookies.delete(k);
        continue;
      }
      const p = u.pathname;
      if (p === c.path || (p.startsWith(c.path) && (c.path.endsWith('/') || p[c.path.length] === '/'))) out.push(c);
    }
    out.sort((a, b) => b.path.length - a.path.length);
    return out.length ? out.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }

  store(url: string | URL, setCookie: string[]): void {
    const u = new URL(url);
    for (const line of setCookie) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cookie: StoredCookie = { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), path: '' };
      for (const attr of attrs) {
        const [rawName = '', ...rest] = attr.split('=');
        const name = rawName.trim().toLowerCase();
        const value = rest.join('=').trim();
        if (name === 'path' && value.startsWith('/')) cookie.path = value;
        else if (name === 'max-age') cookie.expires = Date.now() + Number(value) * 1000;
        else if (name === 'expires' && cookie.expires === undefined) cookie.expires = Date.parse(value);
      }
      if (!cookie.path) {
        const dir = u.pathname.slice(0, u.pathname.lastIndexOf('/'));
        cookie.path = dir || '/';
      }
      const key = `${u.origin} ${cookie.path} ${cookie.name}`;
      if (cookie.expires !== undefined && !(cookie.expires > Date.now())) this.cookies.delete(key);
      else this.cookies.set(key, cookie);
    }
  }

  /** Forgets every cookie (a fresh browser). */
  clear(): void {
    this.cookies.clear();
  }

  /** The names of the cookies currently held for an origin. */
  names(origin: string): string[] {
    const o = new URL(origin).origin;
    return [...this.cookies.entries()].filter(([k]) => k.startsWith(`${o} `)).map(([, c]) => c.name);
  }
}

/** A fresh, empty IdP jar (a new browser with no IdP session). */
export const idpJar = (): IdpJar => new IdpJar();

const STEP_TIMEOUT_MS = 5_000;
const MAX_STEPS = 15;

interface Page {
  url: string;
  status: number;
  location?: string;
  text: string;
}

async function step(jar: CookieJarLike, url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Page> {
  const headers: Record<string, string> = {};
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  let body: string | undefined;
  if (init.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(init.form).toString();
  }
  const res = await fetch(url, {
    method: init.method ?? (body ? 'POST' : 'GET'),
    headers,
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  jar.store(url, res.headers.getSetCookie());
  const text = await res.text();
  const loc = res.headers.get('location');
  return { url, status: res.status, location: loc ? new URL(loc, url).href : undefined, text };
}

const unescapeHtml = (s: string) =>
  s.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'" })[e] ?? _m);

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}\\s*=\\s*"([^"]*)"`, 'i').exec(tag);
  return m ? unescapeHtml(m[1]!) : undefined;
}

interface Form {
  action: string;
  fields: Record<string, string>;
}

/** The page's forms, with their absolute actions and their hidden inputs' values. */
function formsOf(page: Page): Form[] {
  const forms: Form[] = [];
  for (const m of page.text.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const fields: Record<string, string> = {};
    for (const input of m[2]!.matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(input[0], 'name');
      if (name && (attr(input[0], 'type') ?? 'text').toLowerCase() === 'hidden') fields[name] = attr(input[0], 'value') ?? '';
    }
    forms.push({ action: new URL(attr(m[1]!, 'action') ?? page.url, page.url).href, fields });
  }
  return forms;
}

function describe(page: Page): string {
  const text = page.text
    .replace(/<style[\s\S]*?<\/style>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return `${page.status} at ${page.url}: ${text.slice(0, 300)}`;
}

/**
 * Follows an authorization URL through the IdP's login (and consent) pages with `idpJar`'s cookies
 * (a fresh jar when omitted), and returns the final redirect URL back to the RP (the redirect_uri with
 * code & state, or with error=...), without calling it. When the jar already holds an IdP session, the
 * IdP signs in that session's user and `login` is not asked for (unless the RP sent prompt=login; a
 * different login then first ends the old IdP session, with its back-channel logouts, as oidc-provider
 * does). Throws on an IdP error page, on response_mode=form_post, or after 15 steps.
 */
export async function signInAtIdp(authorizationUrl: string, login: string, password = 'password', idpJar: CookieJarLike = new IdpJar()): Promise<string> {
  const idpOrigin = new URL(authorizationUrl).origin;
  let page = await step(idpJar, authorizationUrl);
  for (let i = 0; i < MAX_STEPS; i++) {
    if (page.status >= 300 && page.status < 400 && page.location) {
      if (new URL(page.location).origin !== idpOrigin) return page.location;
      page = await step(idpJar, page.location);
      continue;
    }
    if (page.status !== 200) throw new Error(`IdP sign-in failed: ${describe(page)}`);
    const forms = formsOf(page);
    const form = forms.find((f) => f.fields.prompt === 'login' || f.fields.prompt === 'consent');
    if (form) {
      const fields = form.fields.prompt === 'login' ? { ...form.fields, login, password } : form.fields;
      page = await step(idpJar, form.action, { form: fields });
      continue;
    }
    // A self-submitting form: when another user signs in over an existing IdP session, oidc-provider
    // first posts a logout of the old session (which sends its back-channel logouts), then resumes.
    const auto = /document\.forms\[0\]\.submit\(\)/.test(page.text) ? forms[0] : undefined;
    if (!auto) throw new Error(`IdP sign-in: no login or consent form: ${describe(page)}`);
    if (new URL(auto.action).origin !== idpOrigin) throw new Error(`IdP sign-in: a form_post response to the RP is not supported (${auto.action})`);
    page = await step(idpJar, auto.action, { form: auto.fields });
  }
  throw new Error(`IdP sign-in did not get back to the RP in ${MAX_STEPS} steps (last ${page.status} at ${page.url})`);
}

/**
 * RP-initiated logout at the IdP: GETs the end-session URL (with id_token_hint, post_logout_redirect_uri,
 * state... as the RP built it) with `idpJar`'s cookies, submits the confirmation form (logout=yes: the
 * whole IdP session ends, and every client that had a session in it gets its back-channel logout before
 * this returns; `everywhere: false` answers "No, stay signed in", which only logs out the hinted client),
 * and returns the final redirect location: the post_logout_redirect_uri (+state) when one was given and
 * registered, else the IdP's own end_session success page. Never follows it off the IdP.
 */
export async function signOutAtIdp(endSessionUrl: string, idpJar: CookieJarLike, opts: { everywhere?: boolean } = {}): Promise<string> {
  const everywhere = opts.everywhere ?? true;
  const page = await step(idpJar, endSessionUrl);
  if (page.status !== 200) throw new Error(`IdP end-session failed: ${describe(page)}`);
  const form = formsOf(page).find((f) => f.fields.xsrf !== undefined);
  if (!form) throw new Error(`IdP end-session: no logout form: ${describe(page)}`);
  const fields: Record<string, string> = { ...form.fields };
  // With a session, the form holds only xsrf and the "Yes" button outside it carries logout=yes;
  // without one, oidc-provider auto-posts xsrf and logout=yes itself.
  if (everywhere) fields.logout = 'yes';
  else delete fields.logout;
  const done = await step(idpJar, form.action, { form: fields });
  if (!(done.status >= 300 && done.status < 400 && done.location)) throw new Error(`IdP logout confirmation failed: ${describe(done)}`);
  return done.location;
}
