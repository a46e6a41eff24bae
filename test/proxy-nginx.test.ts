import http, { type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, type Jar } from './helpers/http.js';
import { withBrowser } from './helpers/browser.js';
import { docsSnippet } from './helpers/docs.js';
import { startNginx, type Nginx } from './helpers/nginx.js';
import { requestFrom } from './helpers/peer-http.js';
import { freePort } from './helpers/process.js';
import { ME } from './helpers/proxy.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Host names under this domain resolve to 127.0.0.1 for Chromium; Node's requests name them in Host. */
const DOMAIN = 'example.test';

/** The login page Usher has not got yet: it posts to Usher's login on its own origin, then goes to `rd`. */
const LOGIN_PAGE = `<!doctype html>
<title>Sign in</title>
<form id="login"><input name="username"><input name="password" type="password"><button>Sign in</button></form>
<p id="error"></p>
<script>
  document.getElementById('login').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const res = await fetch('/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: form.get('username'), password: form.get('password') }),
    });
    if (!res.ok) document.getElementById('error').textContent = 'login failed: ' + res.status;
    else location.href = new URLSearchParams(location.search).get('rd');
  });
</script>
`;

/**
 * nginx in front of Usher (which trusts 127.0.0.1, nginx's address, only):
 *  - on HEADERS_PORT, authenticating with HTTP basic auth and setting Remote-User/Remote-Groups, as an auth
 *    proxy would, replacing whatever the client sent, and proxying to Usher;
 *  - on GUARD_PORT, books.example.test: the docs' auth_request snippet itself, guarding another app with
 *    /api/v1/auth/verify; and auth.example.test: Usher's API and the login page.
 */
function nginxConfig(ports: { headers: number; guard: number; usher: number; app: number }): string {
  const guard = docsSnippet('proxy-auth.md', '### nginx `auth_request`', 'nginx', [
    ['listen 443 ssl;', `listen 127.0.0.1:${ports.guard};`],
    ['server_name books.example.com;', `server_name books.${DOMAIN};`],
    ['http://usher:8787', `http://127.0.0.1:${ports.usher}`],
    ['http://books:8080', `http://127.0.0.1:${ports.app}`],
  ]);
  return `
  map $remote_user $usher_groups {
    default "";
    alice "staff,admins";
    bob "staff";
  }
  server {
    listen 127.0.0.1:${ports.headers};
    location = /nginx-health { return 204; }
    location / {
      auth_basic "usher test";
      auth_basic_user_file {{PREFIX}}/htpasswd;
      proxy_set_header Remote-User $remote_user;
      proxy_set_header Remote-Groups $usher_groups;
      proxy_set_header Remote-Email "";
      proxy_set_header Remote-Name "";
      proxy_set_header Authorization "";
      proxy_pass http://127.0.0.1:${ports.usher};
    }
  }
  ${guard}
  server {
    listen 127.0.0.1:${ports.guard};
    server_name auth.${DOMAIN};
    location = /login {
      default_type text/html;
      alias {{PREFIX}}/login.html;
    }
    location /api/ {
      proxy_pass http://127.0.0.1:${ports.usher};
    }
  }`;
}

describe.each(DB_KINDS)('a real nginx in front of Usher on %s', (kind) => {
  let usher: TestServer;
  let nginx: Nginx;
  let app: Server;
  /** What the guarded app received. */
  const seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];
  let headersUrl: string;
  let guardPort: number;
  let carolKey: string;
  /** What a client of books.example.test gets: a request to nginx naming that host. */
  const books = (path: string, opts: { method?: string; headers?: Record<string, string>; body?: unknown } = {}) =>
    requestFrom('127.0.0.1', `http://127.0.0.1:${guardPort}${path}`, { ...opts, headers: { host: `books.${DOMAIN}:${guardPort}`, ...opts.headers } });
  const booksUrl = (path: string) => `http://books.${DOMAIN}:${guardPort}${path}`;

  beforeAll(async () => {
    guardPort = await freePort();
    const auth = `http://auth.${DOMAIN}:${guardPort}`;
    usher = await startServer(kind, {
      settings: {
        server: { trustedProxies: ['127.0.0.1'], publicUrl: auth },
        session: { cookieDomain: DOMAIN },
        auth: { proxy: { enabled: true, adminGroups: ['admins'] }, forwardAuth: { loginUrl: `${auth}/login`, redirectDomains: [DOMAIN] } },
      },
    });
    // A local admin, and an API-key user for the guarded app.
    await usher.usher.users.create({ username: 'root', password: 'root-password', role: 'admin' });
    carolKey = (await usher.usher.users.create({ username: 'carol', password: 'carol-password', email: 'carol@example.com', name: 'Carol' })).apiKey;

    app = http.createServer((req, res) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ app: 'books', user: req.headers['remote-user'] ?? null, url: req.url }));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));

    const ports = { headers: await freePort(), guard: guardPort, usher: Number(new URL(usher.url).port), app: (app.address() as AddressInfo).port };
    headersUrl = `http://127.0.0.1:${ports.headers}`;
    const htpasswd = 'alice:{PLAIN}alice-password\nbob:{PLAIN}bob-password\n';
    nginx = await startNginx(nginxConfig(ports), `${headersUrl}/nginx-health`, { htpasswd, 'login.html': LOGIN_PAGE });
  });
  afterAll(async () => {
    await nginx?.stop();
    await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
    await usher?.close();
  });

  describe('nginx setting the identity headers', () => {
    it.each([
      ['alice, in the admins group, is an admin', 'alice', 'alice-password', 'admin'],
      ['bob is a user', 'bob', 'bob-password', 'user'],
    ])('%s', async (_name, user, password, role) => {
      const res = await fetch(`${headersUrl}${ME}`, { headers: { authorization: basic(user, password) } });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ username: user, role, authSource: 'proxy' });
    });

    it("replaces the client's own identity headers: a forged Remote-User and Remote-Groups change nothing", async () => {
      const res = await fetch(`${headersUrl}${ME}`, {
        headers: { authorization: basic('bob', 'bob-password'), 'Remote-User': 'alice', 'Remote-Groups': 'admins', 'Remote-Name': 'Mallory' },
      });
      expect(await res.json()).toMatchObject({ username: 'bob', role: 'user', name: null });
    });

    it('refuses a visitor without credentials (nginx answers 401)', async () => {
      expect((await fetch(`${headersUrl}${ME}`)).status).toBe(401);
    });

    it.each(['127.0.0.2', '127.0.0.1'])('ignores the same headers sent straight to Usher from %s', async (address) => {
      // 127.0.0.1 is trusted: that is why Usher must only be reachable through the proxy on that address.
      const res = await requestFrom(address, `${usher.url}${ME}`, { headers: { 'Remote-User': 'alice', 'Remote-Groups': 'admins' } });
      expect(res.status).toBe(address === '127.0.0.2' ? 401 : 200);
    });
  });

  describe("nginx auth_request against /api/v1/auth/verify guarding another app (the docs' snippet)", () => {
    it('passes a request with an API key, handing the app who it is and not the key', async () => {
      seen.length = 0;
      const res = await books('/books?page=2', { headers: { 'x-api-key': carolKey } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ app: 'books', user: 'carol', url: '/books?page=2' });
      expect(seen).toHaveLength(1);
      expect(seen[0]!.headers).toMatchObject({ 'remote-user': 'carol', 'remote-groups': 'user', 'remote-email': 'carol@example.com', 'remote-name': 'Carol' });
      expect(seen[0]!.headers['x-api-key']).toBeUndefined();
    });

    it.each(['Bearer', 'bearer', 'BEARER '])('never hands the app an Usher key sent as Authorization: %s usk_...', async (scheme) => {
      seen.length = 0;
      const res = await books('/books', { headers: { authorization: `${scheme} ${carolKey}` } });
      expect(res.body).toMatchObject({ user: 'carol' });
      expect(seen).toHaveLength(1);
      expect(seen[0]!.headers.authorization).toBeUndefined();
      expect(JSON.stringify(seen[0]!.headers)).not.toContain(carolKey);
    });

    it("passes the app's own Authorization (not an Usher key) on", async () => {
      const jar: Jar = {};
      expect((await client(usher.url, jar).post('/api/v1/auth/login', { body: { username: 'carol', password: 'carol-password' } })).status).toBe(200);
      seen.length = 0;
      const res = await books('/books', { headers: { cookie: jar.cookie!, authorization: basic('reader', 'app-password') } });
      expect(res.body).toMatchObject({ user: 'carol' });
      expect(seen[0]!.headers.authorization).toBe(basic('reader', 'app-password'));
    });

    it('passes a request with a session cookie, and a POST too (the subrequest is a GET)', async () => {
      const jar: Jar = {};
      expect((await client(usher.url, jar).post('/api/v1/auth/login', { body: { username: 'carol', password: 'carol-password' } })).status).toBe(200);
      seen.length = 0;
      const res = await books('/books', { method: 'POST', headers: { cookie: jar.cookie! }, body: { note: 'hello' } });
      expect(res.status).toBe(200);
      expect(seen.map((s) => [s.method, s.headers['remote-user']])).toEqual([['POST', 'carol']]);
    });

    it('sends an anonymous browser to the login page with the whole URL, every query parameter kept, and never reaches the app', async () => {
      seen.length = 0;
      const path = '/books?page=2&sort=title&q=a%26b&empty=&x=%E2%9C%93';
      const res = await books(path, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
      expect(res.status).toBe(302);
      const location = new URL(res.headers.get('location')!);
      expect(location.origin + location.pathname).toBe(`http://auth.${DOMAIN}:${guardPort}/login`);
      expect(location.searchParams.get('rd')).toBe(booksUrl(path));
      expect([...location.searchParams.keys()]).toEqual(['rd']);
      expect(seen).toHaveLength(0);
    });

    it.each([
      ['application/json', { accept: 'application/json' }],
      ["curl's */*", { accept: '*/*' }],
      ['no Accept', {}],
    ])('answers an anonymous API call (%s) 401, not a login page', async (_name, headers) => {
      seen.length = 0;
      const res = await books('/books?page=2', { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('location')).toBeNull();
      expect(seen).toHaveLength(0);
    });

    it("never lets a client's own Remote-User through: forged alone it is anonymous, beside a key it is replaced", async () => {
      seen.length = 0;
      const forged = await books('/books', { headers: { 'Remote-User': 'root', 'Remote-Groups': 'admin' } });
      expect(forged.status).toBe(401);
      const withKey = await books('/books', { headers: { 'x-api-key': carolKey, 'Remote-User': 'root', 'Remote-Groups': 'admin' } });
      expect(withKey.body).toMatchObject({ app: 'books', user: 'carol' });
      expect(seen.map((s) => [s.headers['remote-user'], s.headers['remote-groups']])).toEqual([['carol', 'user']]);
      expect(await usher.usher.users.findByUsername('root')).toMatchObject({ authSource: 'local' });
    });

    it('refuses a wrong API key (401 from Usher, passed on)', async () => {
      const res = await books('/books', { headers: { 'x-api-key': 'usk_wrong', accept: 'text/html' } });
      expect(res.status).toBe(401);
    });

    it('signs a browser in on auth.example.test and lands it on books.example.test as that user (single sign-on)', async () => {
      seen.length = 0;
      const start = booksUrl('/shelf?page=2&sort=title');
      const landed = await withBrowser(
        async (page) => {
          await page.goto(start);
          expect(new URL(page.url()).host).toBe(`auth.${DOMAIN}:${guardPort}`);
          expect(new URL(page.url()).searchParams.get('rd')).toBe(start);
          await page.fill('input[name=username]', 'carol');
          await page.fill('input[name=password]', 'carol-password');
          await page.click('button');
          await page.waitForURL((url) => url.hostname === `books.${DOMAIN}`);
          const cookies = await page.context().cookies(start);
          return { url: page.url(), body: JSON.parse((await page.textContent('body')) ?? '{}') as unknown, cookies };
        },
        { loopbackDomain: DOMAIN },
      );
      expect(landed.url).toBe(start);
      expect(landed.body).toEqual({ app: 'books', user: 'carol', url: '/shelf?page=2&sort=title' });
      expect(landed.cookies.find((c) => c.name === 'usher.sid')).toMatchObject({ domain: `.${DOMAIN}`, httpOnly: true, sameSite: 'Lax' });
      expect(seen.map((s) => s.headers['remote-user'])).toEqual(['carol']);
    });
  });
});
