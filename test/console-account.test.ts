import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.js';
import { withBrowser } from './helpers/browser.js';
import { checkPage, signIn } from './helpers/console.js';
import { client } from './helpers/http.js';
import { setupAdmin } from './helpers/users.js';

const AUTH = '/api/v1/auth';
const alertText = (page: Page) => page.getByRole('alert').filter({ hasText: /\S/ }).first().textContent();

describe('console: My account', () => {
  let server: TestServer;
  let adminKey: string;
  beforeAll(async () => {
    server = await startServer('sqlite');
    adminKey = await setupAdmin(client(server.url), 'admin', 'admin-password');
  });
  afterAll(() => server.close());

  it('shows the API key, and replaces it after asking', async () => {
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      await checkPage(page, 'account');
      // The system's dark mode: the same checks (contrast included) on the dark palette.
      await page.emulateMedia({ colorScheme: 'dark' });
      expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(18, 20, 24)');
      await checkPage(page, 'account-dark');
      await page.emulateMedia({ colorScheme: 'light' });
      const card = page.getByRole('region', { name: 'API key' });
      await card.getByRole('button', { name: 'Show key' }).click();
      expect(await card.getByLabel('Your API key').inputValue()).toBe(adminKey);

      await card.getByRole('button', { name: 'Replace key…' }).click();
      await card.getByText('The old key stops working at once.').waitFor();
      await card.getByRole('button', { name: 'Yes, replace it' }).click();
      await card.getByText(/A new key replaced the old one/).waitFor();
      const replaced = await card.getByLabel('Your API key').inputValue();
      expect(replaced).toMatch(/^usk_/);
      expect(replaced).not.toBe(adminKey);
      expect((await client(server.url).get(`${AUTH}/me`, { key: adminKey })).status).toBe(401);
      expect((await client(server.url).get(`${AUTH}/me`, { key: replaced })).status).toBe(200);
      adminKey = replaced;
    });
  });

  it('mints a recovery code shown once that signs another device in, lists that device and signs it out', async () => {
    await withBrowser(async (page, _context, browser) => {
      await signIn(page, server.url);
      const card = page.getByRole('region', { name: 'Recovery code' });
      await card.getByText('You have no recovery code.').waitFor();
      await card.getByRole('button', { name: 'Make a recovery code' }).click();
      await card.getByText(/shown this once/).waitFor();
      const code = await card.getByLabel('Your recovery code').inputValue();
      expect(code).toMatch(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
      await card.getByText(/^You have a recovery code, made /).waitFor();
      await checkPage(page, 'account-recovery-code');

      const sessions = page.getByRole('region', { name: 'Sessions and devices' });
      await sessions.getByRole('button', { name: 'Sign out this device' }).waitFor();
      // Oldest first; the earlier tests' browsers are still signed in.
      const others = sessions.getByRole('button', { name: 'Sign out Browser', exact: true });
      const before = await others.count();
      // The phone below names itself after its browser when it connects.
      const phoneSessions = sessions.getByRole('button', { name: 'Sign out Chrome on Linux', exact: true });

      // A second browser (a phone, say) connects with it through the code box.
      const phone = await browser.newContext();
      try {
        const other = await phone.newPage();
        await other.goto(`${server.url}/connect`);
        await other.getByLabel('Code', { exact: true }).fill(code);
        await other.getByRole('button', { name: 'Connect' }).click();
        await other.getByRole('heading', { name: "You're connected" }).waitFor();

        // It is listed under Sessions and devices; signing it out ends its session.
        await page.reload();
        await sessions.getByRole('button', { name: 'Sign out this device' }).waitFor();
        await expect.poll(() => phoneSessions.count()).toBe(1);
        await phoneSessions.click();
        await sessions.getByText('Chrome on Linux signed out.').waitFor();
        await expect.poll(() => phoneSessions.count()).toBe(0);
        expect(await others.count()).toBe(before);
        expect(await other.evaluate(async () => (await fetch('/api/v1/auth/me')).status)).toBe(401);
      } finally {
        await phone.close();
      }

      // Removing the code: it no longer signs anyone in.
      await card.getByRole('button', { name: 'Remove recovery code' }).click();
      await card.getByText('You have no recovery code.').waitFor();
      expect((await client(server.url, {}).post(`${AUTH}/connect`, { body: { code } })).status).toBe(401);
    });
  });

  it('refuses a password change with a wrong current password, keeping what was typed', async () => {
    await withBrowser(async (page) => {
      await signIn(page, server.url);
      const card = page.getByRole('region', { name: 'Password' });
      await card.getByLabel('Current password').fill('not-it');
      await card.getByLabel('New password').fill('a new long password');
      await card.getByRole('button', { name: 'Change password' }).click();
      await expect.poll(() => card.getByRole('alert').textContent()).toBe('The current password is not right.');
      expect(await card.getByLabel('New password').inputValue()).toBe('a new long password');

      const profile = page.getByRole('region', { name: 'Profile' });
      await profile.getByLabel('Name').fill('Ada Admin');
      await profile.getByRole('button', { name: 'Save profile' }).click();
      await profile.getByText('Profile saved.').waitFor();
      expect((await client(server.url).get(`${AUTH}/me`, { key: adminKey })).body.name).toBe('Ada Admin');

      // Signing out from the header ends the session.
      await page.getByRole('button', { name: 'Sign out' }).first().click();
      await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
      expect(await page.evaluate(async () => (await fetch('/api/v1/auth/me')).status)).toBe(401);
      expect(await alertText(page).catch(() => null)).toBeFalsy();
    });
  });
});
