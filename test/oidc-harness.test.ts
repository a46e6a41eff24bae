/**
 * Proves the OIDC test harness against the provider alone (no Usher): an openid-client v6 relying party
 * does code + PKCE + state + nonce flows through signInAtIdp and through Chromium, reads the fixture
 * claims, logs out at the IdP and receives the back-channel logout, and sees each kind of outage.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillIdpLogin, withBrowser } from './helpers/browser.js';
import { IdpJar, idpJar, signInAtIdp, signOutAtIdp, startIdp, type TestClient, type TestIdp } from './helpers/oidc-provider.js';
import { freePort } from './helpers/process.js';

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A tiny plain-HTTP "RP": records every request (method, path, query, form body) and answers 200. */
interface Recorder {
  url: string;
  requests: Array<{ method: string; path: string; query: URLSearchParams; form: URLSearchParams }>;
  /** Per path: a redirect target instead of 200. */
  redirects: Map<string, () => string>;
  close(): Promise<void>;
}

async function recorder(): Promise<Recorder> {
  const requests: Recorder['requests'] = [];
  const redirects = new Map<string, () => string>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      requests.push({ method: req.method ?? '', path: u.pathname, query: u.searchParams, form: new URLSearchParams(body) });
      const to = redirects.get(u.pathname);
      if (to) {
        res.writeHead(302, { location: to() });
        res.end();
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!DOCTYPE html><title>RP</title><p>ok</p>');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    redirects,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The RP side, exactly as Usher will do it with openid-client v6. */
async function discover(idp: TestIdp, c: TestClient): Promise<client.Configuration> {
  const config = await client.discovery(new URL(idp.issuer), c.client_id, c.client_secret, undefined, {
    execute: [client.allowInsecureRequests],
    timeout: 5,
  });
  client.enableNonRepudiationChecks(config);
  return config;
}

interface Pending {
  url: URL;
  verifier: string;
  state: string;
  nonce: string;
}

async function authorization(config: client.Configuration, redirectUri: string, extra: Record<string, string> = {}): Promise<Pending> {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

async function exchange(config: client.Configuration, callbackUrl: string, p: Pending) {
  const tokens = await client.authorizationCodeGrant(config, new URL(callbackUrl), {
    pkceCodeVerifier: p.verifier,
    expectedState: p.state,
    expectedNonce: p.nonce,
    idTokenExpected: true,
  });
  return { tokens, claims: tokens.claims()! };
}

/** One whole fetch-driven code flow; returns the ID token and its claims. */
async function codeFlow(idp: TestIdp, c: TestClient, login: string, jar = idpJar()) {
  const config = await discover(idp, c);
  const p = await authorization(config, c.redirect_uris[0]!);
  const callback = await signInAtIdp(p.url.href, login, 'any-password', jar);
  expect(callback.startsWith(c.redirect_uris[0]!)).toBe(true);
  return { config, ...(await exchange(config, callback, p)) };
}

describe('OIDC test harness (oidc-provider alone)', () => {
  let rp: Recorder;
  let idp: TestIdp;
  let app: TestClient;

  beforeAll(async () => {
    rp = await recorder();
    app = {
      client_id: 'usher',
      client_secret: 'usher-secret-0123456789',
      redirect_uris: [`${rp.url}/callback`],
      post_logout_redirect_uris: [`${rp.url}/logged-out`],
      backchannel_logout_uri: `${rp.url}/backchannel`,
      backchannel_logout_session_required: true,
    };
    idp = await startIdp({ clients: [app, { client_id: 'other', client_secret: 'other-secret-0123456789', redirect_uris: [`${rp.url}/other-callback`] }] });
  });

  afterAll(async () => {
    await idp?.close();
    await rp?.close();
  });

  it('serves discovery with the endpoints the RP needs', async () => {
    const config = await discover(idp, app);
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(idp.issuer);
    expect(meta.end_session_endpoint).toBe(`${idp.issuer}/session/end`);
    expect(meta.backchannel_logout_supported).toBe(true);
    expect(meta.backchannel_logout_session_supported).toBe(true);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
  });

  it('puts each fixture account’s claims in the ID token', async () => {
    const alice = await codeFlow(idp, app, 'alice');
    expect(alice.claims).toMatchObject({ iss: idp.issuer, aud: 'usher', sub: 'alice', preferred_username: 'alice', email: 'alice@example.com', email_verified: true, groups: ['staff'] });
    expect(typeof alice.claims.sid).toBe('string');
    expect(decodeProtectedHeader(alice.tokens.id_token!).alg).toBe('RS256');

    const root = await codeFlow(idp, app, 'root');
    expect(root.claims.groups).toEqual(['usher-admins', 'staff']);

    const kc = await codeFlow(idp, app, 'kc-admin');
    expect(kc.claims.realm_access).toEqual({ roles: ['usher-admins', 'offline_access', 'default-roles-test'] });
    expect(kc.claims.resource_access).toEqual({ usher: { roles: ['admin'] } });
    expect(kc.claims).not.toHaveProperty('groups');

    const google = await codeFlow(idp, app, 'gmail');
    expect(google.claims).toMatchObject({ sub: 'gmail', email: 'gee.mail@gmail.com', email_verified: true });
    expect(google.claims).not.toHaveProperty('groups');
    expect(google.claims).not.toHaveProperty('preferred_username');

    const unverified = await codeFlow(idp, app, 'unverified');
    expect(unverified.claims.email_verified).toBe(false);

    const urls = await codeFlow(idp, app, 'url-claims');
    expect(urls.claims['https://example.com/groups']).toEqual(['x', 'usher-admins']);
    expect(urls.claims['urn:example:groups']).toEqual(['y']);

    const stranger = await codeFlow(idp, app, 'nobody-in-the-table');
    expect(stranger.claims.sub).toBe('nobody-in-the-table');
    expect(stranger.claims).not.toHaveProperty('email');
  });

  it('reads the accounts table at each login, so a test can move a user between groups', async () => {
    idp.setAccount('carol', { preferred_username: 'carol', email: 'carol@example.com', email_verified: true, groups: ['usher-admins'] });
    expect((await codeFlow(idp, app, 'carol')).claims.groups).toEqual(['usher-admins']);
    idp.setAccount('carol', { ...idp.accounts.get('carol'), groups: ['staff'] });
    expect((await codeFlow(idp, app, 'carol')).claims.groups).toEqual(['staff']);
    idp.setAccount('carol', null);
    expect((await codeFlow(idp, app, 'carol')).claims).not.toHaveProperty('groups');
  });

  it('reuses the IdP session of a jar, and a fresh jar asks again', async () => {
    const jar = new IdpJar();
    expect((await codeFlow(idp, app, 'alice', jar)).claims.sub).toBe('alice');
    expect(jar.names(idp.issuer)).toContain(`op${idp.port}_session`);
    // Same jar: the IdP session answers, the login given is not asked for.
    expect((await codeFlow(idp, app, 'bob', jar)).claims.sub).toBe('alice');
    // Unless the RP forces a login; another user then ends alice's IdP session first, with its
    // back-channel logouts, as oidc-provider does.
    const records = idp.backchannel.length;
    const config = await discover(idp, app);
    const p = await authorization(config, app.redirect_uris[0]!, { prompt: 'login' });
    expect((await exchange(config, await signInAtIdp(p.url.href, 'bob', 'pw', jar), p)).claims.sub).toBe('bob');
    expect(idp.backchannel.slice(records)).toMatchObject([{ clientId: 'usher', accountId: 'alice', ok: true }]);
    // A fresh jar is a new browser.
    expect((await codeFlow(idp, app, 'bob', idpJar())).claims.sub).toBe('bob');
  });

  it('hands back error redirects to the RP instead of throwing', async () => {
    const config = await discover(idp, app);
    const p = await authorization(config, app.redirect_uris[0]!, { prompt: 'none' });
    const back = new URL(await signInAtIdp(p.url.href, 'alice'));
    expect(back.searchParams.get('error')).toBe('login_required');
    expect(back.searchParams.get('state')).toBe(p.state);
  });

  it('requires PKCE', async () => {
    const config = await discover(idp, app);
    const url = client.buildAuthorizationUrl(config, { redirect_uri: app.redirect_uris[0]!, scope: 'openid', state: 's' });
    const back = new URL(await signInAtIdp(url.href, 'alice'));
    expect(back.searchParams.get('error')).toBe('invalid_request');
    expect(back.searchParams.get('error_description')).toMatch(/PKCE/);
  });

  it('gives the same sub for the same login at two IdPs, with distinct issuers and keys', async () => {
    const second = await startIdp({ clients: [app] });
    try {
      const a = await codeFlow(idp, app, 'alice');
      const b = await codeFlow(second, app, 'alice');
      expect(a.claims.sub).toBe('alice');
      expect(b.claims.sub).toBe('alice');
      expect(a.claims.iss).not.toBe(b.claims.iss);
      expect(decodeProtectedHeader(a.tokens.id_token!).kid).not.toBe(decodeProtectedHeader(b.tokens.id_token!).kid);
      // One IdP's accounts are its own.
      second.setAccount('alice', { groups: ['elsewhere'] });
      expect((await codeFlow(idp, app, 'alice')).claims.groups).toEqual(['staff']);
      expect((await codeFlow(second, app, 'alice')).claims.groups).toEqual(['elsewhere']);
    } finally {
      await second.close();
    }
  });

  it('RP-initiated logout sends a verifiable back-channel logout token for the session', async () => {
    const jar = idpJar();
    const { config, tokens, claims } = await codeFlow(idp, app, 'alice', jar);
    // A second client signed in in the same IdP session, without a backchannel_logout_uri.
    const otherClient: TestClient = { client_id: 'other', client_secret: 'other-secret-0123456789', redirect_uris: [`${rp.url}/other-callback`] };
    expect((await codeFlow(idp, otherClient, 'ignored', jar)).claims.sub).toBe('alice');

    const before = rp.requests.length;
    const records = idp.backchannel.length;
    const endSession = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: `${rp.url}/logged-out`,
      state: 'bye',
    });
    const back = new URL(await signOutAtIdp(endSession.href, jar));
    expect(back.origin + back.pathname).toBe(`${rp.url}/logged-out`);
    expect(back.searchParams.get('state')).toBe('bye');

    // Sent (and answered) before the confirmation redirected.
    const posts = rp.requests.slice(before).filter((r) => r.path === '/backchannel');
    expect(posts).toHaveLength(1);
    expect(posts[0]!.method).toBe('POST');
    const logoutToken = posts[0]!.form.get('logout_token')!;
    const { payload, protectedHeader } = await jwtVerify(logoutToken, createRemoteJWKSet(new URL(`${idp.issuer}/jwks`)), {
      issuer: idp.issuer,
      audience: 'usher',
      typ: 'logout+jwt',
    });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload).toMatchObject({ sub: 'alice', sid: claims.sid, events: { [BACKCHANNEL_EVENT]: {} } });
    expect(payload).not.toHaveProperty('nonce');
    expect(typeof payload.jti).toBe('string');
    expect(idp.backchannel.slice(records)).toEqual([{ clientId: 'usher', accountId: 'alice', sid: claims.sid, ok: true }]);

    // The IdP session is gone: the same jar must log in again.
    const p = await authorization(config, app.redirect_uris[0]!);
    expect((await exchange(config, await signInAtIdp(p.url.href, 'bob', 'pw', jar), p)).claims.sub).toBe('bob');
  });

  it('logout without a session still completes, and a failing back-channel endpoint is recorded', async () => {
    const jar = idpJar();
    const { config, tokens, claims } = await codeFlow(idp, app, 'bob', jar);
    expect(claims.sub).toBe('bob');
    // Not logged in there (a fresh jar): oidc-provider auto-posts the confirmation; nothing to log out.
    const records = idp.backchannel.length;
    const end = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${rp.url}/logged-out` });
    expect(await signOutAtIdp(end.href, idpJar())).toBe(`${rp.url}/logged-out`);
    expect(idp.backchannel.length).toBe(records);
    // Without a post_logout_redirect_uri, the IdP's own success page.
    const failing = await startIdp({ clients: [{ ...app, backchannel_logout_uri: `http://127.0.0.1:${await freePort()}/gone` }] });
    try {
      const f = await codeFlow(failing, { ...app }, 'bob', jar);
      const endF = client.buildEndSessionUrl(f.config, { id_token_hint: f.tokens.id_token! });
      expect(await signOutAtIdp(endF.href, jar)).toBe(`${failing.issuer}/session/end/success`);
      expect(failing.backchannel).toHaveLength(1);
      expect(failing.backchannel[0]).toMatchObject({ clientId: 'usher', accountId: 'bob', ok: false });
    } finally {
      await failing.close();
    }
  });

  it('backchannelLogout() and logoutToken() make tokens the RP can verify', async () => {
    const before = rp.requests.length;
    await idp.backchannelLogout('usher', 'alice', 'some-sid');
    const post = rp.requests.slice(before).find((r) => r.path === '/backchannel')!;
    const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
    const sent = await jwtVerify(post.form.get('logout_token')!, jwks, { issuer: idp.issuer, audience: 'usher' });
    expect(sent.payload).toMatchObject({ sub: 'alice', sid: 'some-sid' });

    const made = await jwtVerify(await idp.logoutToken('usher', { sid: 'abc' }), jwks, { issuer: idp.issuer, audience: 'usher', typ: 'logout+jwt' });
    expect(made.payload).toMatchObject({ sid: 'abc', events: { [BACKCHANNEL_EVENT]: {} } });
    expect(made.payload).not.toHaveProperty('sub');
    const tampered = await jwtVerify(await idp.logoutToken('usher', { sub: 'x' }, { events: undefined, nonce: 'n' }), jwks);
    expect(tampered.payload).not.toHaveProperty('events');
    expect(tampered.payload.nonce).toBe('n');
  });

  it('simulates outages: 503, reset, hang, refused, and recovers', async () => {
    const discovery = `${idp.issuer}/.well-known/openid-configuration`;
    const get = (ms = 1_500) => fetch(discovery, { signal: AbortSignal.timeout(ms) });
    try {
      await idp.setDown(true);
      expect((await get()).status).toBe(503);
      await expect(discover(idp, app)).rejects.toThrow();

      await idp.setDown('reset');
      await expect(get()).rejects.toThrow(/fetch failed/);

      await idp.setDown('hang');
      const t0 = Date.now();
      await expect(get(300)).rejects.toThrow(/abort|timeout/i);
      expect(Date.now() - t0).toBeLessThan(1_500);

      await idp.setDown('refused');
      const refused = await get().catch((e: Error) => e);
      expect(refused).toBeInstanceOf(Error);
      expect(String((refused as Error & { cause?: { code?: string } }).cause?.code)).toBe('ECONNREFUSED');
    } finally {
      await idp.setDown(false);
    }
    expect((await get()).status).toBe(200);
    expect((await codeFlow(idp, app, 'alice')).claims.sub).toBe('alice');
  });

  it('can start on a chosen port (an IdP that comes up after the RP)', async () => {
    const port = await freePort();
    const late = await startIdp({ port, clients: [app] });
    try {
      expect(late.issuer).toBe(`http://127.0.0.1:${port}`);
      expect((await codeFlow(late, app, 'root')).claims.groups).toEqual(['usher-admins', 'staff']);
    } finally {
      await late.close();
    }
  });

  it('drives a whole code flow in headless Chromium', async () => {
    const config = await discover(idp, app);
    const pending = await authorization(config, app.redirect_uris[0]!);
    rp.redirects.set('/start', () => pending.url.href);
    const before = rp.requests.length;
    try {
      const finalUrl = await withBrowser(async (page) => {
        await page.goto(`${rp.url}/start`);
        expect(new URL(page.url()).origin).toBe(idp.issuer);
        return fillIdpLogin(page, 'kc-admin', 'secret');
      });
      const callback = rp.requests.slice(before).find((r) => r.path === '/callback')!;
      expect(callback.query.get('code')).toBeTruthy();
      expect(callback.query.get('state')).toBe(pending.state);
      expect(finalUrl.startsWith(`${rp.url}/callback?`)).toBe(true);
      const { claims } = await exchange(config, finalUrl, pending);
      expect(claims).toMatchObject({ sub: 'kc-admin', realm_access: { roles: ['usher-admins', 'offline_access', 'default-roles-test'] } });
    } finally {
      rp.redirects.delete('/start');
    }
  });
});
