import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { fillIdpLogin, withBrowser } from './helpers/browser.js';
import { checkPage } from './helpers/console.js';
import { client } from './helpers/http.js';
import { startIdp, type TestIdp } from './helpers/oidc-provider.js';
import { freePort } from './helpers/process.js';
import { createUser, setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const SECRET = 'client-secret-for-tests-0123456789';

async function fillSignIn(page: Page, username: string, password: string) {
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

const alertText = (page: Page) => page.getByRole('alert').filter({ hasText: /\S/ }).first().textContent();

describe('console: sign-in by password', () => {
  let server: TestServer;
  beforeAll(async () => {
    // Two failures per (account, address) pair, then the limiter refuses with Retry-After.
    server = await startServer('sqlite', { settings: { auth: { loginRateLimit: { maxFailures: 2, window: '10m' } } } });
    const c = client(server.url);
    const adminKey = await setupAdmin(c, 'admin', 'admin-password');
    await createUser(server, c, adminKey, { username: 'carol', password: 'carol-password' });
    await createUser(server, c, adminKey, { username: 'dave', password: 'dave-password' });
  });
  afterAll(() => server.close());

  it('says plainly that the credentials are wrong, keeps the username, and signs in with the right ones', async () => {
    await withBrowser(async (page) => {
      await page.goto(`${server.url}/login`);
      await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
      await checkPage(page, 'sign-in');
      await fillSignIn(page, 'carol', 'wrong-password');
      await expect.poll(() => alertText(page)).toMatch(/^That username and password do not match/);
      expect(await page.getByLabel('Username', { exact: true }).inputValue()).toBe('carol');
      await checkPage(page, 'sign-in-wrong-password');

      await page.getByLabel('Password', { exact: true }).fill('carol-password');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('heading', { name: 'My account' }).waitFor();
      expect(new URL(page.url()).pathname).toBe('/account');
    });
  });

  it('says how long to wait once too many attempts failed', async () => {
    await withBrowser(async (page) => {
      await page.goto(`${server.url}/login`);
      for (let i = 0; i < 2; i++) {
        await fillSignIn(page, 'dave', `wrong-${i}`);
        await expect.poll(() => alertText(page)).toMatch(/do not match/);
        // Each attempt's outcome replaces the last one: wait for this attempt to finish before the next.
        await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
      }
      await fillSignIn(page, 'dave', 'dave-password');
      await expect.poll(() => alertText(page)).toMatch(/^Too many attempts\. For your safety, wait (\d+ seconds|\d+ minutes) before trying again\.$/);
      await checkPage(page, 'sign-in-too-many-attempts');
    });
  });

  it('works with the keyboard alone, with a visible focus ring', async () => {
    await withBrowser(async (page) => {
      await page.goto(`${server.url}/login`);
      // The username box has the focus on arrival.
      await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('autocomplete'))).toBe('username');
      await page.keyboard.type('carol');
      await page.keyboard.press('Tab');
      await page.keyboard.type('carol-password');
      const ring = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
      expect(ring).toBe('solid');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'My account' }).waitFor();
      // The focus moved to the new page's heading; Tab goes on to its first field.
      await expect.poll(() => page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe(await page.getByLabel('Name', { exact: true }).first().getAttribute('id'));
      // From the top of the page, Tab reaches the skip link first, then the navigation.
      await page.reload();
      await page.getByRole('heading', { name: 'My account' }).waitFor();
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('My account');
    });
  });

  it('sends a visitor of a console page to sign-in, and back to it afterwards', async () => {
    await withBrowser(async (page) => {
      await page.goto(`${server.url}/account`);
      await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
      expect(new URL(page.url()).searchParams.get('next')).toBe('/account');
      await fillSignIn(page, 'admin', 'admin-password');
      await page.getByRole('heading', { name: 'My account' }).waitFor();
    });
  });
});

describe('console: sign-in for forward auth', () => {
  let server: TestServer;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    server = await startServer('sqlite', {
      port,
      settings: { auth: { forwardAuth: { loginUrl: `http://127.0.0.1:${port}/login`, redirectDomains: ['example.test'] } } },
    });
    await setupAdmin(client(server.url), 'admin', 'admin-password');
  });
  afterAll(() => server.close());

  it('returns to a safe rd after signing in', async () => {
    await withBrowser(
      async (page) => {
        // What /verify sends an anonymous browser to.
        const verify = await client(server.url).get(`${AUTH}/verify?rd=${encodeURIComponent(`http://app.example.test:${port}/healthz`)}`, {
          headers: { accept: 'text/html' },
        });
        expect(verify.status).toBe(302);
        const login = verify.headers.get('location')!;
        expect(login).toMatch(/\/login\?rd=/);
        await page.goto(login);
        await fillSignIn(page, 'admin', 'admin-password');
        await page.waitForURL(`http://app.example.test:${port}/healthz`);
      },
      { loopbackDomain: 'example.test' },
    );
  });

  it('goes to the console instead of an rd that is not safe', async () => {
    await withBrowser(async (page) => {
      await page.goto(`${server.url}/login?rd=${encodeURIComponent('https://evil.test/steal')}`);
      await fillSignIn(page, 'admin', 'admin-password');
      await page.getByRole('heading', { name: 'My account' }).waitFor();
      expect(page.url()).toBe(`${server.url}/account`);
    });
  });
});

describe('console: sign-in with an OpenID provider', () => {
  let idp: TestIdp;
  /** Down from the start: Usher never read its discovery document, so starting a login there fails. */
  let down: TestIdp;
  let server: TestServer;
  let url: string;
  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    down = await startIdp({ clients: [] });
    await down.setDown('refused');
    idp = await startIdp({
      clients: [
        {
          client_id: 'usher-main',
          client_secret: SECRET,
          token_endpoint_auth_method: 'client_secret_basic',
          redirect_uris: [`${url}${AUTH}/oidc/main/callback`],
        },
      ],
    });
    server = await startServer('sqlite', {
      port,
      settings: {
        server: { publicUrl: url },
        oidc: {
          timeout: '2s',
          providers: [
            { id: 'main', name: 'Example ID', issuer: idp.issuer, clientId: 'usher-main', clientSecret: SECRET },
            { id: 'late', name: 'Late ID', issuer: down.issuer, clientId: 'usher-late', clientSecret: SECRET },
          ],
        },
      },
    });
    await setupAdmin(client(url));
  });
  afterAll(async () => {
    await server?.close();
    await idp?.close();
    await down?.close();
  });

  it('offers one button per provider, signs in through it and lands in the console', async () => {
    await withBrowser(async (page) => {
      await page.goto(`${url}/login`);
      await page.getByRole('button', { name: 'Sign in with Example ID' }).click();
      await page.waitForURL((u) => u.href.startsWith(idp.issuer));
      await fillIdpLogin(page, 'alice');
      await page.getByRole('heading', { name: 'My account' }).waitFor();
      expect(page.url()).toBe(`${url}/account`);
      expect(await page.getByText('Username: alice').count()).toBe(1);
    });
  });

  it('says so when the provider does not answer, and stays on the page', async () => {
    await withBrowser(async (page) => {
      await page.goto(`${url}/login`);
      await page.getByRole('button', { name: 'Sign in with Late ID' }).click();
      await expect.poll(() => alertText(page)).toBe('The identity provider does not answer right now. Try again in a moment, or sign in with your password.');
      expect(new URL(page.url()).pathname).toBe('/login');
      // Both buttons are usable again.
      await page.getByRole('button', { name: 'Sign in with Example ID' }).waitFor();
      expect(await page.getByRole('button', { name: 'Sign in with Late ID' }).isEnabled()).toBe(true);
      await checkPage(page, 'sign-in-provider-down');
    });
  });
});
