import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { withBrowser } from './helpers/browser.js';
import { checkPage } from './helpers/console.js';
import { client } from './helpers/http.js';

describe('console: first run', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer('sqlite');
  });
  afterAll(() => server.close());

  it('creates the first admin, shows their API key once with a copy button, then signs in', async () => {
    await withBrowser(async (page, context) => {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
      await page.goto(`${server.url}/`);
      await page.getByRole('heading', { name: 'Welcome to Usher' }).waitFor();
      // passwords.minLength, as the server has it.
      await page.getByText('At least 8 characters.').waitFor();
      await checkPage(page, 'first-run');

      // Too short a password: the server's sentence, and what was typed stays.
      await page.getByLabel('Username', { exact: true }).fill('alice');
      await page.getByLabel('Password', { exact: true }).fill('short');
      await page.getByRole('button', { name: 'Create admin' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/password/i);
      expect(await page.getByLabel('Username', { exact: true }).inputValue()).toBe('alice');

      await page.getByLabel('Password', { exact: true }).fill('correct horse battery');
      await page.getByRole('button', { name: 'Create admin' }).click();
      await page.getByRole('heading', { name: 'Your admin account is ready' }).waitFor();
      const key = await page.getByLabel('API key').inputValue();
      expect(key).toMatch(/^usk_/);
      // The key works, and the copy button copies it.
      expect((await client(server.url).get('/api/v1/auth/me', { key })).status).toBe(200);
      await page.getByRole('button', { name: 'Copy' }).click();
      await page.getByText('Copied.').waitFor();
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
      await checkPage(page, 'first-run-key');

      // The setup is done: / now asks to sign in; the key is not shown again anywhere.
      await page.getByRole('link', { name: 'Continue to sign in' }).click();
      await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
      await page.getByLabel('Username', { exact: true }).fill('alice');
      await page.getByLabel('Password', { exact: true }).fill('correct horse battery');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.getByRole('heading', { name: 'My account' }).waitFor();
      expect(new URL(page.url()).pathname).toBe('/account');
    });
  });
});
