import http, { type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { DB_KINDS } from './helpers/db.js';
import { client, type Jar } from './helpers/http.js';
import { startNginx, type Nginx } from './helpers/nginx.js';
import { requestFrom } from './helpers/peer-http.js';
import { freePort } from './helpers/process.js';
import { ME, proxySettings } from './helpers/proxy.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/**
 * Two nginx servers in front of Usher (which trusts 127.0.0.1, nginx's address, only):
 *  - HEADERS_PORT authenticates with HTTP basic auth and sets Remote-User/Remote-Groups, as an auth
 *    proxy would, replacing whatever the client sent, and proxies to Usher;
 *  - GUARD_PORT guards another app with auth_request against /api/v1/auth/verify and hands it the
 *    Remote-* headers Usher answered; anonymous visitors are sent to a login page.
 */
function nginxConfig(ports: { headers: number; guard: number; usher: number; app: number }): string {
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
  server {
    listen 127.0.0.1:${ports.guard};
    location = /nginx-health { return 204; }
    location = /_usher_verify {
      internal;
      proxy_pass http://127.0.0.1:${ports.usher}/api/v1/auth/verify;
      proxy_method GET;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
    }
    location / {
      auth_request /_usher_verify;
      auth_request_set $usher_user $upstream_http_remote_user;
      auth_request_set $usher_groups $upstream_http_remote_groups;
      auth_request_set $usher_email $upstream_http_remote_email;
      auth_request_set $usher_name $upstream_http_remote_name;
      proxy_set_header Remote-User $usher_user;
      proxy_set_header Remote-Groups $usher_groups;
      proxy_set_header Remote-Email $usher_email;
      proxy_set_header Remote-Name $usher_name;
      proxy_set_header X-Api-Key "";
      error_page 401 = @login;
      proxy_pass http://127.0.0.1:${ports.app};
    }
    location @login {
      return 302 https://auth.example.com/login?rd=$scheme://$http_host$request_uri;
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
  let guardUrl: string;
  let carolKey: string;

  beforeAll(async () => {
    usher = await startServer(kind, { settings: proxySettings({ adminGroups: ['admins'] }, ['127.0.0.1']) });
    // A local admin, and an API-key user for the guarded app.
    await usher.usher.users.create({ username: 'root', password: 'root-password', role: 'admin' });
    carolKey = (await usher.usher.users.create({ username: 'carol', password: 'carol-password', email: 'carol@example.com', name: 'Carol' })).apiKey;

    app = http.createServer((req, res) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ app: 'books', user: req.headers['remote-user'] ?? null }));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));

    const ports = { headers: await freePort(), guard: await freePort(), usher: Number(new URL(usher.url).port), app: (app.address() as AddressInfo).port };
    headersUrl = `http://127.0.0.1:${ports.headers}`;
    guardUrl = `http://127.0.0.1:${ports.guard}`;
    const htpasswd = 'alice:{PLAIN}alice-password\nbob:{PLAIN}bob-password\n';
    nginx = await startNginx(nginxConfig(ports), `${headersUrl}/nginx-health`, { htpasswd });
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

  describe('nginx auth_request against /api/v1/auth/verify guarding another app', () => {
    it('passes a request with an API key, handing the app who it is', async () => {
      seen.length = 0;
      const res = await fetch(`${guardUrl}/books?page=2`, { headers: { 'x-api-key': carolKey } });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ app: 'books', user: 'carol' });
      expect(seen).toHaveLength(1);
      expect(seen[0]!.headers).toMatchObject({ 'remote-user': 'carol', 'remote-groups': 'user', 'remote-email': 'carol@example.com', 'remote-name': 'Carol' });
      expect(seen[0]!.headers['x-api-key']).toBeUndefined();
    });

    it('passes a request with a session cookie, and a POST too (the subrequest is a GET)', async () => {
      const jar: Jar = {};
      expect((await client(usher.url, jar).post('/api/v1/auth/login', { body: { username: 'carol', password: 'carol-password' } })).status).toBe(200);
      seen.length = 0;
      const res = await fetch(`${guardUrl}/books`, { method: 'POST', headers: { cookie: jar.cookie!, 'content-type': 'text/plain' }, body: 'hello' });
      expect(res.status).toBe(200);
      expect(seen.map((s) => [s.method, s.headers['remote-user']])).toEqual([['POST', 'carol']]);
    });

    it('sends an anonymous visitor to the login page and never reaches the app', async () => {
      seen.length = 0;
      const res = await fetch(`${guardUrl}/books?page=2`, { redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe(`https://auth.example.com/login?rd=${guardUrl}/books?page=2`);
      expect(seen).toHaveLength(0);
    });

    it("never lets a client's own Remote-User through: forged alone it is anonymous, beside a key it is replaced", async () => {
      seen.length = 0;
      const forged = await fetch(`${guardUrl}/books`, { headers: { 'Remote-User': 'root', 'Remote-Groups': 'admin' }, redirect: 'manual' });
      expect(forged.status).toBe(302);
      const withKey = await fetch(`${guardUrl}/books`, { headers: { 'x-api-key': carolKey, 'Remote-User': 'root', 'Remote-Groups': 'admin' } });
      expect(await withKey.json()).toEqual({ app: 'books', user: 'carol' });
      expect(seen.map((s) => [s.headers['remote-user'], s.headers['remote-groups']])).toEqual([['carol', 'user']]);
      expect(await usher.usher.users.findByUsername('root')).toMatchObject({ authSource: 'local' });
    });

    it('refuses a wrong API key (401 from Usher: the login page)', async () => {
      const res = await fetch(`${guardUrl}/books`, { headers: { 'x-api-key': 'usk_wrong' }, redirect: 'manual' });
      expect(res.status).toBe(302);
    });
  });
});
