import http, { type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { startCaddy, type Caddy } from './helpers/caddy.js';
import { docsSnippet } from './helpers/docs.js';
import { client, type Jar } from './helpers/http.js';
import { requestFrom } from './helpers/peer-http.js';
import { freePort } from './helpers/process.js';

const DOMAIN = 'example.test';
const BROWSER = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

/**
 * A real Caddy (Debian's 2.6) running the docs' forward_auth snippet in front of an app that echoes what it
 * received. Caddy passes the client's own query string on to /verify, and X-Forwarded-Method/-Proto/-Host/-Uri.
 * The database plays no part here: SQLite only.
 */
describe('a real Caddy forward_auth in front of an app, with Usher as the auth server', () => {
  let usher: TestServer;
  let caddy: Caddy;
  let app: Server;
  let port: number;
  let carolKey: string;
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const books = (path: string, headers: Record<string, string> = {}) =>
    requestFrom('127.0.0.1', `http://127.0.0.1:${port}${path}`, { headers: { host: `books.${DOMAIN}:${port}`, ...headers } });
  const booksUrl = (path: string) => `http://books.${DOMAIN}:${port}${path}`;

  beforeAll(async () => {
    port = await freePort();
    const auth = `http://auth.${DOMAIN}:${port}`;
    usher = await startServer('sqlite', {
      settings: {
        server: { trustedProxies: ['127.0.0.1'], publicUrl: auth },
        session: { cookieDomain: DOMAIN },
        auth: { forwardAuth: { loginUrl: `${auth}/login`, redirectDomains: [DOMAIN] } },
      },
    });
    carolKey = (await usher.usher.users.create({ username: 'carol', password: 'carol-password' })).apiKey;
    app = http.createServer((req, res) => {
      seen.push({ url: req.url!, headers: req.headers });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ app: 'books', user: req.headers['remote-user'] ?? null, url: req.url }));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const caddyfile = docsSnippet('proxy-auth.md', '### Caddy `forward_auth`', 'caddyfile', [
      ['books.example.com {', `http://books.${DOMAIN}:${port} {\n\tbind 127.0.0.1`],
      ['usher:8787', `127.0.0.1:${new URL(usher.url).port}`],
      ['books:8080', `127.0.0.1:${(app.address() as AddressInfo).port}`],
    ]);
    caddy = await startCaddy(caddyfile, `http://127.0.0.1:${port}/`);
  });
  afterAll(async () => {
    await caddy?.stop();
    await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
    await usher?.close();
  });

  it("lets a keyed user through with the app's own ?apikey= in the URL, handing the app the query and not the key", async () => {
    seen.length = 0;
    const res = await books('/shelf?apikey=the-apps-own&page=2', { 'x-api-key': carolKey });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ app: 'books', user: 'carol', url: '/shelf?apikey=the-apps-own&page=2' });
    expect(seen[0]!.headers['x-api-key']).toBeUndefined();
  });

  it('never hands the app an Usher key sent as Authorization: Bearer, but passes any other Authorization on', async () => {
    seen.length = 0;
    expect((await books('/shelf', { authorization: `Bearer ${carolKey}` })).body).toMatchObject({ user: 'carol' });
    const jar: Jar = {};
    await client(usher.url, jar).post('/api/v1/auth/login', { body: { username: 'carol', password: 'carol-password' } });
    const basic = `Basic ${Buffer.from('reader:app-password').toString('base64')}`;
    expect((await books('/shelf', { cookie: jar.cookie!, authorization: basic })).body).toMatchObject({ user: 'carol' });
    expect(seen.map((s) => s.headers.authorization)).toEqual([undefined, basic]);
    expect(JSON.stringify(seen)).not.toContain(carolKey);
  });

  it("sends an anonymous browser to the login page with the whole original URL, whatever rd the app's query holds", async () => {
    seen.length = 0;
    const path = `/shelf?rd=${encodeURIComponent('https://evil.net/')}&page=2&sort=title`;
    const res = await books(path, BROWSER);
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(`http://auth.${DOMAIN}:${port}/login`);
    expect(location.searchParams.get('rd')).toBe(booksUrl(path));
    expect(seen).toHaveLength(0);
  });

  it.each([
    ['application/json', { accept: 'application/json' }],
    ["curl's */*", { accept: '*/*' }],
  ])('answers an anonymous API call (%s) 401', async (_name, headers) => {
    seen.length = 0;
    const res = await books('/shelf?page=2', headers);
    expect(res.status).toBe(401);
    expect(res.headers.get('location')).toBeNull();
    expect(seen).toHaveLength(0);
  });

  it("never lets a client's own Remote-User through", async () => {
    seen.length = 0;
    expect((await books('/shelf', { 'Remote-User': 'root', ...BROWSER })).status).toBe(302);
    const withKey = await books('/shelf', { 'x-api-key': carolKey, 'Remote-User': 'root', 'Remote-Groups': 'admin' });
    expect(withKey.body).toMatchObject({ user: 'carol' });
    expect(seen.map((s) => [s.headers['remote-user'], s.headers['remote-groups']])).toEqual([['carol', 'user']]);
  });
});
