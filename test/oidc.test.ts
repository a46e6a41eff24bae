import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safeReturnTo } from '../src/authn/oidc/client.js';
import { storeGet } from '../src/sessions/backend.js';
import { startServer, type TestServer } from './helpers/app.js';
import { withBrowser, fillIdpLogin } from './helpers/browser.js';
import { client, errorCode, sidOf, type Jar } from './helpers/http.js';
import { IdpJar, signInAtIdp, signOutAtIdp, startIdp, type TestIdp } from './helpers/oidc-provider.js';
import { freePort } from './helpers/process.js';
import { setupAdmin } from './helpers/users.js';
import { auditEntries } from './helpers/audit.js';

const AUTH = '/api/v1/auth';
const SECRET = 'client-secret-for-tests-0123456789';

/** Usher's provider entries and the IdP clients that match them. */
function provider(id: string, issuer: string, extra: Record<string, unknown> = {}) {
  return { id, name: `Test ${id}`, issuer, clientId: `usher-${id}`, clientSecret: SECRET, allowedAdminGroups: ['usher-admins'], ...extra };
}
function idpClient(id: string, usherUrl: string) {
  return {
    client_id: `usher-${id}`,
    client_secret: SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [`${usherUrl}${AUTH}/oidc/${id}/callback`],
    post_logout_redirect_uris: [`${usherUrl}/`],
    backchannel_logout_uri: `${usherUrl}${AUTH}/oidc/${id}/backchannel-logout`,
    backchannel_logout_session_required: true,
  };
}

describe('OIDC login', () => {
  let idp: TestIdp;
  let idp2: TestIdp;
  let server: TestServer;
  let usherUrl: string;
  let adminKey: string;

  beforeAll(async () => {
    const port = await freePort();
    usherUrl = `http://127.0.0.1:${port}`;
    const ids = ['main', 'kc', 'strict', 'linking', 'uri'];
    idp = await startIdp({ clients: ids.map((id) => idpClient(id, usherUrl)) });
    idp2 = await startIdp({ clients: [idpClient('other', usherUrl)] });
    server = await startServer('sqlite', {
      port,
      settings: {
        server: { publicUrl: usherUrl },
        resources: [{ type: 'library', defaultForNewUsers: [1] }],
        groupGrants: [{ group: 'staff', provider: 'oidc:main', type: 'library', id: 5 }],
        oidc: {
          timeout: '2s',
          startsPerMinute: 10_000,
          providers: [
            provider('main', idp.issuer),
            provider('kc', idp.issuer, { groupsClaim: 'realm_access.roles' }),
            provider('strict', idp.issuer, { allowedGroups: ['staff'] }),
            provider('linking', idp.issuer, { emailLinking: true }),
            provider('uri', idp.issuer, { groupsClaim: ['https://example.com/groups'] }),
            provider('other', idp2.issuer),
          ],
        },
      },
    });
    adminKey = await setupAdmin(client(usherUrl));
  });
  afterAll(async () => {
    await server?.close();
    await idp?.close();
    await idp2?.close();
  });

  /** The whole code flow with fetch: Usher's login route, the IdP's pages, Usher's callback. */
  async function login(id: string, who: string, opts: { jar?: Jar; idpJar?: IdpJar; returnTo?: string } = {}) {
    const jar = opts.jar ?? {};
    const browser = client(usherUrl, jar);
    const start = await browser.get(`${AUTH}/oidc/${id}/login${opts.returnTo !== undefined ? `?returnTo=${encodeURIComponent(opts.returnTo)}` : ''}`);
    expect(start.status, start.text).toBe(302);
    const authorize = start.headers.get('location')!;
    const callback = await signInAtIdp(authorize, who, 'password', opts.idpJar ?? new IdpJar());
    const done = await browser.get(callback.slice(usherUrl.length));
    return { done, jar, browser, authorize, callback };
  }

  const me = async (jar: Jar) => (await client(usherUrl, jar).get(`${AUTH}/me`)).body;

  it('limits how many logins one address may start per minute (each stores a pre-login session)', async () => {
    const limited = await startServer('sqlite', {
      settings: { server: { publicUrl: 'http://127.0.0.1:1' }, oidc: { startsPerMinute: 3, providers: [provider('main', idp.issuer)] } },
    });
    try {
      const starts = [];
      for (let i = 0; i < 4; i++) starts.push(await client(limited.url, {}).get(`${AUTH}/oidc/main/login`));
      expect(starts.map((r) => r.status)).toEqual([302, 302, 302, 429]);
      expect(Number(starts[3]!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await limited.usher.db('sessions').count({ n: '*' }).first()).toMatchObject({ n: 3 });
    } finally {
      await limited.close();
    }
  });

  it('refuses an API key in the URL on the public OIDC routes too', async () => {
    const res = await client(usherUrl).get(`${AUTH}/providers?api_key=usk_${'a'.repeat(43)}`);
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe('auth.key_in_url');
  });

  it('lists the providers for a login page', async () => {
    const res = await client(usherUrl).get(`${AUTH}/providers`);
    expect(res.status).toBe(200);
    expect(res.body.map((p: { id: string }) => p.id)).toEqual(['main', 'kc', 'strict', 'linking', 'uri', 'other']);
    expect(res.body[0]).toEqual({ id: 'main', name: 'Test main', loginUrl: `${AUTH}/oidc/main/login` });
  });

  it('sends the browser to the IdP with PKCE S256, state and nonce', async () => {
    const res = await client(usherUrl, {}).get(`${AUTH}/oidc/main/login`);
    const url = new URL(res.headers.get('location')!);
    expect(url.origin).toBe(idp.issuer);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('state')).toBeTruthy();
    expect(url.searchParams.get('nonce')).toBeTruthy();
    expect(url.searchParams.get('redirect_uri')).toBe(`${usherUrl}${AUTH}/oidc/main/callback`);
    expect(url.searchParams.get('scope')).toBe('openid profile email');
  });

  it('provisions a first-time user with role user and redirects to returnTo', async () => {
    const { done, jar } = await login('main', 'alice', { returnTo: '/library?shelf=1' });
    expect(done.status).toBe(302);
    expect(done.headers.get('location')).toBe('/library?shelf=1');
    expect(await me(jar)).toMatchObject({ username: 'alice', role: 'user', authSource: 'oidc', email: 'alice@example.com', hasPassword: false });
  });

  it('makes a member of allowedAdminGroups an admin, and demotes at the next login after they leave it', async () => {
    idp.setAccount('dana', { preferred_username: 'dana', email: 'dana@example.com', email_verified: true, groups: ['usher-admins'] });
    expect(await me((await login('main', 'dana')).jar)).toMatchObject({ username: 'dana', role: 'admin' });
    idp.setAccount('dana', { preferred_username: 'dana', email: 'dana@example.com', email_verified: true, groups: ['staff'] });
    expect(await me((await login('main', 'dana')).jar)).toMatchObject({ username: 'dana', role: 'user' });
  });

  it('keeps the role when the groups claim is missing', async () => {
    idp.setAccount('erin', { preferred_username: 'erin', groups: ['usher-admins'] });
    expect((await me((await login('main', 'erin')).jar)).role).toBe('admin');
    idp.setAccount('erin', { preferred_username: 'erin' });
    expect((await me((await login('main', 'erin')).jar)).role).toBe('admin');
  });

  it('gives a new account its default grants, and syncs grants from groups at each login (an absent claim changes nothing)', async () => {
    const grants = async (jar: Jar) => {
      const res = await client(usherUrl).get(`${AUTH}/users/${(await me(jar)).id}/grants`, { key: adminKey });
      return res.body.map((g: { resourceId: string; source: string }) => `${g.resourceId}:${g.source}`);
    };
    idp.setAccount('gina', { preferred_username: 'gina', groups: ['staff'] });
    expect(await grants((await login('main', 'gina')).jar)).toEqual(['1:default', '5:group:oidc:main:staff']);
    idp.setAccount('gina', { preferred_username: 'gina' });
    expect(await grants((await login('main', 'gina')).jar)).toEqual(['1:default', '5:group:oidc:main:staff']);
    // The rule is for this provider only: a login through another one (its groups claim, realm_access.roles,
    // says she is in no group) takes nothing away.
    idp.setAccount('gina', { preferred_username: 'gina', groups: [], realm_access: { roles: [] } });
    expect(await grants((await login('kc', 'gina')).jar)).toEqual(['1:default', '5:group:oidc:main:staff']);
    idp.setAccount('gina', { preferred_username: 'gina', groups: [] });
    expect(await grants((await login('main', 'gina')).jar)).toEqual(['1:default']);
  });

  it('signs in a Google-like user with no groups claim and no preferred_username: named by email, role user', async () => {
    const user = await me((await login('main', 'gmail')).jar);
    expect(user).toMatchObject({ username: 'gee.mail@gmail.com', email: 'gee.mail@gmail.com', role: 'user' });
  });

  it('reads a nested claim (realm_access.roles) and a claim whose name holds dots and colons', async () => {
    expect((await me((await login('kc', 'kc-admin')).jar)).role).toBe('admin');
    expect((await me((await login('kc', 'kc-user')).jar)).role).toBe('user');
    expect((await me((await login('uri', 'url-claims')).jar)).role).toBe('admin');
  });

  it('never demotes the last enabled admin through a group change', async () => {
    idp.setAccount('solo', { preferred_username: 'solo', groups: ['usher-admins'] });
    const { jar } = await login('main', 'solo');
    const solo = await me(jar);
    expect(solo.role).toBe('admin');
    // Make solo the only enabled admin: demote every other admin by hand.
    const admins = (await client(usherUrl).get(`${AUTH}/users?role=admin&limit=500`, { key: adminKey })).body as { id: number }[];
    const rootKey = adminKey;
    for (const a of admins.filter((u) => u.id !== solo.id && u.id !== 1)) {
      await client(usherUrl).put(`${AUTH}/users/${a.id}`, { key: rootKey, body: { role: 'user' } });
    }
    expect((await client(usherUrl).put(`${AUTH}/users/1`, { key: rootKey, body: { role: 'user' } })).status).toBe(200);
    idp.setAccount('solo', { preferred_username: 'solo', groups: [] });
    const again = await login('main', 'solo');
    expect(again.done.status).toBe(302);
    expect((await me(again.jar)).role).toBe('admin');
    // Put the root admin back (solo, an admin, may).
    expect((await client(usherUrl, again.jar).put(`${AUTH}/users/1`, { body: { role: 'admin' } })).status).toBe(200);
  });

  it('refuses a user in none of allowedGroups with 403, and creates no account', async () => {
    idp.setAccount('outsider', { preferred_username: 'outsider', groups: ['contractors'] });
    const { done } = await login('strict', 'outsider');
    expect(done.status).toBe(403);
    const found = await client(usherUrl).get(`${AUTH}/users?q=outsider`, { key: adminKey });
    expect(found.headers.get('x-total-count')).toBe('0');
    const failed = await auditEntries(server, client(usherUrl), adminKey, 'login.failed');
    expect(failed[0]).toMatchObject({ actor: { kind: 'anonymous' }, targetUserId: null, detail: { method: 'oidc:strict', reason: 'not_allowed' } });
    expect((await login('strict', 'alice')).done.status).toBe(302);
  });

  it('treats the same sub at two providers as two users', async () => {
    const first = await me((await login('main', 'alice')).jar);
    const second = await me((await login('other', 'alice')).jar);
    expect(second.id).not.toBe(first.id);
    expect(second.username).not.toBe('alice');
  });

  it('finds accounts by (issuer, sub): two provider entries for one issuer share them', async () => {
    const viaMain = await me((await login('main', 'alice')).jar);
    const viaStrict = await me((await login('strict', 'alice')).jar);
    expect(viaStrict.id).toBe(viaMain.id);
    const rows = await server.usher.db('identities').where({ user_id: viaMain.id });
    expect(rows.map((r: { provider: string; subject: string }) => [r.provider, r.subject])).toEqual([[`oidc:${idp.issuer}`, 'alice']]);
  });

  it('links by email only when emailLinking is on and the email is verified', async () => {
    const local = await client(usherUrl).post(`${AUTH}/users`, { key: adminKey, body: { username: 'frank-local', email: 'frank@example.com', password: 'frank-password' } });
    idp.setAccount('frank', { preferred_username: 'frank', email: 'frank@example.com', email_verified: true });
    // Off: a separate account (and the email, taken, is not copied onto it).
    expect((await me((await login('main', 'frank')).jar)).id).not.toBe(local.body.id);
    const localU = await client(usherUrl).post(`${AUTH}/users`, { key: adminKey, body: { username: 'una-local', email: 'unverified@example.com', password: 'una-password' } });
    // On, unverified: not linked.
    expect((await me((await login('linking', 'unverified')).jar)).id).not.toBe(localU.body.id);
    // On, verified: the existing account.
    const george = await client(usherUrl).post(`${AUTH}/users`, { key: adminKey, body: { username: 'george-local', email: 'george@example.com', password: 'george-password' } });
    idp.setAccount('george', { preferred_username: 'george', email: 'george@example.com', email_verified: true });
    expect((await me((await login('linking', 'george')).jar)).id).toBe(george.body.id);
  });

  it('leaves out a name or email the API itself would refuse (control characters, too long, invalid)', async () => {
    idp.setAccount('odd', { preferred_username: 'odd', name: 'Evil\nName', email: 'not valid@\u0007' });
    const odd = await login('main', 'odd');
    expect(odd.done.status).toBe(302);
    expect(await me(odd.jar)).toMatchObject({ username: 'odd', name: null, email: null });
    const verify = await client(usherUrl, odd.jar).get(`${AUTH}/verify`);
    expect(verify.status).toBe(200);
    idp.setAccount('long', { preferred_username: 'long', name: 'n'.repeat(400), email: 'long@example.com' });
    const long = await login('main', 'long');
    expect(long.done.status).toBe(302);
    expect(await me(long.jar)).toMatchObject({ username: 'long', name: null, email: 'long@example.com' });
  });

  it('refuses a disabled user like a disabled local user', async () => {
    idp.setAccount('hank', { preferred_username: 'hank' });
    const hank = await me((await login('main', 'hank')).jar);
    await client(usherUrl).post(`${AUTH}/users/${hank.id}/status`, { key: adminKey, body: { active: false } });
    const { done } = await login('main', 'hank');
    expect(done.status).toBe(401);
    expect(errorCode(done)).toBe('auth.invalid_credentials');
    const failed = await auditEntries(server, client(usherUrl), adminKey, 'login.failed', hank.id);
    expect(failed).toMatchObject([{ actor: { kind: 'anonymous' }, targetUserId: hank.id, detail: { method: 'oidc:main', reason: 'disabled' } }]);
  });

  describe('callback checks', () => {
    it('refuses a tampered state and a replayed callback', async () => {
      const { callback, jar } = await login('main', 'alice');
      const browser = client(usherUrl, jar);
      const replay = await browser.get(callback.slice(usherUrl.length));
      expect(replay.status).toBe(400);
      expect(errorCode(replay)).toBe('oidc.invalid_state');

      const fresh: Jar = {};
      const start = await client(usherUrl, fresh).get(`${AUTH}/oidc/main/login`);
      const cb = new URL(await signInAtIdp(start.headers.get('location')!, 'alice'));
      cb.searchParams.set('state', 'forged-state');
      const tampered = await client(usherUrl, fresh).get(cb.pathname + cb.search);
      expect(tampered.status).toBe(400);
      expect(errorCode(tampered)).toBe('oidc.invalid_state');
      // A callback without the browser's pre-login session is refused too.
      const stranger = await client(usherUrl, {}).get(cb.pathname + cb.search);
      expect(stranger.status).toBe(400);
    });

    it('refuses an ID token whose nonce is not the one sent', async () => {
      const jar: Jar = {};
      const start = await client(usherUrl, jar).get(`${AUTH}/oidc/main/login`);
      const callback = await signInAtIdp(start.headers.get('location')!, 'alice');
      const store = server.usher.sessions.backend.store;
      const sid = sidOf(jar.cookie);
      const data = (await storeGet(store, sid))!;
      for (const pending of Object.values(data.oidcPending!)) pending.nonce = 'not-the-nonce-that-was-sent';
      await new Promise<void>((resolve, reject) => store.set(sid, data, (err) => (err ? reject(err) : resolve())));
      const res = await client(usherUrl, jar).get(callback.slice(usherUrl.length));
      expect(res.status).toBe(401);
      expect(errorCode(res)).toBe('oidc.login_failed');
      expect((await client(usherUrl, jar).get(`${AUTH}/me`)).status).toBe(401);
      const failed = await auditEntries(server, client(usherUrl), adminKey, 'login.failed');
      expect(failed[0]).toMatchObject({ targetUserId: null, detail: { method: 'oidc:main', reason: 'provider_refused' } });
    });

    it.each(['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '/%0d%0aSet-Cookie:x', '\\\\evil', '/.//evil.example/x', '/a/..//evil.example', '/%2e//evil.example', '/%2e%2e//evil.example'])(
      'turns the unsafe returnTo %s into /',
      async (returnTo) => {
        const { done } = await login('main', 'alice', { returnTo });
        expect(done.status).toBe(302);
        const location = done.headers.get('location')!;
        expect(location === '/' || (location.startsWith('/') && !location.startsWith('//') && !location.includes('\\'))).toBe(true);
        expect(new URL(location, usherUrl).origin).toBe(usherUrl);
      },
    );

    it('keeps safe paths as they are', () => {
      expect(safeReturnTo('/a/b?c=1#d')).toBe('/a/b?c=1#d');
      expect(safeReturnTo('//evil')).toBe('/');
      expect(safeReturnTo('/\\evil')).toBe('/');
      expect(safeReturnTo('/.//evil.example/x')).toBe('/');
      expect(safeReturnTo('/a/..//evil.example')).toBe('/');
      expect(safeReturnTo(undefined)).toBe('/');
    });
  });

  describe('logout', () => {
    it('answers the IdP logout URL with id_token_hint and post_logout_redirect_uri, and ends the session', async () => {
      const { jar } = await login('main', 'alice');
      const cookie = jar.cookie;
      const out = await client(usherUrl, jar).post(`${AUTH}/logout`);
      expect(out.status).toBe(200);
      const url = new URL(out.body.logoutUrl);
      expect(url.origin + url.pathname).toBe(`${idp.issuer}/session/end`);
      expect(url.searchParams.get('id_token_hint')).toMatch(/^ey/);
      expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`${usherUrl}/`);
      expect((await client(usherUrl, { cookie }).get(`${AUTH}/me`)).status).toBe(401);
    });

    it('ends the session when the IdP sends a back-channel logout', async () => {
      const idpSession = new IdpJar();
      const { jar } = await login('main', 'alice', { idpJar: idpSession });
      const other = await login('kc', 'kc-user');
      expect((await client(usherUrl, jar).get(`${AUTH}/me`)).status).toBe(200);
      // Sign out at the IdP itself (as from another app): it calls Usher's back-channel endpoint.
      const endUrl = new URL(`${idp.issuer}/session/end`);
      const before = idp.backchannel.length;
      await signOutAtIdp(endUrl.href, idpSession);
      const sent = idp.backchannel.slice(before).filter((b) => b.clientId === 'usher-main');
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.every((b) => b.ok)).toBe(true);
      expect((await client(usherUrl, jar).get(`${AUTH}/me`)).status).toBe(401);
      // Another IdP session's Usher session is untouched.
      expect((await client(usherUrl, other.jar).get(`${AUTH}/me`)).status).toBe(200);
    });

    it('ends every session of a subject for a logout token naming only sub', async () => {
      idp.setAccount('ivy', { preferred_username: 'ivy' });
      const a = await login('main', 'ivy');
      const b = await login('main', 'ivy');
      await idp.backchannelLogout('usher-main', 'ivy');
      expect((await client(usherUrl, a.jar).get(`${AUTH}/me`)).status).toBe(401);
      expect((await client(usherUrl, b.jar).get(`${AUTH}/me`)).status).toBe(401);
    });

    it.each([
      ['a nonce', { nonce: 'n' }],
      ['no events', { events: undefined }],
      ['another audience', { aud: 'someone-else' }],
      ['another issuer', { iss: 'https://evil.example' }],
      ['no jti', { jti: undefined }],
    ])('refuses a logout token with %s', async (_what, overrides) => {
      const token = await idp.logoutToken('usher-main', { sub: 'alice' }, overrides);
      const res = await fetch(`${usherUrl}${AUTH}/oidc/main/backchannel-logout`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: token }),
      });
      expect(res.status).toBe(400);
      expect((await res.json()).error.code).toBe('oidc.invalid_logout_token');
    });

    it('refuses a tampered or replayed logout token', async () => {
      const post = (token: string) =>
        fetch(`${usherUrl}${AUTH}/oidc/main/backchannel-logout`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ logout_token: token }),
        });
      const token = await idp.logoutToken('usher-main', { sub: 'nobody-here' });
      const [h, p, s] = token.split('.');
      const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
      const forged = [h, Buffer.from(JSON.stringify({ ...payload, sub: 'alice' })).toString('base64url'), s].join('.');
      expect((await post(forged)).status).toBe(400);
      expect((await post(token)).status).toBe(200);
      expect((await post(token)).status).toBe(400);
    });
  });

  it('answers 502 when the IdP is down, within the timeout, and keeps existing sessions working', async () => {
    const { jar } = await login('kc', 'kc-user');
    const down = await startIdp({ clients: [] });
    try {
      await down.setDown('hang');
      const lateServer = await startServer('sqlite', {
        settings: { server: { publicUrl: 'http://127.0.0.1:1' }, oidc: { timeout: '1s', providers: [provider('late', down.issuer)] } },
      });
      try {
        const started = Date.now();
        const res = await client(lateServer.url, {}).get(`${AUTH}/oidc/late/login`);
        expect(res.status).toBe(502);
        expect(errorCode(res)).toBe('oidc.provider_unavailable');
        expect(Date.now() - started).toBeLessThan(5_000);
        await down.setDown('refused');
        expect((await client(lateServer.url, {}).get(`${AUTH}/oidc/late/login`)).status).toBe(502);
        // Discovery is retried: once the IdP is back, login works without a restart.
        await down.setDown(false);
        const ok = await client(lateServer.url, {}).get(`${AUTH}/oidc/late/login`);
        expect(ok.status).toBe(302);
      } finally {
        await lateServer.close();
      }
      await idp.setDown('refused');
      expect((await client(usherUrl, jar).get(`${AUTH}/me`)).status).toBe(200);
      expect((await client(usherUrl, {}).get(`${AUTH}/oidc/main/login`)).status).toBeLessThan(503);
    } finally {
      await idp.setDown(false);
      await down.close();
    }
  });

  it('signs in with headless Chromium filling the IdP login form', async () => {
    idp.setAccount('chrome-user', { preferred_username: 'chrome-user', groups: ['staff'], name: 'Chrome User' });
    await withBrowser(async (page) => {
      await page.goto(`${usherUrl}${AUTH}/oidc/main/login?returnTo=${encodeURIComponent(`${AUTH}/me`)}`);
      expect(page.url().startsWith(idp.issuer)).toBe(true);
      const landed = await fillIdpLogin(page, 'chrome-user');
      expect(landed).toBe(`${usherUrl}${AUTH}/me`);
      const body = JSON.parse((await page.textContent('body')) ?? '{}');
      expect(body).toMatchObject({ username: 'chrome-user', role: 'user', name: 'Chrome User' });
      const cookies = await page.context().cookies(usherUrl);
      expect(cookies.find((c) => c.name === 'usher.sid')).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    });
  });
});
