import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client, type Jar } from './helpers/http.js';
import { fromUtf8Header, requestFrom } from './helpers/peer-http.js';
import { getFrom, proxySettings } from './helpers/proxy.js';
import { setupAdmin } from './helpers/users.js';

const VERIFY = '/api/v1/auth/verify';
const LOGIN_URL = 'https://auth.example.com/login?app=usher';
/** What a browser's navigation sends (Chromium's). */
const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8' };

describe.each(DB_KINDS)('forward auth (GET /verify) on %s', (kind) => {
  let server: TestServer;
  let c: Client;
  let adminKey: string;
  let aliceKey: string;

  beforeAll(async () => {
    server = await startServer(kind, {
      settings: proxySettings({}, ['127.0.0.1'], { forwardAuth: { loginUrl: LOGIN_URL, redirectDomains: ['example.com'] } }),
    });
    c = client(server.url);
    adminKey = await setupAdmin(c);
    const alice = await server.usher.users.create({ username: 'alice', password: 'alice-password', name: 'Alice Ünal', email: 'alice@example.com' });
    aliceKey = alice.apiKey;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 200 with Remote-User, Remote-Groups (role and inherited roles), Remote-Email and Remote-Name for an API key', async () => {
    const res = await c.get(VERIFY, { key: adminKey });
    expect(res.status).toBe(200);
    expect(res.headers.get('remote-user')).toBe('admin');
    expect(res.headers.get('remote-groups')).toBe('admin,user');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body.user).toMatchObject({ username: 'admin', role: 'admin' });
  });

  it('sends UTF-8 bytes, and every header even when empty, so a proxy copying them replaces what the client sent', async () => {
    const alice = await c.get(VERIFY, { key: aliceKey });
    expect(alice.headers.get('remote-groups')).toBe('user');
    expect(alice.headers.get('remote-email')).toBe('alice@example.com');
    expect(fromUtf8Header(alice.headers.get('remote-name')!)).toBe('Alice Ünal');
    const admin = await c.get(VERIFY, { key: adminKey });
    expect(admin.headers.get('remote-email')).toBe('');
    expect(admin.headers.get('remote-name')).toBe('');
  });

  it('answers 200 for a session cookie', async () => {
    const jar: Jar = {};
    const browser = client(server.url, jar);
    expect((await browser.post('/api/v1/auth/login', { body: { username: 'alice', password: 'alice-password' } })).status).toBe(200);
    const res = await browser.get(VERIFY);
    expect(res.status).toBe(200);
    expect(res.headers.get('remote-user')).toBe('alice');
  });

  it("never reads identity headers, even from a trusted proxy: an auth subrequest carries the client's own", async () => {
    const res = await getFrom(server, '127.0.0.1', { 'Remote-User': 'carl', 'Remote-Groups': 'staff' }, VERIFY);
    expect(res.status).toBe(401);
    expect(res.headers.get('remote-user')).toBeNull();
    expect(await server.usher.users.findByUsername('carl')).toBeNull();
    // The same headers elsewhere are that user.
    expect((await getFrom(server, '127.0.0.1', { 'Remote-User': 'carl' })).status).toBe(200);
  });

  it.each([
    ['no credential', {}, 'auth.unauthenticated'],
    ['a wrong API key', { 'x-api-key': 'usk_wrong' }, 'auth.invalid_api_key'],
  ])('answers 401 for %s', async (_name, headers, code) => {
    const res = await c.get(VERIFY, { headers });
    expect(res.status).toBe(401);
    expect(errorCode(res)).toBe(code);
    expect(res.headers.get('remote-user')).toBeNull();
  });

  it.each([
    ['the same host as the login page', 'https://auth.example.com/welcome'],
    ['a subdomain of a redirect domain, with path and query', 'https://app.example.com/books?page=2&sort=title'],
    ['the redirect domain itself', 'https://example.com/'],
  ])('redirects an anonymous browser to the login URL when rd names %s', async (_name, rd) => {
    const res = await c.get(`${VERIFY}?rd=${encodeURIComponent(rd)}`, { headers: HTML });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).toBe('https://auth.example.com/login');
    expect(location.searchParams.get('app')).toBe('usher');
    expect(location.searchParams.get('rd')).toBe(new URL(rd).href);
  });

  it.each([
    ['another site', 'https://evil.net/'],
    ['a look-alike host', 'https://app.example.com.evil.net/'],
    ['a suffix that is not a subdomain', 'https://notexample.com/'],
    ['credentials before the host', 'https://app.example.com@evil.net/'],
    ['a backslash trick', 'https://evil.net\\@app.example.com/'],
    ['plain http when the login page is https', 'http://app.example.com/'],
    ['a scheme-relative URL', '//app.example.com/'],
    ['a path', '/books'],
    ['javascript:', 'javascript:alert(1)'],
    ['user info', 'https://user:pw@app.example.com/'],
  ])('answers 401, not a redirect, when rd is %s', async (_name, rd) => {
    const res = await c.get(`${VERIFY}?rd=${encodeURIComponent(rd)}`, { headers: HTML });
    expect(res.status).toBe(401);
    expect(res.headers.get('location')).toBeNull();
  });

  it.each([
    ['application/json', { accept: 'application/json' }],
    ["curl's */*", { accept: '*/*' }],
    ['no Accept at all', {}],
    ['text/html refused (q=0)', { accept: 'text/html;q=0, */*' }],
  ])('answers an API call (%s) 401, not a redirect to a login page', async (_name, headers) => {
    const res = await requestFrom('127.0.0.2', `${server.url}${VERIFY}?rd=${encodeURIComponent('https://app.example.com/books')}`, { headers });
    expect(res.status).toBe(401);
    expect(errorCode(res)).toBe('auth.unauthenticated');
    expect(res.headers.get('location')).toBeNull();
  });

  it('answers 405 to other methods', async () => {
    const res = await c.post(VERIFY, { key: adminKey });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('forward auth behind Traefik or Caddy (no ?rd=)', () => {
  it('rebuilds the original URL from a trusted proxy\'s X-Forwarded-Proto/-Host/-Uri, and ignores them from anyone else', async () => {
    const server = await startServer('sqlite', {
      host: '::',
      settings: { server: { trustedProxies: ['127.0.0.1'] }, auth: { forwardAuth: { loginUrl: LOGIN_URL, redirectDomains: ['example.com'] } } },
    });
    try {
      const forwarded = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'books.example.com', 'X-Forwarded-Uri': '/shelf?sort=title' };
      const trusted = await getFrom(server, '127.0.0.1', { ...forwarded, ...HTML }, '/api/v1/auth/verify');
      expect(trusted.status).toBe(302);
      expect(new URL(trusted.headers.get('location')!).searchParams.get('rd')).toBe('https://books.example.com/shelf?sort=title');
      const stranger = await getFrom(server, '127.0.0.2', { ...forwarded, ...HTML }, '/api/v1/auth/verify');
      expect(stranger.status).toBe(401);
      const elsewhere = await getFrom(server, '127.0.0.1', { ...forwarded, ...HTML, 'X-Forwarded-Host': 'evil.test' }, '/api/v1/auth/verify');
      expect(elsewhere.status).toBe(401);
    } finally {
      await server.close();
    }
  });
});

describe.each(DB_KINDS)("forward auth when a trusted proxy passes the app's own query string on (Caddy) on %s", (kind) => {
  let server: TestServer;
  let aliceKey: string;
  /** What Caddy's forward_auth sends for GET https://books.example.com/shelf?<query>. */
  const caddy = (query: string, headers: Record<string, string> = {}) =>
    getFrom(server, '127.0.0.1', { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'books.example.com', 'X-Forwarded-Uri': `/shelf?${query}`, ...headers }, `${VERIFY}?${query}`);

  beforeAll(async () => {
    server = await startServer(kind, {
      host: '::',
      settings: { server: { trustedProxies: ['127.0.0.1'] }, auth: { forwardAuth: { loginUrl: LOGIN_URL, redirectDomains: ['example.com'] } } },
    });
    aliceKey = (await server.usher.users.create({ username: 'alice', password: 'alice-password' })).apiKey;
  });
  afterAll(async () => {
    await server?.close();
  });

  it("takes the original URL from X-Forwarded-*, not from an rd in the app's own query", async () => {
    const query = `rd=${encodeURIComponent('https://example.com/elsewhere')}&page=2`;
    const res = await caddy(query, HTML);
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get('location')!).searchParams.get('rd')).toBe(`https://books.example.com/shelf?${query}`);
  });

  it.each([
    ['apikey', 'apikey=the-apps-own-key&page=2'],
    ['api_key holding a whole Usher key', `api_key=usk_${'a'.repeat(43)}`],
    ['X-Api-Key', 'x-api-key=1'],
  ])("lets a keyed user through when the app's own query has a parameter named like a key (%s)", async (_name, query) => {
    const res = await caddy(query, { 'X-Api-Key': aliceKey });
    expect(res.status).toBe(200);
    expect(res.headers.get('remote-user')).toBe('alice');
  });

  it.each(['/api/v1/auth/verify/', '/API/v1/auth/VERIFY'])('does so however Express matched the route: %s', async (path) => {
    const res = await getFrom(server, '127.0.0.1', { 'X-Forwarded-Host': 'books.example.com', 'X-Forwarded-Uri': '/?apikey=1', 'X-Api-Key': aliceKey }, `${path}?apikey=1`);
    expect(res.status).toBe(200);
  });

  it.each([
    ['from an untrusted peer', '127.0.0.2', { 'X-Forwarded-Host': 'books.example.com', 'X-Forwarded-Uri': '/?apikey=1' }, VERIFY],
    ['from the trusted proxy describing no original request', '127.0.0.1', {}, VERIFY],
    ['on any other route, even from the trusted proxy', '127.0.0.1', { 'X-Forwarded-Host': 'books.example.com', 'X-Forwarded-Uri': '/?apikey=1' }, '/api/v1/auth/me'],
    ['on a path that only starts like verify', '127.0.0.1', { 'X-Forwarded-Host': 'books.example.com', 'X-Forwarded-Uri': '/?apikey=1' }, '/api/v1/auth/verify/x'],
  ])('still refuses a key-like parameter in the URL %s', async (_name, address, headers, path) => {
    const res = await getFrom(server, address, { ...headers, 'X-Api-Key': aliceKey }, `${path}?apikey=1`);
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe('auth.key_in_url');
  });
});

describe.each(DB_KINDS)('forward auth for nginx auth_request (X-Original-URL) on %s', (kind) => {
  let server: TestServer;
  const original = 'https://books.example.com/shelf?page=2&sort=title&q=a%26b';
  const nginx = (headers: Record<string, string>) => getFrom(server, '127.0.0.1', { 'X-Original-URL': original, ...headers }, VERIFY);

  beforeAll(async () => {
    server = await startServer(kind, {
      host: '::',
      settings: { server: { trustedProxies: ['127.0.0.1'] }, auth: { forwardAuth: { loginUrl: LOGIN_URL, redirectDomains: ['example.com'] } } },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers a browser 401 with the login URL in Location (nginx passes no 3xx on), rd being the whole original URL', async () => {
    const res = await nginx(HTML);
    expect(res.status).toBe(401);
    expect(errorCode(res)).toBe('auth.unauthenticated');
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).toBe('https://auth.example.com/login');
    expect(location.searchParams.get('app')).toBe('usher');
    expect(location.searchParams.get('rd')).toBe(original);
  });

  it('answers an API call 401 without Location', async () => {
    const res = await nginx({ accept: 'application/json' });
    expect(res.status).toBe(401);
    expect(res.headers.get('location')).toBeNull();
  });

  it.each([
    ['an unsafe original URL', '127.0.0.1', 'https://evil.net/'],
    ['X-Original-URL from an untrusted peer', '127.0.0.2', original],
  ])('gives no Location for %s', async (_name, address, url) => {
    const res = await getFrom(server, address, { 'X-Original-URL': url, ...HTML }, VERIFY);
    expect(res.status).toBe(401);
    expect(res.headers.get('location')).toBeNull();
  });

  it('believes an X-Original-URL sent only once, in any case of its name', async () => {
    const twice = await getFrom(server, '127.0.0.1', { 'X-Original-URL': [original, original], ...HTML }, VERIFY);
    expect(twice.status).toBe(401);
    expect(twice.headers.get('location')).toBeNull();
    const lower = await getFrom(server, '127.0.0.1', { 'x-original-url': original, ...HTML }, VERIFY);
    expect(new URL(lower.headers.get('location')!).searchParams.get('rd')).toBe(original);
  });
});

describe.each(DB_KINDS)('forward auth and identity headers on %s', (kind) => {
  it.each(['/api/v1/auth/verify', '/api/v1/auth/verify/', '/api/v1/auth/VERIFY', '/API/v1/auth/Verify'])(
    'never answers for the proxy identity headers a client sent, at %s',
    async (path) => {
      const server = await startServer(kind, { settings: proxySettings({ adminGroups: ['admins'] }) });
      try {
        const res = await getFrom(server, '127.0.0.1', { 'Remote-User': 'admin', 'Remote-Groups': 'admins' }, path);
        expect(res.status).toBe(401);
        expect(res.headers.get('remote-user')).toBeNull();
      } finally {
        await server.close();
      }
    },
  );
});

describe('forward auth without a login URL', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer('sqlite', { settings: { server: { publicUrl: 'https://auth.example.com' } } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 401 even to a safe rd: there is nowhere to send it', async () => {
    const res = await client(server.url).get(`${VERIFY}?rd=${encodeURIComponent('https://auth.example.com/x')}`);
    expect(res.status).toBe(401);
  });
});
