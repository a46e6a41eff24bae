import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import express from 'express';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUsher, type Usher } from '../src/index.js';
import { CONSOLE_PAGES, consoleDir } from '../src/http/console.js';
import { API_TYPES, consoleApiTypes } from '../scripts/console-api.js';
import { startServer, testSettings, type TestServer } from './helpers/app.js';
import { withBrowser } from './helpers/browser.js';
import { client } from './helpers/http.js';
import { setupAdmin } from './helpers/users.js';

const assets = () => readdirSync(join(consoleDir(), 'assets'));
const gzipped = (file: string) => gzipSync(readFileSync(join(consoleDir(), 'assets', file)), { level: 9 }).length;

/** The assets index.html loads at once: its script and stylesheets and what they preload. */
function entryAssets(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="[^"]*\/assets\/([^"]+)"/g)].map((m) => m[1]!);
}

describe('the console, served by the standalone server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer('sqlite');
  });
  afterAll(() => server.close());

  it('answers index.html for each console page, no-cache, under the strict CSP, with no inline script or style', async () => {
    for (const page of CONSOLE_PAGES) {
      const res = await fetch(`${server.url}${page}`);
      expect(res.status, page).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toMatch(/unsafe-eval|unsafe-inline'[^;]*;?\s*script/);
      const html = await res.text();
      expect(html).toContain('<meta name="usher-base" content="">');
      expect(html).toContain('<meta name="usher-api" content="/api/v1/auth">');
      // Every script is a file; no <style> and no style="" attribute.
      for (const tag of html.match(/<script[^>]*>/g) ?? []) expect(tag).toMatch(/src="\/assets\//);
      expect(html).not.toMatch(/<style|style="/);
    }
  });

  it('loads over plain http on a host name that is not loopback (a LAN server), CSP and all', async () => {
    const csp = (await fetch(`${server.url}/login`)).headers.get('content-security-policy')!;
    expect(csp).not.toContain('upgrade-insecure-requests');
    const port = new URL(server.url).port;
    await withBrowser(
      async (page) => {
        const failed: string[] = [];
        page.on('requestfailed', (r) => failed.push(r.url()));
        await page.goto(`http://nas.example.test:${port}/login`);
        await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
        expect(failed).toEqual([]);
      },
      { loopbackDomain: 'example.test' },
    );
  });

  it('serves hashed assets with a year of cache, and 404s for the rest', async () => {
    const html = await (await fetch(`${server.url}/login`)).text();
    const [script] = entryAssets(html).filter((f) => f.endsWith('.js'));
    expect(script).toMatch(/-[\w-]{8}\.js$/);
    const res = await fetch(`${server.url}/assets/${script}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/javascript/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await fetch(`${server.url}/assets/nope-12345678.js`)).status).toBe(404);
  });

  it('never answers a page for /api/*, nor for paths that are not console pages', async () => {
    for (const path of ['/api/v1/auth/account', '/api/v1/auth/nope', '/api/login', '/account/x', '/nope']) {
      const res = await fetch(`${server.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toMatch(/^application\/json/);
    }
  });

  it('answers no connect targets when none are set, and the default password length', async () => {
    const res = await fetch(`${server.url}/api/v1/auth/console-config`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ appUrl: null, webUrl: null, returnTo: null, passwordMinLength: 8 });
  });
});

describe('console-config with connect targets and forward auth', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer('sqlite', {
      settings: {
        connect: { appUrl: 'myapp://connect', webUrl: 'https://listen.example.com/' },
        passwords: { minLength: 12 },
        auth: { forwardAuth: { loginUrl: 'https://auth.example.com/login', redirectDomains: ['example.com'] } },
      },
    });
  });
  afterAll(() => server.close());

  it.each([
    ['https://books.example.com/shelf?x=1', 'https://books.example.com/shelf?x=1'],
    ['https://example.com/', 'https://example.com/'],
    ['http://books.example.com/', null],
    ['https://evil.test/', null],
    ['https://example.com.evil.test/', null],
    ['https://user:pw@books.example.com/', null],
    ['/account', null],
  ])('rd %s answers returnTo %s', async (rd, returnTo) => {
    const res = await fetch(`${server.url}/api/v1/auth/console-config?rd=${encodeURIComponent(rd)}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ appUrl: 'myapp://connect', webUrl: 'https://listen.example.com/', returnTo, passwordMinLength: 12 });
  });
});

describe('the console in library mode, mounted by a host at /auth', () => {
  let usher: Usher;
  let server: Server;
  let cleanup: () => Promise<void>;
  let url: string;
  beforeAll(async () => {
    const made = testSettings('sqlite');
    cleanup = made.cleanup;
    usher = await createUsher({ config: made.settings, logger: pino({ level: 'silent' }) });
    const app = express();
    app.use(usher.router);
    app.use('/auth', usher.console);
    app.get('/', (_req, res) => {
      res.type('text').send('the host app');
    });
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await usher?.close();
    await cleanup?.();
  });

  it('writes its base path into the page and serves its assets under it', async () => {
    const res = await fetch(`${url}/auth/login`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<meta name="usher-base" content="/auth">');
    const files = entryAssets(html);
    expect(files.length).toBeGreaterThan(1);
    for (const file of files) {
      expect(html).toContain(`"/auth/assets/${file}"`);
      expect((await fetch(`${url}/auth/assets/${file}`)).status).toBe(200);
    }
    // The host's own routes are untouched.
    expect(await (await fetch(`${url}/`)).text()).toBe('the host app');
  });

  it('keeps its links and redirects under the base path in the browser', async () => {
    await setupAdmin(client(url), 'admin', 'admin-password');
    await withBrowser(async (page) => {
      await page.goto(`${url}/auth/account`);
      await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
      expect(new URL(page.url()).pathname).toBe('/auth/login');
      expect(await page.getByRole('link', { name: 'I have a code' }).getAttribute('href')).toBe('/auth/connect');
      await page.getByLabel('Username', { exact: true }).fill('admin');
      await page.getByLabel('Password', { exact: true }).fill('admin-password');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('heading', { name: 'My account' }).waitFor();
      expect(page.url()).toBe(`${url}/auth/account`);
      await page.getByRole('button', { name: 'Sign out' }).first().click();
      await page.waitForURL(`${url}/auth/login`);
    });
  });
});

describe('the console build', () => {
  it('keeps the sign-in page within 60 KB and the whole console within 150 KB of gzipped JS and CSS', () => {
    const html = readFileSync(join(consoleDir(), 'index.html'), 'utf8');
    const signIn = entryAssets(html).reduce((sum, f) => sum + gzipped(f), 0);
    const all = assets()
      .filter((f) => /\.(js|css)$/.test(f))
      .reduce((sum, f) => sum + gzipped(f), 0);
    expect(signIn).toBeGreaterThan(1_000);
    expect(signIn).toBeLessThanOrEqual(60 * 1024);
    expect(all).toBeLessThanOrEqual(150 * 1024);
  });

  it("has the API types of today's endpoints (regenerate with npm run console:api)", async () => {
    expect(readFileSync(API_TYPES, 'utf8')).toBe(await consoleApiTypes());
  });
});
