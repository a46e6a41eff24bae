import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, errorCode, type Client, type Jar } from './helpers/http.js';
import { fromUtf8Header } from './helpers/peer-http.js';
import { getFrom, proxySettings } from './helpers/proxy.js';
import { setupAdmin } from './helpers/users.js';

const VERIFY = '/api/v1/auth/verify';
const LOGIN_URL = 'https://auth.example.com/login?app=usher';

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
  ])('redirects an anonymous request to the login URL when rd names %s', async (_name, rd) => {
    const res = await c.get(`${VERIFY}?rd=${encodeURIComponent(rd)}`);
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
    const res = await c.get(`${VERIFY}?rd=${encodeURIComponent(rd)}`);
    expect(res.status).toBe(401);
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
      const trusted = await getFrom(server, '127.0.0.1', forwarded, '/api/v1/auth/verify');
      expect(trusted.status).toBe(302);
      expect(new URL(trusted.headers.get('location')!).searchParams.get('rd')).toBe('https://books.example.com/shelf?sort=title');
      const stranger = await getFrom(server, '127.0.0.2', forwarded, '/api/v1/auth/verify');
      expect(stranger.status).toBe(401);
      const elsewhere = await getFrom(server, '127.0.0.1', { ...forwarded, 'X-Forwarded-Host': 'evil.test' }, '/api/v1/auth/verify');
      expect(elsewhere.status).toBe(401);
    } finally {
      await server.close();
    }
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
